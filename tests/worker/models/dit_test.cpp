#include <torch/torch.h>
#include <doctest/doctest.h>

#include "shared/core/recipes/card.h"
#include "worker/models/dit.h"

using namespace ldm;
using namespace ldm::models;

namespace {
std::shared_ptr<Denoiser> tiny_dit(int64_t h, int64_t w, uint64_t seed, bool learn_sigma = false) {
  RecipeSpec r;
  r.family = "dit";
  r.preset = "tiny/2";
  r.learn_sigma = learn_sigma;
  auto gen = at::detail::createCPUGenerator(seed);
  return build_denoiser(r, {12, h, w, 10}, gen);
}
int64_t count(const std::shared_ptr<Denoiser>& m) {
  int64_t n = 0;
  for (auto& p : m->parameters()) n += p.numel();
  return n;
}
}  // namespace

TEST_CASE("DiT output has the input's shape, doubled channels with learned sigma, on non-square latents") {
  auto x = torch::randn({2, 12, 8, 12});
  auto t = torch::tensor({3, 999});
  auto y = torch::tensor({1, 10});  // 10 = the null class
  CHECK(tiny_dit(8, 12, 0)->forward(x, t, y).sizes() == torch::IntArrayRef({2, 12, 8, 12}));
  CHECK(tiny_dit(8, 12, 0, true)->forward(x, t, y).sizes() == torch::IntArrayRef({2, 24, 8, 12}));
}

TEST_CASE("DiT parameter count equals the analytic count of the preset table") {
  const PresetInfo* p = find_preset("dit", "tiny/2");
  REQUIRE(p);
  for (bool sigma : {false, true})
    CHECK(count(tiny_dit(16, 16, 0, sigma)) == analytic_param_count(*p, {12, 16, 10, sigma, true, 0, 0, {}}));
}

TEST_CASE("DiT uses the reference implementation's state-dict key names") {
  auto m = tiny_dit(16, 16, 0);
  auto params = m->named_parameters();
  for (const char* key :
       {"x_embedder.proj.weight", "t_embedder.mlp.0.weight", "t_embedder.mlp.2.bias",
        "y_embedder.embedding_table.weight", "pos_embed", "blocks.0.attn.qkv.weight", "blocks.1.attn.proj.bias",
        "blocks.0.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "blocks.0.adaLN_modulation.1.weight",
        "final_layer.linear.weight", "final_layer.adaLN_modulation.1.bias"})
    CHECK_MESSAGE(params.contains(key), key);
}

TEST_CASE("adaLN-Zero: at initialisation every block is the identity and the output is zero") {
  auto m = tiny_dit(16, 16, 0);
  auto x = torch::randn({2, 12, 16, 16});
  auto out = m->forward(x, torch::tensor({5, 500}), torch::tensor({0, 3}));
  CHECK(out.abs().max().item<double>() == 0.0);
  auto* dit = dynamic_cast<DiT*>(m.get());
  REQUIRE(dit);
  auto h = torch::randn({2, 64, 64});
  auto c = torch::randn({2, 64});
  for (auto& item : m->named_children())
    if (item.key() == "blocks")
      for (auto& b : *item.value()->as<torch::nn::ModuleList>())
        CHECK(torch::equal(b->as<DiTBlockImpl>()->forward(h, c), h));
}

TEST_CASE("DiT initialisation is a function of the generator seed only") {
  auto a = tiny_dit(16, 16, 1), b = tiny_dit(16, 16, 1), c = tiny_dit(16, 16, 2);
  auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters();
  CHECK(torch::equal(pa["blocks.0.attn.qkv.weight"], pb["blocks.0.attn.qkv.weight"]));
  CHECK(!torch::equal(pa["blocks.0.attn.qkv.weight"], pc["blocks.0.attn.qkv.weight"]));
}

TEST_CASE("2-D sin-cos positions: first half encodes the column, second half the row") {
  auto pe = sincos_2d(8, 2, 3);  // tokens row-major: t = row*3 + col
  CHECK(pe.sizes() == torch::IntArrayRef({6, 8}));
  // token (row 1, col 0) and token (row 0, col 0) share the column half
  CHECK(torch::equal(pe[3].narrow(0, 0, 4), pe[0].narrow(0, 0, 4)));
  CHECK(!torch::equal(pe[3].narrow(0, 4, 4), pe[0].narrow(0, 4, 4)));
  // position 0: sin(0) = 0, cos(0) = 1
  CHECK(pe[0][0].item<float>() == 0.0f);
  CHECK(pe[0][2].item<float>() == 1.0f);
}
