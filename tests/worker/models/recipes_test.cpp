// Every recipe x task x control mode at its tiny preset, through the registry the trainer uses:
// output shapes (square and non-square), parameter count against the LibTorch-free analytic table,
// zero output at initialisation, gradient flow to every trainable parameter once the
// zero-initialised tensors are redrawn, and weights interchange through safetensors.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "shared/core/recipes/card.h"
#include "worker/io/safetensors.h"
#include "worker/models/denoiser.h"
#include "worker/torch_compat.h"

using namespace ldm;
using namespace ldm::models;

namespace recipes_test {

constexpr int64_t kChannels = 4, kClasses = 5, kTextDim = 24, kTextTokens = 6;

struct Combo {
  std::string family, task, controls;
  std::string name() const { return family + "/" + task + "/controls=" + controls; }
};

std::vector<Combo> all_combos() {
  std::vector<Combo> out;
  for (const auto& family : recipe_families())
    for (const char* task : {"class", "text"})
      for (const char* controls : {"none", "sdxl", "proposed"}) out.push_back({family, task, controls});
  return out;
}

RecipeSpec recipe_for(const Combo& c) {
  RecipeSpec r = recipe_defaults(c.family);
  r.preset = c.family == "unet" ? "tiny" : "tiny/2";
  r.conditioning.controls = parse_choice<ControlMode>(c.controls, "controls");
  r.conditioning.frequency_size = 16;
  r.mask_ratio = 0.5;
  return r;
}

ModelGeometry geometry_for(const Combo& c, int64_t h, int64_t w) {
  ModelGeometry g{kChannels, h, w, c.task == "class" ? kClasses : 0};
  if (c.task == "text") {
    g.text_channels = kTextDim;
    g.text_tokens = kTextTokens;
  }
  return g;
}

std::shared_ptr<Denoiser> build(const Combo& c, int64_t h, int64_t w, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return build_denoiser(recipe_for(c), geometry_for(c, h, w), gen);
}

// A condition with every field the combo needs, drawn from `seed`; nothing dropped except row 0's
// semantic condition and row 1's controls, so the dropped paths run too.
Condition condition_for(const Combo& c, int64_t n, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  Condition cond;
  if (c.task == "class") {
    cond.labels = torch::randint(0, kClasses + 1, {n}, g, torch::kInt64);
  } else {
    cond.tokens = torch::randn({n, kTextTokens, kTextDim}, g);
    cond.token_mask = torch::arange(kTextTokens).unsqueeze(0).lt(torch::randint(1, kTextTokens + 1, {n, 1}, g));
    cond.pooled = torch::randn({n, kTextDim}, g);
    cond.semantic_drop = torch::arange(n).eq(0);
  }
  if (c.controls != "none") {
    cond.controls = torch::rand({n, kControlColumns}, g) * 256;
    cond.controls.select(1, control_col::kFlip).copy_(torch::arange(n).remainder(2));
    cond.control_drop = torch::arange(n).eq(1);
  }
  cond.noise_level = torch::rand({n}, g) * 0.8 + 0.1;
  return cond;
}

ModelShape shape_for(const Combo& c, int64_t side, bool learn_sigma) {
  ModelShape s;
  s.in_channels = kChannels;
  s.latent_size = static_cast<int>(side);
  s.num_classes = c.task == "class" ? kClasses : 0;
  s.learn_sigma = learn_sigma;
  s.text_channels = c.task == "text" ? kTextDim : 0;
  s.text_tokens = c.task == "text" ? kTextTokens : 0;
  s.controls.enabled = c.controls != "none";
  s.controls.frequency_size = 16;
  return s;
}

// Parameters that legitimately get no gradient: in the class task a cross-attention attends to a
// single key, so softmax is constant (PixArt's q_linear), and for the UNet (whose cross-attention
// context is the label token alone) its query, key and the norm feeding them (as the reference).
bool single_key_query(const Combo& c, const std::string& name) {
  if (c.task != "class") return false;
  for (const char* part : {"cross_attn.q_linear", "attn2.to_q", "attn2.to_k", ".norm2."})
    if (name.find(part) != std::string::npos && (c.family == "unet" || std::string(part) == "cross_attn.q_linear"))
      return true;
  return false;
}

}  // namespace recipes_test

using namespace recipes_test;

