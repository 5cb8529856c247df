#!/usr/bin/env bash
# Sanitizer builds of the parts that do not link LibTorch (shared/, coordinator/, datasets/ except
# datasets/tensor/) and their tests, with Debian's clang:
#   build-asan: AddressSanitizer (leaks included) + UndefinedBehaviorSanitizer, every test of those
#               parts (ctest label `unit`), the fuzz corpora's replays included;
#   build-tsan: ThreadSanitizer, the coordinator's tests (HTTP server, ZeroMQ endpoint and store are
#               used from several threads), with tests/sanitizers/tsan.supp for uninstrumented
#               Debian libraries only.
# Usage: cluster/sanitizers.sh [asan|tsan|all]   (default all; CI runs all)
#
# Build time is what CI pays for (two cold builds on 2 cores), hence: clang rather than gcc (its
# -O0 builds of Beast and nlohmann/json code are 3-4x faster here), -O0 -g1 (line tables
# are enough for reports; TSan too: its tests run 18 s either way), and UBSan without `vptr`
# (dynamic-type checks of every virtual call, half again the compile time; ASan catches the memory
# errors a bad downcast leads to). The test programs only: no ldm-coord / ldm-data binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
jobs=${LDM_BUILD_JOBS:-2}
cxx=${LDM_SANITIZER_CXX:-clang++}
cc=${LDM_SANITIZER_CC:-clang}
command -v "$cxx" > /dev/null || {
  echo "sanitizers.sh: $cxx not found (cluster/install-deps.sh installs clang)" >&2
  exit 1
}

# Reports with function names and lines.
if [[ -z ${ASAN_SYMBOLIZER_PATH:-} && -x /usr/bin/llvm-symbolizer-14 ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14 TSAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
fi

configure_build() {  # DIR OPT SANITIZE_FLAGS TARGETS...
  local dir=$1 opt=$2 flags=$3
  shift 3
  CXX=$cxx CC=$cc cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLDM_BUILD_WORKER=OFF \
    -DCMAKE_CXX_FLAGS_DEBUG="$opt -g1" -DCMAKE_C_FLAGS_DEBUG="$opt -g1" \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
    > "$dir.configure.log" 2>&1 || {
    cat "$dir.configure.log" >&2
    exit 1
  }
  cmake --build "$dir" -j "$jobs" --target "$@"
}

if [[ $which == asan || $which == all ]]; then
  start=$SECONDS
  flags="-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  # The fuzz harnesses' replay programs too: ctest's `fuzz_replay` tests (label unit) run every
  # corpus of tests/fuzz/ and the wire/HTTP inputs of tests/data/bad/ under ASan + UBSan.
  configure_build build-asan -O0 "$flags" test_shared test_store test_datasets test_coordinator fuzz_experiment_toml \
    fuzz_manifest fuzz_protocol fuzz_http fuzz_shard fuzz_tar fuzz_image
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure --timeout 600 -j "$jobs" -L unit
  echo "sanitizers.sh: ASan+UBSan build and tests took $((SECONDS - start)) s"
fi
if [[ $which == tsan || $which == all ]]; then
  start=$SECONDS
  configure_build build-tsan -O0 "-fsanitize=thread -fno-omit-frame-pointer" test_coordinator
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/sanitizers/tsan.supp"
  ctest --test-dir build-tsan --output-on-failure --timeout 600 -j "$jobs" -R '^test_coordinator:'
  echo "sanitizers.sh: TSan build and tests took $((SECONDS - start)) s"
fi
