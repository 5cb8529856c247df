// Numerical faults: a step whose loss is NaN is skipped with weights, EMA and optimiser untouched;
// nonfinite_skip_limit of them in a row roll the run back to its checkpoint and step past their
// batches (recorded in the manifest, followed by a later resume); a loss that stays NaN ends the
// run diverged after nonfinite_rollback_limit rollbacks.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "shared/core/spec.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/io/checkpoint.h"
#include "worker/train/fault.h"
#include "worker/train/trainer.h"

using namespace ldm;
using namespace ldm::worker;
using ldm::testing::TempDir;

namespace nonfinite_test {

ExperimentSpec small_spec(int64_t steps) {
  ExperimentSpec s;
  s.name = "nonfinite";
  s.seed = 11;
  s.dataset.records = 64;
  s.dataset.classes = 4;
  s.dataset.shard_records = 32;
  s.recipe = recipe_defaults("dit");
  s.recipe.preset = "tiny/2";
  s.stages.emplace_back();
  s.stages[0].resolution = 16;
  s.stages[0].steps = steps;
  s.stages[0].batch_size = 4;
  s.stages[0].lr = 1e-3;
  s.stages[0].checkpoint_every = 4;
  s.stages[0].log_every = 1000;
  validate(s);
  return s;
}

StageResult train(const ExperimentSpec& spec, const std::string& dir, const std::string& data,
                  const std::string& fault = "", int attempt = 1) {
  StageContext ctx;
  ctx.spec = spec;
  ctx.run_dir = dir;
  ctx.data_dir = data;
  ctx.attempt = attempt;
  ctx.faults = parse_faults(fault);
  auto comm = make_single_process_communicator();
  return train_stage(ctx, *comm, nullptr);
}

// The record ids each step trained on (the log's last entry for the step).
std::map<int64_t, std::string> batches_by_step(const std::string& run_dir) {
  std::ifstream in(run_dir + "/logs/records-rank-0.jsonl");
  std::map<int64_t, std::string> out;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    out[j.at("step").get<int64_t>()] = j.at("ids").dump();
  }
  return out;
}

std::vector<std::string> fault_actions(const std::string& run_dir) {
  std::ifstream in(run_dir + "/logs/nonfinite.jsonl");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line).at("action"));
  return out;
}

bool same_tensors(const TensorMap& a, const TensorMap& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, t] : a)
    if (!b.count(key) || !torch::equal(t, b.at(key))) return false;
  return true;
}

}  // namespace nonfinite_test
using namespace nonfinite_test;

TEST_CASE("a step with a NaN loss is skipped: weights, EMA and optimiser stay as the step before left them") {
  TempDir tmp("ldm-nonfinite-skip");
  const StageResult four = train(small_spec(4), tmp.file("four"), tmp.file("data"));
  const StageResult five = train(small_spec(5), tmp.file("five"), tmp.file("data"), "nan@step:5,rank:0");
  CHECK(five.steps == 5);
  CHECK(five.param_checksum == four.param_checksum);
  const CheckpointBundle a = read_checkpoint(tmp.file("four") + "/checkpoints/step-0000004");
  const CheckpointBundle b = read_checkpoint(tmp.file("five") + "/checkpoints/step-0000005");
  CHECK(same_tensors(a.model, b.model));
  CHECK(same_tensors(a.ema, b.ema));
  CHECK(same_tensors(a.optimizer, b.optimizer));
  CHECK(fault_actions(tmp.file("five")) == std::vector<std::string>{"skipped"});
  CHECK_FALSE(b.manifest.contains("skipped_batches"));  // no rollback: nothing stepped past
}

TEST_CASE("three NaN steps in a row roll back to the checkpoint and step past their batches, and a resume follows") {
  TempDir tmp("ldm-nonfinite-rollback");
  const std::string faults = "nan@step:5,rank:0;nan@step:6,rank:0;nan@step:7,rank:0";
  const StageResult clean = train(small_spec(15), tmp.file("clean"), tmp.file("data"));
  const StageResult rolled = train(small_spec(12), tmp.file("rolled"), tmp.file("data"), faults);
  CHECK(rolled.steps == 12);
  CHECK(fault_actions(tmp.file("rolled")) == std::vector<std::string>{"skipped", "skipped", "rolled back"});
  // Back at step 4's checkpoint, steps 5.. train on the batches after the three bad ones.
  const auto c = batches_by_step(tmp.file("clean")), r = batches_by_step(tmp.file("rolled"));
  for (int64_t step = 1; step <= 4; ++step) CHECK(r.at(step) == c.at(step));
  for (int64_t step = 5; step <= 12; ++step) CHECK(r.at(step) == c.at(step + 3));
  const CheckpointBundle last = read_checkpoint(tmp.file("rolled") + "/checkpoints");
  REQUIRE(last.manifest.contains("skipped_batches"));
  CHECK(last.manifest.at("skipped_batches").size() == 3);
  CHECK(last.manifest.at("skipped_batches")[0].at("index") == 4);  // 0-based: step 5's batch
  CHECK(last.manifest.at("skipped_batches")[2].at("step") == 7);
  CHECK(last.manifest.at("nonfinite_rollbacks") == 1);
  CHECK(last.manifest.at("data_cursor") == (12 + 3) * 4);

  // Interrupted after the step-8 checkpoint written past the rollback, the next attempt resumes with
  // the skipped batches and ends where the uninterrupted faulty run did.
  CHECK_THROWS(train(small_spec(12), tmp.file("again"), tmp.file("data"), faults + ";throw@step:10,rank:0"));
  const StageResult resumed = train(small_spec(12), tmp.file("again"), tmp.file("data"), "", 2);
  CHECK(resumed.param_checksum == rolled.param_checksum);
  CHECK(batches_by_step(tmp.file("again")) == r);
  CHECK(clean.steps == 15);
}

TEST_CASE("a loss that stays NaN ends the run diverged after the rollback limit, or at once with skip limit 0") {
  TempDir tmp("ldm-nonfinite-diverge");
  CHECK_THROWS_WITH_AS(train(small_spec(12), tmp.file("a"), tmp.file("data"), "diverge@step:3,rank:0"),
                       doctest::Contains("after 2 rollback(s)"), DivergedError);
  CHECK(fault_actions(tmp.file("a")) == std::vector<std::string>{"skipped", "skipped", "rolled back", "skipped",
                                                                 "skipped", "rolled back", "skipped", "skipped",
                                                                 "diverged"});
  ExperimentSpec strict = small_spec(12);
  strict.stages[0].nonfinite_skip_limit = 0;
  CHECK_THROWS_WITH_AS(train(strict, tmp.file("b"), tmp.file("data"), "diverge@step:3,rank:0"),
                       doctest::Contains("step 3: the loss averaged over 1 rank(s) is nan"), DivergedError);
}
