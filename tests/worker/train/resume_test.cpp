// A stage interrupted after a checkpoint and run again continues bit-exactly: same parameters,
// and every step after the checkpoint trains on the batch the uninterrupted run had.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/spec.h"
#include "shared/core/spec_json.h"
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

StageResult run(const ExperimentSpec& spec, const std::string& dir, const std::string& data, int attempt,
                const std::string& fault = "") {
  StageContext ctx;
  ctx.spec = spec;
  ctx.run_dir = dir;
  ctx.data_dir = data;
  ctx.attempt = attempt;
  ctx.faults = parse_faults(fault);
  auto comm = make_single_process_communicator();
  return train_stage(ctx, *comm, nullptr);
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
  StageContext ctx;
  ctx.spec = spec;
  ctx.run_dir = tmp.file("resumed");
  ctx.data_dir = tmp.file("data");
  ctx.attempt = 2;
  ctx.resume_from = fixture;
  auto comm = make_single_process_communicator();
  const StageResult resumed = train_stage(ctx, *comm, nullptr);
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
