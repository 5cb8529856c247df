// load_weights: exact copies by name, positional embeddings resampled across token grids, and
// errors that name the source and the key.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include "shared/core/error.h"
#include "worker/io/weights.h"
#include "worker/models/denoiser.h"
#include "worker/models/pos_embed.h"

using namespace ldm;
using namespace ldm::worker;

namespace weights_test {

std::shared_ptr<models::Denoiser> dit(int64_t side, uint64_t seed) {
  RecipeSpec r;
  r.family = "dit";
  r.preset = "tiny/2";
  auto gen = at::detail::createCPUGenerator(seed);
  return models::build_denoiser(r, {4, side, side, 5}, gen);
}

}  // namespace weights_test

using namespace weights_test;

TEST_CASE("load_weights copies every tensor by name, same grid is an exact copy") {
  auto a = dit(8, 1), b = dit(8, 2);
  CHECK(load_weights(*b, model_state(*a), "a.safetensors") == 0);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) CHECK(torch::equal(p.value(), pb[p.key()]));
}

TEST_CASE("load_weights resamples pos_embed to the new token grid with the configured mode") {
  auto a = dit(8, 1), b = dit(16, 2);  // 4x4 tokens -> 8x8 tokens
  auto state = model_state(*a);
  {  // a learned-looking map, so interpolate is distinguishable from regenerating sin-cos
    torch::NoGradGuard no_grad;
    state["pos_embed"] = state["pos_embed"] + 0.1 * torch::randn_like(state["pos_embed"]);
  }
  for (PosEmbedResampling mode :
       {PosEmbedResampling::Interpolate, PosEmbedResampling::Extrapolate, PosEmbedResampling::RectifiedGrid}) {
    CAPTURE(choice_name(mode));
    GridChange g{4, 4, 8, 8, mode, GridConvention::Center};
    CHECK(load_weights(*b, state, "a.safetensors", g) == 1);
    auto expected = models::resample_pos_embed(state["pos_embed"], 4, 4, 8, 8, mode, GridConvention::Center);
    CHECK(torch::equal(b->named_parameters()["pos_embed"], expected));
    CHECK(torch::equal(b->named_parameters()["blocks.0.attn.qkv.weight"], state["blocks.0.attn.qkv.weight"]));
  }
}

TEST_CASE("load_weights names the source and key of missing, unexpected and mis-shaped tensors") {
  auto a = dit(8, 1), b = dit(8, 2);
  auto missing = model_state(*a);
  missing.erase("blocks.1.mlp.fc2.weight");
  CHECK_THROWS_WITH_AS(load_weights(*b, missing, "w.safetensors"),
                       doctest::Contains("w.safetensors: no tensor 'blocks.1.mlp.fc2.weight'"), DataError);
  auto extra = model_state(*a);
  extra["stray"] = torch::zeros({1});
  CHECK_THROWS_WITH_AS(load_weights(*b, extra, "w.safetensors"), doctest::Contains("'stray'"), DataError);
  CHECK(load_weights(*b, extra, "w.safetensors", {}, /*allow_unexpected=*/true) == 0);
  // Another grid without a declared grid change: pos_embed does not fit and is not resampled.
  auto big = dit(16, 3);
  CHECK_THROWS_WITH_AS(load_weights(*b, model_state(*big), "big.safetensors"),
                       doctest::Contains("'pos_embed' has shape"), DataError);
}
