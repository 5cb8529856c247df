// The SLURM executor: each attempt is a batch job (`ldm-coord serve --executor slurm`).
//
// launch() writes <run_dir>/slurm/<run id>.sh and submits it with `sbatch --parsable`; the script
// asks for the ranks as tasks (and the knobs of SlurmOptions), starts them with `srun --mpi=pmix`,
// forwards SIGUSR1 to them (SLURM sends it `signal_before_s` before the time limit, and `cancel`
// sends it through `scancel --batch --signal=USR1`), and writes srun's exit status to
// <run_dir>/slurm/<job id>.exit. The run's token reaches the job through sbatch's environment,
// never a file or a command line. A job SLURM refuses (bad partition, ...) fails the launch with
// sbatch's own words.
//
// Jobs are followed with `squeue` (no accounting database needed), at most every
// `poll_interval_s`; a job squeue no longer lists has ended: its status is the exit file's, else
// `scontrol show job`'s ExitCode, else unknown. SIGKILL maps to `scancel`. A restarted coordinator
// re-attaches a job that squeue still lists under the run's job name (identity "slurm:<id>:<name>").
//
// Thread-safety: none (see Executor).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/executor.h"

namespace ldm::coord {

struct SlurmOptions {
  std::string worker;     // ldm-worker path, as the compute nodes see it
  std::string partition;  // "" = the cluster's default; likewise account, qos
  std::string account;
  std::string qos;
  std::string time_limit;                 // sbatch --time ("" = the partition's), e.g. "04:00:00"
  int nodes = 0;                          // 0 = as SLURM places the tasks
  int tasks_per_node = 0;                 // 0 = unset
  int gpus_per_node = 0;                  // 0 = none asked
  int cpus_per_task = 0;                  // 0 = the stage's threads_per_rank
  int signal_before_s = 120;              // SIGUSR1 this long before the time limit [ours]
  std::vector<std::string> extra_sbatch;  // more "#SBATCH ..." lines, verbatim (without "#SBATCH ")
  std::vector<std::string> setup;         // shell lines before srun (module load, venv, ...)
  double poll_interval_s = 2.0;           // squeue at most this often [ours]
  // Variables every job gets (NAME -> value), e.g. LDM_TOKEN_FILE off loopback.
  std::vector<std::pair<std::string, std::string>> environment;
};

// The coordinator's options with an experiment's [executor] knobs over them (set values win;
// sbatch and setup lines add to the coordinator's).
SlurmOptions with_experiment_knobs(SlurmOptions options, const ExecutorSpec& experiment);
// The batch script of one attempt (pure: unit-tested).
std::string slurm_batch_script(const LaunchRequest& request, const SlurmOptions& options);
// "ldm.<run id>": what squeue shows and a restarted coordinator matches.
std::string slurm_job_name(const std::string& run_id);
// The job id `sbatch --parsable` printed ("1234" or "1234;cluster"); throws Error otherwise.
ProcessId parse_sbatch_parsable(const std::string& out);
// `squeue -h -o "%i|%T|%j"` lines -> job id -> (state, name).
std::map<ProcessId, std::pair<std::string, std::string>> parse_squeue(const std::string& out);
// `scontrol show job ID` -> JobState and ExitCode ("0:0"); "" for what is missing.
struct ScontrolJob {
  std::string state;
  int exit_code = -1, signal = 0;
};
ScontrolJob parse_scontrol_job(const std::string& out);
// True for the states of a job that has ended (COMPLETED, FAILED, CANCELLED, TIMEOUT, ...).
bool slurm_state_ended(const std::string& state);

class SlurmExecutor : public Executor {
 public:
  explicit SlurmExecutor(SlurmOptions options);

  ProcessId launch(const LaunchRequest& request) override;
  std::vector<ProcessExit> poll_exits() override;
  void signal(ProcessId job, int sig) override;
  std::string identity(ProcessId job) override;
  bool adopt(ProcessId job, const std::string& identity) override;

 private:
  struct Job {
    std::string name, run_dir;
  };
  SlurmOptions options_;
  std::map<ProcessId, Job> jobs_;
  double last_poll_ = 0;
};

}  // namespace ldm::coord
