#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>

#include "datasets/format/shard.h"
#include "shared/core/error.h"
#include "worker/models/conditioning.h"

// Helpers live in a named namespace: test_worker is a unity build, and anonymous namespaces of
// the files batched together would merge.
namespace conditioning_test {

using namespace ldm::models;

ControlEmbedderOptions small_options(const std::string& weighting) {
  ControlEmbedderOptions o;
  o.dim = 32;
  o.frequency_size = 16;
  o.weighting = weighting;
  return o;
}

ControlEmbedder make(const ControlEmbedderOptions& o, uint64_t seed) {
  ControlEmbedder m(o);
  auto gen = at::detail::createCPUGenerator(seed);
  m->initialize(gen);
  return m;
}

// [N, 8] plausible controls: sizes 64..1024, crops inside, flip 0/1, aspect = w/h.
torch::Tensor sample_controls(int64_t n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto h = torch::randint(64, 1025, {n}, gen, torch::kFloat32);
  auto w = torch::randint(64, 1025, {n}, gen, torch::kFloat32);
  auto side = torch::minimum(h, w);
  auto top = torch::floor(torch::rand({n}, gen) * (h - side));
  auto left = torch::floor(torch::rand({n}, gen) * (w - side));
  auto flip = torch::randint(0, 2, {n}, gen, torch::kFloat32);
  return torch::stack({h, w, top, left, side, side, flip, w / h}, 1);
}

bool all_finite(const torch::Tensor& x) { return torch::isfinite(x).all().item<bool>(); }

}  // namespace conditioning_test

TEST_CASE("control_weight is 1 at t=0, exactly 0 at t=1 and never increases in between") {
  using ldm::models::control_weight;
  for (double alpha : {0.25, 1.0, 2.0, 5.0}) {
    CAPTURE(alpha);
    CHECK(control_weight(0.0, alpha) == 1.0);
    CHECK(control_weight(1.0, alpha) == 0.0);
    CHECK(control_weight(0.5, alpha) == doctest::Approx(std::pow(std::cos(M_PI / 4), alpha)));
    auto t = torch::linspace(0, 1, 1001);
    auto w = control_weight(t, alpha);
    CHECK(w.dtype() == torch::kFloat32);
    CHECK(w[0].item<float>() == 1.0f);
    CHECK(w[-1].item<float>() == 0.0f);
    CHECK((w.slice(0, 1) <= w.slice(0, 0, -1)).all().item<bool>());
    CHECK(((w >= 0) & (w <= 1)).all().item<bool>());
  }
  // A larger α keeps the weight lower at the same noise level (the control acts later).
  CHECK(control_weight(0.3, 3.0) < control_weight(0.3, 1.0));
}

TEST_CASE("control_weight with alpha 0 is the constant weight 1, pure noise included") {
  using ldm::models::control_weight;
  CHECK(control_weight(1.0, 0.0) == 1.0);
  CHECK(control_weight(0.7, 0.0) == 1.0);
  auto t = torch::linspace(0, 1, 101, torch::kFloat64);
  auto w = control_weight(t, 0.0);
  CHECK(w.dtype() == torch::kFloat64);
  CHECK(torch::equal(w, torch::ones_like(t)));
}

TEST_CASE("control_weight rejects a negative alpha as a spec error") {
  CHECK_THROWS_AS(ldm::models::control_weight(0.5, -1.0), ldm::SpecError);
  CHECK_THROWS_AS(ldm::models::control_weight(torch::zeros({2}), -0.5), ldm::SpecError);
}

TEST_CASE("control_tensor lays out loader metadata in the documented column order") {
  using namespace ldm::models::control_col;
  ldm::ControlMeta a;
  a.orig_h = 300;
  a.orig_w = 600;
  a.crop_top = 10;
  a.crop_left = 20;
  a.crop_h = 256;
  a.crop_w = 257;
  a.flip = true;
  ldm::ControlMeta empty;  // orig_h 0: aspect 0, not inf
  auto c = ldm::models::control_tensor({a, empty});
  REQUIRE(c.sizes() == torch::IntArrayRef({2, ldm::models::kControlColumns}));
  CHECK(c[0][kOrigH].item<float>() == 300);
  CHECK(c[0][kOrigW].item<float>() == 600);
  CHECK(c[0][kCropTop].item<float>() == 10);
  CHECK(c[0][kCropLeft].item<float>() == 20);
  CHECK(c[0][kCropH].item<float>() == 256);
  CHECK(c[0][kCropW].item<float>() == 257);
  CHECK(c[0][kFlip].item<float>() == 1);
  CHECK(c[0][kAspect].item<float>() == 2.0f);
  CHECK(torch::equal(c[1], torch::zeros({8})));
}

