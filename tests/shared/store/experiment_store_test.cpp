#include "shared/store/experiment_store.h"

#include "shared/core/spec.h"
#include "shared/core/spec_json.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <rocksdb/db.h>

#include "shared/core/error.h"
#include "tests/support/source_path.h"

using namespace ldm;

namespace {

// A fresh directory per test, removed afterwards; the store lives in <dir>/db.
struct TempDir {
  std::string dir;
  TempDir() {
    char tmpl[] = "/tmp/ldm-store-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(dir); }
  std::string db() const { return dir + "/db"; }
};

// Writes key=value through a raw RocksDB handle, bypassing the store (to fake old databases).
// The stored bytes of `key`, read past the store's own code (read-only open).
std::string raw_get(const std::string& path, const std::string& key) {
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), path, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  REQUIRE(db->Get(rocksdb::ReadOptions(), key, &value).ok());
  return value;
}

void raw_put(const std::string& path, const std::string& key, const std::string& value) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(options, path, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  REQUIRE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  REQUIRE(db->Close().ok());
}

std::string open_error(const std::string& path) {
  try {
    ExperimentStore::open(path);
  } catch (const StoreError& e) {
    return e.what();
  }
  FAIL("open succeeded but should have thrown StoreError");
  return "";
}

ExperimentRecord make_experiment(const std::string& name) {
  ExperimentRecord e;
  e.name = name;
  e.source = "experiments/" + name + ".toml";
  e.spec = {{"seed", 7}, {"stages", {"pretrain", "finetune"}}};
  e.spec_hash = "abc123";
  e.state = RunState::Running;
  e.submitted_at = 1700000000.25;
  e.finished_at = 1700000100.5;
  e.error = "rank 1 step 3: nan";
  return e;
}

StageRecord make_stage(const std::string& experiment, const std::string& name, int index) {
  StageRecord s;
  s.experiment = experiment;
  s.name = name;
  s.index = index;
  s.state = RunState::Preempted;
  s.attempts = 3;
  s.current_run = experiment + "." + name + ".a3";
  s.step = 1234;
  s.total_steps = 5000000000LL;  // beyond 32 bits
  return s;
}

RunRecord make_run(const std::string& experiment, const std::string& stage, int attempt) {
  RunRecord r;
  r.id = experiment + "." + stage + ".a" + std::to_string(attempt);
  r.experiment = experiment;
  r.stage = stage;
  r.attempt = attempt;
  r.state = RunState::Running;
  r.token = "secret-token";
  r.run_dir = "runs/" + experiment + "/" + stage;
  r.ranks = 4;
  r.pid = 4242;
  r.step = 99;
  r.last_loss = 0.125;
  r.samples_per_s = 812.5;
  r.last_seq = 1ULL << 40;
  r.started_at = 1700000001.5;
  r.finished_at = 1700000002.5;
  r.last_heartbeat = 1700000003.5;
  r.error = "rank 0 step 99: out of memory";
  r.checkpoint = "runs/x/checkpoints/step-0000099";
  return r;
}

MetricPoint point(const std::string& metric, std::int64_t step, double value, std::uint32_t attempt = 1) {
  return MetricPoint{metric, step, value, attempt, 1700000000.0 + static_cast<double>(step)};
}

// (metric, step) of each point, for compact comparisons.
using Keys = std::vector<std::pair<std::string, std::int64_t>>;
Keys keys_of(const std::vector<MetricPoint>& v) {
  Keys out;
  for (const auto& p : v) out.emplace_back(p.metric, p.step);
  return out;
}

}  // namespace

TEST_CASE("open writes schema_version into a new store and accepts it on reopen") {
  TempDir t;
  {
    auto store = ExperimentStore::open(t.db());
    CHECK(store->path() == t.db());
    CHECK(store->schema_version() == ExperimentStore::kSchemaVersion);
  }
  auto store = ExperimentStore::open(t.db());
  CHECK(store->schema_version() == ExperimentStore::kSchemaVersion);
}

