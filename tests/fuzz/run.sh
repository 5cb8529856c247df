#!/usr/bin/env bash
# Fuzzes each harness for SECONDS with libFuzzer (clang; AddressSanitizer + UndefinedBehaviorSanitizer)
# and prints, per harness, the executions and the crashes, hangs, leaks and out-of-memory inputs found.
#
# Usage: tests/fuzz/run.sh SECONDS [HARNESS...]       (default: every harness; tests/fuzz/README.md)
#   LDM_FUZZ_PARALLEL=N   harnesses fuzzed at once (default 1; each uses one core)
#   LDM_BUILD_JOBS=N      build jobs (default 2)
#
# Builds build-fuzz/ (skipped when up to date). Each harness starts from its seeds and everything
# kept so far (tests/fuzz/corpus/<harness>/ and build-fuzz/corpus/<harness>/, where new inputs go);
# findings land in build-fuzz/findings/<harness>/ (crash-*, timeout-*, leak-*, oom-*), the log in
# build-fuzz/logs/<harness>.log. A finding worth keeping as a regression input is copied into
# tests/fuzz/corpus/<harness>/ once fixed; `ctest -R fuzz_replay` replays those in every build.
# Limits: 10 s an input (a hang), 2 GiB for one allocation and 4 GiB in all (out of memory).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: tests/fuzz/run.sh SECONDS [HARNESS...]}
shift
all=(experiment_toml manifest protocol http shard tar image npy safetensors pt)
harnesses=("${@:-${all[@]}}")
parallel=${LDM_FUZZ_PARALLEL:-1}
command -v clang++ > /dev/null || {
  echo "run.sh: clang++ not found (cluster/install-deps.sh installs clang)" >&2
  exit 1
}
[[ -z ${ASAN_SYMBOLIZER_PATH:-} && -x /usr/bin/llvm-symbolizer-14 ]] && export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [[ ! -f build-fuzz/build.ninja ]]; then
  CXX=clang++ CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLDM_FUZZ=ON \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DCMAKE_C_FLAGS_DEBUG="-O1 -g1" \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" > build-fuzz.configure.log 2>&1 || {
    cat build-fuzz.configure.log >&2
    exit 1
  }
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build build-fuzz -j "${LDM_BUILD_JOBS:-2}" --target "${targets[@]}"

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fuzz_one() {  # HARNESS
  local h=$1
  mkdir -p "build-fuzz/corpus/$h" "build-fuzz/findings/$h" build-fuzz/logs
  # fork mode: a finding is saved and fuzzing goes on, so one run counts all of them.
  "build-fuzz/bin/fuzz_$h" -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=2048 -rss_limit_mb=4096 \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/findings/$h/" "build-fuzz/corpus/$h" "tests/fuzz/corpus/$h" \
    > "build-fuzz/logs/$h.log" 2>&1 || true
  # What the last fork-mode children left (they end with _Exit; fuzz_support.h's ProcessDir).
  rm -rf "${TMPDIR:-/tmp}/ldm-fuzz-$h-"*
}
running=0
for h in "${harnesses[@]}"; do
  echo "run.sh: fuzzing $h for $seconds s" >&2
  fuzz_one "$h" &
  running=$((running + 1))
  if ((running >= parallel)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
rm -rf /dev/shm/ldm-fuzz-[0-9]*  # the harnesses' scratch files (fuzz_support.h's scratch_dir)

count() { find "build-fuzz/findings/$1" -maxdepth 1 -name "$2-*" | wc -l; }
printf '%-16s %12s %10s %8s %7s %7s %7s %8s\n' harness executions exec/s crashes hangs leaks ooms corpus
for h in "${harnesses[@]}"; do
  # The fork-mode status line: "#<execs>: cov: <n> ft: <n> corp: <n> exec/s <r> oom/timeout/crash: ..."
  line=$(grep -E '^#[0-9]+: cov:' "build-fuzz/logs/$h.log" | tail -1 || true)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<< "$line")
  rate=$(sed -nE 's/.*exec\/s:? ([0-9]+).*/\1/p' <<< "$line")
  corp=$(sed -nE 's/.*corp: ([0-9]+).*/\1/p' <<< "$line")
  printf '%-16s %12s %10s %8s %7s %7s %7s %8s\n' "$h" "${execs:-?}" "${rate:-?}" "$(count "$h" crash)" \
    "$(count "$h" timeout)" "$(count "$h" leak)" "$(count "$h" oom)" "${corp:-?}"
done
