#include <torch/torch.h>
#include <doctest/doctest.h>

#include <string>

#include "shared/core/error.h"
#include "worker/models/pixart.h"

using namespace ldm;
using namespace ldm::models;

namespace {
constexpr int64_t kCaption = 32, kMaxTokens = 8, kClasses = 10;

PixArtConfig tiny(int64_t h, int64_t w, bool text, bool learn_sigma = false) {
  PixArtConfig c;
  c.in_channels = 4;
  c.latent_h = h;
  c.latent_w = w;
  c.patch = 2;
  c.width = 64;
  c.depth = 2;
  c.heads = 4;
  c.learn_sigma = learn_sigma;
  if (text) {
    c.caption_channels = kCaption;
    c.max_tokens = kMaxTokens;
  } else {
    c.num_classes = kClasses;
  }
  return c;
}

std::shared_ptr<PixArt> build(const PixArtConfig& c, uint64_t seed = 0) {
  auto m = std::make_shared<PixArt>(c);
  auto gen = at::detail::createCPUGenerator(seed);
  m->initialize(gen);
  return m;
}

// Draws every trainable tensor that initialize() left at exactly zero (cross-attention output
// projections, the output linear, all biases) from N(0, 0.02), so every path carries signal.
void randomize_zeros(PixArt& m, uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m.named_parameters())
    if (p.value().requires_grad() && p.value().abs().max().item<double>() == 0.0) p.value().normal_(0.0, 0.02, gen);
}

torch::Tensor text_mask() {  // sample 0: 5 real tokens of 8, sample 1: 2 real tokens
  auto mask = torch::zeros({2, kMaxTokens}, torch::kBool);
  mask.index_put_({0, torch::indexing::Slice(0, 5)}, true);
  mask.index_put_({1, torch::indexing::Slice(0, 2)}, true);
  return mask;
}

// `single_token`: with one condition token (class mode) every query's softmax over one key is 1,
// so the cross-attention query projection q_linear receives exactly zero gradient, by construction.
void check_all_gradients(PixArt& m, bool single_token) {
  for (auto& p : m.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    const auto& grad = p.value().grad();
    INFO(p.key());
    REQUIRE(grad.defined());
    CHECK(torch::isfinite(grad).all().item<bool>());
    if (single_token && p.key().find("cross_attn.q_linear") != std::string::npos)
      CHECK(grad.abs().sum().item<double>() == 0.0);
    else CHECK(grad.abs().sum().item<double>() > 0.0);
  }
}
}  // namespace

TEST_CASE(
    "PixArt class mode: output has the input's shape, doubled channels with learned sigma, square and non-square") {
  auto t = torch::tensor({3.0, 999.0});
  auto y = torch::tensor({int64_t{1}, kClasses});  // kClasses = the null class
  for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 8}, {8, 12}}) {
    auto x = torch::randn({2, 4, h, w});
    CHECK(build(tiny(h, w, false))->forward(x, t, y).sizes() == torch::IntArrayRef({2, 4, h, w}));
    auto sigma = build(tiny(h, w, false, true));
    CHECK(sigma->out_channels() == 8);
    CHECK(sigma->forward(x, t, y).sizes() == torch::IntArrayRef({2, 8, h, w}));
  }
}

TEST_CASE(
    "PixArt text mode: output has the input's shape, doubled channels with learned sigma, square and non-square") {
  auto t = torch::tensor({0.5, 700.0});
  auto tokens = torch::randn({2, kMaxTokens, kCaption});
  for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 8}, {12, 8}}) {
    auto x = torch::randn({2, 4, h, w});
    CHECK(build(tiny(h, w, true))->forward_text(x, t, tokens, text_mask()).sizes() == torch::IntArrayRef({2, 4, h, w}));
    CHECK(build(tiny(h, w, true, true))->forward_text(x, t, tokens, text_mask()).sizes() ==
          torch::IntArrayRef({2, 8, h, w}));
    // Fewer tokens than max_tokens and no mask are accepted too.
    CHECK(build(tiny(h, w, true))->forward_text(x, t, tokens.narrow(1, 0, 3), {}).sizes() ==
          torch::IntArrayRef({2, 4, h, w}));
  }
}

