// Staged experiments in the coordinator: stages form a DAG (independent ones launch together, a
// child when its parent is done), the first run of a child records its lineage (coordinator/lineage.h)
// and tells its worker the bundle, the manifest's SHA-256 and the schedule reference; parents in
// other experiments and bundle paths work the same way. Fake executor, real store, real files.
#include <doctest/doctest.h>

#include <memory>

#include "coordinator/api_json.h"
#include "coordinator/coordinator.h"
#include "shared/core/safe_file.h"
#include "shared/core/sha256.h"
#include "tests/coordinator/test_support.h"

using namespace ldm;
using namespace ldm::coord;
using namespace ldm::coord::testing;
using nlohmann::json;
using protocol::Message;
using protocol::Type;

namespace {

// pre (16 px) -> fine (32 px, from pre); scratch (32 px) on its own.
ExperimentSpec staged_spec(const std::string& name) {
  ExperimentSpec spec;
  spec.name = name;
  StageSpec pre;
  pre.name = "pre";
  pre.resolution = 16;
  pre.steps = 20;
  pre.batch_size = 4;
  StageSpec fine = pre;
  fine.name = "fine";
  fine.resolution = 32;
  fine.steps = 10;
  fine.init_from = "pre";
  StageSpec scratch = fine;
  scratch.name = "scratch";
  scratch.init_from = "";
  spec.stages = {pre, fine, scratch};
  return spec;
}

// Its first stage only: "pre" (16 px, 20 steps).
ExperimentSpec one_stage(const std::string& name) {
  ExperimentSpec spec = staged_spec(name);
  spec.stages.resize(1);
  return spec;
}

// An experiment whose one stage "fine" (32 px) starts from `init_from`.
ExperimentSpec child_of(const std::string& name, const std::string& init_from) {
  ExperimentSpec spec = one_stage(name);
  spec.stages[0].name = "fine";
  spec.stages[0].resolution = 32;
  spec.stages[0].steps = 5;
  spec.stages[0].init_from = init_from;
  return spec;
}

// An evaluation stage "fid" of stage `after` at `at_steps`.
StageSpec eval_of(const std::string& after, std::vector<std::int64_t> at_steps) {
  StageSpec fid;
  fid.name = "fid";
  fid.kind = "eval";
  fid.after = after;
  fid.eval.at_steps = std::move(at_steps);
  return fid;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<ExperimentStore> store = ExperimentStore::open(dir.path() + "/db");
  FakeExecutor executor;
  double clock = 1000.0;
  std::unique_ptr<Coordinator> coord;

  explicit Fixture(int slots = 0) {
    CoordinatorOptions o;
    o.runs_root = dir.path() + "/runs";
    o.zmq_endpoint = "tcp://127.0.0.1:5999";
    o.clock = [this] { return clock; };
    o.slots = slots;
    coord = std::make_unique<Coordinator>(*store, executor, o);
  }

  SubmitResult submit(const ExperimentSpec& spec) {
    Submission s;
    s.source = dir.path() + "/" + spec.name + ".toml";
    s.spec = spec_to_json(spec);
    return coord->submit(s);
  }
  RunRecord run(const std::string& id) const {
    auto r = store->get_run(id);
    REQUIRE(r);
    return *r;
  }
  RunState stage_state(const std::string& e, const std::string& s) const { return store->get_stage(e, s)->state; }
  RunState experiment_state(const std::string& e) const { return store->get_experiment(e)->state; }
  Message send(Type type, const RunRecord& r, json body) {
    return coord->handle(protocol::make(type, r.id, r.token, std::move(body)));
  }
  Message hello(const RunRecord& r) {
    return send(Type::Hello, r, {{"rank", 0}, {"world_size", r.ranks}, {"host", "h"}, {"pid", 7}});
  }
  // A checkpoint bundle as a worker leaves it: manifest.json (and `latest`) in `checkpoints`.
  static std::string write_bundle(const std::string& checkpoints, const ExperimentSpec& spec, int stage_index,
                                  std::int64_t step) {
    const std::string bundle =
        checkpoints + "/step-" + std::string(7 - std::to_string(step).size(), '0') + std::to_string(step);
    make_dirs(bundle);
    write_file_atomic(bundle + "/manifest.json",
                      json{{"step", step}, {"spec", spec_to_json(spec)}, {"stage_index", stage_index}}.dump(2));
    write_file_atomic(checkpoints + "/latest", bundle.substr(bundle.rfind('/') + 1) + "\n");
    return bundle;
  }
  // The run trains to the end: hello, its final bundle, done, a clean exit.
  void finish(const std::string& id, const ExperimentSpec& spec, int stage_index, std::int64_t steps) {
    const RunRecord r = run(id);
    hello(r);
    const std::string bundle = write_bundle(r.run_dir + "/checkpoints", spec, stage_index, steps);
    send(Type::Done, r, {{"step", steps}, {"summary", {{"checkpoint", bundle}}}});
    executor.exit(r.pid, 0);
    coord->tick();
  }
  void fail(const std::string& id) {
    const RunRecord r = run(id);
    hello(r);
    send(Type::Failed, r, {{"step", 3}, {"rank", 0}, {"message", "rank 0: error at step 3: bad data"}});
    executor.exit(r.pid, 1);
    coord->tick();
  }
};

}  // namespace

