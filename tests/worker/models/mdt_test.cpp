#include <torch/torch.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "worker/models/mdt.h"

using namespace ldm;
using namespace ldm::models;

namespace mdt_test {
constexpr int64_t kClasses = 10, kText = 32, kTokens = 8;

const PresetInfo& preset(const std::string& name) { return recipe_preset("mdt", name); }

// tiny/2 configuration (4 blocks = 1 in + 1 out + 2 decoder, width 64, 4 heads) for an h × w latent.
MDTConfig tiny(int64_t h, int64_t w, bool text, bool learn_sigma = false, double mask_ratio = 0.3) {
  const auto& p = preset("tiny/2");
  MDTConfig c;
  c.in_channels = 4;
  c.latent_h = h;
  c.latent_w = w;
  c.patch = p.patch;
  c.width = p.width;
  c.heads = p.heads;
  c.depth = p.depth;
  c.decoder_depth = p.decoder_depth;
  c.learn_sigma = learn_sigma;
  c.mask_ratio = mask_ratio;
  c.num_classes = text ? 0 : kClasses;
  c.text_channels = text ? kText : 0;
  return c;
}

std::shared_ptr<MDT> build(const MDTConfig& c, uint64_t seed = 0) {
  auto m = std::make_shared<MDT>(c);
  auto gen = at::detail::createCPUGenerator(seed);
  m->initialize(gen);
  return m;
}

// Redraws every trainable tensor that initialize() left at exactly zero (adaLN modulation, output
// linear, cross-attention projections, biases) from N(0, 0.02), so every path carries signal.
void randomize_zeros(MDT& m, uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m.named_parameters())
    if (p.value().requires_grad() && p.value().abs().max().item<double>() == 0.0) p.value().normal_(0.0, 0.02, gen);
}

Condition labels(std::vector<int64_t> y) {
  Condition c;
  c.labels = torch::tensor(y);
  return c;
}

Condition caption(int64_t n, uint64_t seed = 11) {
  auto gen = at::detail::createCPUGenerator(seed);
  Condition c;
  c.tokens = torch::randn({n, kTokens, kText}, gen);
  c.token_mask = torch::zeros({n, kTokens}, torch::kBool);
  for (int64_t i = 0; i < n; ++i) c.token_mask.index_put_({i, torch::indexing::Slice(0, 5 - 3 * (i % 2))}, true);
  return c;
}

int64_t numel(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

ModelShape shape(int latent, bool text, bool learn_sigma, bool controls) {
  ModelShape s;
  s.in_channels = 4;
  s.latent_size = latent;
  s.learn_sigma = learn_sigma;
  s.num_classes = text ? 0 : int(kClasses);
  s.text_channels = text ? int(kText) : 0;
  s.text_tokens = text ? int(kTokens) : 0;
  s.controls.enabled = controls;
  return s;
}

std::shared_ptr<Denoiser> build_from(const PresetInfo& p, const ModelShape& s) {
  ModelGeometry g{s.in_channels, s.latent_size, s.latent_size, s.num_classes, s.text_channels, s.text_tokens};
  RecipeSpec r;
  r.family = "mdt";
  r.preset = p.name;
  r.learn_sigma = s.learn_sigma;
  r.conditioning.controls = s.controls.enabled ? ControlMode::Proposed : ControlMode::None;
  return build_mdt(p, g, r);
}

// The test cases live in the helpers' namespace too: a unity build merges test files whose
// file-local helpers share these short names.

TEST_CASE(
    "mDT class task: both outputs have the input's shape (doubled channels with learned sigma), square and "
    "non-square") {
  auto t = torch::tensor({3.0, 999.0});
  auto cond = labels({1, kClasses});  // kClasses = the null class
  for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 8}, {8, 12}}) {
    auto x = torch::randn({2, 4, h, w});
    auto m = build(tiny(h, w, false));
    CHECK(m->forward(x, t, cond).sizes() == torch::IntArrayRef({2, 4, h, w}));
    auto sigma = build(tiny(h, w, false, true));
    CHECK(sigma->out_channels() == 8);
    auto gen = at::detail::createCPUGenerator(1);
    auto outs = sigma->training_outputs(x, t, cond, gen);
    REQUIRE(outs.size() == 2);
    for (const auto& o : outs) CHECK(o.sizes() == torch::IntArrayRef({2, 8, h, w}));
  }
}

