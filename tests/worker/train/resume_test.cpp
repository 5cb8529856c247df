// A stage interrupted after a checkpoint and run again continues bit-exactly: same parameters,
// and every step after the checkpoint trains on the batch the uninterrupted run had.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/spec.h"
#include "shared/core/spec_json.h"
#include "shared/core/checkpoint_dir.h"
#include "shared/core/safe_file.h"
#include "tests/support/source_path.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/io/checkpoint.h"
#include "worker/train/fault.h"
#include "worker/train/trainer.h"

using namespace ldm;
using namespace ldm::worker;
using ldm::testing::TempDir;

namespace resume_test {

ExperimentSpec spec_for(const std::string& family, const std::string& task) {
  ExperimentSpec s;
  s.name = "resume";
  s.seed = 3;
  s.task = task;
  s.dataset.records = 40;
  s.dataset.classes = 4;
  s.dataset.shard_records = 16;
  s.recipe = recipe_defaults(family);
  s.recipe.preset = "tiny/2";
  s.recipe.conditioning.semantic_dropout = 0.2;
  if (family == "proposed") {  // every generator in play: control dropout and padding noise too
    s.recipe.conditioning.controls = ldm::ControlMode::Proposed;
    s.recipe.conditioning.control_dropout = 0.3;
    s.recipe.conditioning.text_padding = ldm::TextPadding::NoisyReplicate;
  }
  s.stages.emplace_back();
  s.stages[0].resolution = 16;
  s.stages[0].steps = 8;
  s.stages[0].batch_size = 6;  // 40 records: steps cross an epoch boundary
  s.stages[0].lr = 1e-3;
  s.stages[0].checkpoint_every = 3;
  s.stages[0].log_every = 1000;
  validate(s);
  return s;
}

// The batch (record ids) each step trained on: the log's last entry for the step.
std::map<int64_t, std::string> step_batches(const std::string& run_dir) {
  std::ifstream in(run_dir + "/logs/records-rank-0.jsonl");
  std::map<int64_t, std::string> out;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    out[j.at("step").get<int64_t>()] = j.at("ids").dump() + j.at("epochs").dump();
  }
  return out;
}

StageContext stage_context(const ExperimentSpec& spec, const std::string& dir, const std::string& data, int attempt) {
  StageContext ctx;
  ctx.spec = spec;
  ctx.run_dir = dir;
  ctx.data_dir = data;
  ctx.attempt = attempt;
  return ctx;
}

StageResult train_with(const StageContext& ctx) {
  auto comm = make_single_process_communicator();
  return train_stage(ctx, *comm, nullptr);
}

StageResult run(const ExperimentSpec& spec, const std::string& dir, const std::string& data, int attempt,
                const std::string& fault = "") {
  StageContext ctx = stage_context(spec, dir, data, attempt);
  ctx.faults = parse_faults(fault);
  return train_with(ctx);
}

// The newest bundle of a run directory.
CheckpointBundle newest(const std::string& run_dir) {
  const auto b = newest_bundle(run_dir + "/checkpoints");
  REQUIRE(b);
  return read_checkpoint(b->dir);
}

// Every tensor of `a` equals `b`'s bit for bit (same keys).
void check_bitwise_equal(const TensorMap& a, const TensorMap& b, const char* what) {
  CAPTURE(what);
  REQUIRE(a.size() == b.size());
  for (const auto& [name, t] : a) {
    CAPTURE(name);
    REQUIRE(b.count(name));
    CHECK(torch::equal(t, b.at(name)));
  }
}

// Rewrites the world_size recorded in the newest bundle of `run_dir`, as a bundle written by
// `world` ranks would have it (its generators stay rank 0's).
void set_bundle_world_size(const std::string& run_dir, int world) {
  const auto b = newest_bundle(run_dir + "/checkpoints");
  REQUIRE(b);
  std::ifstream in(b->dir + "/manifest.json");
  nlohmann::json m = nlohmann::json::parse(in);
  m["world_size"] = world;
  write_file_atomic(b->dir + "/manifest.json", m.dump(2) + "\n");
}

}  // namespace resume_test

using namespace resume_test;

