#!/usr/bin/env bash
# The GPU check: builds the worker-only target against the machine's CUDA LibTorch, runs the GPU tests
# and the training benchmark, in phases that each leave their log in OUTDIR as they finish, so a
# failure in a later phase still returns everything before it.
#
#   bash cluster/gpu-check.sh OUTDIR
#
# Phases (OUTDIR/summary.txt gets one line per phase: name, exit code, seconds):
#   0 env        what the machine has (GPU, driver, LibTorch, CMake, compiler, OS)   -> 0-env.log
#   1 configure  unpacks .gpu-deps/*.deb into a prefix, cmake -DLDM_WORKER_ONLY=ON  -> 1-configure.log
#   2 build      ldm-worker, ldm-eval, test_gpu, bench_train_device                  -> 2-build.log
#   3 tests      build/bin/test_gpu (tests/gpu/)                                     -> 3-tests.log
#   4 benchmark  bench_train_device: DiT-XL/2, 256², batch 256, bf16                 -> 4-benchmark.log, bench.json
#                then PyTorch's DiT on the same weights and batch (tests/bench/train_step_reference.py),
#                eager and torch.compile: images/s and loss agreement               -> pytorch.json
# Configure and build are skipped when the build directory already holds a build (LDM_GPU_REBUILD=1
# forces them).
#
# Made for the GPU machine (no apt, no MPI, no internet): the libraries the worker needs beyond
# LibTorch travel as Debian packages that `bash cluster/gpu-deps.sh` fetched into .gpu-deps/ on a
# development machine (carried with the run); they are unpacked into $LDM_GPU_PREFIX and found there.
# LibTorch: $LDM_TORCH_PREFIX, else python3's torch when it has CUDA (torch.utils.cmake_prefix_path),
# else the system's. NCCL: python3's nvidia-nccl wheel when there is one, else the CUDA toolkit's.
#
# Without a GPU (a rehearsal on a development machine): the same phases against Debian's CPU
# LibTorch; the tests run on the CPU (LDM_GPU_TESTS_ON_CPU=1) and the benchmark at a small preset.
#
# Environment: LDM_GPU_BUILD (build dir, default build-gpu), LDM_GPU_PREFIX (default
# /tmp/ldm-gpu-prefix), LDM_BUILD_JOBS (default nproc), LDM_GPU_PHASE_TIMEOUT (seconds for every
# phase; by default configure 150, build 420, tests 180, benchmark 360), LDM_BENCH_ARGS (replaces the
# benchmark's arguments).
#
# On the device tool (one command at most 600 s): a cold build may not leave time for the benchmark
# in the same call; a second call while the machine is warm skips configure and build.
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${LDM_GPU_BUILD:-$repo/build-gpu}
prefix=${LDM_GPU_PREFIX:-/tmp/ldm-gpu-prefix}
jobs=${LDM_BUILD_JOBS:-$(nproc)}
limit_for() {  # PHASE -> seconds
  if [ -n "${LDM_GPU_PHASE_TIMEOUT:-}" ]; then
    echo "$LDM_GPU_PHASE_TIMEOUT"
    return
  fi
  case $1 in
    1-configure) echo 150 ;; 2-build) echo 420 ;; 3-tests) echo 180 ;; *) echo 360 ;;
  esac
}
py=${LDM_PYTHON:-python3}
: > "$out/summary.txt"
failed=0

# phase NAME COMMAND...: runs COMMAND with its output in OUTDIR/NAME.log, under the phase time limit.
phase() {
  local name=$1
  shift
  local start=$SECONDS
  echo "== $name: $*" > "$out/$name.log"
  # The phases are functions of this script: a child bash runs them (exported below) under timeout.
  timeout --kill-after=10 "$(limit_for "$name")" bash -c '"$@"' phase "$@" >> "$out/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - start))s" | tee -a "$out/summary.txt"
  [ $rc -eq 0 ] || failed=1
  return $rc
}

have_gpu() { command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1; }

env_report() {
  set -x
  uname -a
  cat /etc/os-release 2>/dev/null | head -3
  ldd --version | head -1
  nproc
  free -g | head -2
  nvidia-smi || true
  command -v nvcc && nvcc --version | tail -2
  cmake --version | head -1
  command -v ninja && ninja --version
  c++ --version | head -1
  "$py" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available(), "cxx11abi", torch.compiled_with_cxx11_abi(), torch.utils.cmake_prefix_path)' || true
  "$py" -c 'import nvidia.nccl as n; print("nccl wheel", list(n.__path__))' || true
  command -v pkg-config mpirun dpkg || true
  ls "$repo/.gpu-deps" 2>/dev/null | wc -l
  df -h "$repo" /tmp | tail -2
}

