#include <torch/torch.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "worker/models/unet.h"

namespace unet_test {
using namespace ldm;
using namespace ldm::models;

constexpr int64_t kClasses = 10, kTextChannels = 24, kTokens = 6;

// The family's presets, from its recipe card.
const PresetInfo& preset(const std::string& name) { return recipe_preset("unet", name); }

RecipeSpec recipe(bool learn_sigma = false, const std::string& controls = "none", bool mask_padding = false) {
  RecipeSpec r;
  r.family = "unet";
  r.preset = "tiny";
  r.learn_sigma = learn_sigma;
  r.conditioning.controls = parse_choice<ControlMode>(controls, "controls");
  r.conditioning.mask_padding = mask_padding;
  return r;
}

ModelGeometry geometry(int64_t h, int64_t w, bool text) {
  ModelGeometry g{4, h, w, text ? 0 : kClasses};
  if (text) {
    g.text_channels = kTextChannels;
    g.text_tokens = kTokens;
  }
  return g;
}

std::shared_ptr<Denoiser> build(const ModelGeometry& g, const RecipeSpec& r, uint64_t seed = 0,
                                const std::string& name = "tiny") {
  auto m = build_unet(preset(name), g, r);
  auto gen = at::detail::createCPUGenerator(seed);
  m->initialize(gen);
  return m;
}

// LDM-4-G's layout (channel_mult 1,2,3,5: three down-samplings; attention at ds 2, 4, 8 and in the
// middle; one head per site) at CPU width.
std::shared_ptr<UNet> ldm4g_layout(int64_t h, int64_t w) {
  UNetConfig c;
  c.latent_h = h;
  c.latent_w = w;
  c.model_channels = 32;
  c.num_res_blocks = 1;
  c.context_dim = 16;
  c.num_classes = kClasses;
  auto m = std::make_shared<UNet>(c);
  auto gen = at::detail::createCPUGenerator(0);
  m->initialize(gen);
  return m;
}

int64_t count(const std::shared_ptr<Denoiser>& m) {
  int64_t n = 0;
  for (auto& p : m->parameters()) n += p.numel();
  return n;
}

// Redraws every tensor zero_initialised() names from N(0, 0.02) so the output depends on the input.
void randomize_zeros(Denoiser& m, uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed);
  auto params = m.named_parameters();
  for (const auto& name : m.zero_initialised()) params[name].normal_(0.0, 0.02, gen);
}

Condition class_cond(std::vector<int64_t> labels) {
  Condition c;
  c.labels = torch::tensor(labels);
  return c;
}

Condition text_cond(int64_t n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  Condition c;
  c.tokens = torch::randn({n, kTokens, kTextChannels}, gen);
  c.token_mask = torch::zeros({n, kTokens}, torch::kBool);
  for (int64_t i = 0; i < n; ++i) c.token_mask.index_put_({i, torch::indexing::Slice(0, 2 + i)}, true);
  return c;
}

// [N, 8] plausible control metadata (sizes, crop, flip, aspect).
torch::Tensor controls(int64_t n) {
  auto c = torch::zeros({n, kControlColumns});
  for (int64_t i = 0; i < n; ++i) {
    c[i][control_col::kOrigH] = 256.0 + 64 * i;
    c[i][control_col::kOrigW] = 320.0;
    c[i][control_col::kCropTop] = 8.0 * i;
    c[i][control_col::kCropH] = 256.0;
    c[i][control_col::kCropW] = 256.0;
    c[i][control_col::kFlip] = double(i % 2);
    c[i][control_col::kAspect] = 320.0 / (256.0 + 64 * i);
  }
  return c;
}

ModelShape shape(bool text, bool learn_sigma = false, int latent = 8) {
  ModelShape s;
  s.in_channels = 4;
  s.latent_size = latent;
  s.num_classes = text ? 0 : int(kClasses);
  s.learn_sigma = learn_sigma;
  s.class_dropout = true;
  if (text) {
    s.text_channels = int(kTextChannels);
    s.text_tokens = int(kTokens);
  }
  return s;
}

}  // namespace unet_test

