// The coordinator's state machine, driven with a fake executor, a real store in a temp dir and
// decoded protocol messages (no sockets, no processes).
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <memory>

#include "coordinator/coordinator.h"
#include "shared/core/safe_file.h"
#include "tests/coordinator/test_support.h"

using namespace ldm;
using namespace ldm::coord;
using namespace ldm::coord::testing;
using nlohmann::json;
using protocol::Message;
using protocol::Type;

namespace {

struct Fixture {
  TempDir dir;
  std::unique_ptr<ExperimentStore> store = ExperimentStore::open(dir.path() + "/db");
  FakeExecutor executor;
  double clock = 1000.0;
  std::unique_ptr<Coordinator> coord = make_coordinator();

  std::unique_ptr<Coordinator> make_coordinator() {
    CoordinatorOptions o;
    o.runs_root = dir.path() + "/runs";
    o.zmq_endpoint = "tcp://127.0.0.1:5999";
    o.clock = [this] { return clock; };
    return std::make_unique<Coordinator>(*store, executor, o);
  }

  RunRecord submit(const std::string& name = "exp1", std::int64_t max_attempts = 1) {
    Submission s;
    s.source = "/x/" + name + ".toml";
    s.spec = small_spec(name, 20, 2, max_attempts);
    const SubmitResult r = coord->submit(s);
    REQUIRE(r.runs.size() == 1);
    return run(r.runs[0]);
  }
  RunRecord run(const std::string& id) const {
    auto r = store->get_run(id);
    REQUIRE(r);
    return *r;
  }
  ExperimentRecord experiment(const std::string& name = "exp1") const { return *store->get_experiment(name); }
  StageRecord stage(const std::string& name = "exp1") const { return *store->get_stage(name, "train"); }

  Message send(Type type, const RunRecord& r, json body) {
    return coord->handle(protocol::make(type, r.id, r.token, std::move(body)));
  }
  Message hello(const RunRecord& r) {
    return send(Type::Hello, r, {{"rank", 0}, {"world_size", r.ranks}, {"host", "h"}, {"pid", 7}});
  }
  Message metrics(const RunRecord& r, std::int64_t seq, std::int64_t step, double loss) {
    return send(Type::Metrics, r,
                {{"attempt", r.attempt},
                 {"seq", seq},
                 {"points",
                  {{{"metric", "loss"}, {"step", step}, {"value", loss}},
                   {{"metric", "samples_per_s"}, {"step", step}, {"value", 50.0}}}}});
  }
  // The job of `r` exits; the coordinator reaps it on its next tick.
  void exit_job(const RunRecord& r, int code) {
    executor.exit(r.pid, code);
    coord->tick();
  }
};

std::string error_of(const Message& m) {
  REQUIRE(m.type == Type::Error);
  return m.body.at("message").get<std::string>();
}

}  // namespace

TEST_CASE("submit stores the experiment and launches its first stage with token and ranks") {
  Fixture f;
  const RunRecord r = f.submit("exp1");
  CHECK(r.id == "exp1.train.a1");
  CHECK(r.state == RunState::Pending);
  CHECK(r.token.size() == 32);
  CHECK(r.pid == 1000);
  CHECK(r.run_dir == f.dir.path() + "/runs/exp1/train");
  REQUIRE(f.executor.launches.size() == 1);
  const LaunchRequest& l = f.executor.launches[0];
  CHECK(l.run_id == r.id);
  CHECK(l.token == r.token);
  CHECK(l.ranks == 2);
  CHECK(l.run_dir == r.run_dir);
  CHECK(l.coord_endpoint == "tcp://127.0.0.1:5999");
  CHECK(f.stage().current_run == r.id);
  CHECK(f.stage().total_steps == 20);
  CHECK(f.experiment().state == RunState::Pending);
  f.coord->tick();
  CHECK(f.executor.launches.size() == 1);  // a stage with a live attempt is not launched again
}

TEST_CASE("hello is answered with the spec and marks run, stage and experiment running") {
  Fixture f;
  const RunRecord r = f.submit();
  const Message reply = f.hello(r);
  REQUIRE(reply.type == Type::Spec);
  CHECK(reply.body.at("spec") == f.experiment().spec);
  CHECK(reply.body.at("spec").at("name") == "exp1");
  CHECK(reply.body.at("attempt") == 1);
  CHECK(reply.body.at("run_dir") == r.run_dir);
  CHECK(reply.body.at("stage_index") == 0);
  CHECK(reply.body.at("data_dir") == f.dir.path() + "/runs/data");
  CHECK(f.run(r.id).state == RunState::Running);
  CHECK(f.run(r.id).started_at == 1000.0);
  CHECK(f.stage().state == RunState::Running);
  CHECK(f.experiment().state == RunState::Running);
}

TEST_CASE("metrics are in the store when the ack comes back, and update the run's progress") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  const Message reply = f.metrics(r, 1, 5, 0.75);
  REQUIRE(reply.type == Type::Ack);
  CHECK(reply.body.at("seq") == 1);
  const auto points = f.store->metrics("exp1", "train", "loss");
  REQUIRE(points.size() == 1);
  CHECK(points[0].step == 5);
  CHECK(points[0].value == doctest::Approx(0.75));
  CHECK(points[0].attempt == 1);
  CHECK(points[0].time == 1000.0);  // stamped on arrival when the worker sent none
  const RunRecord after = f.run(r.id);
  CHECK(after.last_seq == 1);
  CHECK(after.step == 5);
  CHECK(after.last_loss == doctest::Approx(0.75));
  CHECK(after.samples_per_s == doctest::Approx(50.0));
  CHECK(f.coord->experiment("exp1")->stages.at(0).step == 5);  // views show the run's progress
}

