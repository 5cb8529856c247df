// A watchdog thread on every rank: when the rank makes no progress for `timeout_s` (a rank of the
// job stopped or dead, a collective that never completes, a hung filesystem), it writes the rank's
// failure note (rank, step, phase, and the collective the communication thread is stuck in) and
// ends the process with kWatchdogExit; mpirun then ends the other ranks, and the coordinator
// retries the attempt from its newest checkpoint (the note is not a reported error). It makes no
// MPI call. Progress is the process's beacon (shared/core/progress.h): the training loop,
// checkpoint writing and evaluation note the phase they enter. A rank stopped with SIGSTOP cannot
// fire its own watchdog: the ranks waiting for it in a collective fire theirs.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace ldm::worker {

class Communicator;

constexpr int kWatchdogExit = 75;

class Watchdog {
 public:
  // timeout_s <= 0: no thread. `comm` (optional) names the collective in flight in the note.
  Watchdog(int rank, std::string note_path, double timeout_s, const Communicator* comm);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // The note the watchdog would write now if the rank had been silent for `silent_s` (tests).
  std::string note(double silent_s) const;

 private:
  void loop();
  int rank_;
  std::string note_path_;
  double timeout_s_;
  const Communicator* comm_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ldm::worker
