// The local executor: runs each job as `mpirun ... ldm-worker train` on this machine.
//
// Process contract (DESIGN.md "Processes"): the child starts a new session (setsid), reads stdin
// from /dev/null, writes stdout+stderr to <run_dir>/logs/mpirun.log, runs in <run_dir>, inherits
// no descriptor above 2 (every one is closed before exec, whatever its close-on-exec flag), has an
// empty signal mask and default SIGPIPE, and gets the coordinator's environment with the run's
// LDM_RUN_TOKEN in it. mpirun exports the token and the allow-listed variables the coordinator
// itself has (kForwardedEnvironment: LDM_FAULT, the test tool, and LDM_LOG_LEVEL) to every rank:
//   mpirun [--allow-run-as-root] --oversubscribe --bind-to none -n <ranks> -x LDM_RUN_TOKEN
//          [-x LDM_FAULT] [-x LDM_LOG_LEVEL] <worker> train --coord <endpoint> --run <run id>
// Exits are collected with waitpid(WNOHANG) on the jobs this executor started, never on other
// children of the process. Preemption is SIGUSR1 to mpirun, which forwards it to the ranks.
//
// Thread-safety: none (see Executor). Jobs still running when the executor is destroyed are left
// running: a restarted coordinator adopts them (adopt()), seeing their end through /proc, since only
// their parent could wait for them.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "coordinator/executor.h"

namespace ldm::coord {

// The variables of the coordinator's own environment that the ranks get too, when set.
inline constexpr const char* kForwardedEnvironment[] = {"LDM_FAULT", "LDM_LOG_LEVEL", "LDM_CHECKPOINT_PAUSE_MS"};

struct LocalExecutorOptions {
  std::string mpirun = "mpirun";  // a path, or a name looked up in PATH
  std::string worker;             // ldm-worker path (a relative path is made absolute here)
  // Variables every job and rank gets (NAME -> value), e.g. LDM_TOKEN_FILE off loopback.
  std::vector<std::pair<std::string, std::string>> environment;
};

class LocalExecutor : public Executor {
 public:
  explicit LocalExecutor(LocalExecutorOptions options);

  ProcessId launch(const LaunchRequest& request) override;
  std::vector<ProcessExit> poll_exits() override;
  void signal(ProcessId pid, int sig) override;
  std::string identity(ProcessId pid) override;  // local_process_identity
  bool adopt(ProcessId pid, const std::string& identity) override;

  // The mpirun argument vector for a request (argv[0] is the mpirun path as configured).
  std::vector<std::string> command_line(const LaunchRequest& request) const;

 private:
  LocalExecutorOptions options_;
  std::unordered_set<ProcessId> children_;
  std::unordered_map<ProcessId, std::string> adopted_;  // jobs of an earlier coordinator -> identity
};

// "<boot id>/<start time in clock ticks since boot>" of a running process (from /proc), "" when
// there is no such process or it is a zombie.
std::string local_process_identity(ProcessId pid);

// The default worker binary: "ldm-worker" beside the running executable (/proc/self/exe).
std::string default_worker_path();

// `name` (made absolute) if it contains a '/', else the first executable "<dir>/<name>" on PATH;
// throws Error naming what it looked for.
std::string resolve_executable(const std::string& name);

// `path` prefixed with the current directory unless it is absolute.
std::string absolute_from_cwd(const std::string& path);

}  // namespace ldm::coord
