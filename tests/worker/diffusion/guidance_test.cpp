#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "shared/core/error.h"
#include "worker/diffusion/guidance.h"

// Everything lives in this namespace: test_worker is a unity build, so file-scope names and
// using-directives would leak into the other test files (ldm::models also has a Denoiser).
namespace diffusion_guidance_test {

using namespace ldm;
using namespace ldm::diffusion;

// A fake batched network over B-blocks laid out as guidance.h says: block j adds offset[j] to
// 0.5·x, and (with learned variance) writes 10 + j into the extra channels so tests can see
// which branch they came from. Records the batch size of every call.
struct FakeNetwork {
  FakeNetwork(std::vector<double> offsets_, bool learned_variance_)
      : offsets(std::move(offsets_)), learned_variance(learned_variance_) {}
  std::vector<double> offsets;  // one per block
  bool learned_variance;
  std::vector<int64_t> batches;

  Denoiser forward() {
    return [this](const torch::Tensor& x, const torch::Tensor& t) {
      batches.push_back(x.size(0));
      const int64_t blocks = int64_t(offsets.size()), b = x.size(0) / blocks;
      CHECK(x.size(0) == blocks * b);
      CHECK(t.size(0) == x.size(0));
      std::vector<torch::Tensor> out;
      for (int64_t j = 0; j < blocks; ++j) {
        auto xj = x.narrow(0, j * b, b);
        auto pred = 0.5 * xj + offsets[j];  // [B, C, …]
        out.push_back(learned_variance ? torch::cat({pred, torch::full_like(xj, 10.0 + j)}, 1) : pred);
      }
      return torch::cat(out, 0);  // [blocks·B, C or 2C, …]
    };
  }
};

TEST_CASE("guidance: two scales combine the three branches, 0,0 is unconditional, 1,0 semantic-only, 1,1 full") {
  const double u = 1.0, c = 3.0, k = 7.0;
  FakeNetwork net{{u, c, k}, true};
  auto x = torch::randn({2, 4, 3, 3}, torch::kFloat64);
  auto t = torch::full({2}, 0.5, torch::kFloat64);
  auto eval = [&](double s_sem, double s_ctrl) { return guided_denoiser(net.forward(), s_sem, s_ctrl)(x, t); };
  auto base = 0.5 * x;
  CHECK(torch::allclose(eval(0.0, 0.0).narrow(1, 0, 4), base + u));
  CHECK(torch::allclose(eval(1.0, 0.0).narrow(1, 0, 4), base + c));
  CHECK(torch::allclose(eval(1.0, 1.0).narrow(1, 0, 4), base + k));
  CHECK(torch::allclose(eval(4.0, 2.5).narrow(1, 0, 4), base + u + 4.0 * (c - u) + 2.5 * (k - c)));
  // Learned-variance channels come from the fully conditional branch, untouched by the scales.
  auto out = eval(4.0, 2.5);
  CHECK(out.sizes() == torch::IntArrayRef({2, 8, 3, 3}));
  CHECK(torch::allclose(out.narrow(1, 4, 4), torch::full({2, 4, 3, 3}, 12.0, torch::kFloat64)));
}

TEST_CASE("guidance: one scale combines two branches, 0 is unconditional, 1 conditional") {
  FakeNetwork net{{-1.0, 2.0}, false};
  auto x = torch::randn({3, 2}, torch::kFloat64);
  auto t = torch::full({3}, 0.25, torch::kFloat64);
  CHECK(torch::allclose(guided_denoiser(net.forward(), 0.0)(x, t), 0.5 * x - 1.0));
  CHECK(torch::allclose(guided_denoiser(net.forward(), 1.0)(x, t), 0.5 * x + 2.0));
  CHECK(torch::allclose(guided_denoiser(net.forward(), 5.0)(x, t), 0.5 * x - 1.0 + 5.0 * 3.0));
  CHECK_THROWS_AS(combine_guidance(torch::zeros({3, 2}), 2, 1.0), Error);  // not 2 equal blocks
}

TEST_CASE("guidance: a sampler makes exactly one network call per step, of batch 3B (two scales) or 2B (one scale)") {
  ProcessOptions po;
  auto process = NoiseProcess::create(po);
  SamplerOptions so;
  so.method = ldm::Sampler::Ddim;
  so.steps = 7;
  const int64_t B = 5;
  auto x_T = torch::randn({B, 4, 2, 2});

  FakeNetwork three{{0.0, 0.1, 0.2}, false};
  auto out = sample(*process, Objective::Eps, guided_denoiser(three.forward(), 4.0, 1.5), x_T, so, nullptr);
  CHECK(out.sizes() == x_T.sizes());
  CHECK(three.batches == std::vector<int64_t>(7, 3 * B));

  FakeNetwork two{{0.0, 0.1}, false};
  sample(*process, Objective::Eps, guided_denoiser(two.forward(), 4.0), x_T, so, nullptr);
  CHECK(two.batches == std::vector<int64_t>(7, 2 * B));
}

TEST_CASE("guidance: MDT's power-cosine ramp, none at pure noise, the full scale at the data, per row") {
  // MDT: real = (cfg - 1) * (1 - cos(pi * (1 - i/T)^pow)) / 2 + 1 at timestep index i of T = 1000.
  const double cfg = 3.8, pow = 4.0;
  const auto scale = power_cosine_scale(cfg, pow, 1000);
  for (int64_t i : {0, 1, 250, 500, 750, 999}) {
    CAPTURE(i);
    const double t = double(i) / 999.0;  // our time of index i
    const double mdt = (cfg - 1.0) * (1.0 - std::cos(M_PI * std::pow(1.0 - double(i) / 1000.0, pow))) / 2.0 + 1.0;
    CHECK(scale(torch::full({1}, t, torch::kFloat64)).item<double>() == doctest::Approx(mdt).epsilon(1e-12));
  }
  CHECK(scale(torch::zeros({1}, torch::kFloat64)).item<double>() == doctest::Approx(cfg));  // the data
  CHECK(scale(torch::ones({1}, torch::kFloat64)).item<double>() < 1.0 + 1e-6);              // pure noise
  // A continuous process reads t itself: 1 exactly at t = 1.
  CHECK(power_cosine_scale(cfg, pow, 0)(torch::ones({1}, torch::kFloat64)).item<double>() == 1.0);

  // In a denoiser each row gets the scale of its own time.
  FakeNetwork net{{-1.0, 2.0}, true};
  auto x = torch::randn({2, 3, 2, 2}, torch::kFloat64);
  auto t = torch::tensor({0.0, 1.0}, torch::kFloat64);
  auto out = guided_denoiser(net.forward(), power_cosine_scale(cfg, pow, 0))(x, t);
  CHECK(torch::allclose(out[0].narrow(0, 0, 3), 0.5 * x[0] - 1.0 + cfg * 3.0));  // full guidance at the data
  CHECK(torch::allclose(out[1].narrow(0, 0, 3), 0.5 * x[1] + 2.0));              // scale 1: conditional
  CHECK(torch::allclose(out.narrow(1, 3, 3), torch::full({2, 3, 2, 2}, 11.0, torch::kFloat64)));
  // Two scales: the semantic one ramps, the control one does not.
  FakeNetwork three{{1.0, 3.0, 7.0}, false};
  auto out3 = guided_denoiser(three.forward(), power_cosine_scale(cfg, pow, 0), 2.0)(x, t);
  CHECK(torch::allclose(out3[0], 0.5 * x[0] + 1.0 + cfg * 2.0 + 2.0 * 4.0));
  CHECK(torch::allclose(out3[1], 0.5 * x[1] + 3.0 + 2.0 * 4.0));
  CHECK_THROWS_AS(power_cosine_scale(cfg, 0.0, 1000), Error);
}

}  // namespace diffusion_guidance_test
