#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <tuple>
#include <vector>

#include "shared/core/error.h"
#include "worker/diffusion/learned_variance.h"
#include "worker/diffusion/sampler.h"

// Everything lives in this namespace: test_worker is a unity build, so file-scope names and
// using-directives would leak into the other test files (ldm::models also has a Denoiser).
namespace diffusion_sampler_test {

using namespace ldm;
using namespace ldm::diffusion;

std::unique_ptr<NoiseProcess> make(const std::string& kind, double shift = 1.0) {
  ProcessOptions o;
  o.kind = ldm::parse_choice<ldm::ProcessKind>(kind, "process");
  o.shift = shift;
  return NoiseProcess::create(o);
}

// Data N(μ, Σ) in d dimensions, Σ = Q·diag(λ)·Qᵀ, with the exact posterior mean as the denoiser:
//   E[x0 | x_t] = μ + αΣ(α²Σ + σ²I)⁻¹(x_t − αμ),  E[ε | x_t] = σ(α²Σ + σ²I)⁻¹(x_t − αμ).
struct Gaussian {
  torch::Tensor mu;      // [d]
  torch::Tensor q;       // [d, d] orthonormal eigenvectors (columns)
  torch::Tensor lambda;  // [d] eigenvalues
  torch::Tensor cov() const { return q.matmul(torch::diag(lambda)).matmul(q.t()); }  // [d, d]

  // x [N, d], α, σ [N] → (x̂0, ε̂) [N, d] each.
  std::pair<torch::Tensor, torch::Tensor> posterior(const torch::Tensor& x, const torch::Tensor& a,
                                                    const torch::Tensor& s) const {
    auto a1 = a.unsqueeze(1), s1 = s.unsqueeze(1);          // [N, 1]
    auto z = (x - a1 * mu).matmul(q);                       // [N, d] eigen coords
    auto inv = 1.0 / (a1.square() * lambda + s1.square());  // [N, d]
    auto x0 = mu + (a1 * lambda * inv * z).matmul(q.t());   // [N, d]
    auto eps = (s1 * inv * z).matmul(q.t());                // [N, d]
    return {x0, eps};
  }
  // The denoiser in `objective`'s parametrisation; counts calls when `calls` is given. With `grid`
  // (the sampler's times) it also returns variance channels that make DDPM's step exact.
  Denoiser denoiser(const NoiseProcess& p, Objective objective, int* calls = nullptr,
                    const std::vector<double>* grid = nullptr) const {
    return [this, &p, objective, calls, grid](const torch::Tensor& x, const torch::Tensor& t) {
      if (calls) ++*calls;
      const double t0 = t[0].item<double>();                        // samplers pass one time for the whole batch
      auto a = torch::full({x.size(0)}, p.alpha(t0), x.options());  // [N]
      auto s = torch::full({x.size(0)}, p.sigma(t0), x.options());  // [N]
      auto [x0, eps] = posterior(x, a, s);
      auto out = training_target(objective, x0, eps, a, s);  // [N, d]
      return grid ? torch::cat({out, optimal_variance_channels(p, t0, *grid, x.size(0))}, 1) : out;
    };
  }
  // v [N, d] such that the learned log variance is the exact reverse variance β̃ + coef_x0²·Var[x0 | x_t]
  // of the step from t to the next grid point; then each DDPM step samples q(x_s | x_t) exactly
  // (Gaussian data). Needs diagonal Σ, as the variance channels are per dimension.
  torch::Tensor optimal_variance_channels(const NoiseProcess& p, double t, const std::vector<double>& grid,
                                          int64_t n) const {
    size_t k = 0;
    while (k < grid.size() && grid[k] != t) ++k;
    if (k + 1 >= grid.size()) return torch::zeros({n, lambda.size(0)}, torch::kFloat64);  // last point: unused
    const double at = p.alpha(t), st = p.sigma(t), as = p.alpha(grid[k + 1]);
    auto post = vp_posterior(torch::tensor(at * at, torch::kFloat64), torch::tensor(as * as, torch::kFloat64));
    auto var_x0 = lambda * st * st / (at * at * lambda + st * st);  // [d] Var[x0 | x_t]
    auto var = post.variance + post.coef_x0.square() * var_x0;      // [d]
    auto min_log = post.variance.log(), max_log = post.beta.log();
    auto v = 2.0 * (var.log() - min_log) / (max_log - min_log) - 1.0;  // [d]
    return v.unsqueeze(0).expand({n, lambda.size(0)}).contiguous();    // [N, d]
  }