TEST_CASE("a re-sent metrics batch is acknowledged without being written again") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  REQUIRE(f.metrics(r, 1, 5, 0.75).type == Type::Ack);
  REQUIRE(f.metrics(r, 2, 6, 0.5).type == Type::Ack);
  const Message again = f.metrics(r, 1, 5, 99.0);  // same seq, different content: not applied
  REQUIRE(again.type == Type::Ack);
  CHECK(again.body.at("seq") == 1);
  const auto points = f.store->metrics("exp1", "train", "loss");
  REQUIRE(points.size() == 2);
  CHECK(points[0].value == doctest::Approx(0.75));
  CHECK(f.run(r.id).last_seq == 2);
  CHECK(f.run(r.id).last_loss == doctest::Approx(0.5));
}

TEST_CASE("metric batches arriving out of order are all stored once; progress follows the newest") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  REQUIRE(f.metrics(r, 1, 5, 0.75).type == Type::Ack);
  REQUIRE(f.metrics(r, 3, 7, 0.25).type == Type::Ack);  // overtook seq 2
  CHECK(f.run(r.id).last_seq == 1);                     // 2 is still missing
  CHECK(f.run(r.id).last_loss == doctest::Approx(0.25));
  REQUIRE(f.metrics(r, 2, 6, 0.5).type == Type::Ack);  // the late one is stored, not dropped
  CHECK(f.run(r.id).last_seq == 3);
  CHECK(f.run(r.id).last_loss == doctest::Approx(0.25));  // an older batch does not roll progress back
  REQUIRE(f.metrics(r, 3, 7, 99.0).type == Type::Ack);    // re-sent after the gap closed: not rewritten
  REQUIRE(f.metrics(r, 4, 8, 0.125).type == Type::Ack);
  const auto points = f.store->metrics("exp1", "train", "loss");
  REQUIRE(points.size() == 4);
  for (std::size_t i = 0; i < points.size(); ++i) CHECK(points[i].step == 5 + static_cast<int64_t>(i));
  CHECK(points[1].value == doctest::Approx(0.5));
  CHECK(points[2].value == doctest::Approx(0.25));
  CHECK(f.run(r.id).last_seq == 4);
}

TEST_CASE("metrics with seq below 1 or from another attempt are rejected") {
  Fixture f;
  RunRecord r = f.submit();
  f.hello(r);
  CHECK(error_of(f.metrics(r, 0, 1, 1.0)).find("seq must be >= 1") != std::string::npos);
  r.attempt = 2;
  CHECK(error_of(f.metrics(r, 1, 1, 1.0)).find("attempt 2") != std::string::npos);
  CHECK(f.store->metrics("exp1", "train").empty());
}

TEST_CASE("a message with a wrong token is rejected as unauthenticated and changes nothing") {
  Fixture f;
  RunRecord r = f.submit();
  RunRecord forged = r;
  forged.token = std::string(r.token.size(), '0');
  CHECK(error_of(f.hello(forged)) == "unauthenticated");
  CHECK(error_of(f.metrics(forged, 1, 1, 1.0)) == "unauthenticated");
  CHECK(f.run(r.id).state == RunState::Pending);
  CHECK(f.store->metrics("exp1", "train").empty());
}

TEST_CASE("a message for an unknown run is rejected as unauthenticated") {
  Fixture f;
  RunRecord r = f.submit();
  r.id = "nope.train.a1";
  const Message reply = f.hello(r);
  CHECK(error_of(reply) == "unauthenticated");
  CHECK(reply.token.empty());
}

TEST_CASE("malformed frames are answered with an error and the coordinator keeps working") {
  Fixture f;
  const RunRecord r = f.submit();
  const std::vector<std::string> frames = {
      "",
      "not json",
      "[1,2]",
      R"({"v": 99, "type": "hello", "run": "x", "token": "t", "body": {}})",
      R"({"v": 1, "type": "bogus", "run": "x", "token": "t", "body": {}})",
      R"({"v": 1, "type": "hello", "run": "x", "token": "t"})",
      R"({"v": 1, "type": "metrics", "run": "x", "token": "t", )"
      R"("body": {"attempt": 1, "seq": 1, "points": [{"metric": 3}]}})",
      std::string(protocol::kMaxMessageBytes + 1, ' '),
  };
  for (const std::string& frame : frames) {
    CAPTURE(frame.substr(0, 80));
    const Message reply = f.coord->handle_frame(frame);
    CHECK(reply.type == Type::Error);
    CHECK_FALSE(reply.body.at("message").get<std::string>().empty());
  }
  // A point whose optional field has the wrong type passes framing but fails in the handler.
  const std::string bad_time = protocol::encode(protocol::make(
      Type::Metrics, r.id, r.token,
      {{"attempt", 1}, {"seq", 1}, {"points", {{{"metric", "loss"}, {"step", 1}, {"value", 1.0}, {"time", "noon"}}}}}));
  CHECK(f.coord->handle_frame(bad_time).type == Type::Error);
  CHECK(f.store->metrics("exp1", "train").empty());
  CHECK(
      f.coord
          ->handle_frame(protocol::encode(protocol::make(Type::Hello, r.id, r.token, {{"rank", 0}, {"world_size", 2}})))
          .type == Type::Spec);
}

TEST_CASE("coordinator-to-worker message types sent to the coordinator are rejected") {
  Fixture f;
  const RunRecord r = f.submit();
  CHECK(error_of(f.send(Type::Ack, r, {{"seq", 1}})).find("sent by the coordinator") != std::string::npos);
}

