// Helpers for the coordinator tests: temporary directories, executable scripts, a fake Executor,
// a minimal valid spec, and polling with a deadline.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/executor.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec.h"
#include "shared/core/spec_json.h"
#include "tests/support/temp_dir.h"

namespace ldm::coord::testing {

using ldm::testing::TempDir;

inline std::string write_script(const std::string& path, const std::string& body) {
  write_file_atomic(path, "#!/bin/sh\n" + body);
  ::chmod(path.c_str(), 0755);
  return path;
}

// Records launches; the test decides when and how each "process" exits.
class FakeExecutor : public Executor {
 public:
  ProcessId launch(const LaunchRequest& request) override {
    if (!launch_error.empty()) throw Error(launch_error);
    launches.push_back(request);
    return next_pid++;
  }
  std::vector<ProcessExit> poll_exits() override { return std::exchange(exits_, {}); }
  void signal(ProcessId pid, int sig) override { signals.emplace_back(pid, sig); }
  std::string identity(ProcessId pid) override { return "fake/" + std::to_string(pid); }
  // Adopts the jobs listed in `alive` (a restarted coordinator's view of what still runs).
  bool adopt(ProcessId pid, const std::string& identity) override {
    if (!alive.count(pid) || identity != this->identity(pid)) return false;
    adopted.push_back(pid);
    return true;
  }

  void exit(ProcessId pid, int code) { exits_.push_back({pid, code, 0}); }
  void kill(ProcessId pid, int sig) { exits_.push_back({pid, -1, sig}); }
  void vanish(ProcessId pid) { exits_.push_back({pid, -1, 0, false}); }  // an adopted job ends

  std::vector<LaunchRequest> launches;
  std::vector<std::pair<ProcessId, int>> signals;
  std::string launch_error;  // non-empty: launch() throws this
  ProcessId next_pid = 1000;
  std::set<ProcessId> alive;  // jobs adopt() finds running
  std::vector<ProcessId> adopted;

 private:
  std::vector<ProcessExit> exits_;
};

// A valid one-stage experiment spec as JSON.
inline nlohmann::json small_spec(const std::string& name, std::int64_t steps = 20, std::int64_t ranks = 1,
                                 std::int64_t max_attempts = 3) {
  ExperimentSpec spec;
  spec.name = name;
  StageSpec stage;
  stage.steps = steps;
  stage.ranks = ranks;
  stage.max_attempts = max_attempts;
  stage.batch_size = 4 * ranks;
  spec.stages.push_back(stage);
  return spec_to_json(spec);
}

// Polls `done` every 10 ms until it holds or `timeout` passes; returns its last value.
inline bool wait_until(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace ldm::coord::testing