TEST_CASE(
    "every recipe x task x control mode builds with the analytic parameter count and predicts the input's shape") {
  for (const Combo& c : all_combos()) {
    CAPTURE(c.name());
    for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 8}, {8, 12}}) {
      CAPTURE(h);
      CAPTURE(w);
      auto m = build(c, h, w, 0);
      auto x = torch::randn({3, kChannels, h, w});
      auto out = m->forward(x, torch::tensor({10.0, 500.0, 990.0}), condition_for(c, 3, 1));
      CHECK(out.sizes() == torch::IntArrayRef({3, m->out_channels(), h, w}));
      // The family's own output: DiT, mDT-v2 and PixArt-α learn sigma (twice the channels).
      CHECK(m->out_channels() == (recipe_for(c).learn_sigma ? 2 * kChannels : kChannels));
    }
    int64_t built = 0;
    auto m = build(c, 8, 8, 0);
    for (const auto& p : m->parameters()) built += p.numel();
    const PresetInfo* preset = find_preset(c.family, recipe_for(c).preset);
    REQUIRE(preset);
    CHECK(built == analytic_param_count(*preset, shape_for(c, 8, recipe_for(c).learn_sigma)));
  }
}

TEST_CASE("analytic counts follow learned sigma, learned null controls and disabled control groups") {
  for (const Combo& c : all_combos()) {
    if (c.controls == "none") continue;
    CAPTURE(c.name());
    RecipeSpec r = recipe_for(c);
    r.learn_sigma = c.family != "mmdit" && c.family != "proposed";  // flow recipes predict no variance
    r.conditioning.dropped_controls = "learned";
    r.conditioning.use_crop = false;
    r.conditioning.use_aspect = false;
    auto gen = at::detail::createCPUGenerator(0);
    auto m = build_denoiser(r, geometry_for(c, 8, 8), gen);
    int64_t built = 0;
    for (const auto& p : m->parameters()) built += p.numel();
    ModelShape s = shape_for(c, 8, r.learn_sigma);
    s.controls.learned_null = true;
    s.controls.crop = s.controls.aspect = false;
    CHECK(m->out_channels() == (r.learn_sigma ? 2 : 1) * kChannels);
    CHECK(built == analytic_param_count(*find_preset(c.family, r.preset), s));
    // model_shape (what `ldm-worker describe` and the benchmark count) derives the same shape.
    CHECK(built == analytic_param_count(*find_preset(c.family, r.preset), model_shape(geometry_for(c, 8, 8), r)));
  }
}

TEST_CASE("every recipe predicts exactly zero at initialisation (zero-initialised output path)") {
  for (const Combo& c : all_combos()) {
    CAPTURE(c.name());
    auto m = build(c, 8, 8, 3);
    auto out = m->forward(torch::randn({2, kChannels, 8, 8}), torch::tensor({100.0, 700.0}), condition_for(c, 2, 2));
    CHECK(out.abs().max().item<double>() == 0.0);
    CHECK_FALSE(m->zero_initialised().empty());
  }
}

TEST_CASE("with the zero-initialised tensors redrawn, one forward+backward reaches every trainable parameter") {
  for (const Combo& c : all_combos()) {
    CAPTURE(c.name());
    auto m = build(c, 8, 8, 4);
    auto params = m->named_parameters();
    {
      torch::NoGradGuard no_grad;
      auto g = at::detail::createCPUGenerator(9);
      for (const auto& name : m->zero_initialised()) {
        CAPTURE(name);
        REQUIRE(params.contains(name));
        CHECK(params[name].abs().max().item<double>() == 0.0);
        params[name].normal_(0.0, 0.02, g);
      }
    }
    auto x = torch::randn({4, kChannels, 8, 8});
    auto t = torch::tensor({50.0, 300.0, 600.0, 900.0});
    auto gen = at::detail::createCPUGenerator(5);
    // mDT: the masked branch runs too, so the mask token and side-interpolator get gradients.
    auto outs = m->training_outputs(x, t, condition_for(c, 4, 6), gen);
    CHECK(outs.size() == (c.family == "mdt" ? 2u : 1u));
    torch::Tensor loss;
    for (const auto& o : outs) loss = loss.defined() ? loss + o.pow(2).mean() : o.pow(2).mean();
    loss.backward();
    for (const auto& p : params) {
      if (!p.value().requires_grad() || single_key_query(c, p.key())) continue;
      CAPTURE(p.key());
      REQUIRE(p.value().grad().defined());
      CHECK(torch::isfinite(p.value().grad()).all().item<bool>());
      CHECK(p.value().grad().abs().max().item<double>() > 0.0);
    }
  }
}

