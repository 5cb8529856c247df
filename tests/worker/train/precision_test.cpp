// [hardware] in the training loop on the CPU: bf16 autocast trains with fp32 master weights and
// optimiser state, its run differs from the fp32 run but stays close, and it repeats exactly;
// device = "cuda" on a machine without a GPU fails before any work with an error naming the key.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>

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
