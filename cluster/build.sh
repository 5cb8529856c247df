#!/usr/bin/env bash
# Configures and builds into ./build (Release-with-debug-info, Ninja, ccache when present).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > build.configure.log 2>&1 || {
  cat build.configure.log >&2
  exit 1
}
# 2 parallel jobs: a LibTorch translation unit takes ~1 GB and ~10 s.
cmake --build build -j "${LDM_BUILD_JOBS:-2}"
