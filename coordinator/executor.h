// How the coordinator starts and watches worker jobs. The Coordinator talks only to this interface,
// so its state machine is tested with a fake executor (no processes) and the real launchers
// (local `mpirun` today, SLURM later) stay small.
//
// Thread-safety: an Executor is not thread-safe; the Coordinator calls it under its own mutex.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shared/core/spec.h"

namespace ldm::coord {

// Identifies a launched job to its executor (the local executor: mpirun's pid).
using ProcessId = std::int64_t;

// Everything a launcher needs to start one run (attempt) of one stage.
struct LaunchRequest {
  std::string run_id;          // passed to the worker as `--run`
  std::string token;           // exported as LDM_RUN_TOKEN (never on the command line)
  int ranks = 1;               // MPI ranks
  int threads_per_rank = 1;    // intra-op threads of each rank (SLURM: --cpus-per-task)
  std::string run_dir;         // working directory; logs go to <run_dir>/logs/
  std::string coord_endpoint;  // ZeroMQ endpoint the worker's rank 0 connects to
  ExecutorSpec executor;       // the experiment's [executor]: which executor, and its SLURM knobs
};

// How a job ended: exactly one of `exit_code` (>= 0) or `signal` (> 0) is meaningful, unless the
// status is unknown (a job re-attached after a coordinator restart is not this process's child).
struct ProcessExit {
  ProcessId pid = 0;
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // 0 when it exited normally
  bool status_known = true;
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Starts the job and returns its id. Throws ldm::Error naming the run when it cannot start.
  virtual ProcessId launch(const LaunchRequest& request) = 0;

  // Jobs that ended since the last call (never blocks). Each job is reported once.
  virtual std::vector<ProcessExit> poll_exits() = 0;

  // Sends `sig` to a running job (SIGUSR1 = preempt: mpirun forwards it to the ranks, which
  // checkpoint and stop; SIGKILL ends every process of the job). A job that already ended is ignored.
  virtual void signal(ProcessId pid, int sig) = 0;

  // What tells this job apart from any later process with the same id (local: boot id and process
  // start time), recorded with the run so that a restarted coordinator can re-attach it. "" when it
  // cannot be known (the job has already ended).
  virtual std::string identity(ProcessId pid) = 0;

  // After a coordinator restart: watches the job `pid` launched by an earlier coordinator if it is
  // still running with the recorded `identity`, and reports its end in poll_exits (status unknown).
  // False when it is gone (or the id now names another process).
  virtual bool adopt(ProcessId pid, const std::string& identity) = 0;
};

}  // namespace ldm::coord