TEST_CASE("PixArt uses the reference implementation's state-dict key names") {
  const char* common[] = {"x_embedder.proj.weight",
                          "x_embedder.proj.bias",
                          "t_embedder.mlp.0.weight",
                          "t_embedder.mlp.2.bias",
                          "t_block.1.weight",
                          "t_block.1.bias",
                          "pos_embed",
                          "blocks.0.attn.qkv.weight",
                          "blocks.1.attn.proj.bias",
                          "blocks.0.cross_attn.q_linear.weight",
                          "blocks.0.cross_attn.kv_linear.bias",
                          "blocks.1.cross_attn.proj.weight",
                          "blocks.0.mlp.fc1.weight",
                          "blocks.1.mlp.fc2.bias",
                          "blocks.0.scale_shift_table",
                          "blocks.1.scale_shift_table",
                          "final_layer.linear.weight",
                          "final_layer.linear.bias",
                          "final_layer.scale_shift_table"};
  auto cls = build(tiny(8, 8, false))->named_parameters();
  auto txt_model = build(tiny(8, 8, true));
  auto txt = txt_model->named_parameters();
  for (const char* key : common) {
    CHECK_MESSAGE(cls.contains(key), key);
    CHECK_MESSAGE(txt.contains(key), key);
  }
  CHECK(cls.contains("y_embedder.embedding_table.weight"));
  CHECK(cls["y_embedder.embedding_table.weight"].size(0) == kClasses + 1);  // null class row
  CHECK(txt.contains("y_embedder.y_proj.fc1.weight"));
  CHECK(txt.contains("y_embedder.y_proj.fc2.bias"));
  CHECK(txt["y_embedder.y_proj.fc1.weight"].sizes() == torch::IntArrayRef({64, kCaption}));
  // As the reference, the null caption is a buffer unless learn_null_caption is set.
  CHECK(txt_model->named_buffers().contains("y_embedder.y_embedding"));
  CHECK(txt_model->named_buffers()["y_embedder.y_embedding"].sizes() == torch::IntArrayRef({kMaxTokens, kCaption}));
  auto learned = tiny(8, 8, true);
  learned.learn_null_caption = true;
  CHECK(build(learned)->named_parameters().contains("y_embedder.y_embedding"));
  CHECK(cls["blocks.0.scale_shift_table"].sizes() == torch::IntArrayRef({6, 64}));
  CHECK(cls["final_layer.scale_shift_table"].sizes() == torch::IntArrayRef({2, 64}));
}

TEST_CASE("PixArt at initialisation outputs exactly zero (zero output linear and cross-attention projections)") {
  auto x = torch::randn({2, 4, 8, 12});
  auto t = torch::tensor({5.0, 500.0});
  auto cls = build(tiny(8, 12, false, true), 1);
  CHECK(cls->forward(x, t, torch::tensor({0, 3})).abs().max().item<double>() == 0.0);
  auto txt = build(tiny(8, 12, true, true), 1);
  auto out = txt->forward_text(x, t, torch::randn({2, kMaxTokens, kCaption}), text_mask());
  CHECK(out.abs().max().item<double>() == 0.0);
  for (auto& p : txt->named_parameters())
    if (p.key().find("cross_attn.proj") != std::string::npos) CHECK(p.value().abs().max().item<double>() == 0.0);
}

TEST_CASE(
    "PixArt: with zero-initialised tensors redrawn, one backward gives finite non-zero gradients on every trainable "
    "parameter (but class-mode q_linear)") {
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({10.0, 900.0});
  SUBCASE("class mode") {
    auto m = build(tiny(8, 8, false, true), 2);
    randomize_zeros(*m, 3);
    m->forward(x, t, torch::tensor({int64_t{2}, kClasses})).square().mean().backward();
    check_all_gradients(*m, /*single_token=*/true);
  }
  SUBCASE("text mode") {
    auto m = build(tiny(8, 8, true, true), 2);
    randomize_zeros(*m, 3);
    m->forward_text(x, t, torch::randn({2, kMaxTokens, kCaption}), text_mask()).square().mean().backward();
    check_all_gradients(*m, /*single_token=*/false);
  }
}

