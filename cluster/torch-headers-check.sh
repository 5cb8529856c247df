#!/usr/bin/env bash
# Compiles (syntax only) every LibTorch translation unit of the worker against another LibTorch's
# headers, to catch API changes before a GPU machine's build does. Uses build/compile_commands.json
# (any configured build with the worker) and the headers of a LibTorch unpacked under PREFIX, e.g.
# Debian 13's libtorch-dev (2.6) fetched here without installing it:
#
#   echo "deb http://deb.debian.org/debian trixie main" > /tmp/trixie.list
#   o="-o Dir::Etc::SourceList=/tmp/trixie.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=/tmp/trixie-lists"
#   mkdir -p /tmp/trixie-lists/partial && apt-get $o update && (cd /tmp && apt-get $o download libtorch-dev)
#   dpkg-deb -x /tmp/libtorch-dev_*.deb /tmp/torch-next
#   bash cluster/torch-headers-check.sh /tmp/torch-next/usr/include [BUILD_DIR]
#
# LDM_CXX_STANDARD=20 compiles as C++20 (newer LibTorch versions ask for it); LDM_CHECK_CXX (another
# compiler) and LDM_CHECK_FLAGS (flags put first) check against another standard library too, e.g.
# Debian 13's libstdc++-14-dev unpacked under /tmp/gcc14 (GCC 13+ dropped transitive includes):
#   LDM_CHECK_CXX=clang++-14 LDM_CHECK_FLAGS="-nostdinc++ -isystem /tmp/gcc14/usr/include/c++/14
#     -isystem /tmp/gcc14/usr/include/x86_64-linux-gnu/c++/14" bash cluster/torch-headers-check.sh ...
# Prints one line per translation unit and the errors of those that fail; exits 1 when one does.
# The headers' LibTorch is never linked or run (its libraries need a newer glibc than Debian 12's).
set -euo pipefail
cd "$(dirname "$0")/.."
include=${1:?usage: torch-headers-check.sh INCLUDE_DIR [BUILD_DIR]}
build=${2:-build}
jobs=${LDM_BUILD_JOBS:-2}
[ -f "$include/torch/csrc/api/include/torch/version.h" ] || {
  echo "$include: no torch/csrc/api/include/torch/version.h" >&2
  exit 2
}
/usr/bin/python3 - "$build/compile_commands.json" "$include" "$jobs" << 'PY'
import concurrent.futures, json, os, re, shlex, subprocess, sys
commands, include, jobs = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
version = re.search(r"TORCH_VERSION\s*\\?\s*\"([0-9.]+)", open(include + "/torch/csrc/api/include/torch/version.h").read())
wanted = [c for c in commands
          if re.search(r"/(worker|datasets/tensor|tests/gpu|tests/bench/bench_train_device)", c["file"])
          or ("/Unity/" in c["file"] and re.search(r"(ldm_models|worker|eval|datasets_torch|test_gpu)", c["file"]))]
def check(c):
    args = shlex.split(c["command"])
    out = []
    skip = False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-MD", "-MMD", "-c"):
            continue
        if a.startswith("-std=") and os.environ.get("LDM_CXX_STANDARD"):
            a = "-std=c++" + os.environ["LDM_CXX_STANDARD"]
        out.append(a)
    compiler = os.environ.get("LDM_CHECK_CXX") or args[0]
    extra = shlex.split(os.environ.get("LDM_CHECK_FLAGS", ""))
    cmd = [compiler] + extra + ["-I" + include, "-I" + include + "/torch/csrc/api/include", "-fsyntax-only", "-w"] + out
    r = subprocess.run(cmd, cwd=c["directory"], capture_output=True, text=True)
    return c["file"], r.returncode, r.stderr
failed = 0
print("LibTorch headers %s: %d translation units" % (version.group(1) if version else "?", len(wanted)), flush=True)
with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    for f, rc, err in pool.map(check, wanted):
        print(("ok   " if rc == 0 else "FAIL ") + os.path.relpath(f), flush=True)
        if rc:
            failed += 1
            print("\n".join(l for l in err.splitlines() if "error" in l)[:4000], flush=True)
print("%d of %d failed" % (failed, len(wanted)))
sys.exit(1 if failed else 0)
PY