TEST_CASE("done followed by a clean exit marks run, stage and experiment done") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  f.metrics(r, 1, 20, 0.25);
  f.send(Type::Checkpoint, r, {{"step", 20}, {"path", "/ckpt/step-0000020"}});
  REQUIRE(f.send(Type::Done, r, {{"step", 20}, {"summary", {{"samples_per_s", 64.0}}}}).type == Type::Ack);
  CHECK(f.run(r.id).state == RunState::Running);  // decided when mpirun exits
  f.clock = 1010.0;
  f.exit_job(f.run(r.id), 0);
  const RunRecord done = f.run(r.id);
  CHECK(done.state == RunState::Done);
  CHECK(done.error.empty());
  CHECK(done.finished_at == 1010.0);
  CHECK(done.checkpoint == "/ckpt/step-0000020");
  CHECK(done.samples_per_s == doctest::Approx(64.0));
  CHECK(f.stage().state == RunState::Done);
  CHECK(f.stage().step == 20);
  CHECK(f.experiment().state == RunState::Done);
  CHECK(f.experiment().finished_at == 1010.0);
  CHECK(f.coord->running_jobs() == 0);
}

TEST_CASE("a job that exits without reporting fails with the note its dying rank left") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  make_dirs(r.run_dir);
  write_file_atomic(r.run_dir + "/failure-rank-1.txt", "rank 1: crashed with signal 6 (SIGABRT) at step 5\n");
  f.exit_job(f.run(r.id), 134);
  const RunRecord failed = f.run(r.id);
  CHECK(failed.state == RunState::Failed);
  CHECK(failed.error == "rank 1: crashed with signal 6 (SIGABRT) at step 5");
  CHECK(f.stage().state == RunState::Failed);
  CHECK(f.experiment().state == RunState::Failed);
  CHECK(f.experiment().error == failed.error);
}

TEST_CASE("a job killed without notes fails with its exit status and the end of its log") {
  Fixture f;
  const RunRecord r = f.submit();
  make_dirs(r.run_dir + "/logs");
  write_file_atomic(r.run_dir + "/logs/mpirun.log", "line 1\nline 2\nlast words\n");
  f.executor.kill(r.pid, 9);
  f.coord->tick();
  const std::string error = f.run(r.id).error;
  CHECK(error.find("mpirun was killed by signal 9 (SIGKILL)") == 0);
  CHECK(error.find("last words") != std::string::npos);
  CHECK(f.run(r.id).state == RunState::Failed);  // never said hello: still a failure, not a hang
}

TEST_CASE("a worker that exits 0 without reporting completion fails") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  f.exit_job(f.run(r.id), 0);
  CHECK(f.run(r.id).state == RunState::Failed);
  CHECK(f.run(r.id).error == "worker exited without reporting completion");
}

TEST_CASE("a failed report sets the run's error and the run fails when mpirun exits") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  REQUIRE(f.send(Type::Failed, r, {{"step", 7}, {"rank", 1}, {"message", "rank 1: loss is NaN at step 7"}}).type ==
          Type::Ack);
  CHECK(f.run(r.id).error == "rank 1: loss is NaN at step 7");
  CHECK(f.run(r.id).state == RunState::Running);
  f.send(Type::Done, r, {{"step", 7}});  // a later completion claim does not hide the failure
  f.exit_job(f.run(r.id), 0);
  CHECK(f.run(r.id).state == RunState::Failed);
  CHECK(f.experiment().error == "rank 1: loss is NaN at step 7");
}

TEST_CASE("a preempted report ends the run preempted with its checkpoint") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  f.send(Type::Preempted, r, {{"step", 9}, {"checkpoint", "/ckpt/step-0000009"}});
  f.exit_job(f.run(r.id), 0);
  CHECK(f.run(r.id).state == RunState::Preempted);
  CHECK(f.run(r.id).checkpoint == "/ckpt/step-0000009");
  CHECK(f.experiment().state == RunState::Preempted);
}

TEST_CASE("heartbeats and checkpoints update the run and are acknowledged") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  f.clock = 1005.0;
  const Message hb = f.send(Type::Heartbeat, r, {{"step", 3}});
  REQUIRE(hb.type == Type::Ack);
  CHECK(hb.body.at("seq") == 0);
  CHECK(f.run(r.id).last_heartbeat == 1005.0);
  CHECK(f.run(r.id).step == 3);
  CHECK(f.send(Type::Checkpoint, r, {{"step", 4}, {"path", "/c"}}).type == Type::Ack);
  CHECK(f.run(r.id).checkpoint == "/c");
}

TEST_CASE("a heartbeat's system figures show in the experiment view while the run is active, then go") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  const nlohmann::json sys = {{"step", 7},
                              {"ranks",
                               {{{"rank", 0},
                                 {"step_s", 0.5},
                                 {"data_wait_s", 0.01},
                                 {"comm_s", 0.2},
                                 {"comm_hidden_s", 0.15},
                                 {"peak_rss_mb", 300.0}},
                                {{"rank", 1},
                                 {"step_s", 0.6},
                                 {"data_wait_s", 0.02},
                                 {"comm_s", 0.1},
                                 {"comm_hidden_s", 0.0},
                                 {"peak_rss_mb", 310.0}}}}};
  CHECK(f.send(Type::Heartbeat, r, {{"step", 7}, {"system", sys}}).type == Type::Ack);
  auto view = f.coord->experiment("exp1");
  REQUIRE(view);
  REQUIRE(view->system.count(r.id) == 1);
  CHECK(view->system.at(r.id) == sys);
  // A later heartbeat without figures keeps the last ones.
  f.send(Type::Heartbeat, r, {{"step", 8}});
  CHECK(f.coord->experiment("exp1")->system.at(r.id).at("step") == 7);
  f.exit_job(f.run(r.id), 1);
  CHECK(f.coord->experiment("exp1")->system.empty());
}

TEST_CASE("messages for a run that has ended are rejected") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  f.exit_job(f.run(r.id), 1);
  REQUIRE(f.run(r.id).state == RunState::Failed);
  CHECK(error_of(f.metrics(r, 1, 1, 1.0)).find("already failed") != std::string::npos);
  CHECK(f.store->metrics("exp1", "train").empty());
}

