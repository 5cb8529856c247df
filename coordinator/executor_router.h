// The executor the coordinator talks to: each attempt goes to the local executor (mpirun here) or
// the SLURM executor (a batch job), as its experiment's [executor] kind says, or, when that is
// empty, as `serve --executor` does. The SLURM executor is created on first use, so a coordinator
// without SLURM runs local experiments as before and fails only the attempts that ask for SLURM,
// with the reason.
//
// Ids: a SLURM job's id here is kSlurmIdBase + its SLURM job id (pids stay far below), so the two
// executors' ids never meet in the coordinator's tables; identities tell them apart on adopt().
#pragma once

#include <memory>
#include <string>

#include "coordinator/local_executor.h"
#include "coordinator/slurm_executor.h"

namespace ldm::coord {

constexpr ProcessId kSlurmIdBase = ProcessId{1} << 40;

class ExecutorRouter : public Executor {
 public:
  // `default_kind`: "local" or "slurm" (for experiments whose [executor] kind is empty).
  ExecutorRouter(std::string default_kind, LocalExecutorOptions local, SlurmOptions slurm);

  ProcessId launch(const LaunchRequest& request) override;
  std::vector<ProcessExit> poll_exits() override;
  void signal(ProcessId id, int sig) override;
  std::string identity(ProcessId id) override;
  bool adopt(ProcessId id, const std::string& identity) override;

 private:
  SlurmExecutor& slurm();  // created on first use; throws Error when SLURM is not there
  std::string default_kind_;
  LocalExecutor local_;
  SlurmOptions slurm_options_;
  std::unique_ptr<SlurmExecutor> slurm_;
};

}  // namespace ldm::coord