TEST_CASE("open rejects a store with a newer schema_version, naming the path and both versions") {
  TempDir t;
  ExperimentStore::open(t.db());
  raw_put(t.db(), "V", "99");
  const std::string msg = open_error(t.db());
  CHECK(msg.find(t.db()) != std::string::npos);
  CHECK(msg.find("schema_version 99") != std::string::npos);
  CHECK(msg.find("schema_version " + std::to_string(ExperimentStore::kSchemaVersion)) != std::string::npos);
}

TEST_CASE(
    "a schema_version 1 store (tests/fixtures/store-v1) opens migrated: fault fields gone, everything else kept") {
  // Written by the store of commit ef0a1db: experiments "with-fault" (fault "abort@step:5,rank:1")
  // and "plain", each with a done stage "train", its run and three loss points.
  TempDir t;
  std::filesystem::copy(ldm::testing::source_path("tests/fixtures/store-v1"), t.db());
  const auto raw_value = [&](const std::string& key) { return raw_get(t.db(), key); };
  REQUIRE(raw_value("V") == "1");
  REQUIRE(raw_value(store_keys::experiment_key("with-fault")).find("\"fault\"") != std::string::npos);
  {
    auto store = ExperimentStore::open(t.db());
    CHECK(store->schema_version() == ExperimentStore::kSchemaVersion);  // through 2 to the newest
    const auto names = store->list_experiments();
    REQUIRE(names.size() == 2);
    for (const char* name : {"with-fault", "plain"}) {
      CAPTURE(name);
      const auto e = store->get_experiment(name);
      REQUIRE(e);
      CHECK(e->state == RunState::Done);
      CHECK(e->spec_hash == "0123456789abcdef");
      CHECK(store->list_stages(name).size() == 1);
      CHECK(store->get_run(std::string(name) + ".train.a1")->last_loss == 0.5);
      CHECK(store->metrics(name, "train").size() == 3);
    }
  }
  // The stored JSON itself lost the field (the name still holds the word), and a second open finds
  // the newest version and changes nothing.
  CHECK(raw_value(store_keys::experiment_key("with-fault")).find("\"fault\"") == std::string::npos);
  CHECK(raw_value(store_keys::experiment_key("with-fault")).find("with-fault") != std::string::npos);
  CHECK(raw_value("V") == std::to_string(ExperimentStore::kSchemaVersion));
  CHECK(ExperimentStore::open(t.db())->list_experiments().size() == 2);
}

TEST_CASE("a schema_version 2 store (tests/fixtures/store-v2) opens migrated: every run gets an empty lineage") {
  // Written by the store of commit 877a843 (`ldm-coord run experiments/tiny/dit-1rank-short.toml
  // --name plain`): experiment "plain", done, one stage "train" of 8 steps, run "plain.train.a1".
  TempDir t;
  std::filesystem::copy(ldm::testing::source_path("tests/fixtures/store-v2"), t.db());
  const auto raw_value = [&](const std::string& key) { return raw_get(t.db(), key); };
  REQUIRE(raw_value("V") == "2");
  REQUIRE(raw_value(store_keys::run_key("plain.train.a1")).find("\"init\"") == std::string::npos);
  {
    auto store = ExperimentStore::open(t.db());
    CHECK(store->schema_version() == ExperimentStore::kSchemaVersion);  // through 3 to the newest
    const auto e = store->get_experiment("plain");
    REQUIRE(e);
    CHECK(e->state == RunState::Done);
    CHECK(ldm::spec_hash(ldm::spec_from_json(e->spec)) == e->spec_hash);  // the spec reads back, same hash
    const auto run = store->get_run("plain.train.a1");
    REQUIRE(run);
    CHECK(run->state == RunState::Done);
    CHECK(run->step == 8);
    CHECK(run->init.is_object());
    CHECK(run->init.empty());
    CHECK(store->metrics("plain", "train", "loss").size() == 8);
  }
  CHECK(raw_value(store_keys::run_key("plain.train.a1")).find("\"init\":{}") != std::string::npos);
  CHECK(raw_value("V") == std::to_string(ExperimentStore::kSchemaVersion));
  CHECK(ExperimentStore::open(t.db())->list_experiments().size() == 1);
}

