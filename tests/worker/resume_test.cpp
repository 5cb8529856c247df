// A stage interrupted after a checkpoint and run again continues bit-exactly: same parameters,
// and every step after the checkpoint trains on the batch the uninterrupted run had.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/spec.h"
#include "tests/support/temp_dir.h"
#include "worker/comm.h"
#include "worker/fault.h"
#include "worker/trainer.h"

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
    s.recipe.conditioning.controls = "proposed";
    s.recipe.conditioning.control_dropout = 0.3;
    s.recipe.conditioning.text_padding = "noisy_replicate";
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
  if (!fault.empty()) ctx.fault = parse_fault(fault);
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