TEST_CASE("ControlEmbedder maps [N, 8] controls to [N, D] with one MLP per enabled group") {
  auto o = conditioning_test::small_options("noise_weighted");
  auto m = conditioning_test::make(o, 1);
  auto out = m->forward(conditioning_test::sample_controls(5, 2), torch::rand({5}));
  CHECK(out.sizes() == torch::IntArrayRef({5, 32}));
  CHECK(conditioning_test::all_finite(out));
  auto params = m->named_parameters();
  CHECK(params.size() == 16);  // 4 groups × (2 Linear × weight, bias)
  REQUIRE(params.find("crop.0.weight") != nullptr);
  CHECK(params["crop.0.weight"].sizes() == torch::IntArrayRef({32, 4 * 16}));  // 4 scalars × F
  CHECK(params["size.0.weight"].sizes() == torch::IntArrayRef({32, 2 * 16}));
  CHECK(params["flip.2.weight"].sizes() == torch::IntArrayRef({32, 32}));

  o.use_crop = false;
  o.use_aspect = false;
  auto partial = conditioning_test::make(o, 1);
  CHECK(partial->named_parameters().size() == 8);
  CHECK(partial->named_parameters().find("crop.0.weight") == nullptr);
  CHECK(partial->forward(conditioning_test::sample_controls(3, 2), torch::rand({3})).sizes() ==
        torch::IntArrayRef({3, 32}));
}

TEST_CASE("ControlEmbedder rejects unknown weighting and dropped modes with a suggestion") {
  auto o = conditioning_test::small_options("noise_weigted");
  try {
    ldm::models::ControlEmbedder m(o);
    FAIL("no error for an unknown weighting");
  } catch (const ldm::SpecError& e) {
    CHECK(e.key_path() == "recipe.conditioning.controls");
    CHECK(std::string(e.what()).find("noise_weighted") != std::string::npos);
  }
  o = conditioning_test::small_options("constant");
  o.dropped = "learnt";
  CHECK_THROWS_AS(ldm::models::ControlEmbedder{o}, ldm::SpecError);
  o = conditioning_test::small_options("constant");
  o.alpha_flip = -1;
  CHECK_THROWS_AS(ldm::models::ControlEmbedder{o}, ldm::SpecError);
}

TEST_CASE("noise-weighted control embedding is exactly zero at t=1 and equals the constant one at t=0") {
  auto o = conditioning_test::small_options("noise_weighted");
  o.alpha_size = 3.0;  // per-group α must not matter at the end points
  o.alpha_crop = 0.5;
  auto weighted = conditioning_test::make(o, 7);
  auto constant = conditioning_test::make(conditioning_test::small_options("constant"),
                                          7);  // same seed, same draw order: same weights
  auto ctrl = conditioning_test::sample_controls(6, 3);
  CHECK(torch::equal(weighted->forward(ctrl, torch::ones({6})), torch::zeros({6, 32})));
  auto at0 = weighted->forward(ctrl, torch::zeros({6}));
  CHECK(torch::equal(at0, constant->forward(ctrl, torch::Tensor())));
  CHECK(at0.abs().sum().item<double>() > 0);
  // The constant (SDXL-style) embedding does not depend on t.
  CHECK(torch::equal(constant->forward(ctrl, torch::ones({6})), constant->forward(ctrl, torch::zeros({6}))));
}