TEST_CASE("independent stages launch together; a child launches when its parent is done, with its lineage") {
  Fixture f;
  const ExperimentSpec spec = staged_spec("exp");
  const SubmitResult submitted = f.submit(spec);
  CHECK(submitted.runs == std::vector<std::string>{"exp.pre.a1", "exp.scratch.a1"});
  CHECK(f.stage_state("exp", "fine") == RunState::Pending);
  f.coord->tick();
  CHECK(f.executor.launches.size() == 2);  // "fine" waits for "pre"
  CHECK(f.run("exp.scratch.a1").init.empty());

  f.finish("exp.pre.a1", spec, 0, 20);
  REQUIRE(f.executor.launches.size() == 3);
  CHECK(f.executor.launches[2].run_id == "exp.fine.a1");
  CHECK(f.experiment_state("exp") == RunState::Running);

  const RunRecord fine = f.run("exp.fine.a1");
  const std::string bundle = f.dir.path() + "/runs/exp/pre/checkpoints/step-0000020";
  CHECK(fine.init.at("from") == "pre");
  CHECK(fine.init.at("run") == "exp.pre.a1");
  CHECK(fine.init.at("bundle") == bundle);
  CHECK(fine.init.at("step") == 20);
  CHECK(fine.init.at("manifest_sha256") == sha256_file_hex(bundle + "/manifest.json"));
  const json& t = fine.init.at("transfer");
  CHECK(t.at("resolution") == json{{"from", 16}, {"to", 32}});
  CHECK(t.at("weights") == "ema");
  CHECK(t.at("optimizer") == "reset");
  CHECK(t.at("reference_resolution") == 16);
  CHECK(t.at("shift") == 2.0);
  CHECK(t.at("pos_embed_resampling") == "interpolate");

  // The worker is told where to start from and how the schedule scales.
  const Message reply = f.hello(fine);
  REQUIRE(reply.type == Type::Spec);
  CHECK(reply.body.at("init").at("bundle") == bundle);
  CHECK(reply.body.at("init").at("manifest_sha256") == fine.init.at("manifest_sha256"));
  CHECK(reply.body.at("init").at("weights") == "ema");
  CHECK(reply.body.at("reference_resolution") == 16);
  CHECK(reply.body.at("stage_index") == 1);
  // A stage from scratch is told its own reference (the shift of scratch is 1 unless the file says).
  CHECK(f.hello(f.run("exp.scratch.a1")).body.at("reference_resolution") == 32);

  f.finish("exp.scratch.a1", spec, 2, 10);
  CHECK(f.experiment_state("exp") == RunState::Running);  // "fine" still runs
  f.finish("exp.fine.a1", spec, 1, 10);
  CHECK(f.experiment_state("exp") == RunState::Done);
  // Status (the API's JSON) shows the lineage per stage.
  const auto view = f.coord->experiment("exp");
  REQUIRE(view);
  const json api = experiment_to_api_json(*view);
  for (const json& stage : api.at("stages")) {
    CAPTURE(stage.at("name"));
    if (stage.at("name") == "fine") CHECK(stage.at("lineage") == fine.init);
    else CHECK(stage.at("lineage") == json::object());
  }
}