TEST_CASE("PixArt: masked caption tokens do not influence the output") {
  auto m = build(tiny(8, 8, true), 4);
  randomize_zeros(*m, 5);
  torch::NoGradGuard g;
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({100.0, 600.0});
  auto mask = text_mask();
  auto tokens = torch::randn({2, kMaxTokens, kCaption});
  auto out = m->forward_text(x, t, tokens, mask);
  auto padded = tokens.clone();
  padded.masked_scatter_(mask.logical_not().unsqueeze(-1).expand_as(padded), torch::randn_like(padded) * 50);
  CHECK(!torch::equal(padded, tokens));
  CHECK(torch::equal(m->forward_text(x, t, padded, mask), out));
  // ... while a real token does.
  auto changed = tokens.clone();
  changed.index_put_({1, 0}, torch::randn({kCaption}));
  CHECK(!torch::allclose(m->forward_text(x, t, changed, mask), out));
  // A sample whose every token is masked still gets a finite output.
  auto none = mask.clone();
  none.index_put_({1}, false);
  CHECK(torch::isfinite(m->forward_text(x, t, tokens, none)).all().item<bool>());
}

TEST_CASE("PixArt: caption dropout replaces the dropped rows by the null caption") {
  auto m = build(tiny(8, 8, true), 6);
  randomize_zeros(*m, 7);
  torch::NoGradGuard g;
  auto x = torch::randn({2, 4, 8, 8});
  auto t = torch::tensor({100.0, 600.0});
  auto tokens = torch::randn({2, kMaxTokens, kCaption});
  auto dropped = m->forward_text(x, t, tokens, text_mask(), torch::tensor({false, true}));
  auto expect_tokens = tokens.clone();
  expect_tokens.index_put_({1}, m->null_caption());
  CHECK(torch::allclose(dropped, m->forward_text(x, t, expect_tokens, text_mask()), 1e-6, 1e-6));
  CHECK(torch::allclose(dropped[0], m->forward_text(x, t, tokens, text_mask())[0], 1e-6, 1e-6));
}

TEST_CASE("PixArt rejects a configuration with both or neither condition mode, and the wrong forward") {
  auto both = tiny(8, 8, true);
  both.num_classes = kClasses;
  CHECK_THROWS_AS(PixArt{both}, Error);
  auto neither = tiny(8, 8, false);
  neither.num_classes = 0;
  CHECK_THROWS_AS(PixArt{neither}, Error);
  auto x = torch::randn({1, 4, 8, 8});
  auto t = torch::tensor({1.0});
  CHECK_THROWS_AS(build(tiny(8, 8, true))->forward(x, t, torch::tensor({1})), Error);
  CHECK_THROWS_AS(build(tiny(8, 8, false))->forward_text(x, t, torch::randn({1, 2, kCaption}), {}), Error);
}

TEST_CASE("PixArt-alpha-XL/2 has the published ~611M parameters") {
  PixArtConfig c;  // depth 28, width 1152, 16 heads, patch 2, 4 channels, 32x32 latent, learned sigma
  c.caption_channels = 4096;
  c.max_tokens = 120;
  PixArt m(c);
  // Counted: every trainable parameter (requires_grad), i.e. patch embedding, timestep MLP, t_block,
  // caption MLP y_proj, 28 blocks (self-attention, cross-attention, MLP, scale_shift_table) and the
  // final layer. Not counted: the fixed sin-cos pos_embed [1, 256, 1152] (a buffer in the reference)
  // and the null caption y_embedding [120, 4096] (a buffer in the reference).
  // Exactly 610,856,096 = 0.02% below the published ~611M.
  int64_t trainable = 0, fixed = 0;
  for (auto& p : m.named_parameters()) (p.value().requires_grad() ? trainable : fixed) += p.value().numel();
  CHECK(trainable == 610856096);
  CHECK(std::abs(double(trainable) - 611e6) / 611e6 < 0.02);
  CHECK(fixed == 256 * 1152);  // pos_embed only
}