# Unpacks the carried Debian packages into $prefix and points pkg-config at them (their .pc files
# name /usr: rewritten to the prefix; Requires.private dropped, as only shared linking happens here).
unpack_deps() {
  local debs=("$repo"/.gpu-deps/*.deb)
  [ -e "${debs[0]}" ] || {
    echo "no .gpu-deps/*.deb: using the system's libraries"
    return 0
  }
  command -v dpkg-deb > /dev/null || {
    echo "dpkg-deb is missing: cannot unpack .gpu-deps" >&2
    return 1
  }
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for f in "${debs[@]}"; do dpkg-deb -x "$f" "$prefix" || return 1; done
  find "$prefix" -name '*.pc' -exec sed -i -e "s|^prefix=/usr\$|prefix=$prefix/usr|" -e '/^Requires.private:/d' {} +
  echo "unpacked ${#debs[@]} packages into $prefix ($(du -sh "$prefix" | cut -f1))"
}

deps_environment() {
  [ -d "$prefix/usr" ] || return 0
  local lib=$prefix/usr/lib/x86_64-linux-gnu
  export PATH=$prefix/usr/bin:$PATH
  export PKG_CONFIG_PATH=$lib/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$lib:$prefix/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}

configure() {
  unpack_deps || return 1
  deps_environment
  local torch_prefix=${LDM_TORCH_PREFIX:-}
  if [ -z "$torch_prefix" ] && "$py" -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)' 2> /dev/null; then
    torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  fi
  local nccl_root
  nccl_root=$("$py" -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2> /dev/null || true)
  local args=(-S "$repo" -B "$build" -DLDM_WORKER_ONLY=ON -DCMAKE_BUILD_TYPE=Release -DLDM_UNITY=ON
    "-DCMAKE_PREFIX_PATH=${torch_prefix:+$torch_prefix;}$prefix/usr")
  command -v ninja > /dev/null && args+=(-G Ninja)
  [ -n "$nccl_root" ] && args+=("-DLDM_NCCL_ROOT=$nccl_root")
  if command -v nvcc > /dev/null; then
    local cuda_root
    cuda_root=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
    args+=("-DCUDAToolkit_ROOT=$cuda_root" "-DCMAKE_CUDA_COMPILER=$(readlink -f "$(command -v nvcc)")")
  fi
  echo "cmake ${args[*]}"
  cmake "${args[@]}"
}

build_targets() {
  deps_environment
  cmake --build "$build" -j "$jobs" --target ldm-worker ldm-eval test_gpu bench_train_device
}

run_tests() {
  deps_environment
  have_gpu || export LDM_GPU_TESTS_ON_CPU=1
  "$build/bin/ldm-worker" --help > /dev/null || return 1
  "$build/bin/test_gpu" --duration=true
}

run_benchmark() {
  deps_environment
  local args dump=${TMPDIR:-/tmp}/ldm-bench-dump
  if [ -n "${LDM_BENCH_ARGS:-}" ]; then
    read -r -a args <<< "$LDM_BENCH_ARGS"
  elif have_gpu; then
    args=(--preset XL/2 --latent 32 --batch 256 --steps 20 --warmup 3)
  else
    args=(--preset small/2 --latent 8 --batch 8 --steps 3 --warmup 3 --threads "$(nproc)")
  fi
  rm -rf "$dump"
  "$build/bin/bench_train_device" "${args[@]}" --out "$out/bench.json" --dump "$dump" || return 1
  # PyTorch on the same work: eager, then compiled where this PyTorch has torch.compile.
  local ref=(--time --repeat 23 --tolerance 0.05)
  if have_gpu; then
    ref+=(--device cuda --bf16 --sdpa --fused)
  else
    ref+=(--device cpu --bf16 --repeat 6)
  fi
  local rc=0
  rm -f "${TMPDIR:-/tmp}/pytorch-eager.json" "${TMPDIR:-/tmp}/pytorch-compiled.json"
  "$py" "$repo/tests/bench/train_step_reference.py" "$dump" "${ref[@]}" --out "${TMPDIR:-/tmp}/pytorch-eager.json" || rc=1
  if "$py" -c 'import torch, sys; sys.exit(0 if hasattr(torch, "compile") else 1)'; then
    "$py" "$repo/tests/bench/train_step_reference.py" "$dump" "${ref[@]}" --compile \
      --out "${TMPDIR:-/tmp}/pytorch-compiled.json" || rc=1
  else
    echo "torch.compile: not in this PyTorch ($("$py" -c 'import torch; print(torch.__version__)'))"
  fi
  "$py" - "$out/pytorch.json" "${TMPDIR:-/tmp}/pytorch-eager.json" "${TMPDIR:-/tmp}/pytorch-compiled.json" << 'PY'
import json, os, sys
merged = {}
for name, path in zip(("eager", "compiled"), sys.argv[2:]):
    if os.path.exists(path):
        merged[name] = json.load(open(path))
json.dump(merged, open(sys.argv[1], "w"), indent=1)
PY
  return $rc
}

export out repo build prefix jobs py
export -f have_gpu env_report unpack_deps deps_environment configure build_targets run_tests run_benchmark

phase 0-env env_report
if [ "${LDM_GPU_REBUILD:-0}" = 1 ] || [ ! -x "$build/bin/test_gpu" ]; then
  phase 1-configure configure && phase 2-build build_targets
else
  echo "1-configure skipped (a build is in $build)" | tee -a "$out/summary.txt"
  echo "2-build skipped" | tee -a "$out/summary.txt"
fi
if [ -x "$build/bin/test_gpu" ]; then
  phase 3-tests run_tests
  phase 4-benchmark run_benchmark
fi
exit $failed