TEST_CASE("a stage stopped by an error after its step-3 checkpoint resumes bit-exactly on the next attempt") {
  for (auto [family, task] :
       {std::pair<const char*, const char*>{"dit", "class"}, {"proposed", "text"}, {"mdt", "class"}}) {
    CAPTURE(family);
    TempDir tmp("ldm-resume");
    const ExperimentSpec spec = spec_for(family, task);
    const StageResult straight = run(spec, tmp.file("a"), tmp.file("data"), 1);
    REQUIRE(straight.steps == 8);

    CHECK_THROWS_WITH(run(spec, tmp.file("b"), tmp.file("data"), 1, "throw@step:6,rank:0"),
                      doctest::Contains("step 6"));
    const StageResult resumed = run(spec, tmp.file("b"), tmp.file("data"), 2);
    CHECK(resumed.steps == 8);
    CHECK(resumed.param_checksum == straight.param_checksum);
    CHECK(resumed.final_loss == straight.final_loss);
    const auto a = step_batches(tmp.file("a")), b = step_batches(tmp.file("b"));
    CHECK(a.size() == 8);
    CHECK(a == b);
    // The final bundles agree bit for bit: weights, EMA, optimiser moments and every generator.
    const CheckpointBundle fa = newest(tmp.file("a")), fb = newest(tmp.file("b"));
    CHECK(fa.manifest.at("step") == 8);
    CHECK(fb.manifest.at("step") == 8);
    check_bitwise_equal(fa.model, fb.model, "model");
    check_bitwise_equal(fa.ema, fb.ema, "ema");
    check_bitwise_equal(fa.optimizer, fb.optimizer, "optimizer");
    check_bitwise_equal(fa.generators, fb.generators, "generators");

    // A fresh first attempt in the same directory starts over rather than resuming.
    const StageResult again = run(spec, tmp.file("b"), tmp.file("data"), 1);
    CHECK(again.param_checksum == straight.param_checksum);
  }
}

TEST_CASE("resuming from a checkpoint of another spec or world size is refused with the reason") {
  TempDir tmp("ldm-resume-bad");
  ExperimentSpec spec = spec_for("dit", "class");
  spec.stages[0].steps = 3;
  run(spec, tmp.file("a"), tmp.file("data"), 1);
  ExperimentSpec other = spec;
  other.stages[0].lr = 5e-4;
  CHECK_THROWS_WITH_AS(run(other, tmp.file("a"), tmp.file("data"), 2),
                       doctest::Contains("written for another experiment spec"), ldm::DataError);
  // The same spec from a bundle of 2 ranks, in a job of 1: its generators belong to another layout.
  set_bundle_world_size(tmp.file("a"), 2);
  CHECK_THROWS_WITH_AS(run(spec, tmp.file("a"), tmp.file("data"), 2),
                       doctest::Contains("written by 2 ranks, this job has 1"), ldm::DataError);
  CHECK_THROWS_WITH_AS(run(spec, tmp.file("a"), tmp.file("data"), 2), doctest::Contains("--allow-world-size-change"),
                       ldm::DataError);
}

TEST_CASE("with allow_world_size_change a bundle of another world size resumes on the next records, new streams") {
  TempDir tmp("ldm-resume-world");
  const ExperimentSpec spec = spec_for("dit", "class");  // 8 steps, global batch 6, checkpoints every 3
  const StageResult straight = run(spec, tmp.file("a"), tmp.file("data"), 1);
  CHECK_THROWS(run(spec, tmp.file("b"), tmp.file("data"), 1, "throw@step:5,rank:0"));
  set_bundle_world_size(tmp.file("b"), 2);  // as if 2 ranks wrote the step-3 bundle

  StageContext ctx = stage_context(spec, tmp.file("b"), tmp.file("data"), 2);
  ctx.allow_world_size_change = true;
  const StageResult resumed = train_with(ctx);
  CHECK(resumed.steps == 8);
  // The global data cursor goes on: every step trains on the records the uninterrupted run had,
  // none skipped or seen twice.
  CHECK(step_batches(tmp.file("b")) == step_batches(tmp.file("a")));
  // Not bit-exact: the generators start new streams at the resumed step.
  CHECK(resumed.param_checksum != straight.param_checksum);
  CHECK(newest(tmp.file("b")).manifest.at("world_size") == 1);

  // The new streams are a function of (seed, rank, step): the same resume again gives the same run.
  const auto bundles = list_bundles(tmp.file("b") + "/checkpoints");  // step 3 (world size 2), 6, 8
  REQUIRE(bundles.size() == 3);
  REQUIRE(bundles.front().step == 3);
  const std::string again = tmp.file("again");
  std::filesystem::create_directories(again + "/checkpoints");
  std::filesystem::copy(bundles.front().dir,
                        again + "/checkpoints/" + std::filesystem::path(bundles.front().dir).filename().string(),
                        std::filesystem::copy_options::recursive);
  ctx.run_dir = again;  // only the bundle, no `latest`: the newest complete bundle is found by name
  const StageResult repeated = train_with(ctx);
  CHECK(repeated.param_checksum == resumed.param_checksum);
}

