// The SLURM executor's pure parts: the batch script it writes, and its reading of sbatch, squeue
// and scontrol output, on fixtures captured from the real daemons (cluster/slurm-local.sh, SLURM
// 22.05 of Debian 12): tests/fixtures/slurm/.
#include <doctest/doctest.h>

#include <signal.h>

#include "coordinator/slurm_executor.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "tests/support/source_path.h"

using namespace ldm;
using namespace ldm::coord;

namespace {
std::string fixture(const std::string& name) {
  return read_file(ldm::testing::source_path("tests/fixtures/slurm/" + name).string());
}
}  // namespace

TEST_CASE("slurm: the batch script asks for the ranks and every knob, and forwards SIGUSR1 to srun") {
  LaunchRequest r;
  r.run_id = "exp.train.a3";
  r.token = "secret";
  r.ranks = 8;
  r.threads_per_rank = 4;
  r.run_dir = "/shared/runs/exp/train";
  r.coord_endpoint = "tcp://login1:7622";
  SlurmOptions o;
  o.worker = "/opt/ldm/bin/ldm-worker";
  o.partition = "gpu";
  o.account = "proj1";
  o.qos = "high";
  o.time_limit = "04:00:00";
  o.nodes = 2;
  o.tasks_per_node = 4;
  o.gpus_per_node = 4;
  o.signal_before_s = 300;
  o.extra_sbatch = {"--mem=64G", "--exclusive"};
  o.setup = {"module load openmpi", "source /opt/venv/bin/activate"};
  const std::string s = slurm_batch_script(r, o);
  for (const char* line :
       {"#!/bin/bash\n",
        "#SBATCH --job-name=ldm.exp.train.a3\n",
        "#SBATCH --ntasks=8\n",
        "#SBATCH --cpus-per-task=4\n",
        "#SBATCH --nodes=2\n",
        "#SBATCH --ntasks-per-node=4\n",
        "#SBATCH --gpus-per-node=4\n",
        "#SBATCH --time=04:00:00\n",
        "#SBATCH --partition=gpu\n",
        "#SBATCH --account=proj1\n",
        "#SBATCH --qos=high\n",
        "#SBATCH --signal=B:USR1@300\n",
        "#SBATCH --chdir=/shared/runs/exp/train\n",
        "#SBATCH --output=/shared/runs/exp/train/logs/slurm-%j.out\n",
        "#SBATCH --no-requeue\n",
        "#SBATCH --mem=64G\n",
        "#SBATCH --exclusive\n",
        "module load openmpi\n",
        "source /opt/venv/bin/activate\n",
        "trap 'kill -USR1 \"$step\" 2>/dev/null' USR1\n",
        "srun --mpi=pmix --kill-on-bad-exit=1 '/opt/ldm/bin/ldm-worker' train --coord 'tcp://login1:7622' --run "
        "'exp.train.a3' &\n",
        "echo \"$rc\" > \"slurm/$SLURM_JOB_ID.exit\"\n"}) {
    CAPTURE(line);
    CHECK(s.find(line) != std::string::npos);
  }
  CHECK(s.find("secret") == std::string::npos);  // the token is never written down
  CHECK(s.find("module load") < s.find("srun"));
  // Defaults: no partition, account, qos, time, nodes or GPUs asked; cpus from the stage.
  SlurmOptions plain;
  plain.worker = "ldm-worker";
  const std::string d = slurm_batch_script(r, plain);
  for (const char* absent : {"--partition", "--account", "--qos", "--time", "--nodes", "--gpus-per-node"}) {
    CAPTURE(absent);
    CHECK(d.find(absent) == std::string::npos);
  }
  CHECK(d.find("#SBATCH --signal=B:USR1@120\n") != std::string::npos);
}

TEST_CASE("slurm: sbatch, squeue and scontrol output as the real daemons print it") {
  CHECK(parse_sbatch_parsable(fixture("sbatch-parsable.txt")) == 9);
  CHECK(parse_sbatch_parsable("1234;cluster2\n") == 1234);
  CHECK_THROWS_WITH_AS(parse_sbatch_parsable(fixture("sbatch-bad-partition.txt")), doctest::Contains("not a job id"),
                       Error);
  const auto jobs = parse_squeue(fixture("squeue.txt"));
  REQUIRE(jobs.size() == 2);
  CHECK(jobs.at(9) == std::make_pair(std::string("RUNNING"), std::string("ldm.exp.train.a1")));
  CHECK(jobs.at(10).second == "ldm.exp.eval.a2");
  CHECK(parse_squeue("12_3|PENDING|array\n\n").empty());  // array tasks are not ours
  const ScontrolJob done = parse_scontrol_job(fixture("scontrol-completed.txt"));
  CHECK(done.state == "COMPLETED");
  CHECK(done.exit_code == 0);
  const ScontrolJob failed = parse_scontrol_job(fixture("scontrol-failed.txt"));
  CHECK(failed.state == "FAILED");
  CHECK(failed.exit_code == 3);
  CHECK(parse_scontrol_job("slurm_load_jobs error: Invalid job id specified").exit_code == -1);
  for (const char* s : {"COMPLETED", "FAILED", "CANCELLED", "CANCELLED+", "TIMEOUT", "PREEMPTED", "NODE_FAIL"})
    CHECK(slurm_state_ended(s));
  for (const char* s : {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED"})
    CHECK_FALSE(slurm_state_ended(s));
}

TEST_CASE("slurm: an experiment's [executor] knobs win over the coordinator's, and its lines add to them") {
  SlurmOptions coord;
  coord.partition = "cpu";
  coord.time_limit = "01:00:00";
  coord.signal_before_s = 120;
  coord.extra_sbatch = {"--mem=8G"};
  ExecutorSpec e;
  e.kind = "slurm";
  e.partition = "gpu";
  e.gpus_per_node = 4;
  e.signal_before_s = 600;
  e.sbatch = {"--exclusive"};
  e.setup = {"module load cuda"};
  const SlurmOptions o = with_experiment_knobs(coord, e);
  CHECK(o.partition == "gpu");
  CHECK(o.time_limit == "01:00:00");  // not set by the experiment: the coordinator's
  CHECK(o.gpus_per_node == 4);
  CHECK(o.signal_before_s == 600);
  CHECK(o.extra_sbatch == std::vector<std::string>{"--mem=8G", "--exclusive"});
  CHECK(o.setup == std::vector<std::string>{"module load cuda"});
  CHECK(with_experiment_knobs(coord, ExecutorSpec{}).partition == "cpu");
}