TEST_CASE("UNet output has the input's shape (doubled with learned sigma), square and non-square, class and text") {
  auto t = torch::tensor({3.0, 999.0});
  for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 8}, {8, 12}, {12, 4}}) {
    auto x = torch::randn({2, 4, h, w});
    for (bool sigma : {false, true}) {
      const int64_t c_out = sigma ? 8 : 4;
      auto cls = unet_test::build(unet_test::geometry(h, w, false), unet_test::recipe(sigma));
      CHECK(cls->out_channels() == c_out);
      CHECK(cls->forward(x, t, unet_test::class_cond({1, unet_test::kClasses})).sizes() ==
            torch::IntArrayRef({2, c_out, h, w}));
      auto txt = unet_test::build(unet_test::geometry(h, w, true), unet_test::recipe(sigma, "none", true));
      CHECK(txt->forward(x, t, unet_test::text_cond(2, 1)).sizes() == torch::IntArrayRef({2, c_out, h, w}));
    }
  }
  // LDM-4-G's layout (three down-samplings, one head) on a non-square latent.
  auto deep = unet_test::ldm4g_layout(8, 16);
  CHECK(deep->config().channel_mult == std::vector<int64_t>{1, 2, 3, 5});
  CHECK(deep->forward(torch::randn({2, 4, 8, 16}), t, unet_test::class_cond({3, 0})).sizes() ==
        torch::IntArrayRef({2, 4, 8, 16}));
}

TEST_CASE("UNet refuses latent sides not divisible by 2^(levels-1), naming the sizes") {
  using ldm::Error;
  CHECK_THROWS_WITH_AS(unet_test::build(unet_test::geometry(8, 7, false), unet_test::recipe()),
                       doctest::Contains("8x7"), Error);
  auto m = unet_test::build(unet_test::geometry(8, 8, false), unet_test::recipe());
  CHECK_THROWS_WITH_AS(m->forward(torch::randn({1, 4, 6, 9}), torch::tensor({1.0}), unet_test::class_cond({0})),
                       doctest::Contains("6x9"), Error);
  auto deep = unet_test::ldm4g_layout(8, 8);
  CHECK_THROWS_WITH_AS(deep->forward(torch::randn({1, 4, 12, 8}), torch::tensor({1.0}), unet_test::class_cond({0})),
                       doctest::Contains("divisible by 2^(levels-1) = 8"), Error);
}

TEST_CASE("UNet uses UNetModel's state-dict key names") {
  auto cls = unet_test::build(unet_test::geometry(8, 8, false), unet_test::recipe())->named_parameters();
  auto txt = unet_test::build(unet_test::geometry(8, 8, true), unet_test::recipe())->named_parameters();
  // tiny: input_blocks 0 conv, 1 ResBlock(32), 2 Downsample, 3 ResBlock(32->64)+SpatialTransformer;
  // output_blocks 0-1 ResBlock+SpatialTransformer, 1 also Upsample at index 2, 2-3 ResBlocks.
  for (const char* key : {"time_embed.0.weight",
                          "time_embed.0.bias",
                          "time_embed.2.weight",
                          "time_embed.2.bias",
                          "input_blocks.0.0.weight",
                          "input_blocks.0.0.bias",
                          "input_blocks.1.0.in_layers.0.weight",
                          "input_blocks.1.0.in_layers.2.weight",
                          "input_blocks.1.0.emb_layers.1.weight",
                          "input_blocks.1.0.out_layers.0.bias",
                          "input_blocks.1.0.out_layers.3.weight",
                          "input_blocks.2.0.op.weight",
                          "input_blocks.3.0.skip_connection.weight",
                          "input_blocks.3.1.norm.weight",
                          "input_blocks.3.1.proj_in.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn1.to_q.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn1.to_k.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn1.to_v.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn1.to_out.0.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn1.to_out.0.bias",
                          "input_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight",
                          "input_blocks.3.1.transformer_blocks.0.ff.net.2.weight",
                          "input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight",
                          "input_blocks.3.1.transformer_blocks.0.norm1.weight",
                          "input_blocks.3.1.transformer_blocks.0.norm3.bias",
                          "input_blocks.3.1.proj_out.weight",
                          "middle_block.0.in_layers.2.weight",
                          "middle_block.1.proj_in.weight",
                          "middle_block.2.out_layers.3.bias",
                          "output_blocks.0.0.skip_connection.weight",
                          "output_blocks.0.1.proj_out.bias",
                          "output_blocks.1.2.conv.weight",
                          "output_blocks.3.0.skip_connection.weight",
                          "out.0.weight",
                          "out.0.bias",
                          "out.2.weight",
                          "out.2.bias"}) {
    CHECK_MESSAGE(cls.contains(key), key);
    CHECK_MESSAGE(txt.contains(key), key);
  }
  CHECK_FALSE(cls.contains("input_blocks.1.0.skip_connection.weight"));                // Identity when widths match
  CHECK_FALSE(cls.contains("input_blocks.3.1.transformer_blocks.0.attn1.to_q.bias"));  // no q/k/v bias
  CHECK(cls.contains("class_embedder.embedding.weight"));
  CHECK_FALSE(txt.contains("class_embedder.embedding.weight"));
  // Cross-attention k/v read the context width: the class token (context_dim 32) or the caption tokens.
  CHECK(cls["middle_block.1.transformer_blocks.0.attn2.to_k.weight"].sizes() == torch::IntArrayRef({64, 32}));
  CHECK(txt["middle_block.1.transformer_blocks.0.attn2.to_k.weight"].sizes() ==
        torch::IntArrayRef({64, unet_test::kTextChannels}));
  auto ctl = unet_test::build(unet_test::geometry(8, 8, false), unet_test::recipe(false, "sdxl"))->named_parameters();
  CHECK(ctl.contains("control_embedder.size.0.weight"));
  CHECK(ctl["control_embedder.size.2.weight"].sizes() == torch::IntArrayRef({128, 128}));  // 4·model_channels
}