TEST_CASE("a launch failure fails the run, stage and experiment with the reason") {
  Fixture f;
  f.executor.launch_error = "cannot find 'mpirun' on PATH";
  const RunRecord r = f.submit();
  CHECK(r.state == RunState::Failed);
  CHECK(r.error == "cannot start run exp1.train.a1: cannot find 'mpirun' on PATH");
  CHECK(f.experiment().state == RunState::Failed);
  CHECK(f.coord->running_jobs() == 0);
}

TEST_CASE("restart: a job still running is re-attached, keeps its attempt and slots, and delivers what it buffered") {
  Fixture f;
  const RunRecord r = f.submit("exp1", /*max_attempts=*/3);
  f.hello(r);
  f.metrics(r, 1, 5, 0.9);
  CHECK(f.run(r.id).job == "fake/" + std::to_string(r.pid));  // recorded at launch
  CHECK(f.run(r.id).coord == "tcp://127.0.0.1:5999");

  f.coord.reset();  // the coordinator dies; its job trains on
  f.executor.alive = {r.pid};
  f.coord = f.make_coordinator();
  CHECK(f.executor.adopted == std::vector<ProcessId>{r.pid});
  CHECK(f.coord->running_jobs() == 1);
  CHECK(f.coord->unconfirmed_jobs() == 1);
  f.coord->tick();
  CHECK(f.executor.launches.size() == 1);  // no second attempt
  CHECK(f.run(r.id).state == RunState::Running);
  CHECK(f.experiment().state == RunState::Running);
  // The worker re-sends the batch the old coordinator may not have stored, then the next ones.
  CHECK(f.metrics(r, 1, 5, 0.9).type == Type::Ack);
  CHECK(f.coord->unconfirmed_jobs() == 0);
  CHECK(f.metrics(r, 2, 10, 0.8).type == Type::Ack);
  CHECK(f.store->metrics("exp1", "train", "loss").size() == 2);
  f.send(Type::Done, r, {{"step", 20}});
  f.executor.vanish(r.pid);  // not our child: its end is seen, its status unknown
  f.coord->tick();
  CHECK(f.run(r.id).state == RunState::Done);
  CHECK(f.experiment().state == RunState::Done);
  CHECK(f.executor.launches.size() == 1);
}

TEST_CASE("restart: a job that is gone is lost and retried from the newest checkpoint") {
  Fixture f;
  const RunRecord running = f.submit("exp1", /*max_attempts=*/3);
  f.hello(running);
  const RunRecord pending = f.submit("exp2", /*max_attempts=*/3);
  const RunRecord no_retry = f.submit("exp3", /*max_attempts=*/1);
  f.hello(no_retry);
  const RunRecord finished = f.submit("exp4");
  f.hello(finished);
  f.send(Type::Done, finished, {{"step", 20}});
  f.exit_job(f.run(finished.id), 0);

  f.coord.reset();
  f.executor.alive = {running.pid + 1000};  // another process; none of the jobs runs
  f.coord = f.make_coordinator();
  CHECK(f.executor.adopted.empty());
  for (const RunRecord& r : {running, pending, no_retry}) {
    CAPTURE(r.id);
    CHECK(f.run(r.id).state == RunState::Lost);
    CHECK(f.run(r.id).error.find("its worker reported nothing") != std::string::npos);
  }
  CHECK(f.run(finished.id).state == RunState::Done);
  f.coord->tick();
  REQUIRE(f.executor.launches.size() == 6);  // exp1 and exp2 get attempt 2; exp3 had one attempt
  CHECK(f.executor.launches[4].run_id == "exp1.train.a2");
  CHECK(f.executor.launches[5].run_id == "exp2.train.a2");
  CHECK(f.experiment("exp1").state == RunState::Running);
  CHECK(f.experiment("exp3").state == RunState::Lost);
  CHECK(error_of(f.hello(running)).find("is already lost") != std::string::npos);  // an old worker is refused
}

TEST_CASE("restart: a gone job ends as its worker reported before the coordinator died") {
  Fixture f;
  const RunRecord done = f.submit("exp1", /*max_attempts=*/3);
  f.hello(done);
  f.send(Type::Done, done, {{"step", 20}});
  const RunRecord failed = f.submit("exp2", /*max_attempts=*/3);
  f.hello(failed);
  f.send(Type::Failed, failed, {{"step", 4}, {"rank", 1}, {"message", "rank 1: error at step 4: bad shard"}});
  f.send(Type::Done, failed, {{"step", 20}});  // a later claim of completion does not erase the failure
  CHECK(f.run(failed.id).report == "failed");
  f.coord.reset();
  f.coord = f.make_coordinator();  // both jobs are gone
  CHECK(f.run(done.id).state == RunState::Done);
  CHECK(f.experiment("exp1").state == RunState::Done);
  CHECK(f.run(failed.id).state == RunState::Failed);
  CHECK(f.run(failed.id).error == "rank 1: error at step 4: bad shard");
  f.coord->tick();
  CHECK(f.executor.launches.size() == 2);  // neither is retried
}

TEST_CASE("restart: a cancellation in progress goes on, and its run ends cancelled, not retried") {
  Fixture f;
  const RunRecord kept = f.submit("exp1", /*max_attempts=*/3);
  f.hello(kept);
  const RunRecord gone = f.submit("exp2", /*max_attempts=*/3);
  f.hello(gone);
  f.coord->cancel("exp1");
  f.coord->cancel("exp2");
  f.send(Type::Preempted, gone, {{"step", 9}, {"checkpoint", "/ckpt/step-0000009"}});  // checkpointed, exiting
  f.coord.reset();
  f.executor.alive = {kept.pid};
  f.executor.signals.clear();
  f.coord = f.make_coordinator();
  CHECK(f.run(gone.id).state == RunState::Cancelled);  // not preempted and retried
  CHECK(f.run(gone.id).error == "cancelled by request");
  f.clock += 61;  // the grace period, counted from the request, is over: SIGKILL
  f.coord->tick();
  REQUIRE(f.executor.signals.size() == 1);
  CHECK(f.executor.signals[0] == std::make_pair(kept.pid, SIGKILL));
  f.executor.vanish(kept.pid);
  f.coord->tick();
  CHECK(f.run(kept.id).state == RunState::Cancelled);
  CHECK(f.experiment("exp1").state == RunState::Cancelled);
  CHECK(f.executor.launches.size() == 2);
}