TEST_CASE("mDT text task: both outputs have the input's shape, square and non-square, with and without padding masks") {
  auto t = torch::tensor({0.5, 700.0});
  for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 8}, {12, 8}}) {
    auto x = torch::randn({2, 4, h, w});
    for (bool mask_padding : {false, true}) {
      auto c = tiny(h, w, true, true);
      c.mask_padding = mask_padding;
      auto m = build(c);
      CHECK(m->forward(x, t, caption(2)).sizes() == torch::IntArrayRef({2, 8, h, w}));
      auto gen = at::detail::createCPUGenerator(2);
      auto outs = m->training_outputs(x, t, caption(2), gen);
      REQUIRE(outs.size() == 2);
      CHECK(outs[1].sizes() == torch::IntArrayRef({2, 8, h, w}));
    }
  }
  // The text model needs tokens; the class model needs labels.
  auto x = torch::randn({1, 4, 8, 8});
  CHECK_THROWS_AS(build(tiny(8, 8, true))->forward(x, torch::tensor({1.0}), labels({1})), Error);
  CHECK_THROWS_AS(build(tiny(8, 8, false))->forward(x, torch::tensor({1.0}), caption(1)), Error);
}

TEST_CASE("mDT uses the reference's (sail-sg/MDT MDTv2) state-dict key names") {
  auto cls_model = build(tiny(8, 12, false));
  auto cls = cls_model->named_parameters();
  const char* keys[] = {"x_embedder.proj.weight",
                        "x_embedder.proj.bias",
                        "t_embedder.mlp.0.weight",
                        "t_embedder.mlp.2.bias",
                        "y_embedder.embedding_table.weight",
                        "pos_embed",
                        "en_inblocks.0.attn.qkv.weight",
                        "en_inblocks.0.attn.qkv.bias",
                        "en_inblocks.0.attn.proj.bias",
                        "en_inblocks.0.attn.rel_pos_bias.relative_position_bias_table",
                        "en_inblocks.0.mlp.fc1.weight",
                        "en_inblocks.0.mlp.fc2.bias",
                        "en_inblocks.0.adaLN_modulation.1.weight",
                        "en_outblocks.0.skip_linear.weight",
                        "en_outblocks.0.skip_linear.bias",
                        "en_outblocks.0.adaLN_modulation.1.bias",
                        "de_blocks.0.skip_linear.weight",
                        "de_blocks.1.attn.qkv.weight",
                        "de_blocks.1.mlp.fc2.weight",
                        "sideblocks.0.attn.qkv.weight",
                        "sideblocks.0.adaLN_modulation.1.weight",
                        "final_layer.linear.weight",
                        "final_layer.linear.bias",
                        "final_layer.adaLN_modulation.1.weight",
                        "decoder_pos_embed",
                        "mask_token"};
  for (const char* key : keys) CHECK_MESSAGE(cls.contains(key), key);
  CHECK_FALSE(cls.contains("en_inblocks.0.skip_linear.weight"));
  CHECK_FALSE(cls.contains("sideblocks.0.skip_linear.weight"));
  CHECK_FALSE(cls.contains("en_inblocks.1.attn.qkv.weight"));  // tiny/2: one block per encoder half
  CHECK_FALSE(cls.contains("de_blocks.2.attn.qkv.weight"));
  CHECK(cls["y_embedder.embedding_table.weight"].size(0) == kClasses + 1);  // null class row
  CHECK(cls["en_outblocks.0.skip_linear.weight"].sizes() == torch::IntArrayRef({64, 128}));
  // 8×12 latent, patch 2 -> 4×6 grid: (2·4 − 1)(2·6 − 1) + 3 relative distances, one column per head.
  CHECK(cls["de_blocks.0.attn.rel_pos_bias.relative_position_bias_table"].sizes() ==
        torch::IntArrayRef({7 * 11 + 3, 4}));
  CHECK(cls["pos_embed"].sizes() == torch::IntArrayRef({1, 24, 64}));
  CHECK(cls["mask_token"].sizes() == torch::IntArrayRef({1, 1, 64}));
  CHECK(cls["pos_embed"].requires_grad());  // learned, sin-cos initialised (unlike DiT)
  CHECK(cls["decoder_pos_embed"].requires_grad());
  auto buffers = cls_model->named_buffers();
  REQUIRE(buffers.contains("en_inblocks.0.attn.rel_pos_bias.relative_position_index"));
  auto index = buffers["en_inblocks.0.attn.rel_pos_bias.relative_position_index"];
  CHECK(index.sizes() == torch::IntArrayRef({24, 24}));
  // BEiT's index: (Δrow + 3)·11 + (Δcol + 5); token 0 = (0, 0), token 23 = (3, 5).
  CHECK(index[0][0].item<int64_t>() == 3 * 11 + 5);
  CHECK(index[0][23].item<int64_t>() == 0);
  CHECK(index[23][0].item<int64_t>() == 6 * 11 + 10);
  CHECK(index[7][0].item<int64_t>() == (1 + 3) * 11 + (1 + 5));  // token 7 = (1, 1)

  auto txt = build(tiny(8, 8, true))->named_parameters();
  CHECK(txt.contains("y_embedder.y_proj.fc1.weight"));
  CHECK(txt["y_embedder.y_proj.fc1.weight"].sizes() == torch::IntArrayRef({64, kText}));
  CHECK(txt.contains("y_embedder.y_proj.fc2.bias"));
  CHECK(txt.contains("en_inblocks.0.cross_attn.q_linear.weight"));
  CHECK(txt.contains("sideblocks.0.cross_attn.kv_linear.bias"));
  CHECK(txt.contains("de_blocks.1.cross_attn.proj.weight"));
  CHECK_FALSE(txt.contains("y_embedder.embedding_table.weight"));

  auto with_controls = build_from(preset("tiny/2"), shape(8, false, false, true))->named_parameters();
  CHECK(with_controls.contains("control_embedder.size.0.weight"));
  CHECK(with_controls.contains("control_embedder.aspect.2.bias"));
}