TEST_CASE("UNet parameter count equals unet_param_count (class, text, controls, learned sigma)") {
  using unet_test::shape;
  for (const char* name : {"tiny", "small"})
    for (bool sigma : {false, true}) {
      INFO(name << " learn_sigma " << sigma);
      const auto& p = unet_test::preset(name);
      CHECK(unet_test::count(unet_test::build(unet_test::geometry(8, 8, false), unet_test::recipe(sigma), 0, name)) ==
            ldm::analytic_param_count(p, shape(false, sigma)));
      CHECK(unet_test::count(unet_test::build(unet_test::geometry(8, 8, true), unet_test::recipe(sigma), 0, name)) ==
            ldm::analytic_param_count(p, shape(true, sigma)));
    }
  const auto& tiny = unet_test::preset("tiny");
  for (bool text : {false, true}) {
    auto s = shape(text);
    s.controls.enabled = true;  // sdxl: every group, 256 Fourier features, zero null
    CHECK(unet_test::count(unet_test::build(unet_test::geometry(8, 8, text), unet_test::recipe(false, "sdxl"))) ==
          ldm::analytic_param_count(tiny, s));
    auto r = unet_test::recipe(false, "proposed");
    r.conditioning.use_crop = false;
    r.conditioning.dropped_controls = "learned";
    s.controls.crop = false;
    s.controls.learned_null = true;
    CHECK(unet_test::count(unet_test::build(unet_test::geometry(8, 8, text), r)) == ldm::analytic_param_count(tiny, s));
  }
  // Without the null class row.
  auto s = shape(false);
  s.class_dropout = false;
  CHECK(ldm::analytic_param_count(tiny, shape(false)) - ldm::analytic_param_count(tiny, s) == tiny.context_dim);
}

TEST_CASE("LDM-4-G's analytic parameter count matches the LDM paper's ~400M") {
  const auto& p = unet_test::preset("LDM-4-G");
  CHECK(p.model_channels == 192);
  CHECK(p.channel_mult == std::vector<int>{1, 2, 3, 5});
  // The original: f=4, 3-channel 64x64 VQ latents, 1000 classes + LDM's unconditional class 1000.
  ldm::ModelShape original;
  original.in_channels = 3;
  original.latent_size = 64;
  original.num_classes = 1000;
  original.learn_sigma = false;
  original.class_dropout = true;
  const int64_t with_embedder = ldm::analytic_param_count(p, original);
  const int64_t embedder = 1001 * 512;
  CHECK(with_embedder - embedder == 400920579);  // model.diffusion_model.* of the reference
  CHECK(std::abs(double(with_embedder) / 400e6 - 1.0) < 0.02);
  CHECK(std::abs(double(with_embedder - embedder) / 400e6 - 1.0) < 0.02);
  // Our default latents (4 x 32 x 32) change only the in/out convolutions: one more input channel
  // of input_blocks.0.0, one more output channel (and bias) of out.2.
  ldm::ModelShape ours = original;
  ours.in_channels = 4;
  ours.latent_size = 32;
  CHECK(ldm::analytic_param_count(p, ours) - with_embedder == 192 * 9 + (192 * 9 + 1));
  // 4x the pixels, more than 4x the cost (attention is quadratic in tokens).
  CHECK(ldm::analytic_gflops(p, original) > 4 * ldm::analytic_gflops(p, ours));
}