TEST_CASE("liveness: a job silent for the heartbeat timeout is killed, lost and retried; any message counts") {
  Fixture f;
  // The coordinator ticks every 50 ms; here every 10 s of the fake clock.
  const auto advance = [&](double seconds) {
    for (double left = seconds; left > 0; left -= 10) {
      f.clock += std::min(10.0, left);
      f.coord->tick();
    }
  };
  const RunRecord r = f.submit("exp1", /*max_attempts=*/2);
  advance(299);  // launched, no hello yet: within the timeout
  CHECK(f.executor.signals.empty());
  f.hello(r);
  advance(200);
  f.send(Type::Heartbeat, r, {{"step", 3}});
  advance(200);
  f.metrics(r, 1, 5, 0.9);
  advance(299);
  CHECK(f.executor.signals.empty());
  advance(2);  // 301 s after the last message
  f.coord->tick();
  REQUIRE(f.executor.signals.size() == 1);  // once
  CHECK(f.executor.signals[0] == std::make_pair(r.pid, SIGKILL));
  CHECK(f.run(r.id).state == RunState::Running);  // until the job is reaped
  f.executor.kill(r.pid, SIGKILL);
  f.coord->tick();
  CHECK(f.run(r.id).state == RunState::Lost);
  CHECK(f.run(r.id).error.find("heartbeat timeout") != std::string::npos);
  REQUIRE(f.executor.launches.size() == 2);
  CHECK(f.executor.launches[1].run_id == "exp1.train.a2");
  // A job that never says hello is killed too.
  advance(301);
  REQUIRE(f.executor.signals.size() == 2);
  CHECK(f.executor.signals[1] == std::make_pair(f.run("exp1.train.a2").pid, SIGKILL));
}

TEST_CASE("liveness: a coordinator that was itself stopped does not count its own gap; a worker done is not silent") {
  Fixture f;
  const RunRecord quiet = f.submit("exp1", /*max_attempts=*/2);
  f.hello(quiet);
  const RunRecord done = f.submit("exp2", /*max_attempts=*/2);
  f.hello(done);
  f.send(Type::Done, done, {{"step", 20}});  // then quiet in MPI_Finalize
  f.coord->tick();
  f.clock += 3600;  // the coordinator was suspended for an hour
  f.coord->tick();
  CHECK(f.executor.signals.empty());
  for (int i = 0; i < 31; ++i) {  // then it listens again: 310 s of silence
    f.clock += 10;
    f.coord->tick();
  }
  REQUIRE(f.executor.signals.size() == 1);
  CHECK(f.executor.signals[0] == std::make_pair(quiet.pid, SIGKILL));  // not the one that reported done
}

TEST_CASE("restart: a run without a recorded job identity (written before schema 4) is lost, not retried") {
  Fixture f;
  RunRecord r = f.submit("exp1", /*max_attempts=*/3);
  f.hello(r);
  r = f.run(r.id);
  r.job.clear();
  f.store->put_run(r);
  f.coord.reset();
  f.executor.alive = {r.pid};
  f.coord = f.make_coordinator();
  f.coord->tick();
  CHECK(f.run(r.id).state == RunState::Lost);
  CHECK(f.run(r.id).error.find("could not be re-attached") != std::string::npos);
  CHECK(f.executor.launches.size() == 1);  // no second attempt beside a job that may still run
  CHECK(f.experiment().state == RunState::Lost);
}

TEST_CASE("event acks name their event, so a late ack of an earlier event is told apart") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  const Message checkpoint = f.send(Type::Checkpoint, r, {{"step", 5}, {"path", "/c/step-0000005"}});
  CHECK(checkpoint.body.at("event") == "checkpoint");
  CHECK(checkpoint.body.at("seq") == 0);
  CHECK(f.send(Type::Done, r, {{"step", 20}}).body.at("event") == "done");
}

TEST_CASE("a submitted experiment whose first run was never created is launched after a restart") {
  Fixture f;
  ExperimentRecord e;
  e.name = "orphan";
  e.spec = small_spec("orphan");
  StageRecord s;
  s.experiment = "orphan";
  s.name = "train";
  f.store->put_submission(e, {s});
  f.coord = f.make_coordinator();
  f.coord->tick();
  REQUIRE(f.executor.launches.size() == 1);
  CHECK(f.executor.launches[0].run_id == "orphan.train.a1");
}

TEST_CASE("a duplicate experiment name is rejected and --name gives a new one") {
  Fixture f;
  f.submit("exp1");
  Submission again;
  again.spec = small_spec("exp1");
  CHECK_THROWS_WITH_AS(f.coord->submit(again), "experiment 'exp1' already exists (submit with --name NEW)",
                       NameTakenError);
  again.name = "exp1-b";
  const SubmitResult r = f.coord->submit(again);
  CHECK(r.experiment == "exp1-b");
  CHECK(f.experiment("exp1-b").spec.at("name") == "exp1-b");
  again.name = "bad name";
  CHECK_THROWS_AS(f.coord->submit(again), SpecError);
}

TEST_CASE("an invalid spec is rejected naming the key and nothing is stored") {
  Fixture f;
  Submission s;
  s.spec = small_spec("exp1");
  s.spec["stage"][0]["stepz"] = 3;
  CHECK_THROWS_AS(f.coord->submit(s), SpecError);
  try {
    f.coord->submit(s);
  } catch (const SpecError& e) {
    CHECK(e.key_path() == "stage.0.stepz");
  }
  CHECK(f.store->list_experiments().empty());
  CHECK(f.executor.launches.empty());
}