TEST_CASE("noise-weighted control embedding weights each group by its own alpha") {
  using ldm::models::ControlGroup;
  auto o = conditioning_test::small_options("noise_weighted");
  o.alpha_size = 4.0;
  o.alpha_crop = 1.0;
  o.alpha_flip = 0.5;
  o.alpha_aspect = 0.0;
  auto weighted = conditioning_test::make(o, 11);
  auto ctrl = conditioning_test::sample_controls(4, 5);
  auto t = torch::tensor({0.1f, 0.4f, 0.8f, 0.95f});
  auto expected = torch::zeros({4, 32});
  for (int gi = 0; gi < ldm::models::kControlGroups; ++gi) {
    const auto g = static_cast<ControlGroup>(gi);
    // A constant-mode embedder with only group g, holding weighted's group-g MLP.
    auto single_o = conditioning_test::small_options("constant");
    single_o.use_size = g == ControlGroup::Size;
    single_o.use_crop = g == ControlGroup::Crop;
    single_o.use_flip = g == ControlGroup::Flip;
    single_o.use_aspect = g == ControlGroup::Aspect;
    auto single = conditioning_test::make(single_o, 99);
    {
      torch::NoGradGuard ng;
      auto src = weighted->group_mlp(g)->parameters(), dst = single->group_mlp(g)->parameters();
      for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
    }
    expected += ldm::models::control_weight(t, o.alpha(g)).unsqueeze(1) * single->forward(ctrl, torch::Tensor());
  }
  CHECK(torch::allclose(weighted->forward(ctrl, t), expected, 1e-5, 1e-6));
}

TEST_CASE("drop mask gives dropped samples a zero control embedding and leaves the others unchanged") {
  for (const char* weighting : {"constant", "noise_weighted"}) {
    CAPTURE(weighting);
    auto m = conditioning_test::make(conditioning_test::small_options(weighting), 3);
    auto ctrl = conditioning_test::sample_controls(5, 8);
    auto t = torch::full({5}, 0.25);
    auto drop = torch::tensor({true, false, true, false, false});
    auto full = m->forward(ctrl, t);
    auto out = m->forward(ctrl, t, drop);
    CHECK(torch::equal(out.index({drop}), torch::zeros({2, 32})));
    CHECK(torch::equal(out.index({~drop}), full.index({~drop})));
    CHECK(torch::equal(m->forward(ctrl, t, torch::zeros({5}, torch::kBool)), full));
  }
}

TEST_CASE("learned-null option replaces dropped samples' group embeddings by the learned null vectors") {
  auto o = conditioning_test::small_options("noise_weighted");
  o.dropped = "learned";
  auto m = conditioning_test::make(o, 4);
  auto params = m->named_parameters();
  REQUIRE(params.find("size_null") != nullptr);
  auto ctrl = conditioning_test::sample_controls(3, 1);
  auto t = torch::tensor({0.0f, 0.5f, 1.0f});
  auto out = m->forward(ctrl, t, torch::tensor({true, true, false}));
  auto nulls = params["size_null"] + params["crop_null"] + params["flip_null"] + params["aspect_null"];
  CHECK(torch::allclose(out[0], nulls, 1e-6, 1e-7));  // t = 0: weights 1
  const double w = ldm::models::control_weight(0.5, 1.0);
  CHECK(torch::allclose(out[1], w * nulls, 1e-5, 1e-6));
  CHECK(out[0].abs().sum().item<double>() > 0);
}

TEST_CASE("one forward and backward gives finite non-zero gradients on every ControlEmbedder parameter") {
  for (const char* weighting : {"constant", "noise_weighted"}) {
    CAPTURE(weighting);
    auto m = conditioning_test::make(conditioning_test::small_options(weighting), 5);
    auto gen = at::detail::createCPUGenerator(6);
    auto t = torch::rand({8}, gen) * 0.9 + 0.05;
    auto out = m->forward(conditioning_test::sample_controls(8, 9), t,
                          torch::tensor({0, 0, 1, 0, 0, 0, 0, 0}).to(torch::kBool));
    (out * torch::randn(out.sizes(), gen)).sum().backward();
    for (const auto& p : m->named_parameters()) {
      CAPTURE(p.key());
      REQUIRE(p.value().grad().defined());
      CHECK(conditioning_test::all_finite(p.value().grad()));
      CHECK(p.value().grad().abs().sum().item<double>() > 0);
    }
  }
}