TEST_CASE("UNet at initialisation outputs exactly zero, zero_initialised names exactly the zero_module tensors") {
  auto x = torch::randn({2, 4, 8, 12});
  auto t = torch::tensor({5.0, 500.0});
  auto cls = unet_test::build(unet_test::geometry(8, 12, false), unet_test::recipe(true), 3);
  CHECK(cls->forward(x, t, unet_test::class_cond({0, 4})).abs().max().item<double>() == 0.0);
  auto txt = unet_test::build(unet_test::geometry(8, 12, true), unet_test::recipe(false, "sdxl"), 3);
  auto c = unet_test::text_cond(2, 2);
  c.controls = unet_test::controls(2);
  CHECK(txt->forward(x, t, c).abs().max().item<double>() == 0.0);

  auto params = cls->named_parameters();
  auto zeros = cls->zero_initialised();
  // tiny: 8 ResBlocks (out_layers.3), 4 SpatialTransformers (proj_out), out.2; weight and bias each.
  CHECK(zeros.size() == 2 * (8 + 4 + 1));
  for (const auto& name : zeros) {
    INFO(name);
    REQUIRE(params.contains(name));
    CHECK(params[name].abs().max().item<double>() == 0.0);
  }
  // Every other weight (not biases, not norms) is drawn.
  for (const auto& item : params) {
    const auto& k = item.key();
    if (std::find(zeros.begin(), zeros.end(), k) != zeros.end() || item.value().dim() < 2) continue;
    INFO(k);
    CHECK(item.value().abs().max().item<double>() > 0.0);
  }
  // After redrawing them, the output depends on the condition.
  unet_test::randomize_zeros(*cls, 7);
  auto a = cls->forward(x, t, unet_test::class_cond({0, 4}));
  auto b = cls->forward(x, t, unet_test::class_cond({1, 4}));
  CHECK(a.abs().max().item<double>() > 0.0);
  CHECK_FALSE(torch::allclose(a[0], b[0]));
  CHECK(torch::allclose(a[1], b[1]));
}

TEST_CASE("UNet initialisation is a function of the generator seed only, with PyTorch's default bounds") {
  auto g = unet_test::geometry(8, 8, false);
  auto a = unet_test::build(g, unet_test::recipe(), 1), b = unet_test::build(g, unet_test::recipe(), 1);
  auto c = unet_test::build(g, unet_test::recipe(), 2);
  torch::manual_seed(123);  // the global generator must not matter
  auto d = unet_test::build(g, unet_test::recipe(), 1);
  auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters(), pd = d->named_parameters();
  for (const auto& item : pa) {
    INFO(item.key());
    CHECK(torch::equal(item.value(), pb[item.key()]));
    CHECK(torch::equal(item.value(), pd[item.key()]));
  }
  CHECK_FALSE(torch::equal(pa["input_blocks.3.1.proj_in.weight"], pc["input_blocks.3.1.proj_in.weight"]));
  // kaiming_uniform(a=√5): |w| <= 1/√fan_in, with fan_in = in · k · k.
  auto w = pa["input_blocks.1.0.in_layers.2.weight"];  // conv3x3 32 -> 32
  CHECK(w.abs().max().item<double>() <= 1.0 / std::sqrt(32.0 * 9) + 1e-7);
  CHECK(w.abs().max().item<double>() > 0.9 / std::sqrt(32.0 * 9));
  CHECK(pa["input_blocks.1.0.in_layers.0.weight"].eq(1).all().item<bool>());  // GroupNorm scale 1
  CHECK(pa["class_embedder.embedding.weight"].std().item<double>() == doctest::Approx(1.0).epsilon(0.1));
}

