#include <torch/torch.h>
// doctest after torch (torch's headers must come first)
#include <doctest/doctest.h>

#include <set>

#include "shared/core/recipes/card.h"
#include "worker/models/mmdit.h"

using namespace ldm;
using namespace ldm::models;

namespace {
constexpr int64_t kCtx = 24, kPooled = 16, kClasses = 10;

MMDiTConfig tiny(int64_t h, int64_t w, bool text, bool qk_norm = false, bool learn_sigma = false) {
  MMDiTConfig c;
  c.in_channels = 4;
  c.latent_h = h;
  c.latent_w = w;
  c.patch = 2;
  c.width = 64;
  c.depth = 3;
  c.heads = 4;
  c.learn_sigma = learn_sigma;
  c.qk_norm = qk_norm;
  c.num_classes = text ? 0 : kClasses;
  c.context_channels = text ? kCtx : 0;
  c.pooled_channels = text ? kPooled : 0;
  return c;
}
std::shared_ptr<MMDiT> build(const MMDiTConfig& c, uint64_t seed = 0) {
  auto m = std::make_shared<MMDiT>(c);
  auto gen = at::detail::createCPUGenerator(seed);
  m->initialize(gen);
  return m;
}
// Re-draws every trainable tensor that initialisation left all-zero (adaLN-Zero, final layer,
// biases), so that every path carries signal.
void redraw_zeros(MMDiT& m, uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m.parameters())
    if (p.requires_grad() && p.abs().max().item<float>() == 0) normal_(p, 0.05, gen);
}
int64_t count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (auto& p : m.parameters()) n += p.numel();
  return n;
}
struct TextInput {
  torch::Tensor x, t, tokens, mask, pooled;
};
TextInput text_input(int64_t n, int64_t h, int64_t w, int64_t L = 5) {
  torch::manual_seed(1);
  auto mask = torch::ones({n, L}, torch::kBool);
  mask.index_put_({0, torch::indexing::Slice(L - 2, L)}, false);  // sample 0: two padding tokens
  return {torch::randn({n, 4, h, w}), torch::tensor({0.1f, 0.9f}).narrow(0, 0, n), torch::randn({n, L, kCtx}), mask,
          torch::randn({n, kPooled})};
}
torch::Tensor labels(std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64); }
torch::Tensor run_text(MMDiT& m, const TextInput& in) {
  return m.forward_text(in.x, in.t, in.tokens, in.mask, in.pooled);
}
}  // namespace

TEST_CASE("MMDiT output has the latent's shape for square and non-square latents in class and text modes") {
  for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 8}, {8, 12}}) {
    auto x = torch::randn({2, 4, h, w});
    auto t = torch::tensor({0.25f, 0.75f});
    auto y = labels({1, kClasses});  // kClasses = the null label
    CHECK(build(tiny(h, w, false))->forward(x, t, y).sizes() == torch::IntArrayRef({2, 4, h, w}));
    CHECK(build(tiny(h, w, false, true, true))->forward(x, t, y).sizes() == torch::IntArrayRef({2, 8, h, w}));
    auto in = text_input(2, h, w);
    CHECK(run_text(*build(tiny(h, w, true)), in).sizes() == torch::IntArrayRef({2, 4, h, w}));
    CHECK(build(tiny(h, w, true))->forward_text(x, t, in.tokens, torch::Tensor(), in.pooled).sizes() ==
          torch::IntArrayRef({2, 4, h, w}));
  }
}

TEST_CASE("MMDiT rejects the call of the other conditioning mode") {
  auto x = torch::randn({1, 4, 8, 8});
  auto t = torch::tensor({0.5f});
  CHECK_THROWS(build(tiny(8, 8, true))->forward(x, t, labels({1})));
  CHECK_THROWS(build(tiny(8, 8, false))
                   ->forward_text(x, t, torch::randn({1, 3, kCtx}), torch::Tensor(), torch::randn({1, kPooled})));
}

