// A seventh family touches its card, its model file and its tests, nothing else: this file registers
// a toy family (a card and a model builder) from tests/ alone, and the worker builds, trains,
// checkpoints and samples it like the built-in six.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "shared/core/recipes/card.h"
#include "shared/core/spec.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/diffusion/sampling.h"
#include "worker/io/checkpoint.h"
#include "worker/models/denoiser.h"
#include "worker/train/trainer.h"

using namespace ldm;
using ldm::testing::TempDir;

namespace toy_family_test {

// ---- the toy family's "model file" -----------------------------------------------------------------

// out = conv1x1(x) * (1 + scale·t/1000) + label_embedding[y] (per channel). Enough to learn something.
class ToyDenoiser : public models::Denoiser {
 public:
  ToyDenoiser(int64_t channels, int64_t classes) : channels_(channels) {
    conv_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 1)));
    labels_ = register_parameter("labels", torch::zeros({classes + 1, channels}));
    scale_ = register_parameter("scale", torch::zeros({1}));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const models::Condition& cond) override {
    const auto& y = models::require_field(cond.labels, "labels", "toy");
    auto out = conv_->forward(x) * (1.0 + scale_ * (t / 1000.0)).view({-1, 1, 1, 1});  // [N, C, H, W]
    return out + labels_.index_select(0, y).view({-1, channels_, 1, 1});
  }
  void initialize(at::Generator& gen) override {
    torch::NoGradGuard no_grad;
    conv_->weight.normal_(0.0, 0.02, gen);
    conv_->bias.zero_();
    labels_.normal_(0.0, 0.02, gen);
  }
  int64_t out_channels() const override { return channels_; }
  std::vector<std::string> zero_initialised() const override { return {"conv.bias", "scale"}; }

 private:
  int64_t channels_;
  torch::nn::Conv2d conv_{nullptr};
  torch::Tensor labels_, scale_;
};

std::shared_ptr<models::Denoiser> build_toy(const PresetInfo&, const models::ModelGeometry& g, const RecipeSpec& r) {
  if (g.num_classes <= 0) throw SpecError("task", "the toy family is class-conditional only");
  if (r.learn_sigma) throw SpecError("recipe.learn_sigma", "the toy family has no variance output");
  return std::make_shared<ToyDenoiser>(g.in_channels, g.num_classes);
}

// ---- its card --------------------------------------------------------------------------------------

RecipeCard toy_card() {
  RecipeCard c;
  c.family = "toy";
  c.title = "a 1x1 convolution (tests)";
  c.default_preset = "toy";
  c.tasks = {"class"};
  c.capabilities.learned_sigma = false;
  PresetInfo p;
  p.name = "toy";
  p.source = "ours: tests";
  c.presets = {p};
  c.param_count = [](const PresetInfo&, const ModelShape& s) {
    const int64_t C = s.in_channels;
    return C * C + C + (s.num_classes + 1) * C + 1;  // conv, labels (+ null row), scale
  };
  c.gflops = [](const PresetInfo&, const ModelShape& s) {
    return double(s.latent_size) * s.latent_size * s.in_channels * s.in_channels / 1e9;
  };
  c.latent_grid = [](const PresetInfo&) { return LatentGrid{1, "1"}; };
  c.size_text = [](const PresetInfo&) { return std::string("1x1 conv"); };
  c.defaults = {{"recipe.ema.decay", 0.9, "the toy family"}};
  return c;
}

// Registers both halves once per process.
void register_toy() {
  static const bool registered = register_recipe_card(toy_card()) && models::register_denoiser("toy", build_toy);
  REQUIRE(registered);
}

ExperimentSpec toy_spec() {
  ExperimentSpec s;
  s.name = "toy";
  s.seed = 1;
  s.dataset.records = 16;
  s.dataset.classes = 3;
  s.dataset.shard_records = 16;
  s.recipe = recipe_defaults("toy");
  s.recipe.preset = "toy";
  s.stages.emplace_back();
  s.stages[0].resolution = 8;
  s.stages[0].steps = 2;
  s.stages[0].batch_size = 4;
  s.stages[0].lr = 1e-2;
  s.stages[0].log_every = 1000;
  s.stages[0].checkpoint_every = 1;
  validate(s);
  return s;
}

}  // namespace toy_family_test

using namespace toy_family_test;

TEST_CASE("a family registered from a test (card + builder) is built, counted, trained, checkpointed and sampled") {
  register_toy();
  CHECK(models::has_denoiser("toy"));
  const ExperimentSpec spec = toy_spec();
  CHECK(spec.recipe.ema.decay == 0.9);  // the card's recipe

  // The built module has the card's analytic count.
  auto gen = at::detail::createCPUGenerator(0);
  const models::ModelGeometry g{12, 4, 4, 3};
  auto model = models::build_denoiser(spec.recipe, g, gen);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  CHECK(params == analytic_param_count(*find_preset("toy", "toy"), models::model_shape(g, spec.recipe)));

  // Two training steps through the real trainer, then sampling from its checkpoint.
  TempDir tmp("ldm-toy");
  worker::StageContext ctx;
  ctx.spec = spec;
  ctx.run_dir = tmp.file("run");
  ctx.data_dir = tmp.file("data");
  auto comm = worker::make_single_process_communicator();
  const worker::StageResult r = worker::train_stage(ctx, *comm, nullptr);
  CHECK(r.steps == 2);
  CHECK(std::isfinite(r.final_loss));
  CHECK(r.final_loss > 0);
  const worker::CheckpointBundle b = worker::read_checkpoint(r.checkpoint);
  CHECK(b.manifest.at("recipe") == "toy toy");
  CHECK(b.model.count("labels") == 1);
  const worker::CheckpointBundle first = worker::read_checkpoint(ctx.run_dir + "/checkpoints/step-0000001");
  CHECK_FALSE(torch::equal(b.model.at("conv.weight"), first.model.at("conv.weight")));  // step 2 moved the weights

  const worker::SamplingModel m = worker::load_sampling_model(r.checkpoint);
  worker::SampleRequest req;
  req.labels = {0, 1};
  req.sampler.method = Sampler::Ddim;
  req.sampler.steps = 3;
  const auto latents = worker::sample_latents(m, req);
  CHECK(latents.sizes() == torch::IntArrayRef({2, 12, 4, 4}));
  CHECK(torch::isfinite(latents).all().item<bool>());
}

TEST_CASE("a family with a card but no model builder is refused with the reason, naming the family") {
  RecipeCard orphan = toy_card();
  orphan.family = "toy-without-model";
  static const bool registered = register_recipe_card(orphan);
  REQUIRE(registered);
  RecipeSpec r = recipe_defaults("toy-without-model");
  r.preset = "toy";
  auto gen = at::detail::createCPUGenerator(0);
  CHECK_THROWS_WITH_AS(models::build_denoiser(r, {12, 4, 4, 3}, gen),
                       doctest::Contains("'toy-without-model' has a card but no model builder"), SpecError);
  CHECK_THROWS_WITH_AS(models::register_denoiser("dit", toy_family_test::build_toy), doctest::Contains("twice"), Error);
}
