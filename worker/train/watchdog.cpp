#include "worker/train/watchdog.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "shared/core/log.h"
#include "shared/core/progress.h"
#include "worker/comm/comm.h"
#include "worker/train/fault.h"

namespace ldm::worker {
namespace {

std::string seconds_text(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", s);
  return text;
}

}  // namespace

Watchdog::Watchdog(int rank, std::string note_path, double timeout_s, const Communicator* comm)
    : rank_(rank), note_path_(std::move(note_path)), timeout_s_(timeout_s), comm_(comm) {
  note_progress("starting");
  if (timeout_s_ > 0) thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::string Watchdog::note(double silent_s) const {
  std::string text = "rank " + std::to_string(rank_) + ": watchdog: no progress for " + seconds_text(silent_s) +
                     " at step " + std::to_string(current_step()) + " (phase: " + progress_phase() + ")";
  if (comm_) {
    const Communicator::InFlight f = comm_->in_flight();
    if (f.what)
      text += "; its communication thread has been in " + std::string(f.what) + " for " +
              seconds_text(steady_seconds() - f.since) + " (another rank stopped, died or is stuck)";
  }
  return text + "; the job was torn down (stage.watchdog_s = " + seconds_text(timeout_s_) + ")";
}

void Watchdog::loop() {
  sigset_t all;  // signals belong to the training thread
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  const auto period = std::chrono::duration<double>(std::clamp(timeout_s_ / 4, 0.05, 1.0));
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
    const double silent = steady_seconds() - last_progress_seconds();
    if (silent < timeout_s_) continue;
    const std::string text = note(silent);
    log::error(text);
    write_failure_note(note_path_, text);
    std::_Exit(kWatchdogExit);
  }
}

}  // namespace ldm::worker