TEST_CASE("mDT: the built module's parameter count equals mdt_param_count (tiny, small, S/2, class, text, controls)") {
  struct Case {
    const char* preset;
    int latent;
  };
  for (auto [name, latent] : {Case{"tiny/2", 8}, Case{"tiny/2", 16}, Case{"small/2", 8}, Case{"S/2", 8}}) {
    for (bool text : {false, true})
      for (bool learn_sigma : {false, true})
        for (bool controls : {false, true}) {
          if (std::string(name) == "S/2" && (learn_sigma || controls)) continue;  // keep the test quick
          const auto s = shape(latent, text, learn_sigma, controls);
          auto m = build_from(preset(name), s);
          INFO(name, " latent ", latent, " text ", text, " sigma ", learn_sigma, " controls ", controls);
          CHECK(numel(*m) == analytic_param_count(preset(name), s));
        }
  }
  // Without the learned null class the analytic count drops exactly one embedding row.
  auto s = shape(8, false, false, false);
  auto no_null = s;
  no_null.class_dropout = false;
  CHECK(analytic_param_count(preset("tiny/2"), s) - analytic_param_count(preset("tiny/2"), no_null) == 64);
}

TEST_CASE("mDT-v2 XL/2: exact count of the reference structure, and the published MDT-XL/2 676M reconciled") {
  const auto& xl = preset("XL/2");
  CHECK(xl.depth == 28);
  CHECK(xl.decoder_depth == 4);
  ModelShape s;  // ImageNet 256: 4×32×32 latent, 1000 classes + null class, learned sigma
  const int64_t count = analytic_param_count(xl, s);
  // MDTv2_XL_2(input_size=32, decode_layer=4, mask_ratio=0.3): 12 en_inblocks + 12 en_outblocks +
  // 4 de_blocks + 1 sideblock, 16 skip_linears, learned pos_embed and decoder_pos_embed, relative
  // position tables of 964 × 16 per block, mask_token.
  CHECK(count == 742263904);
  const int64_t D = 1152;
  const int64_t block = 18 * D * D + 15 * D + (31 * 31 + 3) * 16;  // qkv, proj, fc1, fc2, adaLN, rel-pos table
  const int64_t skip = 2 * D * D + D;
  // The MDT paper's published 676M (MDT-XL/2) is the inference network of MDT v1: the same trunk
  // without the training-only side-interpolator block and without v2's 16 long-skip linears.
  // MDTv2 itself adds the skips: 742.3M with the side block, 718.3M without.
  const int64_t mdt_v1_inference = count - block - 16 * skip;
  CHECK(mdt_v1_inference == 675857568);
  CHECK(std::abs(double(mdt_v1_inference) - 676e6) / 676e6 < 0.02);
  // Forward cost of the unmasked pass: DiT-XL/2's 118.6 GFLOPs plus the 16 skip linears.
  const double gflops = analytic_gflops(xl, s);
  CHECK(gflops > 125.0);
  CHECK(gflops < 135.0);
}