TEST_CASE("under bf16 autocast every recipe's forward stays close to fp32 and its gradients reach fp32 weights") {
  // The CPU's bf16 autocast runs the same casts as CUDA's for linear layers, matmuls and convolutions,
  // so a family that mixes dtypes wrongly (a bias added in another dtype, a mask of the wrong type) fails here.
  for (const Combo& c : all_combos()) {
    CAPTURE(c.name());
    auto m = build(c, 8, 8, 4);
    {
      torch::NoGradGuard no_grad;
      auto g = at::detail::createCPUGenerator(9);
      auto params = m->named_parameters();
      for (const auto& name : m->zero_initialised()) params[name].normal_(0.0, 0.02, g);
    }
    auto x = torch::randn({2, kChannels, 8, 8});
    auto t = torch::tensor({200.0, 700.0});
    const Condition cond = condition_for(c, 2, 6);
    const auto full = m->forward(x, t, cond);
    torch::Tensor half;
    {
      torch_compat::AutocastScope autocast(torch::kCPU, true);
      half = m->forward(x, t, cond);
    }
    CHECK_FALSE(torch_compat::autocast_enabled(torch::kCPU));
    // A difference shows the forward really ran in bf16; its size, that it ran correctly.
    const double scale = full.abs().max().item<double>();
    const double diff = (half.to(torch::kFloat32) - full).abs().max().item<double>();
    CHECK(diff > 0.0);
    CHECK(diff < 0.05 * scale);
    half.to(torch::kFloat32).pow(2).mean().backward();
    for (const auto& p : m->parameters()) {
      if (!p.grad().defined()) continue;
      CHECK((p.dtype() == torch::kFloat32));
      CHECK((p.grad().dtype() == torch::kFloat32));
      CHECK(torch::isfinite(p.grad()).all().item<bool>());
    }
  }
}

TEST_CASE("training outputs depend on their own generator only, never on the global one (DESIGN: Randomness)") {
  for (const Combo& c : all_combos()) {
    CAPTURE(c.name());
    auto m = build(c, 8, 8, 4);
    m->train();
    auto x = torch::randn({3, kChannels, 8, 8}, at::detail::createCPUGenerator(1));
    auto t = torch::tensor({50.0, 500.0, 900.0});
    const Condition cond = condition_for(c, 3, 6);
    auto run = [&](uint64_t global_seed) {
      torch::manual_seed(global_seed);  // a different global stream must not change anything
      auto gen = at::detail::createCPUGenerator(5);
      torch::NoGradGuard no_grad;
      return m->training_outputs(x, t, cond, gen);
    };
    const auto a = run(1), b = run(2);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i], b[i]));
  }
}

TEST_CASE("safetensors export/import: a model loaded into one built from another seed gives bitwise-equal outputs") {
  for (const Combo& c : all_combos()) {
    CAPTURE(c.name());
    auto a = build(c, 8, 12, 11), b = build(c, 8, 12, 12);
    {  // perturb the zero-initialised tensors, so the outputs are not trivially zero
      torch::NoGradGuard no_grad;
      auto g = at::detail::createCPUGenerator(1);
      auto pa = a->named_parameters();
      for (const auto& name : a->zero_initialised()) pa[name].normal_(0.0, 0.02, g);
    }
    a->eval();
    b->eval();
    auto x = torch::randn({2, kChannels, 8, 12});
    auto t = torch::tensor({200.0, 800.0});
    const Condition cond = condition_for(c, 2, 7);
    torch::NoGradGuard no_grad;
    auto out_a = a->forward(x, t, cond);
    CHECK_FALSE(torch::equal(out_a, b->forward(x, t, cond)));
    worker::TensorMap state;
    for (const auto& p : a->named_parameters()) state[p.key()] = p.value();
    for (const auto& buf : a->named_buffers()) state[buf.key()] = buf.value();
    const std::string bytes = worker::safetensors_encode(state);
    const worker::TensorMap loaded = worker::safetensors_decode(bytes, "memory");
    for (auto& p : b->named_parameters()) p.value().copy_(loaded.at(p.key()));
    for (auto& buf : b->named_buffers()) buf.value().copy_(loaded.at(buf.key()));
    CHECK(torch::equal(out_a, b->forward(x, t, cond)));
  }
}

TEST_CASE("controls change the prediction, noise-weighted controls have no effect at pure noise") {
  for (const auto& family : recipe_families()) {
    CAPTURE(family);
    for (const char* mode : {"sdxl", "proposed"}) {
      CAPTURE(mode);
      const Combo c{family, "class", mode};
      auto m = build(c, 8, 8, 21);
      {
        torch::NoGradGuard no_grad;
        auto g = at::detail::createCPUGenerator(2);
        auto p = m->named_parameters();
        for (const auto& name : m->zero_initialised()) p[name].normal_(0.0, 0.05, g);
      }
      m->eval();
      torch::NoGradGuard no_grad;
      auto x = torch::randn({2, kChannels, 8, 8});
      Condition a = condition_for(c, 2, 3), b = a;
      b.controls = a.controls + 64;  // another original size / crop
      a.control_drop = b.control_drop = torch::zeros({2}, torch::kBool);
      for (double level : {0.3, 1.0}) {
        CAPTURE(level);
        a.noise_level = b.noise_level = torch::full({2}, level);
        auto t = torch::full({2}, level * 999);
        const bool same = torch::equal(m->forward(x, t, a), m->forward(x, t, b));
        // SDXL-style: constant weight, the controls always act. Proposed: w_alpha(1) = 0.
        CHECK(same == (std::string(mode) == "proposed" && level == 1.0));
      }
    }
  }
}