TEST_CASE("a failed parent stops its children until it is resumed; its siblings finish first") {
  Fixture f;
  const ExperimentSpec spec = staged_spec("exp");
  f.submit(spec);
  f.fail("exp.pre.a1");
  CHECK(f.stage_state("exp", "pre") == RunState::Failed);
  CHECK(f.stage_state("exp", "fine") == RunState::Pending);
  CHECK(f.experiment_state("exp") == RunState::Running);  // "scratch" is still running
  f.finish("exp.scratch.a1", spec, 2, 10);
  CHECK(f.experiment_state("exp") == RunState::Failed);
  CHECK(f.store->get_experiment("exp")->error.find("bad data") != std::string::npos);
  CHECK(f.executor.launches.size() == 2);

  CHECK(f.coord->resume("exp") == "exp.pre.a2");
  CHECK(f.experiment_state("exp") == RunState::Running);
  f.finish("exp.pre.a2", spec, 0, 20);
  REQUIRE(f.executor.launches.size() == 4);
  CHECK(f.executor.launches[3].run_id == "exp.fine.a1");
  CHECK(f.run("exp.fine.a1").init.at("run") == "exp.pre.a2");
  f.finish("exp.fine.a1", spec, 1, 10);
  CHECK(f.experiment_state("exp") == RunState::Done);
}

TEST_CASE("a later attempt of a child keeps the lineage of its first") {
  Fixture f;
  ExperimentSpec spec = staged_spec("exp");
  spec.stages[1].max_attempts = 2;
  f.submit(spec);
  f.finish("exp.pre.a1", spec, 0, 20);
  const RunRecord first = f.run("exp.fine.a1");
  f.hello(first);
  f.executor.kill(first.pid, 9);  // a crash: retried
  f.coord->tick();
  f.coord->tick();
  const RunRecord second = f.run("exp.fine.a2");
  CHECK(second.init == first.init);
  CHECK_FALSE(second.init.empty());
}

TEST_CASE("a parent in another experiment: refused at submit when unknown, waited for, then recorded") {
  Fixture f;
  const ExperimentSpec child = child_of("child", "base:pre");
  try {
    f.submit(child);
    FAIL("submitted with an unknown parent");
  } catch (const SpecError& e) {
    CHECK(e.key_path() == "stage.0.init_from");
    CHECK(std::string(e.what()).find("experiment base has no stage 'pre' (no such experiment)") != std::string::npos);
  }

  ExperimentSpec base = one_stage("base");
  f.submit(base);
  CHECK(f.submit(child).runs.empty());  // waits for base:pre
  CHECK(f.experiment_state("child") == RunState::Pending);
  f.finish("base.pre.a1", base, 0, 20);
  f.coord->tick();
  const RunRecord r = f.run("child.fine.a1");
  CHECK(r.init.at("run") == "base.pre.a1");
  CHECK(r.init.at("transfer").at("reference_resolution") == 16);
  CHECK(r.init.at("transfer").at("shift") == 2.0);
}

TEST_CASE("a bundle path is relative to the experiment file; a missing one is refused at submit") {
  Fixture f;
  ExperimentSpec parent = one_stage("elsewhere");
  Fixture::write_bundle(f.dir.path() + "/ckpts", parent, 0, 7);
  ExperimentSpec child = one_stage("child");
  child.stages[0].resolution = 32;
  child.stages[0].init_from = "./ckpts";  // a checkpoints directory: its `latest`
  const SubmitResult r = f.submit(child);
  REQUIRE(r.runs.size() == 1);
  const RunRecord run = f.run(r.runs[0]);
  CHECK(run.init.at("run") == "");
  CHECK(run.init.at("step") == 7);
  CHECK(run.init.at("bundle") == f.dir.path() + "/ckpts/step-0000007");

  child.name = "child2";
  child.stages[0].init_from = "./nowhere";
  CHECK_THROWS_WITH_AS(f.submit(child), doctest::Contains("is not a checkpoint bundle"), SpecError);
}

TEST_CASE("a parent in another experiment that stopped: refused at submit, or the waiting stage fails, then resumes") {
  Fixture f;
  ExperimentSpec base = one_stage("base");
  const ExperimentSpec child = child_of("child", "base:pre");

  f.submit(base);
  CHECK(f.submit(child).runs.empty());  // base:pre is running: the child waits
  f.fail("base.pre.a1");                // ... and base stops: the child's stage can never start
  f.coord->tick();
  CHECK(f.stage_state("child", "fine") == RunState::Failed);
  CHECK(f.experiment_state("child") == RunState::Failed);
  CHECK(f.store->get_experiment("child")->error.find("base is failed") != std::string::npos);

  // A new submission against the stopped parent is refused outright.
  const ExperimentSpec again = child_of("child2", "base:pre");
  CHECK_THROWS_WITH_AS(f.submit(again), doctest::Contains("stage 'pre' of experiment base is failed"), SpecError);

  // Resuming the child while the parent is still stopped says why; once the parent runs again
  // the child waits (no run yet), and starts when it is done.
  CHECK_THROWS_WITH_AS(f.coord->resume("child"), doctest::Contains("can start"), ConflictError);
  CHECK(f.coord->resume("base") == "base.pre.a2");
  CHECK(f.coord->resume("child") == "");
  CHECK(f.experiment_state("child") == RunState::Running);
  f.finish("base.pre.a2", base, 0, 20);
  f.coord->tick();
  CHECK(f.run("child.fine.a1").init.at("run") == "base.pre.a2");
}

