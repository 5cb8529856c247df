// ConditionBuilder: what the trainer and sampler hand to every recipe.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include "worker/diffusion/process.h"
#include "worker/train/condition_builder.h"

using namespace ldm;
using namespace ldm::worker;

namespace condition_builder_test {

ExperimentSpec spec(const std::string& task, const std::string& controls) {
  ExperimentSpec s;
  s.name = "c";
  s.task = task;
  s.dataset.classes = 4;
  s.text_encoder.dim = 8;
  s.text_encoder.max_tokens = 6;
  s.recipe.conditioning.controls = ldm::parse_choice<ldm::ControlMode>(controls, "controls");
  s.stages.emplace_back();
  return s;
}

ConditionInputs inputs(int n) {
  ConditionInputs in;
  for (int i = 0; i < n; ++i) {
    in.labels.push_back(i % 4);
    in.captions.push_back(i % 2 ? "a red circle" : "blue square on the left");
    ControlMeta c;
    c.orig_h = 100 + i, c.orig_w = 200, c.crop_h = c.crop_w = 64, c.flip = i % 2;
    in.controls.push_back(c);
  }
  return in;
}

}  // namespace condition_builder_test

using namespace condition_builder_test;

TEST_CASE("class task: semantic dropout sends labels to the null class, controls get their own drop mask") {
  for (double p : {0.0, 1.0}) {
    ExperimentSpec s = spec("class", "proposed");
    s.recipe.conditioning.semantic_dropout = p;
    s.recipe.conditioning.control_dropout = 1.0 - p;
    ConditionBuilder b(s, 1.0);
    auto g1 = at::detail::createCPUGenerator(1), g2 = at::detail::createCPUGenerator(2),
         g3 = at::detail::createCPUGenerator(3);
    auto c = b.training(inputs(6), torch::full({6}, 0.5, torch::kFloat64), {&g1, &g2, &g3});
    const auto expected =
        p == 1.0 ? torch::full({6}, 4, torch::kInt64) : torch::tensor({0, 1, 2, 3, 0, 1}, torch::kInt64);
    CHECK(torch::equal(c.labels, expected));
    CHECK(c.control_drop.all().item<bool>() == (p == 0.0));
    CHECK(c.controls.sizes() == torch::IntArrayRef({6, models::kControlColumns}));
    CHECK(c.controls[3][models::control_col::kOrigH].item<float>() == 103.0f);
    CHECK(!c.tokens.defined());
  }
}

TEST_CASE("text task: captions encoded, padding replicated, pooled vectors, no controls unless asked") {
  ExperimentSpec s = spec("text", "none");
  s.recipe.conditioning.text_padding = ldm::TextPadding::Replicate;
  ConditionBuilder b(s, 1.0);
  const auto g = b.geometry(12, 16, 16);
  CHECK(g.num_classes == 0);
  CHECK(g.text_channels == 8);
  CHECK(g.text_tokens == 6);
  auto c = b.inference(inputs(2), false, false);
  CHECK(c.tokens.sizes() == torch::IntArrayRef({2, 6, 8}));
  CHECK(c.pooled.sizes() == torch::IntArrayRef({2, 8}));
  CHECK(!c.controls.defined());
  // "a red circle": 3 real tokens, slots 3..5 repeat slots 0..2
  CHECK(c.token_mask[1].sum().item<int64_t>() == 3);
  CHECK(torch::equal(c.tokens[1].narrow(0, 3, 3), c.tokens[1].narrow(0, 0, 3)));
  CHECK_FALSE(c.semantic_drop.any().item<bool>());
  auto dropped = b.with_drops(c, true, true);
  CHECK(dropped.semantic_drop.all().item<bool>());
  CHECK(torch::equal(dropped.tokens, c.tokens));  // the model substitutes its null caption
}

TEST_CASE("noisy_replicate padding adds noise of the configured scale in training and none at inference by default") {
  ExperimentSpec s = spec("text", "none");
  s.recipe.conditioning.text_padding = ldm::TextPadding::NoisyReplicate;
  s.recipe.conditioning.text_pad_noise = 0.5;
  s.recipe.conditioning.semantic_dropout = 0.0;
  ConditionBuilder b(s, 1.0);
  auto g1 = at::detail::createCPUGenerator(1), g2 = at::detail::createCPUGenerator(2),
       g3 = at::detail::createCPUGenerator(3);
  auto train = b.training(inputs(2), torch::full({2}, 0.5, torch::kFloat64), {&g1, &g2, &g3});
  auto infer = b.inference(inputs(2), false, false);
  auto diff = (train.tokens - infer.tokens)[1].narrow(0, 3, 3);  // padded slots of "a red circle"
  CHECK(diff.abs().max().item<double>() > 0.0);
  CHECK(std::abs(diff.std().item<double>() - 0.5) < 0.25);
  CHECK(torch::equal(train.tokens[1].narrow(0, 0, 3), infer.tokens[1].narrow(0, 0, 3)));  // real tokens untouched
}

TEST_CASE("w_alpha's noise level: raw time, or the resolution-shifted one") {
  ExperimentSpec s = spec("class", "proposed");
  const auto t = torch::tensor({0.25, 0.5}, torch::kFloat64);
  CHECK(torch::allclose(ConditionBuilder(s, 2.0).noise_level(t), t.to(torch::kFloat32)));
  s.recipe.conditioning.control_time = "shifted";
  CHECK(torch::allclose(ConditionBuilder(s, 2.0).noise_level(t), diffusion::shift_time(t, 2.0).to(torch::kFloat32)));
}

TEST_CASE("a control-conditioned recipe without control metadata is an error that says so") {
  ConditionBuilder b(spec("class", "sdxl"), 1.0);
  ConditionInputs in = inputs(2);
  in.controls.clear();
  CHECK_THROWS_WITH(b.inference(in, false, false), doctest::Contains("needs control metadata"));
}