TEST_CASE("MMDiT state-dict keys follow SD3 mmditx and the last block's context stream is pre_only") {
  auto m = build(tiny(8, 8, true));
  auto params = m->named_parameters();
  for (std::string key :
       {"x_embedder.proj.weight", "x_embedder.proj.bias", "pos_embed", "t_embedder.mlp.0.weight",
        "t_embedder.mlp.2.weight", "y_embedder.mlp.0.weight", "y_embedder.mlp.2.weight", "context_embedder.weight",
        "context_embedder.bias", "final_layer.adaLN_modulation.1.weight", "final_layer.linear.weight"})
    CHECK_MESSAGE(params.contains(key), key);
  for (int i = 0; i < 3; ++i)
    for (std::string stream : {"x_block", "context_block"})
      for (std::string part : {"adaLN_modulation.1", "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"}) {
        const std::string key = "joint_blocks." + std::to_string(i) + "." + stream + "." + part + ".weight";
        const bool pre_only_part =
            i == 2 && stream == "context_block" && part.rfind("attn.qkv", 0) != 0 && part != "adaLN_modulation.1";
        CHECK_MESSAGE(params.contains(key) == !pre_only_part, key);
      }
  // The pre_only context stream only shifts/scales its input: 2 modulation vectors, not 6.
  CHECK(params["joint_blocks.2.context_block.adaLN_modulation.1.weight"].size(0) == 2 * 64);
  CHECK(params["joint_blocks.2.x_block.adaLN_modulation.1.weight"].size(0) == 6 * 64);
  CHECK_FALSE(params.contains("joint_blocks.0.x_block.attn.ln_q.weight"));  // qk_norm off by default
  auto q = build(tiny(8, 8, false, /*qk_norm=*/true))->named_parameters();
  CHECK(q.contains("joint_blocks.0.x_block.attn.ln_q.weight"));
  CHECK(q.contains("joint_blocks.2.context_block.attn.ln_k.weight"));
  CHECK(q.contains("label_embedder.embedding_table.weight"));
  CHECK(q["label_embedder.embedding_table.weight"].size(0) == kClasses + 1);  // + null row
}

TEST_CASE("MMDiT output is exactly zero at initialisation (adaLN-Zero) in both modes") {
  auto x = torch::randn({2, 4, 8, 12});
  auto t = torch::tensor({0.3f, 0.6f});
  CHECK(build(tiny(8, 12, false, true))->forward(x, t, labels({2, 7})).abs().max().item<float>() == 0);
  CHECK(run_text(*build(tiny(8, 12, true)), text_input(2, 8, 12)).abs().max().item<float>() == 0);
}

TEST_CASE("MMDiT initialisation is reproducible from the generator") {
  auto a = build(tiny(8, 8, true), 7)->named_parameters(), b = build(tiny(8, 8, true), 7)->named_parameters();
  for (auto& kv : a) CHECK_MESSAGE(torch::equal(kv.value(), b[kv.key()]), kv.key());
}

TEST_CASE(
    "MMDiT gives finite non-zero gradients on every trainable parameter once zero-initialised tensors are redrawn") {
  for (bool text : {false, true}) {
    auto m = build(tiny(8, 12, text, /*qk_norm=*/true));
    redraw_zeros(*m, 3);
    auto in = text_input(2, 8, 12);
    auto out = text ? run_text(*m, in) : m->forward(in.x, in.t, labels({4, kClasses}));
    (out * torch::randn_like(out)).sum().backward();
    for (auto& kv : m->named_parameters()) {
      if (!kv.value().requires_grad()) continue;
      const auto& g = kv.value().grad();
      const std::string what = kv.key() + (text ? " (text)" : " (class)");
      INFO(what);
      REQUIRE(g.defined());
      CHECK(g.isfinite().all().item<bool>());
      if (kv.key() == "joint_blocks.2.context_block.attn.ln_q.weight") {
        // The pre_only context stream's queries are never used (its attention output is dropped),
        // so this q-norm, kept for SD3.5 key compatibility, is the one parameter without gradient.
        CHECK(g.abs().max().item<float>() == 0);
        continue;
      }
      CHECK(g.abs().max().item<float>() > 0);
    }
  }
}

TEST_CASE("MMDiT ignores masked context tokens: padding is never an attention key") {
  auto m = build(tiny(8, 8, true));
  redraw_zeros(*m, 5);
  torch::NoGradGuard g;
  auto in = text_input(2, 8, 8);
  auto ref = run_text(*m, in);
  auto changed = in;
  changed.tokens = in.tokens.clone();
  changed.tokens.index_put_({0, torch::indexing::Slice(3, 5)}, torch::randn({2, kCtx}) * 10);  // masked in sample 0
  CHECK(torch::allclose(run_text(*m, changed), ref, 0, 1e-6));
  changed.tokens.index_put_({0, 0}, torch::randn({kCtx}) * 10);  // a real token does matter
  CHECK_FALSE(torch::allclose(run_text(*m, changed).narrow(0, 0, 1), ref.narrow(0, 0, 1), 1e-3, 1e-4));
  // An all-true mask equals no mask.
  auto all = in;
  all.mask = torch::ones_like(in.mask);
  CHECK(
      torch::allclose(run_text(*m, all), m->forward_text(in.x, in.t, in.tokens, torch::Tensor(), in.pooled), 0, 1e-6));
}

