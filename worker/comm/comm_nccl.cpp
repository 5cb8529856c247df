// The NCCL backend: collectives between the GPUs of the job's ranks (builds with the CUDA toolkit and
// NCCL: LDM_WITH_NCCL). Compiled against the toolkit alone (cuda_runtime.h, nccl.h), not LibTorch's
// CUDA parts, so it builds wherever the toolkit is, and runs where there is a driver.
//
// Buffers: allreduce_sum takes device memory (the gradient buckets of a model on the GPU) or host
// memory (the loss and fault flags), which it stages through a scratch buffer on the device; the
// other collectives (integers, strings) always go through the scratch buffer.
//
// Streams: the collectives run on a stream of our own created as a *blocking* stream, so CUDA orders
// it against the legacy default stream LibTorch computes on (unless a caller set another current
// stream): a gradient bucket is all-reduced after the kernels that wrote it, and later kernels run
// after the all-reduce. Every call waits for its stream before it returns (the Communicator's calls
// are blocking or handle-based, and a handle is done when the data is). Overlap of the all-reduce
// with backward is therefore limited on the GPU (issue 27 measures it).
#include <cuda_runtime.h>
#include <nccl.h>
#if LDM_WITH_MPI
#include <mpi.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/log.h"
#include "worker/comm/comm.h"
#include "worker/comm/nccl_bootstrap.h"
#include "worker/hardware.h"

namespace ldm::worker {
namespace {

void check_cuda(cudaError_t rc, const std::string& what) {
  if (rc != cudaSuccess) throw Error("CUDA " + what + " failed: " + cudaGetErrorString(rc));
}

void check_nccl(ncclResult_t rc, const std::string& what, ncclComm_t comm = nullptr) {
  if (rc == ncclSuccess) return;
  std::string detail = ncclGetErrorString(rc);
  if (const char* last = ncclGetLastError(comm); last && *last) detail += std::string(": ") + last;
  throw Error("NCCL " + what + " failed: " + detail);
}

bool is_device_pointer(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // clear it: an unregistered host pointer is not an error worth keeping
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

class NcclBackend final : public CommBackend {
 public:
  NcclBackend() {
    const LaunchPlace place = launch_place_from_environment();
    rank_ = place.rank;
    size_ = place.size;
    int devices = 0;
    check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount (rank " + std::to_string(rank_) + ")");
    if (devices <= 0)
      throw Error("rank " + std::to_string(rank_) + ": NCCL needs a CUDA GPU and this process sees none");
    // The GPU the trainer picks too (worker/hardware.h: local rank modulo the visible GPUs).
    device_ = local_rank_from_environment() % devices;
    check_cuda(cudaSetDevice(device_), "cudaSetDevice(" + std::to_string(device_) + ")");
    ncclUniqueId id{};
    const std::string bytes = exchange_id(place, id);
    std::memcpy(&id, bytes.data(), sizeof id);
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_),
               "ncclCommInitRank (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ")");
    check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate");
  }
  ~NcclBackend() override {
    if (scratch_) cudaFree(scratch_);
    if (stream_) cudaStreamDestroy(stream_);
    if (comm_) ncclCommDestroy(comm_);
#if LDM_WITH_MPI
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Finalize();
#endif
  }
  std::string name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(float* data, std::size_t count) override {
    if (count == 0) return;
    if (is_device_pointer(data)) {
      check_nccl(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_), "allreduce", comm_);
      sync("allreduce");
      return;
    }
    float* d = static_cast<float*>(scratch(count * sizeof(float)));
    copy(d, data, count * sizeof(float), cudaMemcpyHostToDevice);
    check_nccl(ncclAllReduce(d, d, count, ncclFloat32, ncclSum, comm_, stream_), "allreduce", comm_);
    copy(data, d, count * sizeof(float), cudaMemcpyDeviceToHost);
  }
  std::int64_t allreduce_max(std::int64_t value) override {
    auto* d = static_cast<std::int64_t*>(scratch(sizeof value));
    copy(d, &value, sizeof value, cudaMemcpyHostToDevice);
    check_nccl(ncclAllReduce(d, d, 1, ncclInt64, ncclMax, comm_, stream_), "allreduce(max)", comm_);
    copy(&value, d, sizeof value, cudaMemcpyDeviceToHost);
    return value;
  }
  void broadcast(std::string& text, int root) override {
    std::int64_t n = static_cast<std::int64_t>(text.size());
    auto* dn = static_cast<std::int64_t*>(scratch(sizeof n));
    copy(dn, &n, sizeof n, cudaMemcpyHostToDevice);
    check_nccl(ncclBroadcast(dn, dn, 1, ncclInt64, root, comm_, stream_), "broadcast(size)", comm_);
    copy(&n, dn, sizeof n, cudaMemcpyDeviceToHost);
    text.resize(static_cast<std::size_t>(n));
    if (n == 0) return;
    char* d = static_cast<char*>(scratch(static_cast<std::size_t>(n)));
    if (rank_ == root) copy(d, text.data(), text.size(), cudaMemcpyHostToDevice);
    check_nccl(ncclBroadcast(d, d, text.size(), ncclChar, root, comm_, stream_), "broadcast", comm_);
    copy(text.data(), d, text.size(), cudaMemcpyDeviceToHost);
  }
  std::vector<std::string> gather(const std::string& mine, int root) override {
    // Every rank's length, then every rank's bytes padded to the longest (NCCL has no gatherv).
    const auto world = static_cast<std::size_t>(size_);
    std::vector<std::int64_t> lengths(world);
    const std::int64_t n = static_cast<std::int64_t>(mine.size());
    auto* dl = static_cast<std::int64_t*>(scratch(world * sizeof n));
    copy(dl + rank_, &n, sizeof n, cudaMemcpyHostToDevice);
    check_nccl(ncclAllGather(dl + rank_, dl, 1, ncclInt64, comm_, stream_), "gather(sizes)", comm_);
    copy(lengths.data(), dl, world * sizeof n, cudaMemcpyDeviceToHost);
    const auto longest =
        static_cast<std::size_t>(std::max<std::int64_t>(1, *std::max_element(lengths.begin(), lengths.end())));
    char* d = static_cast<char*>(scratch(world * longest));
    if (!mine.empty()) copy(d + rank_ * longest, mine.data(), mine.size(), cudaMemcpyHostToDevice);
    check_nccl(ncclAllGather(d + rank_ * longest, d, longest, ncclChar, comm_, stream_), "gather", comm_);
    if (rank_ != root) {
      sync("gather");
      return {};
    }
    std::string all(world * longest, '\0');
    copy(all.data(), d, all.size(), cudaMemcpyDeviceToHost);
    std::vector<std::string> out;
    for (std::size_t r = 0; r < world; ++r)
      out.push_back(all.substr(r * longest, static_cast<std::size_t>(lengths[r])));
    return out;
  }
  void barrier() override { allreduce_max(0); }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_);