TEST_CASE("ControlEmbedder initialisation draws only from the given generator") {
  auto o = conditioning_test::small_options("noise_weighted");
  auto a = conditioning_test::make(o, 21), b = conditioning_test::make(o, 21), c = conditioning_test::make(o, 22);
  auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
  bool any_diff = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    CHECK(torch::equal(pa[i], pb[i]));
    any_diff = any_diff || !torch::equal(pa[i], pc[i]);
  }
  CHECK(any_diff);
  auto named = a->named_parameters();
  // Input layers N(0, 0.02); output layers xavier-uniform (not zero); biases zero.
  CHECK(named["crop.0.weight"].std().item<double>() == doctest::Approx(0.02).epsilon(0.1));
  const double bound = std::sqrt(6.0 / (32 + 32));
  CHECK(named["crop.2.weight"].abs().max().item<double>() <= bound);
  CHECK(named["crop.2.weight"].abs().max().item<double>() > 0.5 * bound);
  CHECK(torch::equal(named["crop.0.bias"], torch::zeros({32})));
}

// ---- text padding ----------------------------------------------------------------------------------

namespace conditioning_test {
// tokens [3, 7, 4]; lengths {3, 7, 0}; padded input slots hold NaN to prove they are never read.
torch::Tensor padding_tokens() {
  auto gen = at::detail::createCPUGenerator(12);
  auto x = torch::randn({3, 7, 4}, gen);
  x[0].slice(0, 3).fill_(std::nan(""));
  x[2].fill_(std::nan(""));
  return x;
}
torch::Tensor padding_lengths() { return torch::tensor({3, 7, 0}, torch::kInt64); }
}  // namespace conditioning_test

TEST_CASE("replicate padding tiles the real tokens exactly and keeps empty captions zero") {
  using namespace ldm::models;
  auto x = conditioning_test::padding_tokens();
  auto out = pad_text_tokens(x, conditioning_test::padding_lengths(), TextPadding::Replicate, 0.0);
  REQUIRE(out.sizes() == x.sizes());
  for (int64_t j = 0; j < 7; ++j) {
    CAPTURE(j);
    CHECK(torch::equal(out[0][j], x[0][j % 3]));
  }
  CHECK(torch::equal(out[1], x[1]));  // full caption: untouched
  CHECK(torch::equal(out[2], torch::zeros({7, 4})));
  // The noise scale is irrelevant to plain replicate, and no generator is needed.
  CHECK(torch::equal(pad_text_tokens(x, conditioning_test::padding_lengths(), TextPadding::Replicate, 0.5), out));
}

TEST_CASE("zero padding zeroes the padded slots and leaves real slots unchanged") {
  using namespace ldm::models;
  auto x = conditioning_test::padding_tokens();
  auto out = pad_text_tokens(x, conditioning_test::padding_lengths(), TextPadding::Zero, 0.0);
  CHECK(torch::equal(out[0].slice(0, 0, 3), x[0].slice(0, 0, 3)));
  CHECK(torch::equal(out[0].slice(0, 3), torch::zeros({4, 4})));
  CHECK(torch::equal(out[1], x[1]));
  CHECK(torch::equal(out[2], torch::zeros({7, 4})));
}

TEST_CASE("noisy replicate adds noise of std sigma_pad on padded slots only") {
  using namespace ldm::models;
  const int64_t n = 64, l = 77, d = 32;
  auto data_gen = at::detail::createCPUGenerator(1);
  auto x = torch::randn({n, l, d}, data_gen);
  auto lengths = torch::randint(0, 20, {n}, data_gen, torch::kInt64);
  lengths[0] = 0;
  lengths[1] = l;
  const double sigma = kDefaultTextPadNoise;
  auto gen = at::detail::createCPUGenerator(42);
  auto noisy = pad_text_tokens(x, lengths, TextPadding::NoisyReplicate, sigma, &gen);
  auto rep = pad_text_tokens(x, lengths, TextPadding::Replicate, 0.0);
  auto diff = noisy - rep;                                                                             // [N, L, D]
  auto padded = (torch::arange(l).unsqueeze(0) >= lengths.unsqueeze(1)) & (lengths.unsqueeze(1) > 0);  // [N, L]
  auto real = torch::arange(l).unsqueeze(0) < lengths.unsqueeze(1);
  auto pad_diff = diff.index({padded});  // [P, D]
  REQUIRE(pad_diff.numel() > 50000);
  CHECK(pad_diff.std().item<double>() == doctest::Approx(sigma).epsilon(0.1));
  CHECK(std::abs(pad_diff.mean().item<double>()) < 0.1 * sigma);
  CHECK(torch::equal(noisy.index({real}), x.index({real})));  // real slots bit-for-bit
  CHECK(torch::equal(noisy[0], torch::zeros({l, d})));        // empty caption stays zero

  auto gen_same = at::detail::createCPUGenerator(42), gen_other = at::detail::createCPUGenerator(43);
  CHECK(torch::equal(pad_text_tokens(x, lengths, TextPadding::NoisyReplicate, sigma, &gen_same), noisy));
  CHECK_FALSE(torch::equal(pad_text_tokens(x, lengths, TextPadding::NoisyReplicate, sigma, &gen_other), noisy));
}