TEST_CASE("an evaluation stage launches after its training stage with the checkpoints it evaluates") {
  Fixture f;
  ExperimentSpec spec = one_stage("exp");
  spec.stages.push_back(eval_of("pre", {0, 20}));
  CHECK(f.submit(spec).runs == std::vector<std::string>{"exp.pre.a1"});
  CHECK(f.store->get_stage("exp", "fid")->total_steps == 20);  // progress counts evaluated steps
  const std::string step0 = Fixture::write_bundle(f.dir.path() + "/runs/exp/pre/checkpoints", spec, 0, 0);
  f.finish("exp.pre.a1", spec, 0, 20);
  const RunRecord r = f.run("exp.fid.a1");
  REQUIRE(r.init.at("bundles").size() == 2);
  CHECK(r.init["bundles"][0].at("step") == 0);
  CHECK(r.init["bundles"][0].at("bundle") == step0);
  CHECK(r.init["bundles"][0].at("manifest_sha256") == sha256_file_hex(step0 + "/manifest.json"));
  CHECK(r.init["bundles"][1].at("step") == 20);
  CHECK(f.hello(r).body.at("init").at("bundles") == r.init.at("bundles"));
}

TEST_CASE("an evaluation stage whose step has no checkpoint fails, naming the step") {
  Fixture f;
  ExperimentSpec spec = one_stage("exp");
  spec.stages[0].checkpoint_every = 10;
  spec.stages.push_back(eval_of("pre", {10}));
  f.submit(spec);
  f.finish("exp.pre.a1", spec, 0, 20);  // only step 20 was written here
  CHECK(f.stage_state("exp", "fid") == RunState::Failed);
  CHECK(f.run("exp.fid.a1").error.find("left no checkpoint at step 10") != std::string::npos);
  CHECK(f.experiment_state("exp") == RunState::Failed);
}

TEST_CASE("an evaluation stage's files are relative to the experiment file and must exist at submit") {
  Fixture f;
  ExperimentSpec spec = one_stage("exp");
  spec.stages.push_back(eval_of("pre", {}));
  spec.stages.back().eval.reference = "stats/ref.npz";
  const std::string missing = f.dir.path() + "/stats/ref.npz does not exist";
  CHECK_THROWS_WITH_AS(f.submit(spec), doctest::Contains(missing.c_str()), SpecError);
  make_dirs(f.dir.path() + "/stats");
  write_file_atomic(f.dir.path() + "/stats/ref.npz", "x");
  f.submit(spec);
  f.finish("exp.pre.a1", spec, 0, 20);
  CHECK(f.run("exp.fid.a1").init.at("paths") == json{{"reference", f.dir.path() + "/stats/ref.npz"}});
}

TEST_CASE("slots: ready stages start first come, first served while ranks x threads fit; the rest wait") {
  Fixture f(/*slots=*/2);
  ExperimentSpec a = staged_spec("a");  // pre (1 slot) and scratch (1 slot) start; fine waits for pre
  ExperimentSpec b = one_stage("b");
  b.stages[0].ranks = 2;  // 2 slots
  b.stages[0].batch_size = 4;
  ExperimentSpec c = one_stage("c");  // 1 slot, submitted after b
  CHECK(f.submit(a).runs.size() == 2);
  f.clock += 1;
  CHECK(f.submit(b).runs.empty());  // 2 of 2 slots in use
  const auto view = f.coord->experiment("b");
  REQUIRE(view);
  CHECK(view->waiting.at("pre") == "slots: needs 2, 2 of 2 in use");
  CHECK(view->waiting.size() == 1);
  f.clock += 1;
  CHECK(f.submit(c).runs.empty());  // fits in nothing, and b was first anyway
  // a's scratch ends: one slot free, but b (2 slots) is first in line, so c still waits.
  f.finish("a.scratch.a1", a, 2, 10);
  CHECK(f.executor.launches.size() == 2);
  CHECK(f.coord->experiment("a")->waiting.at("fine") == "waits for stage 'pre' of experiment a");
  // a's pre ends: fine (a, submitted first) takes a slot before b? b needs 2: a.fine goes first in
  // submission order, b keeps waiting, and c (1 slot) waits behind b.
  f.finish("a.pre.a1", a, 0, 20);
  REQUIRE(f.executor.launches.size() == 3);
  CHECK(f.executor.launches[2].run_id == "a.fine.a1");
  CHECK(f.coord->experiment("c")->waiting.at("pre").rfind("slots:", 0) == 0);
  f.finish("a.fine.a1", a, 1, 10);
  REQUIRE(f.executor.launches.size() == 4);
  CHECK(f.executor.launches[3].run_id == "b.pre.a1");
  f.finish("b.pre.a1", b, 0, 20);
  REQUIRE(f.executor.launches.size() == 5);
  CHECK(f.executor.launches[4].run_id == "c.pre.a1");
}

