// Collective communication between the data-parallel ranks of one run.
//
// One thread per rank makes these calls (DESIGN.md "Processes"). Implementations: MPI (CPU
// buffers; the default) and single-process (unit tests). NCCL for GPU tensors comes with CUDA
// builds (LDM_WITH_CUDA) and is not supported yet.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ldm::worker {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place sum over ranks of a float32 buffer.
  virtual void allreduce_sum(float* data, std::size_t count) = 0;
  // Max over ranks of one integer (the per-step stop agreement).
  virtual std::int64_t allreduce_max(std::int64_t value) = 0;
  // `text` of `root` replaces everyone's.
  virtual void broadcast(std::string& text, int root) = 0;
  // Gathers every rank's bytes on `root` (others get an empty vector).
  virtual std::vector<std::string> gather(const std::string& mine, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job (after a fatal error on one of them).
  [[noreturn]] virtual void abort(int code) = 0;
};

// Initialises MPI (MPI_Init_thread, FUNNELED) and wraps MPI_COMM_WORLD; finalises on destruction.
std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv);

// A world of one: collectives are identities. For tests and `ldm-worker describe`.
std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace ldm::worker