  // x_T [N, d] drawn from the process's marginal at t: N(αμ, α²Σ + σ²I).
  torch::Tensor marginal(const NoiseProcess& p, double t, int64_t n, at::Generator& gen) const {
    const double a = p.alpha(t), s = p.sigma(t);
    auto z = torch::randn({n, lambda.size(0)}, gen, torch::kFloat64);     // [N, d]
    return a * mu + (z * (a * a * lambda + s * s).sqrt()).matmul(q.t());  // [N, d]
  }

  // Exact mean [d] and covariance [d, d] of the output of a ddpm (fixed small variance) or ddim(η)
  // chain on `grid` started from the marginal at grid[0]: with the exact x̂0 every step is affine
  // plus Gaussian noise, diagonal in Σ's eigenbasis, so (mean, variance) per eigen-direction
  // propagate in closed form. Scalar formulas written out here, independent of the sampler code.
  std::pair<torch::Tensor, torch::Tensor> chain_moments(const NoiseProcess& p, const std::vector<double>& grid,
                                                        bool ddpm, double eta) const {
    auto mu_e = q.t().matmul(mu);  // [d] μ in the eigenbasis
    const int64_t d = lambda.size(0);
    auto m = torch::empty({d}, torch::kFloat64), v = torch::empty({d}, torch::kFloat64);
    for (int64_t i = 0; i < d; ++i) {
      const double lam = lambda[i].item<double>(), me = mu_e[i].item<double>();
      double a = p.alpha(grid[0]), s = p.sigma(grid[0]);
      double mean = a * me, var = a * a * lam + s * s;  // the marginal at grid[0]
      for (size_t k = 0; k + 1 < grid.size(); ++k) {
        a = p.alpha(grid[k]), s = p.sigma(grid[k]);
        const double an = p.alpha(grid[k + 1]), sn = p.sigma(grid[k + 1]);
        const double g = a * lam / (a * a * lam + s * s), e = s / (a * a * lam + s * s);  // x̂0, ε̂ slopes in y
        double A, B, noise_var;  // y_next = A·y + B + √noise_var·z
        if (ddpm) {              // y_next = c0·x̂0 + c1·y with x̂0 = μ + g·(y − a·μ)
          const double ab = a * a, abn = an * an, beta = 1.0 - ab / abn;
          const double c0 = std::sqrt(abn) * beta / (1.0 - ab), c1 = std::sqrt(1.0 - beta) * (1.0 - abn) / (1.0 - ab);
          A = c0 * g + c1;
          B = c0 * me * (1.0 - g * a);
          noise_var = beta * (1.0 - abn) / (1.0 - ab);
        } else {  // y_next = an·x̂0 + √(sn² − c²)·ε̂ with ε̂ = e·(y − a·μ)
          const double c2 = eta * eta * sn * sn * (1.0 - std::pow(a * sn / (an * s), 2));
          A = an * g + std::sqrt(sn * sn - c2) * e;
          B = an * me - A * a * me;
          noise_var = c2;
        }
        mean = A * mean + B;
        var = A * A * var + noise_var;
      }
      a = p.alpha(grid.back()), s = p.sigma(grid.back());
      const double g = a * lam / (a * a * lam + s * s);  // final x̂0 = μ + g·(y − a·μ)
      m[i] = me + g * (mean - a * me);
      v[i] = g * g * var;
    }
    return {q.matmul(m), q.matmul(torch::diag(v)).matmul(q.t())};
  }