TEST_CASE("slots: a higher-priority experiment's stages take free slots first; equal priorities stay in order") {
  Fixture f(/*slots=*/1);
  const auto submit = [&](const std::string& name, int priority) {
    Submission s;
    s.source = f.dir.path() + "/" + name + ".toml";
    s.spec = spec_to_json(one_stage(name));
    s.priority = priority;
    f.clock += 1;
    return f.coord->submit(s);
  };
  CHECK(submit("first", 0).runs.size() == 1);
  CHECK(submit("low", 0).runs.empty());
  CHECK(submit("high", 5).runs.empty());
  CHECK(submit("also-high", 5).runs.empty());
  CHECK(f.store->get_experiment("high")->priority == 5);
  CHECK(f.coord->experiment("low")->waiting.at("pre") == "slots: needs 1, 1 of 1 in use");
  // A free slot goes to the highest priority, and among equals to the first submitted.
  f.finish("first.pre.a1", one_stage("first"), 0, 20);
  REQUIRE(f.executor.launches.size() == 2);
  CHECK(f.executor.launches[1].run_id == "high.pre.a1");
  f.finish("high.pre.a1", one_stage("high"), 0, 20);
  REQUIRE(f.executor.launches.size() == 3);
  CHECK(f.executor.launches[2].run_id == "also-high.pre.a1");
  f.finish("also-high.pre.a1", one_stage("also-high"), 0, 20);
  REQUIRE(f.executor.launches.size() == 4);
  CHECK(f.executor.launches[3].run_id == "low.pre.a1");
}

TEST_CASE("cancel: queued stages and stages waiting for their parent are cancelled at once; resume restarts them") {
  Fixture f(/*slots=*/1);
  const ExperimentSpec a = one_stage("a");
  f.submit(a);
  f.clock += 1;
  const ExperimentSpec b = staged_spec("b");
  CHECK(f.submit(b).runs.empty());      // queued for the slot a holds
  CHECK(f.coord->cancel("b").empty());  // nothing ran: nothing to signal
  for (const char* stage : {"pre", "fine", "scratch"}) CHECK(f.stage_state("b", stage) == RunState::Cancelled);
  CHECK(f.experiment_state("b") == RunState::Cancelled);
  CHECK(f.coord->experiment("b")->waiting.empty());
  f.finish("a.pre.a1", a, 0, 20);
  CHECK(f.executor.launches.size() == 1);  // b's stages never take the free slot
  CHECK(f.executor.signals.empty());
  CHECK(f.coord->resume("b") == "b.pre.a1");
}

TEST_CASE("cancel --stage: a stage waiting for its parent is cancelled, the others finish, resume runs it") {
  Fixture f;
  const ExperimentSpec e = staged_spec("e");
  CHECK(f.submit(e).runs.size() == 2);  // pre and scratch
  CHECK(f.coord->cancel("e", "fine").empty());
  CHECK(f.stage_state("e", "fine") == RunState::Cancelled);
  CHECK(f.experiment_state("e") == RunState::Running);
  f.finish("e.pre.a1", e, 0, 20);
  f.finish("e.scratch.a1", e, 2, 10);
  CHECK(f.executor.launches.size() == 2);  // fine never started
  CHECK(f.experiment_state("e") == RunState::Cancelled);
  CHECK(f.coord->resume("e") == "e.fine.a1");
  CHECK(f.run("e.fine.a1").init.at("from") == "pre");
}

