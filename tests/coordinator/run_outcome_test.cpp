// How a run's final state and error are decided when its job ends.
#include <doctest/doctest.h>

#include "coordinator/run_outcome.h"
#include "tests/coordinator/test_support.h"

using namespace ldm;
using namespace ldm::coord;
using namespace ldm::coord::testing;

TEST_CASE("failure notes are read in rank order and joined into one error") {
  TempDir dir;
  write_file_atomic(dir.path() + "/failure-rank-10.txt", "rank 10: crashed at step 3\n");
  write_file_atomic(dir.path() + "/failure-rank-2.txt", "rank 2: crashed at step 3\n");
  write_file_atomic(dir.path() + "/failure-rank-3.txt", "\n");  // empty notes add nothing
  write_file_atomic(dir.path() + "/other.txt", "ignored");
  CHECK(read_failure_notes(dir.path()) ==
        std::vector<std::string>{"rank 2: crashed at step 3", "rank 10: crashed at step 3"});
  const RunOutcome o = decide_run_outcome({}, {1, 1, 0}, dir.path());
  CHECK(o.state == RunState::Failed);
  CHECK(o.error == "rank 2: crashed at step 3; rank 10: crashed at step 3");
}

TEST_CASE("without notes the error is the exit status plus the last five log lines") {
  TempDir dir;
  make_dirs(dir.path() + "/logs");
  write_file_atomic(dir.path() + "/logs/mpirun.log", "1\n2\n3\n\n4\n5\n6\n7\n");
  const RunOutcome o = decide_run_outcome({}, {1, 2, 0}, dir.path());
  CHECK(o.error == "mpirun exited with code 2; last lines of " + dir.path() + "/logs/mpirun.log:\n3\n4\n5\n6\n7");
  CHECK(decide_run_outcome({}, {1, -1, 11}, "/nonexistent").error == "mpirun was killed by signal 11 (SIGSEGV)");
}

TEST_CASE("done needs a clean exit, while failed and preempted reports decide whatever the exit") {
  const ProcessExit clean{1, 0, 0}, crashed{1, 1, 0};
  CHECK(decide_run_outcome({WorkerReport::Done, 5, ""}, clean, "/nonexistent").state == RunState::Done);
  const RunOutcome late = decide_run_outcome({WorkerReport::Done, 5, ""}, crashed, "/nonexistent");
  CHECK(late.state == RunState::Failed);
  CHECK(late.error == "worker reported completion at step 5 but mpirun exited with code 1");
  CHECK(decide_run_outcome({WorkerReport::Failed, 5, "boom"}, clean, "/nonexistent").error == "boom");
  CHECK(decide_run_outcome({WorkerReport::Preempted, 5, ""}, crashed, "/nonexistent").state == RunState::Preempted);
  // A divergence report decides the run whatever the exit (the ranks abort together), never retried.
  const RunOutcome diverged = decide_run_outcome({WorkerReport::Diverged, 5, "the training diverged"}, crashed, "/x");
  CHECK(diverged.state == RunState::Diverged);
  CHECK(diverged.error == "the training diverged");
  CHECK_FALSE(diverged.retryable);
  CHECK(decide_run_outcome({}, clean, "/nonexistent").error == "worker exited without reporting completion");
}

TEST_CASE("a job whose exit status is unknown (re-attached) ends as its worker reported, else lost and retryable") {
  TempDir dir;
  const ProcessExit unseen{42, -1, 0, false};
  CHECK(decide_run_outcome({WorkerReport::Done, 5, ""}, unseen, dir.path()).state == RunState::Done);
  CHECK(decide_run_outcome({WorkerReport::Preempted, 5, ""}, unseen, dir.path()).state == RunState::Preempted);
  const RunOutcome failed = decide_run_outcome({WorkerReport::Failed, 5, "boom"}, unseen, dir.path());
  CHECK(failed.state == RunState::Failed);
  CHECK_FALSE(failed.retryable);
  const RunOutcome silent = decide_run_outcome({}, unseen, dir.path());
  CHECK(silent.state == RunState::Lost);
  CHECK(silent.retryable);
  CHECK(silent.error.find("mpirun (pid 42) ended while no coordinator that started it was watching") == 0);
  // A note a rank left still explains it.
  write_file_atomic(dir.path() + "/failure-rank-0.txt", "rank 0: error at step 3: bad shard\n");
  const RunOutcome noted = decide_run_outcome({}, unseen, dir.path());
  CHECK(noted.state == RunState::Failed);
  CHECK(noted.error == "rank 0: error at step 3: bad shard");
  CHECK_FALSE(noted.retryable);
}