TEST_CASE(
    "mDT at initialisation outputs exactly zero, masked pass included, zero_initialised() names exactly those "
    "tensors") {
  auto x = torch::randn({2, 4, 8, 12});
  auto t = torch::tensor({5.0, 500.0});
  for (bool text : {false, true}) {
    auto m = build(tiny(8, 12, text, true), 1);
    auto gen = at::detail::createCPUGenerator(3);
    auto outs = m->training_outputs(x, t, text ? caption(2) : labels({0, 3}), gen);
    REQUIRE(outs.size() == 2);
    for (const auto& o : outs) CHECK(o.abs().max().item<double>() == 0.0);

    auto params = m->named_parameters();
    const auto names = m->zero_initialised();
    std::set<std::string> listed(names.begin(), names.end());
    for (const auto& n : names) {
      INFO(n);
      REQUIRE(params.contains(n));
      CHECK(params[n].abs().max().item<double>() == 0.0);
    }
    // Every other exactly-zero tensor is an ordinary bias.
    for (auto& p : params) {
      if (listed.count(p.key()) || p.value().abs().max().item<double>() != 0.0) continue;
      INFO(p.key());
      CHECK(p.key().size() > 5);
      CHECK(p.key().substr(p.key().size() - 5) == ".bias");
    }
    CHECK_FALSE(listed.count("mask_token"));  // N(0, 0.02) when masking is on
    CHECK(listed.count("sideblocks.0.adaLN_modulation.1.weight"));
    CHECK(listed.count("en_outblocks.0.adaLN_modulation.1.bias"));
    CHECK(listed.count("final_layer.linear.weight"));
    CHECK(listed.count("de_blocks.1.cross_attn.proj.weight") == (text ? 1u : 0u));
  }
  // Masking off: mask_token is the reference's frozen zero.
  auto off = build(tiny(8, 8, false, false, 0.0));
  auto names = off->zero_initialised();
  CHECK(std::count(names.begin(), names.end(), "mask_token") == 1);
  CHECK_FALSE(off->named_parameters()["mask_token"].requires_grad());
}

TEST_CASE("mDT initialisation draws only from the given generator") {
  auto a = std::make_shared<MDT>(tiny(8, 8, true));
  auto b = std::make_shared<MDT>(tiny(8, 8, true));
  auto g1 = at::detail::createCPUGenerator(42), g2 = at::detail::createCPUGenerator(42);
  a->initialize(g1);
  torch::manual_seed(123);  // the global generator must not matter
  b->initialize(g2);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (auto& p : pa) {
    INFO(p.key());
    CHECK(torch::equal(p.value(), pb[p.key()]));
  }
}

TEST_CASE("mDT masked pass: differs from the unmasked pass, depends on the mask generator's seed only") {
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({100.0, 600.0});
  for (bool text : {false, true}) {
    auto m = build(tiny(8, 8, text, true), 4);
    randomize_zeros(*m, 5);
    torch::NoGradGuard g;
    const auto cond = text ? caption(2) : labels({2, 7});
    auto g1 = at::detail::createCPUGenerator(7), g2 = at::detail::createCPUGenerator(7),
         g3 = at::detail::createCPUGenerator(8);
    auto a = m->training_outputs(x, t, cond, g1);
    auto b = m->training_outputs(x, t, cond, g2);
    auto c = m->training_outputs(x, t, cond, g3);
    REQUIRE(a.size() == 2);
    CHECK(torch::equal(a[0], m->forward(x, t, cond)));  // the first output is the inference pass
    CHECK(torch::equal(a[0], c[0]));
    CHECK_FALSE(torch::allclose(a[1], a[0], 1e-4, 1e-4));
    CHECK(torch::equal(a[1], b[1]));                       // same mask seed, same output
    CHECK_FALSE(torch::allclose(a[1], c[1], 1e-4, 1e-4));  // another mask seed, another output
  }
}

