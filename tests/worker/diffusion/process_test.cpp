#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>

#include "shared/core/error.h"
#include "worker/diffusion/process.h"

// Everything lives in this namespace: test_worker is a unity build, so file-scope names and
// using-directives would leak into the other test files (ldm::models also has a Denoiser).
namespace diffusion_process_test {

using namespace ldm;
using namespace ldm::diffusion;

std::unique_ptr<NoiseProcess> make(const std::string& kind, double shift = 1.0) {
  ProcessOptions o;
  o.kind = ldm::parse_choice<ldm::ProcessKind>(kind, "process");
  o.shift = shift;
  return NoiseProcess::create(o);
}

// ᾱ_i of DiT's linear schedule, by a plain product (independent of the process code).
double linear_alpha_bar(int64_t i, int64_t T = 1000, double b0 = 1e-4, double b1 = 0.02) {
  double ac = 1.0;
  for (int64_t k = 0; k <= i; ++k) ac *= 1.0 - (b0 + (b1 - b0) * double(k) / double(T - 1));
  return ac;
}

double cosine_alpha_bar_fn(double u) {
  double c = std::cos((u + 0.008) / 1.008 * M_PI / 2.0);
  return c * c;
}

TEST_CASE("process: log-SNR is strictly decreasing in t for every kind and shift") {
  auto t = torch::linspace(0.0, 1.0, 4001, torch::kFloat64);
  for (const char* kind : {"vp-linear", "vp-scaled-linear", "vp-cosine", "flow"})
    for (double s : {1.0, 0.5, 2.0, 4.0}) {
      CAPTURE(kind);
      CAPTURE(s);
      auto lam = make(kind, s)->log_snr(t);
      CHECK((lam.slice(0, 1) < lam.slice(0, 0, -1)).all().item<bool>());
      // α² + σ² = 1 for VP; α + σ = 1 for flow; both consistent with λ where finite.
      auto p = make(kind, s);
      auto a = p->alpha(t), sg = p->sigma(t);
      if (std::string(kind) == "flow") CHECK(((a + sg) - 1.0).abs().max().item<double>() < 1e-12);
      else CHECK(((a * a + sg * sg) - 1.0).abs().max().item<double>() < 1e-12);
      auto inner = t.slice(0, 1, -1);
      auto lam_inner = p->log_snr(inner);
      auto from_as = 2.0 * (p->alpha(inner).log() - p->sigma(inner).log());
      CHECK((lam_inner - from_as).abs().max().item<double>() < 1e-9);
    }
}

TEST_CASE("process: endpoints and grid values of the VP schedules and the flow") {
  auto lin = make("vp-linear");
  CHECK(lin->is_discrete());
  CHECK(lin->timesteps() == 1000);
  CHECK(std::pow(lin->alpha(0.0), 2) == doctest::Approx(1.0 - 1e-4).epsilon(1e-13));
  for (int64_t i : {0, 1, 250, 500, 999}) {
    CAPTURE(i);
    const double t = double(i) / 999.0;
    CHECK(std::pow(lin->alpha(t), 2) == doctest::Approx(linear_alpha_bar(i)).epsilon(1e-11));
    CHECK(std::pow(lin->sigma(t), 2) == doctest::Approx(1.0 - linear_alpha_bar(i)).epsilon(1e-11));
  }
  // LDM's schedule: betas linear in sqrt(beta) from 0.0015 to 0.0195 (its configs' linear_start /
  // linear_end), squared.
  ProcessOptions ldm_options;
  ldm_options.kind = ldm::ProcessKind::VpScaledLinear;
  ldm_options.beta_start = 0.0015;
  ldm_options.beta_end = 0.0195;
  auto scaled = NoiseProcess::create(ldm_options);
  CHECK(scaled->timesteps() == 1000);
  double ac = 1.0;
  for (int64_t i = 0; i < 1000; ++i) {
    const double root = std::sqrt(0.0015) + (std::sqrt(0.0195) - std::sqrt(0.0015)) * double(i) / 999.0;
    ac *= 1.0 - root * root;
    if (i == 0 || i == 1 || i == 250 || i == 500 || i == 999) {
      CAPTURE(i);
      CHECK(std::pow(scaled->alpha(double(i) / 999.0), 2) == doctest::Approx(ac).epsilon(1e-11));
    }
  }
  // Not the same process as betas linear over the same range: sqrt-linear betas are smaller in
  // between, so more signal survives at mid noise.
  ProcessOptions plain = ldm_options;
  plain.kind = ldm::ProcessKind::VpLinear;
  CHECK(scaled->log_snr(0.5) > NoiseProcess::create(plain)->log_snr(0.5) + 0.1);
  auto cos = make("vp-cosine");
  for (int64_t i : {0, 100, 500, 900}) {  // unclipped betas telescope: ᾱ_i = f((i+1)/T)/f(0)
    CAPTURE(i);
    CHECK(std::pow(cos->alpha(double(i) / 999.0), 2) ==
          doctest::Approx(cosine_alpha_bar_fn((i + 1) / 1000.0) / cosine_alpha_bar_fn(0.0)).epsilon(1e-11));
  }
  auto flow = make("flow");
  CHECK_FALSE(flow->is_discrete());
  CHECK(flow->alpha(0.0) == 1.0);
  CHECK(flow->sigma(0.0) == 0.0);
  CHECK(flow->alpha(1.0) == 0.0);
  CHECK(flow->sigma(1.0) == 1.0);
  CHECK(flow->alpha(0.3) == doctest::Approx(0.7));
  CHECK(std::isinf(flow->log_snr(0.0)));
  CHECK(std::isinf(flow->log_snr(1.0)));
}

TEST_CASE("process: discrete VP interpolates log-SNR linearly between grid indices") {
  auto p = make("vp-linear");
  const double a = p->log_snr(400.0 / 999.0), b = p->log_snr(401.0 / 999.0);
  CHECK(p->log_snr(400.25 / 999.0) == doctest::Approx(0.75 * a + 0.25 * b).epsilon(1e-12));
}

TEST_CASE("process: shift_time formula, inverse round trip and s = 1 identity") {
  CHECK(shift_time(0.5, 3.0) == doctest::Approx(0.75));
  CHECK(shift_time(0.25, 2.0) == doctest::Approx(0.4));
  auto t = torch::linspace(0.0, 1.0, 101, torch::kFloat64);
  for (double s : {0.25, 1.0, 3.0, 8.0}) {
    CAPTURE(s);
    CHECK((unshift_time(shift_time(t, s), s) - t).abs().max().item<double>() < 1e-14);
    CHECK((shift_time(unshift_time(t, s), s) - t).abs().max().item<double>() < 1e-14);
    CHECK(shift_time(0.37, s) == doctest::Approx(shift_time(torch::tensor({0.37}, torch::kFloat64), s).item<double>()));
  }
  CHECK(torch::equal(shift_time(t, 1.0), t));
  CHECK(shift_time(0.0, 5.0) == 0.0);
  CHECK(shift_time(1.0, 5.0) == 1.0);
}

TEST_CASE("process: shift s divides the SNR by s^2 for VP and flow, and s = 1 is the identity") {
  auto t = torch::linspace(0.01, 0.99, 99, torch::kFloat64);
  for (const char* kind : {"vp-linear", "vp-cosine", "flow"}) {
    CAPTURE(kind);
    auto base = make(kind, 1.0);
    for (double s : {0.5, 2.0, 4.0}) {
      auto shifted = make(kind, s);
      CHECK((shifted->log_snr(t) - (base->log_snr(t) - 2.0 * std::log(s))).abs().max().item<double>() < 1e-10);
    }
  }
  auto flow = make("flow", 3.0);  // α/σ of the shifted flow are those of the shifted time
  CHECK(flow->sigma(0.2) == doctest::Approx(shift_time(0.2, 3.0)));
  CHECK(flow->alpha(0.2) == doctest::Approx(1.0 - shift_time(0.2, 3.0)));
  auto vp = make("vp-linear", 2.0);  // ᾱ_s = sigmoid(λ − 2 ln s)
  const double lam = make("vp-linear")->log_snr(0.4);
  CHECK(std::pow(vp->alpha(0.4), 2) == doctest::Approx(1.0 / (1.0 + std::exp(-(lam - 2.0 * std::log(2.0))))));
}

TEST_CASE("process: model time is the grid index for VP (snapped) and 1000 t for flow") {
  auto vp = make("vp-linear");
  auto idx = torch::arange(0, 1000, torch::kFloat64);
  CHECK(torch::equal(vp->model_time(idx / 999.0), idx));
  CHECK(vp->model_time(torch::tensor({0.5}, torch::kFloat64)).item<double>() == doctest::Approx(499.5));
  auto flow = make("flow", 3.0);  // unshifted
  CHECK(flow->model_time(torch::tensor({0.25}, torch::kFloat64)).item<double>() == doctest::Approx(250.0));
}

TEST_CASE(
    "process: training times lie on the VP grid, are uniform or logit-normal for flow, and follow the generator") {
  auto gen = at::detail::createCPUGenerator(7);
  const int64_t n = 40000;
  auto vp_t = make("vp-linear")->sample_training_t(n, gen);
  CHECK((vp_t.scalar_type() == torch::kFloat64));
  auto idx = vp_t * 999.0;
  CHECK((idx - idx.round()).abs().max().item<double>() < 1e-9);
  CHECK(idx.min().item<double>() >= 0.0);
  CHECK(idx.max().item<double>() <= 999.0);
  const double se_idx = std::sqrt((1000.0 * 1000.0 - 1.0) / 12.0 / n);
  CHECK(std::abs(idx.mean().item<double>() - 499.5) < 4 * se_idx);

  auto flow_t = make("flow")->sample_training_t(n, gen);
  CHECK(std::abs(flow_t.mean().item<double>() - 0.5) < 4 * std::sqrt(1.0 / 12.0 / n));

  ProcessOptions o;
  o.kind = ldm::ProcessKind::Flow;
  o.t_sampling = ldm::TimeSampling::LogitNormal;
  o.logit_mean = 0.5;
  o.logit_std = 0.8;
  auto logits = torch::logit(NoiseProcess::create(o)->sample_training_t(n, gen));
  CHECK(std::abs(logits.mean().item<double>() - 0.5) < 4 * 0.8 / std::sqrt(double(n)));
  CHECK(std::abs(logits.std().item<double>() - 0.8) < 4 * 0.8 / std::sqrt(2.0 * n));

  auto g1 = at::detail::createCPUGenerator(3), g2 = at::detail::createCPUGenerator(3);
  CHECK(torch::equal(make("flow")->sample_training_t(16, g1), make("flow")->sample_training_t(16, g2)));
}

TEST_CASE("process: unknown kinds are not in the name table, bad options are SpecErrors naming the key") {
  CHECK_FALSE(ldm::choice_from_name<ldm::ProcessKind>("ve").has_value());
  ProcessOptions o;
  o.kind = ldm::ProcessKind::VpLinear;
  o.t_sampling = ldm::TimeSampling::LogitNormal;
  CHECK_THROWS_AS(NoiseProcess::create(o), SpecError);
  o.t_sampling = ldm::TimeSampling::Uniform;
  o.shift = 0.0;
  CHECK_THROWS_AS(NoiseProcess::create(o), SpecError);
}

}  // namespace diffusion_process_test