TEST_CASE("MMDiT streams have separate weights and the context stream reaches the image only through joint attention") {
  auto m = build(tiny(8, 8, true));
  redraw_zeros(*m, 9);
  torch::NoGradGuard ng;
  auto params = m->named_parameters();
  // No tensor is shared between the x and context streams of any block.
  std::set<const void*> x_storage;
  for (auto& kv : params)
    if (kv.key().find(".x_block.") != std::string::npos) x_storage.insert(kv.value().data_ptr());
  for (auto& kv : params)
    if (kv.key().find(".context_block.") != std::string::npos)
      CHECK_MESSAGE(!x_storage.count(kv.value().data_ptr()), kv.key());

  auto in = text_input(2, 8, 8);
  auto none = in;
  none.mask = torch::zeros_like(in.mask);  // no context token is a key: image tokens attend to themselves only
  auto ref_open = run_text(*m, in), ref_closed = run_text(*m, none);
  auto gen = at::detail::createCPUGenerator(11);
  // With the context shut out of the attention keys, changing every context_block weight leaves the output unchanged…
  for (auto& kv : params)
    if (kv.key().find(".context_block.") != std::string::npos) normal_(kv.value(), 0.05, gen);
  CHECK(torch::allclose(run_text(*m, none), ref_closed, 0, 1e-6));
  // …while the same change with the context attended does change it (it flows through joint attention).
  CHECK_FALSE(torch::allclose(run_text(*m, in), ref_open, 1e-3, 1e-4));
  // Zeroing only the context tokens' value path (rows 2D..3D of every context qkv) changes the output.
  auto before = run_text(*m, in);
  for (int i = 0; i < 3; ++i) {
    const std::string p = "joint_blocks." + std::to_string(i) + ".context_block.attn.qkv.";
    params[p + "weight"].narrow(0, 2 * 64, 64).zero_();
    params[p + "bias"].narrow(0, 2 * 64, 64).zero_();
  }
  CHECK_FALSE(torch::allclose(run_text(*m, in), before, 1e-3, 1e-4));
  // An x_block weight changes the output even with the context shut out.
  normal_(params["joint_blocks.1.x_block.mlp.fc2.weight"], 0.05, gen);
  CHECK_FALSE(torch::allclose(run_text(*m, none), ref_closed, 1e-3, 1e-4));
}

TEST_CASE("MMDiT class mode uses the label: different labels, and the null label, give different outputs") {
  auto m = build(tiny(8, 8, false));
  redraw_zeros(*m, 13);
  torch::NoGradGuard g;
  auto x = torch::randn({1, 4, 8, 8}).repeat({3, 1, 1, 1});
  auto out = m->forward(x, torch::full({3}, 0.5f), labels({1, 2, kClasses}));
  CHECK_FALSE(torch::allclose(out[0], out[1], 1e-3, 1e-4));
  CHECK_FALSE(torch::allclose(out[0], out[2], 1e-3, 1e-4));
}

TEST_CASE("MMDiT parameter count equals mmdit_param_count for class/text, qk_norm, learned sigma and depth 1") {
  for (bool text : {false, true})
    for (bool qk : {false, true})
      for (bool sigma : {false, true}) {
        auto c = tiny(8, 12, text, qk, sigma);
        CHECK(count(MMDiT(c)) == mmdit_param_count(c));
        c.depth = 1;
        c.mlp_ratio = 2.5;
        CHECK(count(MMDiT(c)) == mmdit_param_count(c));
      }
}

namespace {
MMDiTConfig xl_class() {
  MMDiTConfig c;  // DiT-XL/2 sizing: 28 blocks, width 1152, 16 heads, patch 2, 4×32×32 latents, 1000 classes
  c.in_channels = 4;
  c.latent_h = c.latent_w = 32;
  c.patch = 2;
  c.width = 1152;
  c.depth = 28;
  c.heads = 16;
  c.num_classes = 1000;
  return c;
}
int64_t dit_xl2_params() {
  const PresetInfo* p = find_preset("dit", "XL/2");
  REQUIRE(p);
  return analytic_param_count(*p, {4, 32, 1000, /*learn_sigma=*/true, /*class_dropout=*/true, 0, 0, {}});
}
}  // namespace

TEST_CASE("DiT-XL-sized MMDiT has about twice DiT-XL/2's parameters (two streams per block)") {
  const int64_t mm = mmdit_param_count(xl_class()), dit = dit_xl2_params();
  MESSAGE("mmDiT at DiT-XL/2 sizing: " << mm << " parameters; DiT-XL/2: " << dit << "; ratio "
                                       << double(mm) / double(dit));
  CHECK(dit > 670'000'000);
  CHECK(dit < 680'000'000);
  CHECK(double(mm) / double(dit) > 1.8);
  CHECK(double(mm) / double(dit) < 2.2);
}

TEST_CASE(
    "the parameter-matched MMDiT preset (width 1152, depth from mmdit_param_matched_depth) is within 5% of 675M") {
  auto c = xl_class();
  c.depth = mmdit_param_matched_depth(c, 675'000'000);
  const int64_t n = mmdit_param_count(c);
  MESSAGE("parameter-matched mmDiT: depth " << c.depth << ", " << n << " parameters");
  CHECK(c.depth == 14);
  CHECK(std::abs(double(n) / 675e6 - 1.0) < 0.05);
  CHECK(std::abs(double(n) / double(dit_xl2_params()) - 1.0) < 0.05);
}
