// Aspect-ratio buckets: a transformer built for one latent grid takes batches of another (the
// bucket's), with its positional embedding resampled the recipe's way; mDT-v2 refuses clearly.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include "shared/core/error.h"
#include "shared/core/spec.h"
#include "worker/models/blocks.h"
#include "worker/models/denoiser.h"
#include "worker/models/pos_embed.h"

namespace bucket_grid_test {

using ldm::recipe_defaults;
using ldm::RecipeSpec;
using ldm::models::build_denoiser;
using ldm::models::Condition;
using ldm::models::pos_embed_for_grid;
using ldm::models::resample_pos_embed;
using ldm::models::sincos_2d;

Condition class_condition(int64_t n) {
  Condition c;
  c.labels = torch::arange(n) % 3;
  return c;
}

}  // namespace bucket_grid_test

using namespace bucket_grid_test;

TEST_CASE("dit, pixart, mmdit and proposed built for 8x8 latents run on 8x12 and 12x8 bucket grids") {
  for (const std::string family : {"dit", "pixart", "mmdit", "proposed", "unet"}) {
    CAPTURE(family);
    RecipeSpec recipe = recipe_defaults(family);
    recipe.preset = family == "unet" ? "tiny" : "tiny/2";
    recipe.conditioning.controls = ldm::ControlMode::None;  // labels only (the proposed recipe defaults to controls)
    auto gen = at::detail::createCPUGenerator(3);
    auto model = build_denoiser(recipe, {4, 8, 8, 3}, gen);
    // Non-zero outputs: redraw the zero-initialised tensors.
    {
      torch::NoGradGuard g;
      auto params = model->named_parameters(true);
      for (const auto& name : model->zero_initialised()) params[name].normal_(0.0, 0.02);
    }
    const auto t = torch::full({2}, 0.5);
    for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 12}, {12, 8}, {8, 8}}) {
      auto x = torch::randn({2, 4, h, w});
      auto y = model->forward(x, t, class_condition(2));
      CHECK(y.sizes() == torch::IntArrayRef({2, recipe.learn_sigma ? 8 : 4, h, w}));  // learned sigma doubles C
      CHECK(torch::isfinite(y).all().item<bool>());
    }
  }
}

TEST_CASE("the bucket grid's positional embedding is the built one resampled with the recipe's mode") {
  const auto built = sincos_2d(16, 4, 4).unsqueeze(0);
  const auto interpolate = ldm::PosEmbedResampling::Interpolate;
  const auto center = ldm::GridConvention::Center;
  CHECK(pos_embed_for_grid(built, 4, 4, 4, 4, interpolate, center).data_ptr() == built.data_ptr());
  CHECK(torch::equal(pos_embed_for_grid(built, 4, 4, 3, 5, ldm::PosEmbedResampling::Extrapolate, center),
                     sincos_2d(16, 3, 5).unsqueeze(0)));
  CHECK(torch::allclose(pos_embed_for_grid(built, 4, 4, 3, 5, interpolate, center),
                        resample_pos_embed(built, 4, 4, 3, 5, interpolate, center)));
}

TEST_CASE("mDT-v2 refuses another latent grid than the one it was built for, saying so") {
  RecipeSpec recipe = recipe_defaults("mdt");
  recipe.preset = "tiny/2";
  auto gen = at::detail::createCPUGenerator(3);
  auto model = build_denoiser(recipe, {4, 8, 8, 3}, gen);
  CHECK_THROWS_WITH(model->forward(torch::randn({1, 4, 8, 12}), torch::full({1}, 0.5), class_condition(1)),
                    doctest::Contains("not supported yet for mDT-v2"));
}