TEST_CASE("slots: a stage larger than every slot runs alone, and only then") {
  Fixture f(/*slots=*/1);
  ExperimentSpec big = one_stage("big");
  big.stages[0].ranks = 2;
  big.stages[0].batch_size = 4;
  CHECK(f.submit(big).runs.size() == 1);  // nothing else runs: it starts, oversubscribed
  ExperimentSpec small = one_stage("small");
  f.clock += 1;
  CHECK(f.submit(small).runs.empty());
  f.finish("big.pre.a1", big, 0, 20);
  CHECK(f.executor.launches.back().run_id == "small.pre.a1");
}

namespace {
SweepSubmission two_cell_sweep(const std::string& name) {
  SweepSubmission s;
  s.source = "/x/sweep.toml";
  s.name = name;
  s.axes = {"seed"};
  for (int seed : {1, 2}) {
    ExperimentSpec spec = one_stage(name + "-s" + std::to_string(seed));
    spec.seed = seed;
    s.cells.push_back({spec.name, {{"seed", seed}}, spec_to_json(spec)});
  }
  return s;
}
}  // namespace

TEST_CASE("sweeps: all cells stored at once and queued in sweep order; cancel, resume and delete act on every cell") {
  Fixture f(/*slots=*/1);
  const SweepSubmitResult r = f.coord->submit_sweep(two_cell_sweep("sw"));
  CHECK(r.experiments == std::vector<std::string>{"sw-s1", "sw-s2"});
  CHECK(r.runs == std::vector<std::string>{"sw-s1.pre.a1"});  // one slot: the second cell queues
  const auto view = f.coord->sweep("sw");
  REQUIRE(view);
  REQUIRE(view->cells.size() == 2);
  CHECK(view->sweep.cells.at(1).at("values").at("seed") == 2);
  CHECK(view->cells[1].waiting.at("pre").rfind("slots:", 0) == 0);
  CHECK_THROWS_AS(f.coord->submit_sweep(two_cell_sweep("sw")), NameTakenError);
  CHECK_THROWS_AS(f.coord->remove("sw", false), ConflictError);  // still running
  CHECK_THROWS_WITH_AS(f.coord->remove("sw-s2", false), doctest::Contains("is a cell of sweep sw"), ConflictError);
  CHECK(f.coord->cancel_sweep("sw") == std::vector<std::string>{"sw-s1.pre.a1"});
  CHECK(f.experiment_state("sw-s2") == RunState::Cancelled);  // never started
  f.send(Type::Preempted, f.run("sw-s1.pre.a1"), {{"step", 3}, {"checkpoint", "/c"}});
  f.executor.exit(f.run("sw-s1.pre.a1").pid, 0);
  f.coord->tick();
  CHECK(f.experiment_state("sw-s1") == RunState::Cancelled);
  CHECK_THROWS_AS(f.coord->cancel_sweep("sw"), ConflictError);
  CHECK(f.coord->resume_sweep("sw") == std::vector<std::string>{"sw-s1", "sw-s2"});
  CHECK(f.executor.launches.back().run_id == "sw-s1.pre.a2");
  f.finish("sw-s1.pre.a2", one_stage("sw-s1"), 0, 20);
  f.finish("sw-s2.pre.a1", one_stage("sw-s2"), 0, 20);
  CHECK_THROWS_AS(f.coord->resume_sweep("sw"), ConflictError);  // every cell done
  f.coord->remove("sw", /*files=*/true);
  CHECK(!f.coord->sweep("sw"));
  CHECK(!f.store->get_experiment("sw-s1"));
  CHECK(!path_exists(f.dir.path() + "/runs/sw-s1"));
  CHECK_THROWS_AS(f.coord->remove("sw", false), NotFoundError);
}

TEST_CASE("sweeps: a bad cell rejects the whole sweep, naming the cell, and nothing is stored") {
  Fixture f;
  SweepSubmission s = two_cell_sweep("bad");
  s.cells[1].spec["stage"][0]["steps"] = -5;
  CHECK_THROWS_WITH_AS(f.coord->submit_sweep(s), doctest::Contains("sweep cell bad-s2"), SpecError);
  CHECK(!f.coord->sweep("bad"));
  CHECK(!f.store->get_experiment("bad-s1"));
  CHECK(f.executor.launches.empty());
  Submission one;
  one.spec = spec_to_json(one_stage("taken"));
  f.coord->submit(one);
  CHECK_THROWS_AS(f.coord->submit_sweep(two_cell_sweep("taken")), NameTakenError);  // an experiment's name
}
