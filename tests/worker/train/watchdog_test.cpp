// The watchdog: its note names the rank, step, phase and the collective in flight; a silent rank is
// ended with kWatchdogExit after the timeout (in a forked child, so the test process lives on).
#include <torch/torch.h>
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "shared/core/progress.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/train/fault.h"
#include "worker/train/watchdog.h"

namespace watchdog_test {

// A backend whose barrier waits until the test releases it: a collective another rank never joins.
class StuckBackend final : public ldm::worker::CommBackend {
 public:
  explicit StuckBackend(std::shared_future<void> release) : release_(std::move(release)) {}
  std::string name() const override { return "stuck"; }
  int rank() const override { return 1; }
  int size() const override { return 2; }
  void allreduce_sum(float*, std::size_t) override {}
  std::int64_t allreduce_max(std::int64_t v) override { return v; }
  void broadcast(std::string&, int) override {}
  std::vector<std::string> gather(const std::string& mine, int) override { return {mine}; }
  void barrier() override { release_.wait(); }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  std::shared_future<void> release_;
};

}  // namespace watchdog_test

TEST_CASE("the watchdog's note names the rank, the step, the phase and the collective in flight") {
  using namespace watchdog_test;
  std::promise<void> release;
  ldm::worker::Communicator comm([f = release.get_future().share()] { return std::make_unique<StuckBackend>(f); });
  ldm::worker::Watchdog idle(1, "/nonexistent/note", 0.0, &comm);  // no thread: timeout 0
  ldm::worker::set_current_step(42);
  ldm::note_progress("gradient all-reduce");
  CHECK(comm.in_flight().what == nullptr);
  std::string quiet = idle.note(12.5);
  CHECK(quiet.find("rank 1: watchdog: no progress for 12.5 s at step 42 (phase: gradient all-reduce)") == 0);
  CHECK(quiet.find("communication thread") == std::string::npos);
  std::thread waiter([&] { comm.barrier(); });
  while (!comm.in_flight().what) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string stuck = idle.note(30.0);
  CHECK(stuck.find("its communication thread has been in barrier for") != std::string::npos);
  CHECK(stuck.find(": error at step ") == std::string::npos);  // not a reported error: the attempt is retried
  release.set_value();
  waiter.join();
  CHECK(comm.in_flight().what == nullptr);
}

TEST_CASE("a rank that stops making progress is ended by its watchdog with the note written") {
  ldm::testing::TempDir tmp("ldm-watchdog");
  const std::string note = tmp.file("failure-rank-0.txt");
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // makes progress for a while, then goes silent
    ldm::worker::set_current_step(7);
    ldm::worker::Watchdog w(0, note, 0.5, nullptr);
    for (int i = 0; i < 20; ++i) {
      ldm::note_progress("forward and backward");
      ::usleep(50 * 1000);  // 1 s of steady progress: the watchdog must not fire
    }
    ldm::note_progress("writing a checkpoint");
    ::sleep(30);
    std::_Exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == ldm::worker::kWatchdogExit);
  std::ifstream in(note);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("rank 0: watchdog: no progress for 0.") == 0);
  CHECK(text.find("at step 7 (phase: writing a checkpoint)") != std::string::npos);
}