TEST_CASE("a schema_version 3 store (tests/fixtures/store-v3) opens migrated: runs get job, coord and report") {
  // Written by the store of commit 9991424 (`ldm-coord run experiments/tiny/dit-1rank-short.toml
  // --name plain`): experiment "plain", done, one stage "train" of 8 steps, run "plain.train.a1".
  TempDir t;
  std::filesystem::copy(ldm::testing::source_path("tests/fixtures/store-v3"), t.db());
  const auto raw_value = [&](const std::string& key) { return raw_get(t.db(), key); };
  REQUIRE(raw_value("V") == "3");
  REQUIRE(raw_value(store_keys::run_key("plain.train.a1")).find("\"report\"") == std::string::npos);
  REQUIRE(raw_value(store_keys::experiment_key("plain")).find("\"priority\"") == std::string::npos);
  {
    auto store = ExperimentStore::open(t.db());
    CHECK(store->schema_version() == ExperimentStore::kSchemaVersion);
    const auto e = store->get_experiment("plain");
    REQUIRE(e);
    CHECK(e->state == RunState::Done);
    CHECK(e->priority == 0);
    CHECK(ldm::spec_hash(ldm::spec_from_json(e->spec)) == e->spec_hash);
    const auto run = store->get_run("plain.train.a1");
    REQUIRE(run);
    CHECK(run->state == RunState::Done);
    CHECK(run->step == 8);
    CHECK(run->pid > 0);  // kept: only the new fields are added
    CHECK(run->job.empty());
    CHECK(run->report.empty());
    CHECK(store->metrics("plain", "train", "loss").size() == 8);
  }
  const std::string run_json = raw_value(store_keys::run_key("plain.train.a1"));
  CHECK(run_json.find("\"job\":\"\"") != std::string::npos);
  CHECK(run_json.find("\"coord\":\"\"") != std::string::npos);
  CHECK(run_json.find("\"report\":\"\"") != std::string::npos);
  CHECK(run_json.find("\"cancel_requested_at\":0") != std::string::npos);
  CHECK(raw_value(store_keys::experiment_key("plain")).find("\"priority\":0") != std::string::npos);
  CHECK(raw_value("V") == std::to_string(ExperimentStore::kSchemaVersion));
  CHECK(ExperimentStore::open(t.db())->list_experiments().size() == 1);
}

TEST_CASE("open rejects a non-empty database that has no schema_version") {
  TempDir t;
  raw_put(t.db(), "foreign", "data");
  const std::string msg = open_error(t.db());
  CHECK(msg.find(t.db()) != std::string::npos);
  CHECK(msg.find("schema_version missing") != std::string::npos);
}

TEST_CASE("a second open of a store this process holds fails with 'in use'") {
  TempDir t;
  auto first = ExperimentStore::open(t.db());
  const std::string msg = open_error(t.db());
  CHECK(msg.find("in use by another coordinator") != std::string::npos);
  CHECK(msg.find(t.db()) != std::string::npos);
}

TEST_CASE("open fails with 'in use' while another process holds the store's LOCK") {
  TempDir t;
  ExperimentStore::open(t.db());
  // The child takes the same fcntl lock RocksDB takes, using only async-signal-safe calls.
  int ready[2], release[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(release) == 0);
  const std::string lock_path = t.db() + "/LOCK";
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = ::open(lock_path.c_str(), O_RDWR);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    const char ok = (fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0) ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    char c;
    (void)!read(release[0], &c, 1);
    _exit(0);
  }
  char ok = 0;
  REQUIRE(read(ready[0], &ok, 1) == 1);
  const std::string msg = ok == 'y' ? open_error(t.db()) : "";
  (void)!write(release[1], "x", 1);
  int status = 0;
  waitpid(child, &status, 0);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) close(fd);
  REQUIRE(ok == 'y');
  CHECK(msg.find("in use by another coordinator") != std::string::npos);
  CHECK(msg.find(t.db()) != std::string::npos);
}

