#include "worker/comm/comm.h"

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>

#include "shared/core/error.h"
#include "worker/comm/nccl_bootstrap.h"

namespace ldm::worker {

double comm_clock() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace detail {
struct CommOp {
  const char* what = "";
  std::function<void(CommBackend&)> run;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
  CommTiming timing;
};
}  // namespace detail

void CommHandle::wait() const {
  if (!op_) return;
  std::unique_lock<std::mutex> lock(op_->mu);
  op_->cv.wait(lock, [&] { return op_->done; });
  if (op_->error) std::rethrow_exception(op_->error);
}

bool CommHandle::done() const {
  if (!op_) return true;
  std::lock_guard<std::mutex> lock(op_->mu);
  return op_->done;
}

CommTiming CommHandle::timing() const {
  if (!op_) return {};
  std::lock_guard<std::mutex> lock(op_->mu);
  return op_->timing;
}

struct Communicator::Queue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<detail::CommOp>> ops;
  bool stopping = false;
  // Start-up: the thread reports the backend's identity, or the error that prevented it.
  bool started = false;
  std::exception_ptr startup_error;
  Communicator::InFlight in_flight;  // guarded by mu
};

Communicator::Communicator(BackendFactory make) : queue_(std::make_unique<Queue>()) {
  thread_ = std::thread([this, make = std::move(make)] { loop(make); });
  std::unique_lock<std::mutex> lock(queue_->mu);
  queue_->cv.wait(lock, [&] { return queue_->started; });
  if (queue_->startup_error) {
    lock.unlock();
    thread_.join();
    std::rethrow_exception(queue_->startup_error);
  }
}

Communicator::~Communicator() {
  {
    std::lock_guard<std::mutex> lock(queue_->mu);
    queue_->stopping = true;
  }
  queue_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Communicator::loop(const BackendFactory& make) {
  // Signals (SIGUSR1 = preempt, SIGINT, SIGTERM) go to the training thread, never into a collective.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGUSR1, SIGINT, SIGTERM}) sigaddset(&mask, s);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);

  std::unique_ptr<CommBackend> backend;
  Queue& q = *queue_;
  try {
    backend = make();
    rank_ = backend->rank();
    size_ = backend->size();
    backend_name_ = backend->name();
    backend_ = backend.get();
  } catch (...) {
    std::lock_guard<std::mutex> lock(q.mu);
    q.startup_error = std::current_exception();
    q.started = true;
    q.cv.notify_all();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(q.mu);
    q.started = true;
  }
  q.cv.notify_all();
  for (;;) {
    std::shared_ptr<detail::CommOp> op;
    {
      std::unique_lock<std::mutex> lock(q.mu);
      q.cv.wait(lock, [&] { return q.stopping || !q.ops.empty(); });
      if (q.ops.empty()) break;  // stopping, and nothing left to run
      op = std::move(q.ops.front());
      q.ops.pop_front();
    }
    const double started = comm_clock();
    {
      std::lock_guard<std::mutex> lock(q.mu);
      q.in_flight = {op->what, started};
    }
    std::exception_ptr error;
    try {
      op->run(*backend);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(q.mu);
      q.in_flight = {};
    }
    {
      std::lock_guard<std::mutex> lock(op->mu);
      op->timing.started = started;
      op->timing.finished = comm_clock();
      op->error = error;
      op->done = true;
    }
    op->cv.notify_all();
  }
  backend_ = nullptr;
  backend.reset();  // MPI_Finalize, on the thread that initialised MPI
}

Communicator::InFlight Communicator::in_flight() const {
  std::lock_guard<std::mutex> lock(queue_->mu);
  return queue_->in_flight;
}

CommHandle Communicator::submit(const char* what, std::function<void(CommBackend&)> run) {
  auto op = std::make_shared<detail::CommOp>();
  op->what = what;
  op->run = std::move(run);
  op->timing.queued = comm_clock();
  {
    std::lock_guard<std::mutex> lock(queue_->mu);
    if (queue_->stopping) throw Error("the communicator is shutting down; no collective can start");
    queue_->ops.push_back(op);
  }
  queue_->cv.notify_all();
  return CommHandle(op);
}

CommHandle Communicator::allreduce_sum_async(float* data, std::size_t count, std::function<void()> then) {
  return submit("allreduce", [data, count, then = std::move(then)](CommBackend& b) {
    b.allreduce_sum(data, count);
    if (then) then();
  });
}

void Communicator::allreduce_sum(float* data, std::size_t count) { allreduce_sum_async(data, count).wait(); }

std::int64_t Communicator::allreduce_max(std::int64_t value) {
  std::int64_t out = value;
  submit("allreduce(max)", [&out](CommBackend& b) { out = b.allreduce_max(out); }).wait();
  return out;
}

void Communicator::broadcast(std::string& text, int root) {
  submit("broadcast", [&text, root](CommBackend& b) { b.broadcast(text, root); }).wait();
}

std::vector<std::string> Communicator::gather(const std::string& mine, int root) {
  std::vector<std::string> out;
  submit("gather", [&](CommBackend& b) { out = b.gather(mine, root); }).wait();
  return out;
}

void Communicator::barrier() {
  submit("barrier", [](CommBackend& b) { b.barrier(); }).wait();
}

void Communicator::abort(int code) {
  if (backend_) backend_->abort(code);
  std::_Exit(code);
}

namespace {

class SingleProcessBackend final : public CommBackend {
 public:
  std::string name() const override { return "single-process"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, std::size_t) override {}
  std::int64_t allreduce_max(std::int64_t v) override { return v; }
  void broadcast(std::string&, int) override {}
  std::vector<std::string> gather(const std::string& mine, int) override { return {mine}; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
};

}  // namespace

std::unique_ptr<CommBackend> make_single_process_backend() { return std::make_unique<SingleProcessBackend>(); }

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<Communicator>([] { return make_mpi_backend(); });
}

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<Communicator>([] { return make_single_process_backend(); });
}

