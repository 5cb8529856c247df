// The communication thread: every backend call runs on it, in submission order; errors come back to
// the caller that waits; a backend that cannot start fails the constructor.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "shared/core/error.h"
#include "worker/comm/comm.h"

namespace comm_test {

using ldm::worker::CommBackend;
using ldm::worker::Communicator;

// Records which thread made each call and in which order; "allreduce" of a buffer whose first
// element is negative fails.
struct Journal {
  std::mutex mu;
  std::vector<std::string> calls;
  std::set<std::thread::id> threads;
  void note(const std::string& call) {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back(call);
    threads.insert(std::this_thread::get_id());
  }
};

class JournalBackend final : public CommBackend {
 public:
  explicit JournalBackend(Journal* j) : j_(j) { j_->note("create"); }
  ~JournalBackend() override { j_->note("destroy"); }
  std::string name() const override { return "journal"; }
  int rank() const override { return 1; }
  int size() const override { return 3; }
  void allreduce_sum(float* data, std::size_t count) override {
    j_->note("allreduce " + std::to_string(count));
    if (count && data[0] < 0) throw ldm::Error("allreduce refused");
    for (std::size_t i = 0; i < count; ++i) data[i] *= 3;
  }
  std::int64_t allreduce_max(std::int64_t v) override {
    j_->note("max");
    return v + 100;
  }
  void broadcast(std::string& text, int root) override {
    j_->note("broadcast " + std::to_string(root));
    text = "from root";
  }
  std::vector<std::string> gather(const std::string& mine, int root) override {
    j_->note("gather " + std::to_string(root));
    return {mine, mine};
  }
  void barrier() override { j_->note("barrier"); }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  Journal* j_;
};

}  // namespace comm_test

TEST_CASE("the communicator makes every backend call on its one thread, in submission order") {
  using namespace comm_test;
  Journal journal;
  std::thread::id comm_thread;
  {
    Communicator comm([&] { return std::make_unique<JournalBackend>(&journal); });
    comm_thread = comm.thread_id();
    CHECK(comm.rank() == 1);
    CHECK(comm.size() == 3);
    CHECK(comm.backend() == "journal");
    std::vector<float> a(5, 1.0f), b(7, 2.0f);
    auto ha = comm.allreduce_sum_async(a.data(), a.size());
    std::atomic<int> then_ran{0};
    std::thread::id then_thread;
    auto hb = comm.allreduce_sum_async(b.data(), b.size(), [&] {
      then_thread = std::this_thread::get_id();
      ++then_ran;
    });
    CHECK(comm.allreduce_max(5) == 105);  // queued behind both all-reduces
    CHECK(ha.done());
    CHECK(hb.done());
    CHECK(then_ran == 1);
    CHECK(then_thread == comm_thread);
    CHECK(a == std::vector<float>(5, 3.0f));
    CHECK(b == std::vector<float>(7, 6.0f));
    std::string text = "mine";
    comm.broadcast(text, 0);
    CHECK(text == "from root");
    CHECK(comm.gather("x", 0) == std::vector<std::string>{"x", "x"});
    comm.barrier();
    // Submitted from other threads: still made on the communication thread.
    std::vector<float> c(3, 1.0f);
    std::thread other([&] { comm.allreduce_sum(c.data(), c.size()); });
    other.join();
    CHECK(c == std::vector<float>(3, 3.0f));
    const ldm::worker::CommTiming t = hb.timing();
    CHECK(t.queued <= t.started);
    CHECK(t.started <= t.finished);
  }
  CHECK(journal.calls == std::vector<std::string>{"create", "allreduce 5", "allreduce 7", "max", "broadcast 0",
                                                  "gather 0", "barrier", "allreduce 3", "destroy"});
  CHECK(journal.threads == std::set<std::thread::id>{comm_thread});
  CHECK(comm_thread != std::this_thread::get_id());
}

TEST_CASE("a failed collective's error reaches the waiter and the thread goes on") {
  using namespace comm_test;
  Journal journal;
  Communicator comm([&] { return std::make_unique<JournalBackend>(&journal); });
  std::vector<float> bad = {-1.0f, 2.0f}, good = {1.0f};
  auto hb = comm.allreduce_sum_async(bad.data(), bad.size());
  auto hg = comm.allreduce_sum_async(good.data(), good.size());
  CHECK_THROWS_WITH_AS(hb.wait(), "allreduce refused", ldm::Error);
  hg.wait();
  CHECK(good[0] == 3.0f);
  CHECK(comm.allreduce_max(1) == 101);
}

TEST_CASE("a backend that cannot start fails the communicator's constructor with its error") {
  CHECK_THROWS_WITH_AS(ldm::worker::Communicator([]() -> std::unique_ptr<ldm::worker::CommBackend> {
                         throw ldm::Error("MPI init failed: no launcher");
                       }),
                       "MPI init failed: no launcher", ldm::Error);
}

TEST_CASE("communicator kinds: single is a world of one; typos are named (nccl: nccl_bootstrap_test.cpp)") {
  auto single = ldm::worker::make_communicator("single");
  CHECK(single->size() == 1);
  CHECK(single->backend() == "single-process");
  float x = 2.5f;
  single->allreduce_sum(&x, 1);
  CHECK(x == 2.5f);
  CHECK(single->gather("a", 0) == std::vector<std::string>{"a"});
  CHECK_THROWS_WITH_AS(ldm::worker::make_communicator("mpl"), doctest::Contains("unknown communicator 'mpl'"),
                       ldm::Error);
}
