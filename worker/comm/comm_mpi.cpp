#include <mpi.h>

#include <algorithm>
#include <cstdlib>

#include "shared/core/error.h"
#include "worker/comm/comm.h"

namespace ldm::worker {
namespace {

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(std::string("MPI ") + what + " failed: " + std::string(msg, len));
  }
}

// Created, called and destroyed on the rank's communication thread only (comm.h), which is
// therefore MPI's main thread: MPI_THREAD_FUNNELED is all it needs.
class MpiBackend final : public CommBackend {
 public:
  MpiBackend() {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
    // Errors come back as codes so they become exceptions naming the call, not silent aborts.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiBackend() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(float* data, std::size_t count) override {
    // MPI counts are int: reduce in chunks so buffers over 2^31 elements work too.
    const std::size_t chunk = std::size_t(1) << 30;
    for (std::size_t off = 0; off < count; off += chunk) {
      int n = static_cast<int>(std::min(chunk, count - off));
      check(MPI_Allreduce(MPI_IN_PLACE, data + off, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "allreduce");
    }
  }
  std::int64_t allreduce_max(std::int64_t value) override {
    std::int64_t out = 0;
    check(MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD), "allreduce(max)");
    return out;
  }
  void broadcast(std::string& text, int root) override {
    std::uint64_t n = text.size();
    check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), "broadcast(size)");
    text.resize(n);
    if (n) check(MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD), "broadcast");
  }
  std::vector<std::string> gather(const std::string& mine, int root) override {
    int n = static_cast<int>(mine.size());
    std::vector<int> sizes(size_), displs(size_);
    check(MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, root, MPI_COMM_WORLD), "gather(size)");
    std::string all;
    if (rank_ == root) {
      int total = 0;
      for (int r = 0; r < size_; ++r) {
        displs[r] = total;
        total += sizes[r];
      }
      all.resize(total);
    }
    check(
        MPI_Gatherv(mine.data(), n, MPI_CHAR, all.data(), sizes.data(), displs.data(), MPI_CHAR, root, MPI_COMM_WORLD),
        "gather");
    std::vector<std::string> out;
    if (rank_ == root)
      for (int r = 0; r < size_; ++r) out.push_back(all.substr(displs[r], sizes[r]));
    return out;
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "barrier"); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<CommBackend> make_mpi_backend() { return std::make_unique<MpiBackend>(); }

}  // namespace ldm::worker
