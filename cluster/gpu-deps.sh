#!/usr/bin/env bash
# Fetches, on a Debian 12 development machine, the Debian packages a worker-only build needs beyond
# LibTorch, CMake and a compiler, into .gpu-deps/ (git-ignored), for cluster/gpu-check.sh to unpack
# on a machine that has no apt (the GPU machine: it receives the working tree plus the folders a run
# carries, 64 MiB at most). Prints what it fetched and the total size.
#
#   bash cluster/gpu-deps.sh [DIR]      (default DIR: .gpu-deps)
#
# The list: the worker's own libraries (JSON, ZeroMQ, libzip, OpenSSL's libcrypto, PNG/JPEG/WebP/EXIF
# decoding, libarchive for tar shards, SentencePiece's header, tcmalloc), their runtime libraries down
# to glibc (never glibc, libgcc or libstdc++ themselves: the machine's are newer), and pkg-config.
# MPI is not among them: a worker-only build runs without it (a world of one, or NCCL).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.gpu-deps}
packages=(
  # headers and link names
  nlohmann-json3-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev libwebp-dev libexif-dev libarchive-dev libzip-dev
  libssl-dev libsentencepiece-dev libzmq3-dev cppzmq-dev libgoogle-perftools-dev
  # their runtime libraries
  zlib1g libpng16-16 libjpeg62-turbo libwebp7 libwebpdemux2 libwebpmux3 libexif12 libarchive13 libacl1 libbz2-1.0
  liblz4-1 liblzma5 libnettle8 libxml2 libicu72 libzstd1 libzip4 libssl3 libzmq5 libsodium23 libpgm-5.3-0 libnorm1
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 libbsd0 libmd0
  libtcmalloc-minimal4 libgoogle-perftools4 libunwind8
  # pkg-config (CMake's FindPkgConfig needs the program)
  pkgconf pkgconf-bin libpkgconf3
)
mkdir -p "$dir"
rm -f "$dir"/*.deb
if ! (cd "$dir" && apt-get download "${packages[@]}" > /dev/null 2>download.err); then
  apt-get update -qq
  (cd "$dir" && apt-get download "${packages[@]}" > /dev/null)
fi
rm -f "$dir/download.err"
ls -1 "$dir"/*.deb | sed 's|.*/||'
du -cb "$dir"/*.deb | tail -1 | awk '{printf "%d packages, %.1f MiB\n", n, $1 / 1048576}' n="$(ls "$dir"/*.deb | wc -l)"