TEST_CASE("failure notes of an earlier attempt are cleared before the next one starts") {
  TempDir dir;
  write_file_atomic(dir.path() + "/failure-rank-0.txt", "rank 0: old news\n");
  write_file_atomic(dir.path() + "/keep.txt", "x");
  clear_failure_notes(dir.path());
  CHECK(read_failure_notes(dir.path()).empty());
  CHECK(path_exists(dir.path() + "/keep.txt"));
}

TEST_CASE("crashes, kills and preemption are retryable, errors a rank reported are not") {
  const ProcessExit clean{1, 0, 0}, crashed{1, 134, 0}, killed{1, -1, 9};
  CHECK(decide_run_outcome({WorkerReport::Preempted, 5, ""}, clean, "/nonexistent").retryable);
  CHECK(decide_run_outcome({}, killed, "/nonexistent").retryable);
  CHECK_FALSE(
      decide_run_outcome({WorkerReport::Failed, 5, "rank 0: error at step 5: bad shard"}, crashed, "/nonexistent")
          .retryable);
  CHECK_FALSE(decide_run_outcome({WorkerReport::Done, 5, ""}, clean, "/nonexistent").retryable);
  CHECK_FALSE(decide_run_outcome({}, clean, "/nonexistent").retryable);  // exit 0 without a word
  TempDir dir;
  write_file_atomic(dir.path() + "/failure-rank-1.txt", "rank 1: crashed with signal 6 (SIGABRT) at step 5\n");
  CHECK(decide_run_outcome({}, crashed, dir.path()).retryable);
  // a rank that hit an error could not report it (rank 0 reports), but its note says so
  write_file_atomic(dir.path() + "/failure-rank-2.txt", "rank 2: error at step 5: record 9 is corrupt\n");
  CHECK_FALSE(decide_run_outcome({}, crashed, dir.path()).retryable);
}

TEST_CASE("the newest checkpoint of a run directory is its newest complete bundle, whatever `latest` says") {
  TempDir dir;
  CHECK_FALSE(newest_checkpoint(dir.path()).has_value());  // none yet: start from scratch
  const auto bundle = [&](const char* name, const std::string& manifest) {
    make_dirs(dir.path() + "/checkpoints/" + name);
    write_file_atomic(dir.path() + "/checkpoints/" + name + "/manifest.json", manifest);
  };
  bundle("step-0000040", R"({"step": 40, "spec_hash": "x"})");
  write_file_atomic(dir.path() + "/checkpoints/latest", "step-0000040\n");
  auto p = newest_checkpoint(dir.path());
  REQUIRE(p.has_value());
  CHECK(p->bundle == dir.path() + "/checkpoints/step-0000040");
  CHECK(p->step == 40);
  // Killed after renaming step 60 into place but before `latest` moved: step 60 is complete.
  bundle("step-0000060", R"({"step": 60, "spec_hash": "x"})");
  CHECK(newest_checkpoint(dir.path())->step == 60);
  // Killed while writing step 80: its temporary directory is not a bundle.
  make_dirs(dir.path() + "/checkpoints/.tmp-step-0000080");
  write_file_atomic(dir.path() + "/checkpoints/.tmp-step-0000080/model.safetensors", "partial");
  // `latest` naming a bundle that is gone (killed while a bundle of the same step was replaced)
  write_file_atomic(dir.path() + "/checkpoints/latest", "step-0000100\n");
  CHECK(newest_checkpoint(dir.path())->step == 60);
  CHECK(newest_checkpoint(dir.path())->bundle == dir.path() + "/checkpoints/step-0000060");
  bundle("step-0000070", "{}");
  CHECK_THROWS_WITH_AS(newest_checkpoint(dir.path()), doctest::Contains("step-0000070/manifest.json: step: missing"),
                       Error);
  bundle("step-0000070", R"({"step": 7})");
  CHECK_THROWS_WITH_AS(newest_checkpoint(dir.path()), doctest::Contains("step 7 in a bundle named for step 70"), Error);
}