TEST_CASE("metric queries default to the first stage and name unknown experiments and stages") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  f.metrics(r, 1, 1, 0.5);
  CHECK(f.coord->metrics("exp1", "", "").size() == 2);
  CHECK(f.coord->metrics("exp1", "train", "loss").size() == 1);
  CHECK_THROWS_WITH_AS(f.coord->metrics("nope", "", ""), "no experiment named 'nope'", NotFoundError);
  CHECK_THROWS_WITH_AS(f.coord->metrics("exp1", "x", ""), "experiment 'exp1' has no stage 'x' (stages: train)",
                       NotFoundError);
}

// ---- retries and resume ------------------------------------------------------------------------

namespace {

// A checkpoint bundle as the worker leaves it: checkpoints/step-N/manifest.json + latest.
void write_bundle(const std::string& run_dir, std::int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%07lld", static_cast<long long>(step));
  make_dirs(run_dir + "/checkpoints/" + name);
  write_file_atomic(run_dir + "/checkpoints/" + name + "/manifest.json", json{{"step", step}}.dump());
  write_file_atomic(run_dir + "/checkpoints/latest", std::string(name) + "\n");
}

std::vector<std::int64_t> loss_steps(const Fixture& f) {
  std::vector<std::int64_t> steps;
  for (const MetricPoint& p : f.store->metrics("exp1", "train", "loss")) steps.push_back(p.step);
  return steps;
}

}  // namespace

TEST_CASE("a crashed attempt is retried from the newest checkpoint, and the stage's curve loses the abandoned tail") {
  Fixture f;
  const RunRecord r1 = f.submit("exp1", 3);
  f.hello(r1);
  for (std::int64_t step = 1; step <= 7; ++step) f.metrics(f.run(r1.id), step, step, 1.0 / double(step));
  write_bundle(r1.run_dir, 5);
  write_file_atomic(r1.run_dir + "/failure-rank-1.txt", "rank 1: crashed with signal 6 (SIGABRT) at step 8\n");
  f.exit_job(f.run(r1.id), 134);
  CHECK(f.run(r1.id).state == RunState::Failed);
  CHECK(f.run(r1.id).error == "rank 1: crashed with signal 6 (SIGABRT) at step 8");
  CHECK(f.experiment().state == RunState::Running);  // not failed: another attempt comes
  CHECK(f.stage().state == RunState::Pending);
  f.coord->tick();  // launches attempt 2
  REQUIRE(f.executor.launches.size() == 2);
  const RunRecord r2 = f.run(f.executor.launches[1].run_id);
  CHECK(r2.attempt == 2);
  CHECK(r2.run_dir == r1.run_dir);
  CHECK(r2.resume_from == r1.run_dir + "/checkpoints/step-0000005");
  CHECK(r2.resume_step == 5);
  CHECK(f.stage().attempts == 2);
  CHECK(f.stage().current_run == r2.id);
  CHECK_FALSE(path_exists(r1.run_dir + "/failure-rank-1.txt"));  // the old note cannot explain attempt 2
  // The points after the checkpoint are gone; those up to it stay.
  CHECK(loss_steps(f) == std::vector<std::int64_t>{1, 2, 3, 4, 5});
  // The worker is told its attempt and the bundle to load.
  const Message spec = f.hello(r2);
  REQUIRE(spec.type == Type::Spec);
  CHECK(spec.body.at("attempt") == 2);
  CHECK(spec.body.at("resume_from") == r2.resume_from);
  CHECK(f.experiment().state == RunState::Running);
  // Attempt 2 re-reports steps 6..20 and finishes: one point per step, the stage done.
  for (std::int64_t step = 6; step <= 20; ++step) f.metrics(f.run(r2.id), step - 5, step, 0.5);
  f.send(Type::Done, f.run(r2.id), {{"step", 20}});
  f.exit_job(f.run(r2.id), 0);
  CHECK(f.experiment().state == RunState::Done);
  std::vector<std::int64_t> all(20);
  for (int i = 0; i < 20; ++i) all[static_cast<std::size_t>(i)] = i + 1;
  CHECK(loss_steps(f) == all);
  // a tick later nothing else is launched
  f.coord->tick();
  CHECK(f.executor.launches.size() == 2);
}

TEST_CASE("retries stop at max_attempts, and a reported error is never retried") {
  SUBCASE("crashes") {
    Fixture f;
    RunRecord r = f.submit("exp1", 2);
    for (int attempt = 1; attempt <= 2; ++attempt) {
      CHECK(f.run(r.id).attempt == attempt);
      f.executor.kill(r.pid, 9);
      f.coord->tick();  // reaps, and on the first failure launches attempt 2
      if (attempt == 1) r = f.run(f.executor.launches.back().run_id);
    }
    CHECK(f.executor.launches.size() == 2);
    CHECK(f.experiment().state == RunState::Failed);
    CHECK(f.stage().state == RunState::Failed);
    CHECK(f.stage().attempts == 2);
    CHECK(f.experiment().error.find("SIGKILL") != std::string::npos);
    // no checkpoint yet: attempt 2 started from scratch
    CHECK(f.run(r.id).resume_from.empty());
  }
  SUBCASE("a failed report") {
    Fixture f;
    const RunRecord r = f.submit("exp1", 3);
    f.hello(r);
    f.send(Type::Failed, r, {{"step", 3}, {"rank", 0}, {"message", "rank 0: error at step 3: bad shard"}});
    f.exit_job(f.run(r.id), 1);
    f.coord->tick();
    CHECK(f.executor.launches.size() == 1);
    CHECK(f.experiment().state == RunState::Failed);
  }
  SUBCASE("an error note of a rank that could not report") {
    Fixture f;
    const RunRecord r = f.submit("exp1", 3);
    make_dirs(r.run_dir);
    write_file_atomic(r.run_dir + "/failure-rank-1.txt", "rank 1: error at step 2: record 7 is corrupt\n");
    f.exit_job(r, 1);
    f.coord->tick();
    CHECK(f.executor.launches.size() == 1);
    CHECK(f.experiment().state == RunState::Failed);
  }
  SUBCASE("preemption") {
    Fixture f;
    const RunRecord r = f.submit("exp1", 3);
    f.hello(r);
    write_bundle(r.run_dir, 9);
    f.send(Type::Preempted, r, {{"step", 9}, {"checkpoint", r.run_dir + "/checkpoints/step-0000009"}});
    f.exit_job(f.run(r.id), 0);
    CHECK(f.run(r.id).state == RunState::Preempted);
    f.coord->tick();
    REQUIRE(f.executor.launches.size() == 2);
    CHECK(f.run(f.executor.launches[1].run_id).resume_step == 9);
  }
}

