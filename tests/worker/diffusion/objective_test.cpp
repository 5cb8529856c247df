#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>

#include "shared/core/error.h"
#include "worker/diffusion/learned_variance.h"
#include "worker/diffusion/loss.h"
#include "worker/diffusion/objective.h"

// Everything lives in this namespace: test_worker is a unity build, so file-scope names and
// using-directives would leak into the other test files (ldm::models also has a Denoiser).
namespace diffusion_objective_test {

using namespace ldm;
using namespace ldm::diffusion;

const Objective kObjectives[] = {Objective::Eps, Objective::V, Objective::Flow};

std::unique_ptr<NoiseProcess> make(const std::string& kind) {
  ProcessOptions o;
  o.kind = ldm::parse_choice<ldm::ProcessKind>(kind, "process");
  return NoiseProcess::create(o);
}

double max_abs(const torch::Tensor& a) { return a.abs().max().item<double>(); }

// The standard normal CDF (exact, via erf), to check the discretized decoder likelihood.
double phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST_CASE("objective: to_x0_eps inverts training_target for every objective and any alpha, sigma") {
  torch::manual_seed(0);
  auto x0 = torch::randn({5, 3, 4, 4}, torch::kFloat64), eps = torch::randn({5, 3, 4, 4}, torch::kFloat64);
  auto alpha = torch::tensor({1.0, 0.9, 0.5, 0.2, 0.7}, torch::kFloat64);  // not only VP pairs
  auto sigma = torch::tensor({0.0, 0.3, 0.5, 0.9, 0.1}, torch::kFloat64);
  auto x_t = alpha.view({-1, 1, 1, 1}) * x0 + sigma.view({-1, 1, 1, 1}) * eps;
  for (Objective obj : kObjectives) {
    CAPTURE(choice_name(obj));
    CHECK(choice_from_name<Objective>(choice_name(obj)) == obj);
    auto target = training_target(obj, x0, eps, alpha, sigma);
    auto out = torch::cat({target, torch::randn_like(target)}, 1);  // extra (variance) channels are ignored
    auto back = to_x0_eps(obj, out, x_t, alpha, sigma);
    CHECK(max_abs(back.x0 - x0) < 1e-12);
    CHECK(max_abs(back.eps - eps) < 1e-12);
  }
  try {
    parse_choice<Objective>("x0", "recipe.diffusion.objective");
    FAIL("expected SpecError");
  } catch (const SpecError& e) {
    CHECK(e.key_path() == "recipe.diffusion.objective");
    CHECK(e.detail() == "'x0' is not one of: eps, v, flow (did you mean 'v'?)");
  }
}

TEST_CASE("objective: min-SNR-gamma weights at known SNRs, and weight * target error = min(SNR, gamma) * x0 error") {
  const double gamma = 5.0;
  // VP pairs with SNR 0.25, 1, 5, 20: α² = SNR/(1+SNR).
  auto snr = torch::tensor({0.25, 1.0, 5.0, 20.0}, torch::kFloat64);
  auto alpha = (snr / (1.0 + snr)).sqrt(), sigma = (1.0 / (1.0 + snr)).sqrt();
  auto w_eps = min_snr_weight(Objective::Eps, alpha, sigma, gamma);
  auto w_v = min_snr_weight(Objective::V, alpha, sigma, gamma);
  const double expect_eps[] = {1.0, 1.0, 1.0, 0.25}, expect_v[] = {0.25 / 1.25, 0.5, 5.0 / 6.0, 5.0 / 21.0};
  for (int i = 0; i < 4; ++i) {
    CHECK(w_eps[i].item<double>() == doctest::Approx(expect_eps[i]));
    CHECK(w_v[i].item<double>() == doctest::Approx(expect_v[i]));
  }
  // Flow α = 1 − t, σ = t: weight min(α², γσ²). t = 0.1: SNR 81 → 5·0.01; t = 0.8: SNR 1/16 → 0.04.
  auto w_flow = min_snr_weight(Objective::Flow, torch::tensor({0.9, 0.2}, torch::kFloat64),
                               torch::tensor({0.1, 0.8}, torch::kFloat64), gamma);
  CHECK(w_flow[0].item<double>() == doctest::Approx(0.05));
  CHECK(w_flow[1].item<double>() == doctest::Approx(0.04));
  // Ends: SNR = ∞ and SNR = 0 give finite weights.
  auto ends = min_snr_weight(Objective::Eps, torch::tensor({1.0, 0.0}, torch::kFloat64),
                             torch::tensor({0.0, 1.0}, torch::kFloat64), gamma);
  CHECK(ends[0].item<double>() == 0.0);
  CHECK(ends[1].item<double>() == 1.0);

  // The defining identity, for random (α, σ) pairs and a random error in the output.
  torch::manual_seed(1);
  auto a = torch::rand({6}, torch::kFloat64) * 0.9 + 0.05, s = torch::rand({6}, torch::kFloat64) * 0.9 + 0.05;
  auto x0 = torch::randn({6, 2, 3}, torch::kFloat64), eps = torch::randn({6, 2, 3}, torch::kFloat64);
  auto x_t = a.view({-1, 1, 1}) * x0 + s.view({-1, 1, 1}) * eps;
  for (Objective obj : kObjectives) {
    CAPTURE(choice_name(obj));
    auto target = training_target(obj, x0, eps, a, s);
    auto out = target + 0.1 * torch::randn_like(target);
    auto x0_hat = to_x0_eps(obj, out, x_t, a, s).x0;
    auto lhs = min_snr_weight(obj, a, s, gamma) * (out - target).square().sum({1, 2});
    auto rhs = torch::minimum(a.square() / s.square(), torch::full({6}, gamma, torch::kFloat64)) *
               (x0_hat - x0).square().sum({1, 2});
    CHECK(max_abs(lhs - rhs) < 1e-12);
  }
}

TEST_CASE("objective: diffusion_loss is the per-sample MSE on the target, times the min-SNR weight when set") {
  auto p = make("vp-linear");
  torch::manual_seed(2);
  auto x0 = torch::randn({4, 3, 2, 2}), noise = torch::randn({4, 3, 2, 2});
  auto t = torch::tensor({0.0, 100.0, 500.0, 999.0}, torch::kFloat64) / 999.0;
  auto alpha = p->alpha(t).to(torch::kFloat32), sigma = p->sigma(t).to(torch::kFloat32);
  auto x_t = add_noise(*p, x0, noise, t);
  CHECK(max_abs(x_t - (alpha.view({-1, 1, 1, 1}) * x0 + sigma.view({-1, 1, 1, 1}) * noise)) < 1e-6);
  for (Objective obj : kObjectives) {
    CAPTURE(choice_name(obj));
    auto target = training_target(obj, x0, noise, alpha, sigma);
    auto out = target + 0.3 * torch::randn_like(target);
    LossOptions o;
    o.objective = obj;
    auto plain = diffusion_loss(*p, o, out, x0, noise, t);
    auto mse = (out - target).square().mean({1, 2, 3});
    CHECK(max_abs(plain.loss - mse) < 1e-6);
    CHECK_FALSE(plain.vb.defined());
    o.min_snr_gamma = 5.0;
    auto weighted = diffusion_loss(*p, o, out, x0, noise, t);
    CHECK(max_abs(weighted.loss - mse * min_snr_weight(obj, alpha, sigma, 5.0)) < 1e-6);
  }
}

TEST_CASE("objective: hybrid loss VLB term in closed form (exact posterior, variance ends, mean offset, decoder bin)") {
  auto p = make("vp-linear");
  const int64_t T = 1000;
  torch::manual_seed(3);
  auto x0 = torch::randn({3, 2, 4, 4}, torch::kFloat64), noise = torch::randn({3, 2, 4, 4}, torch::kFloat64);
  auto idx = torch::tensor({1.0, 10.0, 700.0}, torch::kFloat64);
  auto t = idx / double(T - 1);
  auto x_t = add_noise(*p, x0, noise, t);
  auto abar = p->alpha(t).square(), abar_prev = p->alpha((idx - 1.0) / double(T - 1)).square();
  auto post = vp_posterior(abar, abar_prev);
  auto with_var = [&](const torch::Tensor& eps_pred, double v) {
    return torch::cat({eps_pred, torch::full_like(eps_pred, v)}, 1);  // [N, 2C, …]
  };
  // Exact mean and v = −1 (the posterior variance): KL = 0.
  CHECK(max_abs(vlb_term(*p, Objective::Eps, with_var(noise, -1.0), x0, x_t, t)) < 1e-9);
  // Exact mean and v = +1 (variance β): KL = ½(−1 + log β − log β̃ + β̃/β) nats per dim.
  auto kl_beta = 0.5 * (-1.0 + post.beta.log() - post.variance.log() + post.variance / post.beta) / std::log(2.0);
  CHECK(max_abs(vlb_term(*p, Objective::Eps, with_var(noise, 1.0), x0, x_t, t) - kl_beta) < 1e-9);
  // ε̂ = ε + d with v = −1: mean error coef_x0·(σ/α)·d, KL = (coef_x0·σ/α·d)²/(2β̃) nats per dim.
  const double d = 0.05;
  auto shift = post.coef_x0 * p->sigma(t) / p->alpha(t) * d;
  auto kl_mean = shift.square() / (2.0 * post.variance) / std::log(2.0);
  CHECK(max_abs(vlb_term(*p, Objective::Eps, with_var(noise + d, -1.0), x0, x_t, t) / kl_mean - 1.0) < 1e-9);
  // The same with the v objective: the prediction is converted to x̂0 first.
  auto abar_t = p->alpha(t), sig_t = p->sigma(t);
  auto v_exact = training_target(Objective::V, x0, noise, abar_t, sig_t);
  CHECK(max_abs(vlb_term(*p, Objective::V, with_var(v_exact, -1.0), x0, x_t, t)) < 1e-9);

  // i = 0: decoder NLL of the bin [x − 1/255, x + 1/255] under N(x̂-mean, β̃_1) (DiT's clipping);
  // x0 = 0.2 (interior bin) and 1.0 (edge bin, extends to +∞), exact mean: −log₂ P.
  auto t0 = torch::zeros({2}, torch::kFloat64);
  auto x0_edge =
      torch::cat({torch::full({1, 1, 1, 1}, 0.2, torch::kFloat64), torch::full({1, 1, 1, 1}, 1.0, torch::kFloat64)});
  auto n0 = torch::full({2, 1, 1, 1}, 0.3, torch::kFloat64);
  auto x_t0 = add_noise(*p, x0_edge, n0, t0);
  const double ab0 = std::pow(p->alpha(0.0), 2), ab1 = std::pow(p->alpha(1.0 / 999.0), 2);
  const double var1 = (1.0 - ab1 / ab0) * (1.0 - ab0) / (1.0 - ab1);  // β̃_1
  const double sd = std::sqrt(var1), h = 1.0 / 255.0;
  const double p_interior = phi(h / sd) - phi(-h / sd), p_edge = phi(h / sd);
  auto nll = vlb_term(*p, Objective::Eps, torch::cat({n0, torch::full_like(n0, -1.0)}, 1), x0_edge, x_t0, t0);
  // DiT's tanh approximation of Φ is accurate to ~1e-3 absolute.
  CHECK(nll[0].item<double>() == doctest::Approx(-std::log2(p_interior)).epsilon(0.01));
  CHECK(nll[1].item<double>() == doctest::Approx(-std::log2(p_edge)).epsilon(0.01));
}

TEST_CASE("objective: hybrid loss adds vb to the MSE, stops its gradient on the mean, and needs a discrete process") {
  auto p = make("vp-linear");
  torch::manual_seed(4);
  auto x0 = torch::randn({4, 2, 3, 3}), noise = torch::randn({4, 2, 3, 3});
  auto t = torch::tensor({0.0, 5.0, 300.0, 998.0}, torch::kFloat64) / 999.0;
  auto out = torch::randn({4, 4, 3, 3}).requires_grad_(true);
  LossOptions hybrid;
  hybrid.learned_variance = true;
  auto terms = diffusion_loss(*p, hybrid, out, x0, noise, t);
  CHECK(max_abs(terms.loss - (terms.mse + terms.vb)) < 1e-6);
  terms.loss.sum().backward();
  auto grad_hybrid = out.grad().clone();
  out.grad().zero_();
  LossOptions plain;
  diffusion_loss(*p, plain, out.narrow(1, 0, 2), x0, noise, t).loss.sum().backward();
  CHECK(max_abs(grad_hybrid.narrow(1, 0, 2) - out.grad().narrow(1, 0, 2)) < 1e-6);  // mean frozen in vb
  CHECK(max_abs(grad_hybrid.narrow(1, 2, 2)) > 0.0);                                // variance trained

  auto flow = make("flow");
  CHECK_THROWS_AS(diffusion_loss(*flow, hybrid, out.detach(), x0, noise, t), Error);
  CHECK_THROWS_AS(diffusion_loss(*p, hybrid, out.detach().narrow(1, 0, 2), x0, noise, t), Error);
  CHECK_THROWS_AS(diffusion_loss(*p, plain, out.detach(), x0, noise, t), Error);
}

}  // namespace diffusion_objective_test