  // The probability-flow ODE's exact map of x [N, d] from t_from to t_to: in the eigenbasis,
  // (x − αμ)/√(α²λ + σ²) is constant along the ODE.
  torch::Tensor flow_map(const NoiseProcess& p, const torch::Tensor& x, double t_from, double t_to) const {
    const double a0 = p.alpha(t_from), s0 = p.sigma(t_from), a1 = p.alpha(t_to), s1 = p.sigma(t_to);
    auto z = (x - a0 * mu).matmul(q);                                                   // [N, d]
    auto ratio = ((a1 * a1 * lambda + s1 * s1) / (a0 * a0 * lambda + s0 * s0)).sqrt();  // [d]
    return a1 * mu + (z * ratio).matmul(q.t());                                         // [N, d]
  }
};

Gaussian rotated_gaussian() {
  auto m = torch::tensor({{1.0, 0.3, -0.2}, {0.4, -1.0, 0.5}, {0.1, 0.6, 1.2}}, torch::kFloat64);
  auto qr = torch::linalg_qr(m);
  return {torch::tensor({0.5, -1.0, 0.25}, torch::kFloat64), std::get<0>(qr),
          torch::tensor({0.2, 1.0, 2.5}, torch::kFloat64)};
}

Gaussian rotated_gaussian_2d() {
  const double c = std::cos(0.6), s = std::sin(0.6);
  return {torch::tensor({0.5, -1.0}, torch::kFloat64), torch::tensor({{c, -s}, {s, c}}, torch::kFloat64),
          torch::tensor({0.3, 2.0}, torch::kFloat64)};
}

Gaussian diagonal_gaussian() {
  return {torch::tensor({0.8, -0.4}, torch::kFloat64), torch::eye(2, torch::kFloat64),
          torch::tensor({0.3, 2.0}, torch::kFloat64)};
}

SamplerOptions options(const std::string& method, int64_t steps, double t_max = 1.0, double t_min = 0.0) {
  SamplerOptions o;
  o.method = ldm::parse_choice<ldm::Sampler>(method, "sampler");
  o.steps = steps;
  o.t_max = t_max;
  o.t_min = t_min;
  return o;
}

// Max error of the sampler's x̂0 against the exact x̂0 at the closed-form ODE solution at t_min.
double ode_error(const NoiseProcess& p, Objective obj, const Gaussian& g, const SamplerOptions& o,
                 const torch::Tensor& x_T) {
  auto out = sample(p, obj, g.denoiser(p, obj), x_T, o, nullptr);
  auto x_end = g.flow_map(p, x_T, o.t_max, o.t_min);
  auto n = x_T.size(0);
  auto exact = g.posterior(x_end, torch::full({n}, p.alpha(o.t_min), torch::kFloat64),
                           torch::full({n}, p.sigma(o.t_min), torch::kFloat64))
                   .first;
  return (out - exact).abs().max().item<double>();
}

TEST_CASE("sampler: deterministic samplers converge to the exact probability-flow map at their order") {
  // End time: the sampler returns x̂0 at its last grid point t_min; it is compared with the exact
  // denoiser applied to the closed-form ODE solution from t_max to t_min (max |·| over 32 samples,
  // float64). t_max = 1, t_min = 0 (VP: grid index 0, σ = 0.01; flow: σ = 0, the data), except
  // dpm++2m on flow: there λ = ±∞ at t = 1 and 0, a uniform-t grid is logarithmic in λ next to them
  // and the forced first-order first/last steps add an h²·log(1/h) term, so it runs on [0.02, 0.98].
  const auto g = rotated_gaussian();
  auto gen = at::detail::createCPUGenerator(11);
  auto x_T = torch::randn({32, 3}, gen, torch::kFloat64);
  struct Case {
    const char* kind;
    double shift;
    Objective obj;
  };
  const Case cases[] = {{"vp-linear", 1.0, Objective::Eps},
                        {"vp-cosine", 1.0, Objective::V},
                        {"vp-linear", 2.0, Objective::V},
                        {"flow", 1.0, Objective::Flow},
                        {"flow", 3.0, Objective::Flow}};
  struct Method {
    const char* name;
    int order;
    int64_t k0;  // first K of the asymptotic regime (dpm++2m on vp-linear s=2 reaches it at ~100)
  };
  const Method methods[] = {{"ddim", 1, 50}, {"euler", 1, 50}, {"heun", 2, 50}, {"dpm++2m", 2, 100}};
  for (const Case& c : cases)
    for (const Method& m : methods) {
      auto p = make(c.kind, c.shift);
      const bool trimmed = std::string(m.name) == "dpm++2m" && std::string(c.kind) == "flow";
      std::ostringstream log;
      log << m.name << " on " << c.kind << " (s=" << c.shift << ", " << choice_name(c.obj) << "): error";
      double prev = 0.0;
      for (int64_t k = m.k0; k <= 4 * m.k0; k *= 2) {
        auto o = trimmed ? options(m.name, k, 0.98, 0.02) : options(m.name, k);
        const double err = ode_error(*p, c.obj, g, o, x_T);
        log << " K=" << k << ":" << err;
        if (k > m.k0) {
          log << " (order " << std::log2(prev / err) << ")";
          CAPTURE(log.str());
          CHECK(err <= prev / (0.8 * std::pow(2.0, m.order)));
        }
        prev = err;
      }
    }
}

// Sample mean and covariance of x [N, d] within 3 Monte-Carlo standard errors of (mean, cov).
void check_moments(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& cov,
                   const std::string& what) {
  const auto n = double(x.size(0));
  auto c = x - x.mean(0);
  auto sample_cov = c.t().matmul(c) / (n - 1.0);  // [d, d]
  auto diag = torch::diagonal(cov);
  auto se_mean = (diag / n).sqrt();                                                   // [d]
  auto se_cov = ((diag.unsqueeze(1) * diag.unsqueeze(0) + cov.square()) / n).sqrt();  // [d, d]
  auto z_mean = ((x.mean(0) - mean) / se_mean).abs().max().item<double>();
  auto z_cov = ((sample_cov - cov) / se_cov).abs().max().item<double>();
  const std::string summary =
      what + ": max |z| mean " + std::to_string(z_mean) + ", covariance " + std::to_string(z_cov);
  CAPTURE(summary);
  CHECK(z_mean < 3.0);
  CHECK(z_cov < 3.0);
}

TEST_CASE(
    "sampler: stochastic chains (ddpm, ddim eta) have their exact output mean and covariance, which tend to the "
    "data's") {
  const int64_t n = 20000;
  auto p = make("vp-linear");
  const auto g = rotated_gaussian_2d();
  auto gen = at::detail::createCPUGenerator(5);
  // The exact moments of a 1000-step chain are those of the data up to the 1/K bias of the
  // fixed small variance (β̃ leaves out coef_x0²·Var[x0 | x_t] per step): < 1.5% here.
  for (bool ddpm : {true, false}) {
    auto [mean, cov] = g.chain_moments(*p, sampling_times(*p, options("ddpm", 1000)), ddpm, 1.0);
    CHECK((mean - g.mu).abs().max().item<double>() < 0.01);
    CHECK(((cov - g.cov()).abs() / g.cov().diagonal().max()).max().item<double>() < 0.015);
  }
  // 50-step chains, 20k samples each, against their exact moments.
  struct Run {
    const char* method;
    double eta;
    Objective obj;
  };
  for (const Run& r :
       {Run{"ddpm", 0.0, Objective::Eps}, Run{"ddim", 1.0, Objective::V}, Run{"ddim", 0.5, Objective::Eps}}) {
    auto o = options(r.method, 50);
    o.eta = r.eta;
    auto [mean, cov] = g.chain_moments(*p, sampling_times(*p, o), o.method == ldm::Sampler::Ddpm, r.eta);
    auto x_T = g.marginal(*p, 1.0, n, gen);
    std::ostringstream what;
    what << r.method << " eta=" << r.eta << ", 50 steps, against the chain's exact moments";
    check_moments(sample(*p, r.obj, g.denoiser(*p, r.obj), x_T, o, &gen), mean, cov, what.str());
  }
  // 10 ddpm steps with the exact reverse variance in the learned-variance channels: every step
  // samples q(x_s | x_t) exactly, so even this coarse chain reproduces the data distribution.
  const auto diag = diagonal_gaussian();
  auto o = options("ddpm", 10);
  const auto grid = sampling_times(*p, o);
  auto x_T = diag.marginal(*p, 1.0, n, gen);
  check_moments(sample(*p, Objective::Eps, diag.denoiser(*p, Objective::Eps, nullptr, &grid), x_T, o, &gen), diag.mu,
                diag.cov(), "ddpm, 10 steps, learned (exact) variance, against the data");
}

TEST_CASE("sampler: the same generator seed gives identical samples, another seed different ones") {
  const auto g = rotated_gaussian();
  auto p = make("vp-linear");
  auto run = [&](uint64_t seed, const std::string& method) {
    auto gen = at::detail::createCPUGenerator(seed);
    auto x_T = torch::randn({8, 3}, gen, torch::kFloat64);
    auto o = options(method, 20);
    o.eta = 0.5;
    return sample(*p, Objective::Eps, g.denoiser(*p, Objective::Eps), x_T, o, &gen);
  };
  for (const char* method : {"ddpm", "ddim"}) {
    CAPTURE(method);
    CHECK(torch::equal(run(1, method), run(1, method)));
    CHECK_FALSE(torch::allclose(run(1, method), run(2, method)));
  }
}

TEST_CASE("sampler: grids, evaluation counts and the end of sampling") {
  auto p = make("vp-linear");
  const auto g = rotated_gaussian();
  auto o = options("ddim", 4);
  auto uniform = sampling_times(*p, o);
  REQUIRE(uniform.size() == 4);
  CHECK(uniform[0] == 1.0);
  CHECK(uniform[1] == doctest::Approx(2.0 / 3.0));
  CHECK(uniform[2] == doctest::Approx(1.0 / 3.0));
  CHECK(uniform[3] == 0.0);
  o.spacing = ldm::Spacing::Quadratic;
  CHECK(sampling_times(*p, o)[1] == doctest::Approx(4.0 / 9.0));
  o.spacing = ldm::Spacing::Leading;  // diffusers: (K−1−k)·⌊T/K⌋ = 750, 500, 250, 0
  auto lead = sampling_times(*p, o);
  CHECK(p->model_time(torch::tensor(lead, torch::kFloat64))
            .equal(torch::tensor({750.0, 500.0, 250.0, 0.0}, torch::kFloat64)));
  o.spacing = ldm::Spacing::Trailing;  // diffusers: round(T − k·T/K) − 1 = 999, 749, 499, 249
  auto trail = sampling_times(*p, o);
  CHECK(p->model_time(torch::tensor(trail, torch::kFloat64))
            .equal(torch::tensor({999.0, 749.0, 499.0, 249.0}, torch::kFloat64)));
  auto flow = make("flow");
  CHECK_THROWS_AS(sampling_times(*flow, o), SpecError);
  o = options("ddpm", 4);
  CHECK_THROWS_AS(sampling_times(*flow, o), SpecError);
  CHECK_FALSE(ldm::choice_from_name<ldm::Sampler>("plms").has_value());  // not a sampler at all
  o = options("ddpm", 4);
  auto x = torch::zeros({2, 3}, torch::kFloat64);
  CHECK_THROWS_AS(sample(*p, Objective::Eps, g.denoiser(*p, Objective::Eps), x, o, nullptr), Error);  // no generator
  CHECK_THROWS_AS(sample(*flow, Objective::Eps, g.denoiser(*flow, Objective::Eps), x, options("ddim", 4), nullptr),
                  Error);  // eps cannot give x̂0 at α = 0

  // Evaluation counts: K for first-order methods, 2K − 1 for Heun (2K − 2 when a step ends at σ = 0).
  for (auto [method, expect_vp, expect_flow] :
       {std::tuple{"ddim", 6, 6}, std::tuple{"dpm++2m", 6, 6}, std::tuple{"euler", 6, 6}, std::tuple{"heun", 11, 10}}) {
    CAPTURE(method);
    int calls = 0;
    sample(*p, Objective::Eps, g.denoiser(*p, Objective::Eps, &calls), x, options(method, 6), nullptr);
    CHECK(calls == expect_vp);
    calls = 0;
    sample(*flow, Objective::Flow, g.denoiser(*flow, Objective::Flow, &calls), x, options(method, 6), nullptr);
    CHECK(calls == expect_flow);
  }

  // One step returns x̂0 at t_max; at t = 0 of the flow x̂0 is x itself.
  auto x1 = torch::randn({5, 3}, torch::kFloat64);
  auto one = sample(*p, Objective::Eps, g.denoiser(*p, Objective::Eps), x1, options("ddim", 1, 0.6, 0.0), nullptr);
  auto a = torch::full({5}, p->alpha(0.6), torch::kFloat64), s = torch::full({5}, p->sigma(0.6), torch::kFloat64);
  CHECK((one - g.posterior(x1, a, s).first).abs().max().item<double>() < 1e-12);
}

}  // namespace diffusion_sampler_test