TEST_CASE("an attempt prunes the bundles a kill left beyond keep_checkpoints before it trains, never its own") {
  TempDir tmp("ldm-resume-prune");
  ExperimentSpec spec = spec_for("dit", "class");  // checkpoints every 3
  spec.stages[0].keep_checkpoints = 1;
  CHECK_THROWS(run(spec, tmp.file("b"), tmp.file("data"), 1, "throw@step:8,rank:0"));
  const std::string ckpts = tmp.file("b") + "/checkpoints";
  REQUIRE(list_bundles(ckpts).size() == 1);  // step 6
  // A kill between a bundle's rename and the prune after it leaves an older bundle behind.
  std::filesystem::copy(ckpts + "/step-0000006", ckpts + "/step-0000003", std::filesystem::copy_options::recursive);
  REQUIRE(list_bundles(ckpts).size() == 2);
  CHECK_THROWS(run(spec, tmp.file("b"), tmp.file("data"), 2, "throw@step:7,rank:0"));  // before any write
  const auto left = list_bundles(ckpts);
  REQUIRE(left.size() == 1);
  CHECK(left[0].step == 6);
}

TEST_CASE("a checkpoint bundle written before the recipe cards and typed choices (issue 12) still resumes") {
  // tests/fixtures/bundles/dit-tiny-step2: step 2 of tests/fixtures/bundles/dit-tiny.toml (4 steps),
  // written by the worker of commit 236dca5. Its uninterrupted run ended at loss 0.9472838640213013
  // (param checksum 9784dec306484ae4 on the machine that wrote it; BLAS kernels differ between CPUs,
  // so the comparisons below allow for rounding).
  const std::string fixture = ldm::testing::source_path("tests/fixtures/bundles/dit-tiny-step2").string();
  const CheckpointBundle old = read_checkpoint(fixture);
  const ExperimentSpec spec = spec_from_json(old.manifest.at("spec"));  // the old manifest's spec reads back
  CHECK(spec_hash(spec) == old.manifest.at("spec_hash").get<std::string>());
  CHECK(spec_hash(spec) == "839cd3f1c4216a47");  // the TOML file's (tests/shared/core/spec_hash_test.cpp)

  TempDir tmp("ldm-resume-fixture");
  StageContext ctx = stage_context(spec, tmp.file("resumed"), tmp.file("data"), 2);
  ctx.resume_from = fixture;
  const StageResult resumed = train_with(ctx);
  CHECK(resumed.steps == 4);
  CHECK(resumed.final_loss == doctest::Approx(0.9472838640213013).epsilon(1e-4));

  // The resumed run carries on the old run's state: its step-4 weights are the uninterrupted run's.
  const StageResult straight = run(spec, tmp.file("straight"), tmp.file("data"), 1);
  const auto a = read_checkpoint(resumed.checkpoint).model, b = read_checkpoint(straight.checkpoint).model;
  REQUIRE(a.size() == b.size());
  for (const auto& [name, tensor] : a) {
    CAPTURE(name);
    CHECK(torch::allclose(tensor, b.at(name), 1e-4, 1e-6));
  }
  CHECK(resumed.final_loss == doctest::Approx(straight.final_loss).epsilon(1e-4));
}