TEST_CASE("experiment records round-trip every field") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  const ExperimentRecord e = make_experiment("exp");
  store->put_experiment(e);
  const auto got = store->get_experiment("exp");
  REQUIRE(got);
  CHECK(got->name == e.name);
  CHECK(got->source == e.source);
  CHECK(got->spec == e.spec);
  CHECK(got->spec_hash == e.spec_hash);
  CHECK(got->state == e.state);
  CHECK(got->submitted_at == e.submitted_at);
  CHECK(got->finished_at == e.finished_at);
  CHECK(got->error == e.error);
}

TEST_CASE("stage records round-trip every field") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  const StageRecord s = make_stage("exp", "pretrain", 0);
  store->put_stage(s);
  const auto got = store->get_stage("exp", "pretrain");
  REQUIRE(got);
  CHECK(got->experiment == s.experiment);
  CHECK(got->name == s.name);
  CHECK(got->index == s.index);
  CHECK(got->state == s.state);
  CHECK(got->attempts == s.attempts);
  CHECK(got->current_run == s.current_run);
  CHECK(got->step == s.step);
  CHECK(got->total_steps == s.total_steps);
}

TEST_CASE("run records round-trip every field and every RunState") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  for (RunState state : all_run_states()) {
    CAPTURE(to_string(state));
    RunRecord r = make_run("exp", "pretrain", 1);
    r.state = state;
    store->put_run(r);
    const auto got = store->get_run(r.id);
    REQUIRE(got);
    CHECK(got->id == r.id);
    CHECK(got->experiment == r.experiment);
    CHECK(got->stage == r.stage);
    CHECK(got->attempt == r.attempt);
    CHECK(got->state == state);
    CHECK(got->token == r.token);
    CHECK(got->run_dir == r.run_dir);
    CHECK(got->ranks == r.ranks);
    CHECK(got->pid == r.pid);
    CHECK(got->step == r.step);
    CHECK(got->last_loss == r.last_loss);
    CHECK(got->samples_per_s == r.samples_per_s);
    CHECK(got->last_seq == r.last_seq);
    CHECK(got->started_at == r.started_at);
    CHECK(got->finished_at == r.finished_at);
    CHECK(got->last_heartbeat == r.last_heartbeat);
    CHECK(got->error == r.error);
    CHECK(got->checkpoint == r.checkpoint);
  }
}

TEST_CASE("get of a missing experiment, stage or run returns nothing") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  store->put_stage(make_stage("exp", "pretrain", 0));
  CHECK_FALSE(store->get_experiment("exp"));
  CHECK_FALSE(store->get_stage("exp", "pre"));  // a prefix of a stored name is not a match
  CHECK_FALSE(store->get_stage("ex", "pretrain"));
  CHECK_FALSE(store->get_run("exp.pretrain.a1"));
}

TEST_CASE("list_experiments sorts by name, not by key length") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  for (const char* name : {"zeta", "b", "alpha-long"}) store->put_experiment(make_experiment(name));
  std::vector<std::string> names;
  for (const auto& e : store->list_experiments()) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"alpha-long", "b", "zeta"});
}

TEST_CASE("list_stages returns stages in index order even when names sort the other way") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  store->put_stage(make_stage("exp", "finetune", 1));
  store->put_stage(make_stage("exp", "pretrain", 0));
  store->put_stage(make_stage("other", "aaa", 5));
  const auto stages = store->list_stages("exp");
  REQUIRE(stages.size() == 2);
  CHECK(stages[0].name == "pretrain");
  CHECK(stages[1].name == "finetune");
  CHECK(store->get_stage("exp", "finetune")->index == 1);
}

TEST_CASE("list_runs sorts by id and filters by experiment") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  store->put_run(make_run("b", "s", 1));
  store->put_run(make_run("a", "stage", 2));
  store->put_run(make_run("a", "stage", 1));
  std::vector<std::string> ids;
  for (const auto& r : store->list_runs()) ids.push_back(r.id);
  CHECK(ids == std::vector<std::string>{"a.stage.a1", "a.stage.a2", "b.s.a1"});
  ids.clear();
  for (const auto& r : store->list_runs("a")) ids.push_back(r.id);
  CHECK(ids == std::vector<std::string>{"a.stage.a1", "a.stage.a2"});
}