TEST_CASE("noisy replicate with noise scale 0 is plain replicate and needs no generator") {
  using namespace ldm::models;
  auto x = conditioning_test::padding_tokens();
  auto lengths = conditioning_test::padding_lengths();
  CHECK(torch::equal(pad_text_tokens(x, lengths, TextPadding::NoisyReplicate, 0.0, nullptr),
                     pad_text_tokens(x, lengths, TextPadding::Replicate, 0.0)));
  CHECK_THROWS(pad_text_tokens(x, lengths, TextPadding::NoisyReplicate, 0.1, nullptr));
}

TEST_CASE("text padding rejects bad lengths, and its modes are read through the spec's name table") {
  using namespace ldm::models;
  auto x = torch::zeros({2, 5, 3});
  CHECK_THROWS(pad_text_tokens(x, torch::tensor({6, 1}, torch::kInt64), TextPadding::Zero, 0.0));
  CHECK_THROWS(pad_text_tokens(x, torch::tensor({-1, 1}, torch::kInt64), TextPadding::Zero, 0.0));
  CHECK(ldm::choice_from_name<TextPadding>("noisy_replicate") == TextPadding::NoisyReplicate);
  CHECK(std::string(ldm::choice_name(TextPadding::Replicate)) == "replicate");
  try {
    ldm::parse_choice<TextPadding>("noisy_replicat", "recipe.conditioning.text_padding");
    FAIL("no error for an unknown padding mode");
  } catch (const ldm::SpecError& e) {
    CHECK(e.key_path() == "recipe.conditioning.text_padding");
    CHECK(std::string(e.what()).find("did you mean 'noisy_replicate'") != std::string::npos);
  }
}

// ---- condition dropout -------------------------------------------------------------------------------

TEST_CASE("drop_mask drops with probability p, reproducibly from its generator") {
  using ldm::models::drop_mask;
  auto g0 = at::detail::createCPUGenerator(3);
  auto none = drop_mask(1000, 0.0, g0), all = drop_mask(1000, 1.0, g0);
  CHECK(none.dtype() == torch::kBool);
  CHECK(none.sizes() == torch::IntArrayRef({1000}));
  CHECK_FALSE(none.any().item<bool>());
  CHECK(all.all().item<bool>());
  auto ga = at::detail::createCPUGenerator(8), gb = at::detail::createCPUGenerator(8);
  auto a = drop_mask(20000, 0.1, ga);
  CHECK(a.to(torch::kFloat64).mean().item<double>() == doctest::Approx(0.1).epsilon(0.1));
  CHECK(torch::equal(a, drop_mask(20000, 0.1, gb)));
  // Semantic and control dropout from their own generators are independent.
  auto gs = at::detail::createCPUGenerator(100), gc = at::detail::createCPUGenerator(200);
  auto sem = drop_mask(20000, 0.5, gs).to(torch::kFloat64), ctl = drop_mask(20000, 0.5, gc).to(torch::kFloat64);
  CHECK((sem * ctl).mean().item<double>() == doctest::Approx(0.25).epsilon(0.1));
  CHECK_THROWS_AS(drop_mask(4, 1.5, ga), ldm::SpecError);
}
