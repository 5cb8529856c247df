#!/usr/bin/env bash
# Sanitizer builds of the parts that do not link LibTorch (shared/, coordinator/, datasets/ except
# datasets/tensor/) and their tests:
#   build-asan: AddressSanitizer + UndefinedBehaviorSanitizer, every test of those parts;
#   build-tsan: ThreadSanitizer, the coordinator's tests (HTTP server, ZeroMQ endpoint and store are
#               used from several threads), with tests/sanitizers/tsan.supp for uninstrumented
#               Debian libraries only.
# Usage: cluster/sanitizers.sh [asan|tsan|all]   (default all; CI runs all)
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
jobs=${LDM_BUILD_JOBS:-2}

configure_build() {  # DIR FLAGS TARGETS...
  local dir=$1 flags=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLDM_BUILD_WORKER=OFF \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" > "$dir.configure.log" 2>&1 || {
    cat "$dir.configure.log" >&2
    exit 1
  }
  cmake --build "$dir" -j "$jobs" --target "$@"
}

if [[ $which == asan || $which == all ]]; then
  flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1"
  configure_build build-asan "$flags" test_shared test_store test_datasets test_coordinator ldm-data ldm-coord
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure --timeout 600 -j "$jobs" -L unit
fi
if [[ $which == tsan || $which == all ]]; then
  flags="-fsanitize=thread -fno-omit-frame-pointer -O1"
  configure_build build-tsan "$flags" test_coordinator
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/sanitizers/tsan.supp"
  ctest --test-dir build-tsan --output-on-failure --timeout 600 -j "$jobs" -R '^test_coordinator:'
fi
