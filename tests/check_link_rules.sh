#!/usr/bin/env bash
# DESIGN.md's dependency arrows, checked on the built programs:
#   ldm-coord and ldm-data never link LibTorch (or MPI); ldm-worker never links RocksDB or toml++.
# Usage: check_link_rules.sh BIN_DIR
set -euo pipefail
bin=$1
fail=0
links() {  # links BINARY PATTERN: dynamic libraries matching, or (static RocksDB) its symbols
  { ldd "$bin/$1" | grep -E "$2" || true; nm -C --defined-only "$bin/$1" 2>/dev/null | grep -E "$3" | head -1 || true; } | grep -q .
}
for prog in ldm-coord ldm-data; do
  if links "$prog" 'libtorch|libc10|libmpi' 'at::Tensor::|MPI_Init'; then
    echo "FAIL: $prog links LibTorch or MPI"; fail=1
  else
    echo "ok: $prog links neither LibTorch nor MPI"
  fi
done
if links ldm-worker 'librocksdb|libtomlplusplus' 'rocksdb::DB::|toml::v3::'; then
  echo "FAIL: ldm-worker links RocksDB or toml++"; fail=1
else
  echo "ok: ldm-worker links neither RocksDB nor toml++"
fi
# The checks must be able to fail: the coordinator does link RocksDB and toml++.
if ! links ldm-coord 'librocksdb|libtomlplusplus' 'rocksdb::DB::|toml::v3::'; then
  echo "FAIL: the probe cannot see RocksDB/toml++ in ldm-coord, so the checks above prove nothing"; fail=1
fi
exit $fail