TEST_CASE("mDT masked pass with every token kept (in shuffled order) equals the unmasked pass") {
  // Exercises the token gather, the relative-position index restricted to kept tokens and the
  // side-interpolator's scatter: with no masked token the side block's output is discarded.
  auto x = torch::randn({2, 4, 8, 12});
  auto t = torch::tensor({50.0, 800.0});
  auto m = build(tiny(8, 12, false, true), 6);
  randomize_zeros(*m, 7);
  torch::NoGradGuard g;
  const auto cond = labels({4, kClasses});
  TokenMask all;
  auto gen = at::detail::createCPUGenerator(9);
  all.ids_keep = torch::stack({torch::randperm(24, gen), torch::randperm(24, gen)});  // [2, 24]
  all.mask = torch::zeros({2, 24});
  CHECK(torch::allclose(m->forward_masked(x, t, cond, all), m->forward(x, t, cond), 1e-5, 1e-5));
  // Masking one token changes the output.
  TokenMask one = all;
  one.ids_keep = all.ids_keep.narrow(1, 0, 23).contiguous();
  one.mask = torch::zeros({2, 24}).scatter(1, all.ids_keep.narrow(1, 23, 1), 1.0);
  CHECK_FALSE(torch::allclose(m->forward_masked(x, t, cond, one), m->forward(x, t, cond), 1e-5, 1e-5));
}

TEST_CASE("mDT random masking keeps exactly floor(T·(1 − ratio)) distinct tokens per sample") {
  CHECK(mdt_kept_tokens(256, 0.3) == 179);  // int(256 · 0.7) as the reference
  CHECK(mdt_kept_tokens(16, 0.25) == 12);
  CHECK(mdt_kept_tokens(10, 0.3) == 7);
  CHECK(mdt_kept_tokens(10, 0.0) == 10);
  CHECK(mdt_kept_tokens(4, 0.99) == 1);  // never an empty encoder sequence
  auto gen = at::detail::createCPUGenerator(5);
  for (double ratio : {0.3, 0.45, 0.5}) {
    const int64_t T = 64, keep = mdt_kept_tokens(T, ratio);
    auto m = mdt_random_mask(3, T, ratio, gen);
    REQUIRE(m.ids_keep.sizes() == torch::IntArrayRef({3, keep}));
    REQUIRE(m.mask.sizes() == torch::IntArrayRef({3, T}));
    for (int64_t i = 0; i < 3; ++i) {
      CHECK(std::get<0>(torch::_unique(m.ids_keep[i])).numel() == keep);
      CHECK(m.mask[i].sum().item<double>() == double(T - keep));
      CHECK(m.mask[i].index_select(0, m.ids_keep[i]).sum().item<double>() == 0.0);  // kept = unmasked
    }
    CHECK_FALSE(torch::equal(m.ids_keep[0], m.ids_keep[1]));  // per-sample choices
  }
}

TEST_CASE("mDT with mask_ratio 0 returns the unmasked output only") {
  auto m = build(tiny(8, 8, false, false, 0.0));
  auto gen = at::detail::createCPUGenerator(1);
  auto x = torch::randn({2, 4, 8, 8});
  auto outs = m->training_outputs(x, torch::tensor({1.0, 2.0}), labels({0, 1}), gen);
  CHECK(outs.size() == 1);
  // build_mdt takes the ratio from the recipe.
  ModelGeometry geo{4, 8, 8, kClasses};
  RecipeSpec r;
  r.family = "mdt";
  r.preset = "tiny/2";
  r.mask_ratio = 0.0;
  auto built = build_mdt(preset("tiny/2"), geo, r);
  auto g2 = at::detail::createCPUGenerator(1);
  built->initialize(g2);
  CHECK(built->training_outputs(x, torch::tensor({1.0, 2.0}), labels({0, 1}), gen).size() == 1);
  r.mask_ratio = 1.0;
  CHECK_THROWS_AS(build_mdt(preset("tiny/2"), geo, r), SpecError);
}