bool started_by_mpi_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

#if !LDM_WITH_MPI
std::unique_ptr<CommBackend> make_mpi_backend() {
  throw Error(
      "communicator 'mpi': this ldm-worker was built without MPI (LDM_WORKER_ONLY build on a machine without "
      "Open MPI); use single, or nccl with NCCL_COMM_ID / LDM_NCCL_ID_FILE");
}
#endif
#if !LDM_WITH_NCCL
std::unique_ptr<CommBackend> make_nccl_backend() {
  throw Error(
      "communicator 'nccl': this ldm-worker was built without NCCL (configure it where the CUDA toolkit and NCCL "
      "are, e.g. -DCUDAToolkit_ROOT=/usr/local/cuda; LDM_NCCL_ROOT for NCCL elsewhere); use mpi, single or auto");
}
int nccl_visible_gpus() { return 0; }
#endif
bool built_with_mpi() { return LDM_WITH_MPI != 0; }
bool built_with_nccl() { return LDM_WITH_NCCL != 0; }

std::string resolve_communicator_kind(const std::string& kind) {
  if (kind == "mpi" || kind == "single" || kind == "nccl") return kind;
  if (kind != "auto") throw Error("unknown communicator '" + kind + "' (expected auto, mpi, single or nccl)");
  const LaunchPlace place = launch_place_from_environment();
  if (built_with_nccl() && place.size > 1 && nccl_visible_gpus() > 0) return "nccl";
  return started_by_mpi_launcher() ? "mpi" : "single";
}

std::unique_ptr<Communicator> make_communicator(const std::string& kind) {
  const std::string k = resolve_communicator_kind(kind);
  if (k == "mpi") return make_mpi_communicator();
  if (k == "nccl") return std::make_unique<Communicator>([] { return make_nccl_backend(); });
  return make_single_process_communicator();
}

}  // namespace ldm::worker