TEST_CASE("an unreadable newest bundle fails the new attempt naming its manifest") {
  Fixture f;
  const RunRecord r = f.submit("exp1", 3);
  make_dirs(r.run_dir + "/checkpoints/step-0000004");
  write_file_atomic(r.run_dir + "/checkpoints/step-0000004/manifest.json", "not json");
  f.executor.kill(r.pid, 9);
  f.coord->tick();
  f.coord->tick();
  CHECK(f.executor.launches.size() == 1);
  CHECK(f.experiment().state == RunState::Failed);
  CHECK(f.experiment().error.find("step-0000004/manifest.json: not valid JSON") != std::string::npos);
}

TEST_CASE("resume starts a new attempt of a stopped experiment, and refuses running, done and unknown ones") {
  Fixture f;
  const RunRecord r = f.submit("exp1", 1);
  CHECK_THROWS_AS(f.coord->resume("exp1"), ConflictError);  // still running
  CHECK_THROWS_AS(f.coord->resume("nope"), NotFoundError);
  f.hello(r);
  write_bundle(r.run_dir, 10);
  f.executor.kill(r.pid, 9);
  f.coord->tick();
  CHECK(f.experiment().state == RunState::Failed);  // max_attempts 1: no automatic retry
  const std::string id = f.coord->resume("exp1");
  const RunRecord r2 = f.run(id);
  CHECK(r2.attempt == 2);
  CHECK(r2.resume_step == 10);
  CHECK(f.experiment().state == RunState::Running);
  CHECK(f.experiment().error.empty());
  REQUIRE(f.executor.launches.size() == 2);
  f.hello(r2);
  f.send(Type::Done, r2, {{"step", 20}});
  f.exit_job(f.run(r2.id), 0);
  CHECK(f.experiment().state == RunState::Done);
  CHECK_THROWS_AS(f.coord->resume("exp1"), ConflictError);  // done
}

TEST_CASE("resume at another world size: refused without the flag or a batch that splits, kept by later attempts") {
  Fixture f;
  const RunRecord r = f.submit("exp1", 5);  // 2 ranks, global batch 8
  f.hello(r);
  write_bundle(r.run_dir, 10);
  f.send(Type::Failed, r, {{"step", 12}, {"rank", 0}, {"message", "rank 0: out of nodes"}});  // not retried
  f.exit_job(f.run(r.id), 1);
  REQUIRE(f.experiment().state == RunState::Failed);

  ResumeOptions o;
  o.ranks = 1;
  CHECK_THROWS_WITH_AS(f.coord->resume("exp1", o), doctest::Contains("--allow-world-size-change"), InvalidRequestError);
  o.ranks = 3;
  o.allow_world_size_change = true;
  CHECK_THROWS_WITH_AS(f.coord->resume("exp1", o), doctest::Contains("batch_size 8 does not split over 3"),
                       InvalidRequestError);
  o.ranks = 4;
  o.stage = "other";
  CHECK_THROWS_WITH_AS(f.coord->resume("exp1", o), doctest::Contains("no stopped stage 'other'"), ConflictError);
  ResumeOptions stage_alone;
  stage_alone.stage = "train";
  CHECK_THROWS_AS(f.coord->resume("exp1", stage_alone), InvalidRequestError);
  CHECK(f.stage().ranks == 0);  // nothing changed by the refusals
  CHECK(f.executor.launches.size() == 1);

  o.stage = "train";
  const RunRecord r2 = f.run(f.coord->resume("exp1", o));
  CHECK(r2.ranks == 4);
  CHECK(r2.resume_step == 10);
  CHECK(f.stage().ranks == 4);
  REQUIRE(f.executor.launches.size() == 2);
  CHECK(f.executor.launches.back().ranks == 4);
  const Message spec = f.hello(r2);
  REQUIRE(spec.type == Type::Spec);
  CHECK(spec.body.at("ranks") == 4);
  CHECK(spec.body.at("allow_world_size_change") == true);
  CHECK(spec.body.at("resume_from").get<std::string>().find("step-0000010") != std::string::npos);

  // A crash of the new world's attempt is retried at the new world size.
  f.executor.kill(r2.pid, 9);
  f.coord->tick();
  const RunRecord r3 = f.run(f.stage().current_run);
  CHECK(r3.attempt == 3);
  CHECK(r3.ranks == 4);
  CHECK(f.executor.launches.back().ranks == 4);
}