TEST_CASE("UNet class task: the null class row exists and semantic_drop selects it") {
  auto m = unet_test::build(unet_test::geometry(8, 8, false), unet_test::recipe(), 4);
  auto emb = m->named_parameters()["class_embedder.embedding.weight"];
  CHECK(emb.sizes() == torch::IntArrayRef({unet_test::kClasses + 1, 32}));  // rows 0..9 + null 10
  unet_test::randomize_zeros(*m, 5);
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({10.0, 20.0});
  auto null = m->forward(x, t, unet_test::class_cond({unet_test::kClasses, unet_test::kClasses}));
  auto dropped = unet_test::class_cond({2, 3});
  dropped.semantic_drop = torch::tensor({true, true});
  CHECK(torch::equal(null, m->forward(x, t, dropped)));
  CHECK_FALSE(torch::allclose(null, m->forward(x, t, unet_test::class_cond({2, 3}))));
  CHECK_THROWS_WITH_AS(m->forward(x, t, ldm::models::Condition{}), doctest::Contains("labels"), ldm::Error);
}

TEST_CASE("UNet text task: dropped captions are zero tokens, mask_padding hides padding slots") {
  auto g = unet_test::geometry(8, 8, true);
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({10.0, 900.0});
  auto c = unet_test::text_cond(2, 3);
  auto changed = c;
  changed.tokens = c.tokens.clone();
  changed.tokens.index_put_({torch::indexing::Slice(), torch::indexing::Slice(4, torch::indexing::None)}, 5.0);
  // slots 4, 5 are padding for both samples (lengths 2 and 3)
  auto masked = unet_test::build(g, unet_test::recipe(false, "none", true), 6);
  unet_test::randomize_zeros(*masked, 1);
  CHECK(torch::allclose(masked->forward(x, t, c), masked->forward(x, t, changed), 1e-5, 1e-6));
  auto unmasked = unet_test::build(g, unet_test::recipe(false, "none", false), 6);
  unet_test::randomize_zeros(*unmasked, 1);
  CHECK_FALSE(torch::allclose(unmasked->forward(x, t, c), unmasked->forward(x, t, changed), 1e-5, 1e-6));
  // A dropped caption is the all-zero caption.
  auto dropped = c;
  dropped.semantic_drop = torch::tensor({true, false});
  auto zeroed = c;
  zeroed.tokens = c.tokens.clone();
  zeroed.tokens[0].zero_();
  CHECK(torch::equal(unmasked->forward(x, t, dropped), unmasked->forward(x, t, zeroed)));
  // mask_padding needs the token mask.
  auto no_mask = c;
  no_mask.token_mask = torch::Tensor();
  CHECK_THROWS_WITH_AS(masked->forward(x, t, no_mask), doctest::Contains("token_mask"), ldm::Error);
}

TEST_CASE("UNet with controls adds the control embedding to the timestep embedding") {
  auto m = unet_test::build(unet_test::geometry(8, 8, false), unet_test::recipe(false, "sdxl"), 8);
  unet_test::randomize_zeros(*m, 2);
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({10.0, 20.0});
  auto c = unet_test::class_cond({1, 2});
  CHECK_THROWS_WITH_AS(m->forward(x, t, c), doctest::Contains("controls"), ldm::Error);
  c.controls = unet_test::controls(2);
  auto with = m->forward(x, t, c);
  auto dropped = c;
  dropped.control_drop = torch::tensor({true, false});
  auto out = m->forward(x, t, dropped);
  CHECK_FALSE(torch::allclose(with[0], out[0]));
  CHECK(torch::allclose(with[1], out[1]));
  // proposed (noise-weighted) controls need the noise level.
  auto p = unet_test::build(unet_test::geometry(8, 8, false), unet_test::recipe(false, "proposed"), 8);
  CHECK_THROWS_WITH_AS(p->forward(x, t, c), doctest::Contains("noise_level"), ldm::Error);
  c.noise_level = torch::tensor({0.2, 0.9});
  CHECK(p->forward(x, t, c).sizes() == torch::IntArrayRef({2, 4, 8, 8}));
}