TEST_CASE("put_submission writes the experiment and all its stages") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  store->put_submission(make_experiment("exp"), {make_stage("exp", "pretrain", 0), make_stage("exp", "finetune", 1)});
  CHECK(store->get_experiment("exp"));
  CHECK(store->list_stages("exp").size() == 2);
}

TEST_CASE("keys are big-endian so step 256 sorts after step 2") {
  using namespace store_keys;
  CHECK(metric_key("e", "s", "loss", 2) < metric_key("e", "s", "loss", 256));
  CHECK(metric_key("e", "s", "loss", 255) < metric_key("e", "s", "loss", 256));
  CHECK(stage_key("e", 1, "z") < stage_key("e", 256, "a"));
  std::string be;
  put_be32(be, 0x01020304u);
  put_be64(be, 0x0506070809101112ull);
  CHECK(be == std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x10\x11\x12", 12));

  TempDir t;
  auto store = ExperimentStore::open(t.db());
  store->append_metrics("e", "s", {point("loss", 256, 1), point("loss", 2, 2), point("loss", 3, 3)},
                        make_run("e", "s", 1));
  CHECK(keys_of(store->metrics("e", "s")) == Keys{{"loss", 2}, {"loss", 3}, {"loss", 256}});
}

TEST_CASE("metric scans do not leak into a stage or experiment whose name extends another") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  const RunRecord run = make_run("a", "s", 1);
  store->append_metrics("a", "s", {point("loss", 1, 1)}, run);
  store->append_metrics("a", "s2", {point("loss", 2, 2)}, run);
  store->append_metrics("ab", "s", {point("loss", 3, 3)}, run);
  store->append_metrics("a", "s", {point("lossy", 4, 4)}, run);
  CHECK(keys_of(store->metrics("a", "s")) == Keys{{"loss", 1}, {"lossy", 4}});
  CHECK(keys_of(store->metrics("a", "s", "loss")) == Keys{{"loss", 1}});
  CHECK(keys_of(store->metrics("a", "s2")) == Keys{{"loss", 2}});
  CHECK(keys_of(store->metrics("ab", "s")) == Keys{{"loss", 3}});
}

TEST_CASE("append_metrics stores points and the run, metrics() filters by metric and stage") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  RunRecord run = make_run("exp", "pretrain", 2);
  run.last_seq = 7;
  // "lr" is shorter than "grad_norm" but must still come after it.
  store->append_metrics(
      "exp", "pretrain",
      {point("lr", 1, 1e-4, 2), point("grad_norm", 1, 0.5, 2), point("lr", 2, 2e-4, 2), point("grad_norm", 2, 0.25, 2)},
      run);
  store->append_metrics("exp", "finetune", {point("lr", 1, 9.0)}, make_run("exp", "finetune", 1));
  CHECK(store->get_run(run.id)->last_seq == 7);

  const auto all = store->metrics("exp", "pretrain");
  CHECK(keys_of(all) == Keys{{"grad_norm", 1}, {"grad_norm", 2}, {"lr", 1}, {"lr", 2}});
  const auto lr = store->metrics("exp", "pretrain", "lr");
  REQUIRE(lr.size() == 2);
  CHECK(lr[1].value == 2e-4);
  CHECK(lr[1].attempt == 2);
  CHECK(lr[1].time == 1700000002.0);
  CHECK(keys_of(store->metrics("exp", "finetune")) == Keys{{"lr", 1}});
  CHECK(store->metrics("exp", "pretrain", "missing").empty());
}

