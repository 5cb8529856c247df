// Collective communication between the data-parallel ranks of one run.
//
// Two layers:
//  - a CommBackend does blocking collectives: MPI on host buffers (the default under mpirun/srun),
//    single-process (a world of one: `ldm-worker` run without a launcher, one GPU, unit tests) and,
//    in builds with the CUDA toolkit and NCCL, NCCL on GPU buffers (host ones staged; comm_nccl.cpp);
//  - the Communicator owns one communication thread per rank, which creates the backend, makes every
//    one of its calls in the order they were submitted, and destroys it (DESIGN.md "Processes": one
//    thread per rank makes MPI calls; MPI is initialised by that thread, so MPI_THREAD_FUNNELED holds).
//
// Other threads (the training loop, autograd hooks) only enqueue: the blocking methods enqueue and
// wait; allreduce_sum_async returns at once with a handle. Every rank must submit the same
// collectives in the same order, as with MPI itself.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ldm::worker {

class CommBackend {
 public:
  virtual ~CommBackend() = default;
  virtual std::string name() const = 0;  // "mpi", "single-process", ...
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
  // Ends every rank of the job after a fatal error on this one. The one call made from another
  // thread than the communication thread: that thread may be blocked in a collective that the
  // failed rank will never join.
  [[noreturn]] virtual void abort(int code) = 0;
};

// Seconds on the steady clock (log::now-independent, comparable across threads of the process).
double comm_clock();

// When one operation ran on the communication thread (comm_clock() seconds).
struct CommTiming {
  double queued = 0, started = 0, finished = 0;
};

namespace detail {
struct CommOp;
}

// An operation submitted to the communication thread. wait() blocks until it has run and rethrows
// its error; a default-constructed handle is already done.
class CommHandle {
 public:
  CommHandle() = default;
  explicit CommHandle(std::shared_ptr<detail::CommOp> op) : op_(std::move(op)) {}
  void wait() const;
  bool done() const;
  CommTiming timing() const;  // after wait()

 private:
  std::shared_ptr<detail::CommOp> op_;
};

using BackendFactory = std::function<std::unique_ptr<CommBackend>()>;

class Communicator {
 public:
  // Starts the communication thread, which calls `make`; rethrows what `make` throws.
  explicit Communicator(BackendFactory make);
  // Runs what is queued, destroys the backend on its thread (MPI_Finalize) and joins it.
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& backend() const { return backend_name_; }
  std::thread::id thread_id() const { return thread_.get_id(); }

  // Starts an in-place sum of `count` floats at `data` and returns at once; `then` (optional) runs on
  // the communication thread right after the collective, before the handle is done. The buffer
  // must stay alive and untouched until the handle is done. Safe to call from any thread.
  CommHandle allreduce_sum_async(float* data, std::size_t count, std::function<void()> then = {});

  // Blocking collectives (they queue behind what was submitted before).
  void allreduce_sum(float* data, std::size_t count);
  std::int64_t allreduce_max(std::int64_t value);
  void broadcast(std::string& text, int root);
  std::vector<std::string> gather(const std::string& mine, int root);
  void barrier();
  [[noreturn]] void abort(int code);

  // The collective the communication thread is in now ("allreduce", "gather", ...; nullptr when
  // idle) and since when (comm_clock()), for the watchdog's note. Safe from any thread.
  struct InFlight {
    const char* what = nullptr;
    double since = 0;
  };
  InFlight in_flight() const;

 private:
  CommHandle submit(const char* what, std::function<void(CommBackend&)> run);
  void loop(const BackendFactory& make);

  struct Queue;
  std::unique_ptr<Queue> queue_;
  CommBackend* backend_ = nullptr;  // owned by the thread; abort() is its only other user
  int rank_ = 0, size_ = 1;
  std::string backend_name_;
  std::thread thread_;
};

// MPI_COMM_WORLD (MPI_Init_thread on the communication thread; MPI_Finalize when destroyed).
std::unique_ptr<Communicator> make_mpi_communicator();
// A world of one: every collective is an identity.
std::unique_ptr<Communicator> make_single_process_communicator();
// True when the process was started by an MPI launcher (mpirun, srun --mpi=pmix, another PMI one).
bool started_by_mpi_launcher();
// `kind`: mpi | single | nccl | auto. auto: nccl when the build has NCCL, this process sees a GPU and
// its launcher started more than one rank; else mpi when an MPI launcher started it; else single.
// A kind this build lacks (mpi without MPI, nccl without NCCL) is an Error saying so.
std::unique_ptr<Communicator> make_communicator(const std::string& kind);
// What make_communicator(kind) chooses here ("mpi", "single" or "nccl"), without starting it.
std::string resolve_communicator_kind(const std::string& kind);

// The backends themselves, for tests that wrap them.
std::unique_ptr<CommBackend> make_mpi_backend();
std::unique_ptr<CommBackend> make_single_process_backend();
// NCCL: rank and world from the launcher's variables, rank 0's id over MPI or the environment
// (worker/comm/nccl_bootstrap.h), the GPU of this rank's local index.
std::unique_ptr<CommBackend> make_nccl_backend();
// GPUs the CUDA runtime sees (0 in a build without NCCL, or without a driver).
int nccl_visible_gpus();
// Whether this build has the backend.
bool built_with_mpi();
bool built_with_nccl();

}  // namespace ldm::worker
