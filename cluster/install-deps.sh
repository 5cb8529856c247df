#!/usr/bin/env bash
# Installs what building and testing ldm-recipes needs on Debian 12 (run as root).
# Everything comes from Debian's own packages; nothing is downloaded from elsewhere.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: run as root (apt-get installs system packages)" >&2
  exit 1
fi

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-openmp     # LibTorch 1.13 (CPU); OpenBLAS or torch's BLAS is 15-25x slower
  libgflags-dev libgoogle-glog-dev     # required by Debian's Caffe2/Torch CMake config
  libopenmpi-dev openmpi-bin           # mpirun + MPI for the workers
  libzmq3-dev cppzmq-dev               # coordinator <-> worker protocol
  librocksdb-dev                       # experiment store
  libboost-dev                         # Boost.Asio / Beast (header-only parts)
  libtomlplusplus-dev                  # experiment TOML
  nlohmann-json3-dev doctest-dev zlib1g-dev libpng-dev
  libzip-dev                           # .npz inputs of `ldm-worker forward`
  libjpeg62-turbo-dev libwebp-dev libexif-dev  # image decoding for the dataset importers
  libarchive-dev                       # WebDataset tar shards
  libgd-dev                            # ldm-data preview: record grids with captions (bitmap fonts, PNG)
  libsentencepiece-dev libssl-dev      # TorchScript text encoders' tokenizer; SHA-256 (encoder identities, lineage)
  libgoogle-perftools-dev              # tcmalloc for the tensor programs (the loader is 10-20x faster)
  python3                              # end-to-end tests drive the real binaries from Python
  iproute2                             # the two-host e2e test: network namespaces (ip netns)
  slurm-wlm munge procps               # the SLURM executor's e2e tests: a real local SLURM (cluster/slurm-local.sh)
  python3-torch python3-numpy          # reference checks: .pt files and independent forwards of every family in Python
  python3-pil                          # reference pixels for the image decode and crop tests
  python3-sentencepiece                # reference tokenizer for the TorchScript text encoder tests
  python3-scipy                        # reference sqrtm for the Fréchet distance tests
  python3-torchvision                  # reference Inception-v3 for the FID feature tests
  clang libclang-rt-14-dev llvm-14     # sanitizer builds (cluster/sanitizers.sh): runtimes, llvm-symbolizer
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps.sh: all packages present"
fi