TEST_CASE("metric values round-trip attempt, value and time bit-exactly") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  const std::vector<double> values = {-0.0, -1.5e300, 1.0 / 3.0, 5e-324, INFINITY};
  std::vector<MetricPoint> points;
  for (std::size_t i = 0; i < values.size(); ++i)
    points.push_back({"m", static_cast<std::int64_t>(i), values[i], 0xfffffff0u + std::uint32_t(i),
                      1700000000.123456789 + static_cast<double>(i)});
  points.push_back({"m", 99, NAN, 1, 0});
  store->append_metrics("e", "s", points, make_run("e", "s", 1));
  const auto got = store->metrics("e", "s");
  REQUIRE(got.size() == points.size());
  for (std::size_t i = 0; i + 1 < points.size(); ++i) {
    CHECK(got[i].step == points[i].step);
    CHECK(got[i].attempt == points[i].attempt);
    CHECK(got[i].time == points[i].time);
    CHECK(std::signbit(got[i].value) == std::signbit(points[i].value));
    CHECK(got[i].value == points[i].value);
  }
  CHECK(std::isnan(got.back().value));
}

TEST_CASE("re-appending the same metric batch is idempotent") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  const std::vector<MetricPoint> batch = {point("loss", 1, 0.9), point("loss", 2, 0.8)};
  const RunRecord run = make_run("e", "s", 1);
  store->append_metrics("e", "s", batch, run);
  store->append_metrics("e", "s", batch, run);
  CHECK(keys_of(store->metrics("e", "s")) == Keys{{"loss", 1}, {"loss", 2}});
}

TEST_CASE("record_resume deletes exactly the stage's points after the resume step, every metric") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  std::vector<MetricPoint> batch;
  for (std::int64_t step : {1, 2, 3, 256, 300})
    for (const char* metric : {"loss", "grad_norm"}) batch.push_back(point(metric, step, 1.0));
  store->append_metrics("e", "s", batch, make_run("e", "s", 1));
  store->append_metrics("e", "s2", batch, make_run("e", "s2", 1));
  store->append_metrics("e2", "s", batch, make_run("e2", "s", 1));

  RunRecord resumed = make_run("e", "s", 2);
  resumed.state = RunState::Pending;
  store->record_resume(resumed, 3);

  CHECK(keys_of(store->metrics("e", "s")) ==
        Keys{{"grad_norm", 1}, {"grad_norm", 2}, {"grad_norm", 3}, {"loss", 1}, {"loss", 2}, {"loss", 3}});
  CHECK(store->metrics("e", "s2").size() == batch.size());
  CHECK(store->metrics("e2", "s").size() == batch.size());
  REQUIRE(store->get_run(resumed.id));
  CHECK(store->get_run(resumed.id)->state == RunState::Pending);
  CHECK(store->get_run("e.s.a1"));  // the earlier attempt stays

  // New points of the resumed attempt continue the curve without duplicates.
  store->append_metrics("e", "s", {point("loss", 4, 0.5, 2)}, resumed);
  const auto loss = store->metrics("e", "s", "loss");
  CHECK(keys_of(loss) == Keys{{"loss", 1}, {"loss", 2}, {"loss", 3}, {"loss", 4}});
  CHECK(loss.back().attempt == 2);
}

TEST_CASE("state survives close and reopen") {
  TempDir t;
  {
    auto store = ExperimentStore::open(t.db());
    store->put_submission(make_experiment("exp"), {make_stage("exp", "pretrain", 0)});
    store->put_run(make_run("exp", "pretrain", 1));
    store->append_metrics("exp", "pretrain", {point("loss", 10, 0.5)}, make_run("exp", "pretrain", 1));
  }
  auto store = ExperimentStore::open(t.db());
  CHECK(store->get_experiment("exp")->spec == make_experiment("exp").spec);
  CHECK(store->get_stage("exp", "pretrain")->step == 1234);
  CHECK(store->get_run("exp.pretrain.a1")->token == "secret-token");
  const auto points = store->metrics("exp", "pretrain");
  REQUIRE(points.size() == 1);
  CHECK(points[0].value == 0.5);
}