TEST_CASE("mDT text task: padding tokens are ignored with mask_padding, dropped captions read as all-zero tokens") {
  auto c = tiny(8, 8, true);
  c.mask_padding = true;
  auto m = build(c, 8);
  randomize_zeros(*m, 9);
  torch::NoGradGuard g;
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({100.0, 600.0});
  auto cond = caption(2);
  auto out = m->forward(x, t, cond);
  auto padded = cond;
  padded.tokens = cond.tokens.clone();
  padded.tokens.masked_scatter_(cond.token_mask.logical_not().unsqueeze(-1).expand_as(padded.tokens),
                                torch::randn_like(padded.tokens) * 50);
  CHECK(torch::equal(m->forward(x, t, padded), out));
  auto real = cond;
  real.tokens = cond.tokens.clone();
  real.tokens.index_put_({1, 0}, torch::randn({kText}));
  CHECK_FALSE(torch::allclose(m->forward(x, t, real), out));
  // semantic_drop: the dropped row sees zero tokens, the other row is unchanged.
  auto dropped = cond;
  dropped.semantic_drop = torch::tensor({false, true});
  auto zeroed = cond;
  zeroed.tokens = cond.tokens.clone();
  zeroed.tokens.index_put_({1}, 0.0);
  CHECK(torch::allclose(m->forward(x, t, dropped), m->forward(x, t, zeroed), 1e-6, 1e-6));
}

TEST_CASE("mDT with controls: the control embedding enters the adaLN vector and is required") {
  const auto s = shape(8, false, false, true);
  auto base = build_from(preset("tiny/2"), s);
  auto m = std::dynamic_pointer_cast<MDT>(base);
  REQUIRE(m);
  auto gen = at::detail::createCPUGenerator(10);
  m->initialize(gen);
  randomize_zeros(*m, 11);
  torch::NoGradGuard g;
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({100.0, 600.0});
  auto cond = labels({1, 2});
  CHECK_THROWS_AS(m->forward(x, t, cond), Error);  // controls missing
  cond.controls = torch::tensor(
      {{256.0, 256.0, 0.0, 0.0, 256.0, 256.0, 0.0, 1.0}, {512.0, 384.0, 10.0, 20.0, 300.0, 300.0, 1.0, 0.75}});
  cond.noise_level = torch::tensor({0.2, 0.5});
  auto out = m->forward(x, t, cond);
  auto other = cond;
  other.controls = cond.controls * 0.5;
  CHECK_FALSE(torch::allclose(m->forward(x, t, other), out));
}

TEST_CASE(
    "mDT tiny/2: forward + backward of both passes, batch 2 at 8×8, reaches every trainable parameter once the "
    "zero_initialised() tensors are redrawn") {
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({10.0, 900.0});
  for (bool text : {false, true}) {
    INFO("text ", text);
    auto m = build(tiny(8, 8, text, true), 12);
    {
      torch::NoGradGuard g;
      auto gen = at::detail::createCPUGenerator(13);
      auto params = m->named_parameters();
      for (const auto& name : m->zero_initialised()) params[name].normal_(0.0, 0.02, gen);
    }
    auto gen = at::detail::createCPUGenerator(14);
    // (Its time is a benchmark's: build/bin/bench_recipes --family mdt --batch 2 --resolution 16.)
    auto outs = m->training_outputs(x, t, text ? caption(2) : labels({2, kClasses}), gen);
    (outs[0].square().mean() + outs[1].square().mean()).backward();
    for (auto& p : m->named_parameters()) {
      if (!p.value().requires_grad()) continue;
      INFO(p.key());
      REQUIRE(p.value().grad().defined());
      CHECK(torch::isfinite(p.value().grad()).all().item<bool>());
      CHECK(p.value().grad().abs().sum().item<double>() > 0.0);
    }
  }
}

TEST_CASE("mDT presets: table entries and analytic sizes") {
  for (const char* name : {"XL/2", "L/2", "B/2", "S/2", "tiny/2", "small/2"}) {
    const auto& p = preset(name);
    CHECK(p.family == "mdt");
    CHECK((p.depth - p.decoder_depth) % 2 == 0);
    CHECK_FALSE(p.source.empty());
    CHECK(analytic_gflops(p, ModelShape{}) > 0);
  }
  CHECK(preset("S/2").decoder_depth == 6);
  // Text-task count: caption projection and per-block cross-attention instead of the label table.
  const auto cls = shape(8, false, false, false), txt = shape(8, true, false, false);
  const int64_t D = 64, blocks = 5;
  CHECK(analytic_param_count(preset("tiny/2"), txt) - analytic_param_count(preset("tiny/2"), cls) ==
        (kText * D + D + D * D + D) - (kClasses + 1) * D + blocks * (4 * D * D + 4 * D));
  CHECK_THROWS_AS(analytic_param_count(preset("tiny/2"), shape(7, false, false, false)), Error);
}

}  // namespace mdt_test