TEST_CASE("cancel: SIGUSR1 to the job, the checkpointed run ends cancelled, is not retried, and resumes") {
  Fixture f;
  const RunRecord r = f.submit("exp1", /*max_attempts=*/3);
  f.hello(r);
  const std::vector<std::string> signalled = f.coord->cancel("exp1");
  CHECK(signalled == std::vector<std::string>{r.id});
  REQUIRE(f.executor.signals.size() == 1);
  CHECK(f.executor.signals[0] == std::make_pair(r.pid, SIGUSR1));
  CHECK_THROWS_AS(f.coord->cancel("exp1"), ConflictError);  // already cancelling: nothing more to do
  // The worker checkpoints and reports preemption; the run is cancelled, not preempted and retried.
  f.send(Type::Preempted, r, {{"step", 9}, {"checkpoint", "/ckpt/step-0000009"}});
  f.exit_job(f.run(r.id), 0);
  CHECK(f.run(r.id).state == RunState::Cancelled);
  CHECK(f.run(r.id).error == "cancelled by request");
  CHECK(f.stage().state == RunState::Cancelled);
  CHECK(f.experiment().state == RunState::Cancelled);
  CHECK(f.executor.launches.size() == 1);
  CHECK_THROWS_AS(f.coord->cancel("exp1"), ConflictError);  // nothing left to cancel
  CHECK_THROWS_AS(f.coord->cancel("nope"), NotFoundError);
  // resume continues it as a new attempt.
  CHECK(f.coord->resume("exp1") == "exp1.train.a2");
  CHECK(f.executor.launches.size() == 2);
}

TEST_CASE("cancel: a job still there after the grace period gets SIGKILL, once") {
  Fixture f;
  const RunRecord r = f.submit();
  f.hello(r);
  f.coord->cancel("exp1", "train");
  f.clock += 59;
  f.coord->tick();
  CHECK(f.executor.signals.size() == 1);  // within the grace period: SIGUSR1 only
  f.clock += 2;
  f.coord->tick();
  f.coord->tick();
  REQUIRE(f.executor.signals.size() == 2);
  CHECK(f.executor.signals[1] == std::make_pair(r.pid, SIGKILL));
  f.executor.kill(r.pid, SIGKILL);
  f.coord->tick();
  CHECK(f.run(r.id).state == RunState::Cancelled);
  CHECK(f.experiment().state == RunState::Cancelled);
  CHECK_THROWS_WITH_AS(f.coord->cancel("exp1", "tran"), doctest::Contains("did you mean 'train'"), NotFoundError);
}

TEST_CASE("a divergence report ends the run diverged, the experiment too, without a retry") {
  Fixture f;
  const RunRecord r = f.submit("exp1", /*max_attempts=*/3);
  f.hello(r);
  f.send(Type::Failed, r,
         {{"step", 5}, {"rank", 0}, {"message", "the training diverged at step 5"}, {"diverged", true}});
  f.exit_job(f.run(r.id), 1);  // the ranks abort together
  CHECK(f.run(r.id).state == RunState::Diverged);
  CHECK(f.run(r.id).error == "the training diverged at step 5");
  CHECK(f.stage().state == RunState::Diverged);
  CHECK(f.experiment().state == RunState::Diverged);
  CHECK(f.executor.launches.size() == 1);  // not retried
}

namespace {
// A coordinator that launches nothing: its stages wait for pull workers' claims.
std::unique_ptr<Coordinator> pull_only(Fixture& f) {
  CoordinatorOptions o;
  o.runs_root = f.dir.path() + "/runs";
  o.zmq_endpoint = "tcp://127.0.0.1:5999";
  o.clock = [&f] { return f.clock; };
  o.launch_jobs = false;
  return std::make_unique<Coordinator>(*f.store, f.executor, o);
}
Message claim(Coordinator& c, std::int64_t world) {
  return c.handle(protocol::make(Type::Claim, "", "", {{"world_size", world}, {"host", "node7"}, {"pid", 99}}));
}
}  // namespace

TEST_CASE("pull mode: a claim gets the next ready stage of its size, a report ends the run, silence loses it") {
  Fixture f;
  f.coord = pull_only(f);
  Submission s;
  s.spec = small_spec("two", 20, /*ranks=*/2, /*max_attempts=*/2);
  CHECK(f.coord->submit(s).runs.empty());  // nothing launched
  s.spec = small_spec("one", 20, /*ranks=*/1, 1);
  f.coord->submit(s);
  f.coord->tick();
  CHECK(f.executor.launches.empty());

  const Message none = claim(*f.coord, 4);  // no stage of 4 ranks
  REQUIRE(none.type == Type::Assign);
  CHECK(none.body.at("run") == "");
  CHECK(none.body.at("pending") == 0);

  const Message got = claim(*f.coord, 2);
  REQUIRE(got.type == Type::Assign);
  CHECK(got.body.at("run") == "two.train.a1");
  RunRecord r = f.run("two.train.a1");
  CHECK(got.body.at("token") == r.token);
  CHECK(r.pid == 0);
  CHECK(r.job == "pull:node7 pid 99");
  CHECK(claim(*f.coord, 2).body.at("run") == "");  // taken: the next claim of that size gets nothing
  REQUIRE(f.hello(r).type == Type::Spec);
  CHECK(f.run(r.id).state == RunState::Running);
  f.send(Type::Done, r, {{"step", 20}, {"summary", json::object()}});
  CHECK(f.run(r.id).state == RunState::Done);  // no job exit to wait for
  CHECK(f.experiment("two").state == RunState::Done);

  // A pull worker that falls silent: lost after the heartbeat timeout, and retried by the next claim.
  const Message one = claim(*f.coord, 1);
  REQUIRE(one.body.at("run") == "one.train.a1");
  f.hello(f.run("one.train.a1"));
  for (int i = 0; i < 31; ++i) {  // ticks every 10 s of the fake clock
    f.clock += 10;
    f.coord->tick();
  }
  CHECK(f.run("one.train.a1").state == RunState::Lost);
  CHECK(f.run("one.train.a1").error.find("pull worker (node7 pid 99) sent nothing") != std::string::npos);
  CHECK(f.experiment("one").state == RunState::Lost);  // max_attempts = 1: not retried
  CHECK(f.executor.launches.empty());
}