#if LDM_WITH_MPI
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    std::_Exit(code);
  }

 private:
  // Rank 0's id on every rank: over MPI when an MPI launcher started us (and the build has MPI), else
  // through the environment (nccl_bootstrap.h).
  std::string exchange_id(const LaunchPlace& place, ncclUniqueId& id) {
    auto make = [&] {
      check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
      return std::string(reinterpret_cast<const char*>(&id), sizeof id);
    };
    if (size_ == 1) return make();
#if LDM_WITH_MPI
    if (started_by_mpi_launcher()) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw Error("MPI init failed (passing the NCCL id)");
      std::string bytes = rank_ == 0 ? make() : std::string(sizeof id, '\0');
      if (MPI_Bcast(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        throw Error("MPI_Bcast of the NCCL id failed on rank " + std::to_string(rank_));
      return bytes;
    }
#endif
    (void)place;
    return nccl_id_from_environment(rank_, size_, sizeof id, make);
  }

  void* scratch(std::size_t bytes) {
    if (bytes > scratch_bytes_) {
      if (scratch_) check_cuda(cudaFree(scratch_), "cudaFree");
      scratch_ = nullptr;
      const std::size_t size = std::max<std::size_t>(bytes, 1 << 16);
      check_cuda(cudaMalloc(&scratch_, size), "cudaMalloc(" + std::to_string(size) + " B of NCCL scratch)");
      scratch_bytes_ = size;
    }
    return scratch_;
  }
  void copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
    check_cuda(cudaMemcpyAsync(dst, src, bytes, kind, stream_), "cudaMemcpyAsync");
    sync("copy");
  }
  void sync(const char* what) { check_cuda(cudaStreamSynchronize(stream_), std::string("stream sync after ") + what); }

  int rank_ = 0, size_ = 1, device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
};

}  // namespace

std::unique_ptr<CommBackend> make_nccl_backend() { return std::make_unique<NcclBackend>(); }

int nccl_visible_gpus() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return devices;
}

}  // namespace ldm::worker
