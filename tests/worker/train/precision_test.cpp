// [hardware] in the training loop on the CPU: bf16 autocast trains with fp32 master weights and
// optimiser state, its run differs from the fp32 run but stays close, and it repeats exactly;
// device = "cuda" on a machine without a GPU fails before any work with an error naming the key.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>

#include "shared/core/ids.h"
#include "shared/core/spec.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/io/checkpoint.h"
#include "worker/train/trainer.h"

using namespace ldm;
using namespace ldm::worker;
using ldm::testing::TempDir;

namespace precision_test {

ExperimentSpec spec_with(const std::string& precision) {
  ExperimentSpec s;
  s.name = "precision";
  s.seed = 5;
  s.dataset.records = 32;
  s.dataset.classes = 4;
  s.dataset.shard_records = 32;
  s.recipe = recipe_defaults("dit");
  s.recipe.preset = "tiny/2";
  s.hardware.device = "cpu";
  s.hardware.precision = precision;
  s.stages.emplace_back();
  s.stages[0].resolution = 16;
  s.stages[0].steps = 4;
  s.stages[0].batch_size = 4;
  s.stages[0].lr = 1e-3;
  s.stages[0].log_every = 1000;
  validate(s);
  return s;
}

StageResult run_precision(const ExperimentSpec& spec, const std::string& dir, const std::string& data) {
  StageContext ctx;
  ctx.spec = spec;
  ctx.run_dir = dir;
  ctx.data_dir = data;
  auto comm = make_single_process_communicator();
  return train_stage(ctx, *comm, nullptr);
}

}  // namespace precision_test
using namespace precision_test;

TEST_CASE("bf16 autocast on the CPU: fp32 master weights and moments, close to the fp32 run, repeatable") {
  TempDir tmp("ldm-precision");
  const StageResult fp32 = run_precision(spec_with("fp32"), tmp.file("fp32"), tmp.file("data"));
  const StageResult bf16 = run_precision(spec_with("bf16"), tmp.file("bf16"), tmp.file("data"));
  const StageResult again = run_precision(spec_with("bf16"), tmp.file("again"), tmp.file("data"));
  CHECK(std::isfinite(bf16.final_loss));
  CHECK(bf16.param_checksum != fp32.param_checksum);  // the forward really ran in bf16
  CHECK(again.param_checksum == bf16.param_checksum);
  CHECK(std::abs(bf16.final_loss - fp32.final_loss) < 0.05 * std::abs(fp32.final_loss) + 1e-3);
  const CheckpointBundle b = read_checkpoint(bf16.checkpoint);
  const CheckpointBundle f = read_checkpoint(fp32.checkpoint);
  for (const auto* map : {&b.model, &b.ema, &b.optimizer})
    for (const auto& [key, t] : *map) {
      CAPTURE(key);
      if (t.is_floating_point()) CHECK((t.scalar_type() == torch::kFloat32));
    }
  double worst = 0;
  for (const auto& [key, t] : f.model) worst = std::max(worst, (b.model.at(key) - t).abs().max().item<double>());
  CHECK(worst > 0.0);
  CHECK(worst < 2e-2);  // 4 AdamW steps at lr 1e-3 move a weight by about 4e-3 at most
}

TEST_CASE("device = \"cuda\" on a machine without a GPU fails before any work, naming hardware.device") {
  if (torch::cuda::is_available()) {
    MESSAGE("skipped: this machine has a CUDA GPU");
    return;
  }
  TempDir tmp("ldm-precision-cuda");
  ExperimentSpec s = spec_with("auto");
  s.hardware.device = "cuda";
  CHECK_THROWS_WITH(run_precision(s, tmp.file("run"), tmp.file("data")),
                    doctest::Contains("hardware.device = \"cuda\""));
}

TEST_CASE("a bundle written in bf16 resumes in fp32: [hardware] is not what is trained, other keys still are") {
  TempDir tmp("ldm-precision-resume");
  ExperimentSpec bf16 = spec_with("bf16");
  bf16.stages[0].checkpoint_every = 2;
  const StageResult first = run_precision(bf16, tmp.file("bf16"), tmp.file("data"));
  const std::string at2 = tmp.file("bf16") + "/checkpoints/" + step_dir_name(2);
  REQUIRE(read_checkpoint(at2).manifest.at("step").get<int64_t>() == 2);

  // The same experiment with [hardware] precision = "fp32": spec_hash differs, the resume goes on.
  ExperimentSpec fp32 = spec_with("fp32");
  fp32.stages[0].checkpoint_every = 2;
  REQUIRE(spec_hash(fp32) != spec_hash(bf16));
  StageContext ctx;
  ctx.spec = fp32;
  ctx.run_dir = tmp.file("fp32");
  ctx.data_dir = tmp.file("data");
  ctx.resume_from = at2;
  auto comm = make_single_process_communicator();
  const StageResult resumed = train_stage(ctx, *comm, nullptr);
  CHECK(resumed.steps == 4);
  CHECK(std::isfinite(resumed.final_loss));
  CHECK(resumed.param_checksum != first.param_checksum);  // steps 3-4 ran in fp32, not bf16
  CHECK(std::abs(resumed.final_loss - first.final_loss) < 0.05 * std::abs(first.final_loss) + 1e-3);

  // Another learning rate is another experiment: refused, naming the bundle.
  ExperimentSpec other = fp32;
  other.stages[0].lr = 2e-3;
  ctx.spec = other;
  ctx.run_dir = tmp.file("other");
  const std::string refused = at2 + ": written for another experiment spec";
  CHECK_THROWS_WITH(train_stage(ctx, *comm, nullptr), doctest::Contains(refused.c_str()));
}