TEST_CASE("delete_experiment removes that experiment's records, runs and points only") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  for (const char* name : {"a", "ab"}) {
    store->put_submission(make_experiment(name), {make_stage(name, "pretrain", 0), make_stage(name, "finetune", 1)});
    store->put_run(make_run(name, "pretrain", 1));
    store->put_run(make_run(name, "finetune", 1));
    store->append_metrics(name, "pretrain", {point("loss", 1, 1)}, make_run(name, "pretrain", 1));
    store->append_metrics(name, "finetune", {point("loss", 1, 1)}, make_run(name, "finetune", 1));
  }
  store->delete_experiment("a");

  CHECK_FALSE(store->get_experiment("a"));
  CHECK(store->list_stages("a").empty());
  CHECK(store->list_runs("a").empty());
  CHECK(store->metrics("a", "pretrain").empty());
  CHECK(store->metrics("a", "finetune").empty());

  CHECK(store->get_experiment("ab"));
  CHECK(store->list_stages("ab").size() == 2);
  CHECK(store->list_runs("ab").size() == 2);
  CHECK(store->metrics("ab", "pretrain").size() == 1);
  CHECK(store->metrics("ab", "finetune").size() == 1);
  CHECK(store->schema_version() == ExperimentStore::kSchemaVersion);
}

TEST_CASE("a schema_version 4 store (tests/fixtures/store-v4) opens as 6 with no sweep and every record kept") {
  // Written by the store of commit 74ef131 (`ldm-coord run experiments/tiny/dit-1rank-short.toml
  // --name plain`): experiment "plain", done, one stage "train" of 8 steps, run "plain.train.a1".
  TempDir t;
  std::filesystem::copy(ldm::testing::source_path("tests/fixtures/store-v4"), t.db());
  REQUIRE(raw_get(t.db(), "V") == "4");
  const std::string run_before = raw_get(t.db(), store_keys::run_key("plain.train.a1"));
  {
    auto store = ExperimentStore::open(t.db());
    CHECK(store->schema_version() == 6);
    CHECK(store->list_sweeps().empty());
    const auto run = store->get_run("plain.train.a1");
    REQUIRE(run);
    CHECK(run->state == RunState::Done);
    CHECK(!run->job.empty());  // recorded by the schema-4 coordinator
    CHECK(store->metrics("plain", "train", "loss").size() == 8);
  }
  CHECK(raw_get(t.db(), store_keys::run_key("plain.train.a1")) == run_before);
  CHECK(raw_get(t.db(), "V") == "6");
}

TEST_CASE("a schema_version 5 store (tests/fixtures/store-v5) opens as 6: its stages run at their spec's ranks") {
  // Written by the store of commit 57a236c (`ldm-coord run experiments/tiny/dit-1rank-short.toml
  // --name plain`): experiment "plain", done, one stage "train" of 8 steps, run "plain.train.a1".
  TempDir t;
  std::filesystem::copy(ldm::testing::source_path("tests/fixtures/store-v5"), t.db());
  REQUIRE(raw_get(t.db(), "V") == "5");
  const std::string stage_key = store_keys::stage_key("plain", 0, "train");
  const nlohmann::json before = nlohmann::json::parse(raw_get(t.db(), stage_key));
  REQUIRE_FALSE(before.contains("ranks"));
  const std::string run_before = raw_get(t.db(), store_keys::run_key("plain.train.a1"));
  {
    auto store = ExperimentStore::open(t.db());
    CHECK(store->schema_version() == 6);
    const auto stage = store->get_stage("plain", "train");
    REQUIRE(stage);
    CHECK(stage->ranks == 0);
    CHECK(stage->state == RunState::Done);
    CHECK(stage->step == 8);
    CHECK(store->get_run("plain.train.a1")->state == RunState::Done);
    CHECK(store->metrics("plain", "train", "loss").size() == 8);
  }
  nlohmann::json after = nlohmann::json::parse(raw_get(t.db(), stage_key));
  CHECK(after.at("ranks") == 0);
  after.erase("ranks");
  CHECK(after == before);  // nothing else about the stage changed
  CHECK(raw_get(t.db(), store_keys::run_key("plain.train.a1")) == run_before);
  CHECK(raw_get(t.db(), "V") == "6");
}

TEST_CASE("a sweep and its cells are stored in one batch, listed by name, and deleted together") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  SweepRecord sweep;
  sweep.name = "grid";
  sweep.source = "/x/grid.toml";
  sweep.axes = {"seed"};
  std::vector<ExperimentStore::Submission> cells;
  for (int seed : {1, 2}) {
    ExperimentStore::Submission cell;
    cell.experiment.name = "grid-s" + std::to_string(seed);
    StageRecord stage;
    stage.experiment = cell.experiment.name;
    stage.name = "train";
    cell.stages.push_back(stage);
    cells.push_back(cell);
    sweep.cells.push_back({{"experiment", cell.experiment.name}, {"values", {{"seed", seed}}}});
  }
  store->put_sweep(sweep, cells);
  ExperimentRecord other;
  other.name = "other";
  store->put_experiment(other);
  const auto back = store->get_sweep("grid");
  REQUIRE(back);
  CHECK(back->axes == std::vector<std::string>{"seed"});
  CHECK(back->cells.at(1).at("values").at("seed") == 2);
  CHECK(store->list_sweeps().size() == 1);
  CHECK(store->list_experiments().size() == 3);
  CHECK(store->list_stages("grid-s2").size() == 1);
  RunRecord run;
  run.id = "grid-s1.train.a1";
  run.experiment = "grid-s1";
  run.stage = "train";
  store->append_metrics("grid-s1", "train", {{"loss", 1, 0.5, 1, 0}}, run);
  store->delete_sweep("grid");
  CHECK(!store->get_sweep("grid"));
  CHECK(store->list_experiments().size() == 1);  // "other" stays
  CHECK(!store->get_run("grid-s1.train.a1"));
  CHECK(store->metrics("grid-s1", "train").empty());
  CHECK(!store->get_sweep("nope"));
}

TEST_CASE("metrics(max_points) thins each curve by step buckets, keeps short curves whole and every last point") {
  TempDir t;
  auto store = ExperimentStore::open(t.db());
  const RunRecord run = make_run("e", "s", 1);
  std::vector<MetricPoint> points;
  for (std::int64_t step = 0; step < 10000; ++step) points.push_back(point("loss", step, double(step)));
  for (std::int64_t step = 0; step <= 9000; step += 1000) points.push_back(point("fid", step, double(step)));
  points.push_back(point("a", 5, 5.0));  // a name that sorts first, one point
  store->append_metrics("e", "s", points, run);
  store->append_metrics("e", "s2", {point("loss", 1, 1.0)}, run);  // another stage: not read

  const std::vector<MetricPoint> thin = store->metrics("e", "s", "", 100);
  std::map<std::string, std::vector<std::int64_t>> steps;
  for (const MetricPoint& p : thin) steps[p.metric].push_back(p.step);
  CHECK(steps.size() == 3);
  // 10000 steps in 100 buckets of 100: each bucket's first point, then the last point.
  REQUIRE(steps["loss"].size() == 101);
  for (std::size_t b = 0; b < 100; ++b) CHECK(steps["loss"][b] == std::int64_t(b) * 100);
  CHECK(steps["loss"].back() == 9999);
  // Short or sparse curves come back whole.
  CHECK(steps["fid"] == std::vector<std::int64_t>{0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000});
  CHECK(steps["a"] == std::vector<std::int64_t>{5});
  // Values come with the points; sorted by (metric, step) as the full query.
  for (const MetricPoint& p : thin) CHECK(p.value == double(p.step));
  CHECK(std::is_sorted(thin.begin(), thin.end(), [](const MetricPoint& a, const MetricPoint& b) {
    return a.metric != b.metric ? a.metric < b.metric : a.step < b.step;
  }));
  // One metric; a dense curve (a point every step) shorter than the bucket count comes back whole.
  // Two buckets of 4501 steps: their first points 0 and 5000, then the last point.
  CHECK(keys_of(store->metrics("e", "s", "fid", 2)) == Keys{{"fid", 0}, {"fid", 5000}, {"fid", 9000}});
  CHECK(store->metrics("e", "s", "loss", 20000).size() == 10000);
  CHECK(store->metrics("e", "s", "nothing", 10).empty());
  CHECK(store->metrics("e", "nostage", "", 10).empty());
}
