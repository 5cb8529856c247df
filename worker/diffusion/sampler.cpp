#include "worker/diffusion/sampler.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <optional>

#include "shared/core/error.h"
#include "worker/diffusion/learned_variance.h"

namespace ldm::diffusion {

void validate_sampler(const NoiseProcess& process, const SamplerOptions& o) {
  if (o.steps < 1) throw SpecError("recipe.sampler.steps", "needs at least one step");
  if (!(o.eta >= 0.0 && o.eta <= 1.0)) throw SpecError("recipe.sampler.eta", "eta must lie in [0, 1]");
  if (o.method == Sampler::Ddpm && !process.is_discrete())
    throw SpecError("recipe.sampler.name", "the ddpm sampler needs a discrete VP process, not '" +
                                               std::string(choice_name(process.options().kind)) + "'");
  const std::string spacing = choice_name(o.spacing);
  if (o.spacing == Spacing::Leading || o.spacing == Spacing::Trailing) {
    if (!process.is_discrete())
      throw SpecError("recipe.sampler.spacing", "'" + spacing + "' spacing is for discrete VP processes only");
    if (o.steps > process.timesteps())
      throw SpecError("recipe.sampler.steps",
                      "'" + spacing + "' spacing allows at most " + std::to_string(process.timesteps()) + " steps");
  } else if (!(0.0 <= o.t_min && o.t_max <= 1.0 && (o.steps == 1 || o.t_min < o.t_max))) {
    throw SpecError("recipe.sampler.t_min", "needs 0 <= t_min < t_max <= 1");
  }
}

std::vector<double> sampling_times(const NoiseProcess& process, const SamplerOptions& o) {
  validate_sampler(process, o);
  const int64_t K = o.steps;
  std::vector<double> ts(K);
  for (int64_t k = 0; k < K; ++k) {
    const double u = K == 1 ? 1.0 : 1.0 - double(k) / double(K - 1);  // 1 → 0
    if (o.spacing == Spacing::Uniform) {
      ts[k] = o.t_min + (o.t_max - o.t_min) * u;
    } else if (o.spacing == Spacing::Quadratic) {
      ts[k] = o.t_min + (o.t_max - o.t_min) * u * u;
    } else {
      const int64_t T = process.timesteps();
      const double index = o.spacing == Spacing::Leading
                               ? double((K - 1 - k) * (T / K))
                               : std::nearbyint(double(T) - double(k) * double(T) / double(K)) - 1.0;
      ts[k] = index / double(T - 1);
    }
  }
  for (int64_t k = 1; k < K; ++k)
    if (!(ts[k] < ts[k - 1])) throw SpecError("recipe.sampler.steps", "the sampling grid is not strictly decreasing");
  return ts;
}

namespace sampler_detail {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Level {
  double t, alpha, sigma;
  double lambda() const { return std::log(alpha) - std::log(sigma); }  // log(α/σ), ±inf at the ends
};

struct Prediction {
  at::Tensor raw, x0, eps;  // raw [N, C or 2C, …]; x0, eps [N, C, …]
};

// One network evaluation at (x, level) converted to (x̂0, ε̂).
class Evaluator {
 public:
  Evaluator(const Denoiser& denoiser, Objective objective) : denoiser_(denoiser), objective_(objective) {}
  Prediction operator()(const at::Tensor& x, const Level& level) const {
    if (objective_ == Objective::Eps && level.alpha == 0.0)
      throw Error("the eps objective cannot predict x0 where alpha = 0 (t = " + std::to_string(level.t) +
                  "); start sampling at t_max < 1");
    auto t = at::full({x.size(0)}, level.t, x.options().dtype(at::kDouble));  // [N]
    auto raw = denoiser_(x, t);
    const int64_t C = x.size(1);
    if (raw.dim() != x.dim() || raw.size(0) != x.size(0) || (raw.size(1) != C && raw.size(1) != 2 * C))
      throw Error("the denoiser returned shape " + shape_string(raw) + " for input " + shape_string(x) +
                  "; expected C or 2C channels");
    auto parts = to_x0_eps(objective_, raw, x, at::scalar_tensor(level.alpha, at::kDouble),
                           at::scalar_tensor(level.sigma, at::kDouble));
    return {raw, parts.x0, parts.eps};
  }

 private:
  static std::string shape_string(const at::Tensor& a) {
    std::string s = "[";
    for (int64_t d = 0; d < a.dim(); ++d) s += (d ? "," : "") + std::to_string(a.size(d));
    return s + "]";
  }
  const Denoiser& denoiser_;
  Objective objective_;
};

// Drawn on the generator's device (the CPU) and moved: the same numbers wherever x lives.
at::Tensor noise_like(const at::Tensor& x, at::Generator* gen) {
  auto n = at::randn(x.sizes(), *gen, x.options().device(gen->device()));
  return n.device() == x.device() ? n : n.to(x.device());
}

// DDIM from level a to level b with noise scale η (η = 0: deterministic, = the EDM Euler step).
at::Tensor ddim_step(const at::Tensor& x, const Prediction& p, const Level& a, const Level& b, double eta,
                     at::Generator* gen) {
  double c = 0.0;
  if (eta > 0.0 && b.sigma > 0.0) {
    const double snr_ratio = std::pow(a.alpha * b.sigma / (b.alpha * a.sigma), 2);  // SNR_a / SNR_b
    c = eta * b.sigma * std::sqrt(std::max(0.0, 1.0 - snr_ratio));
  }
  auto out = b.alpha * p.x0 + std::sqrt(std::max(0.0, b.sigma * b.sigma - c * c)) * p.eps;
  return c > 0.0 ? out + c * noise_like(x, gen) : out;
}

// Ancestral step of a discrete VP process from a to b (both on the grid, b not clean).
at::Tensor ddpm_step(const at::Tensor& x, const Prediction& p, const Level& a, const Level& b, at::Generator* gen) {
  const int64_t C = x.size(1);
  auto post = vp_posterior(at::scalar_tensor(a.alpha * a.alpha, at::kDouble),
                           at::scalar_tensor(b.alpha * b.alpha, at::kDouble));       // 0-dim each
  auto mean = post.coef_x0.item<double>() * p.x0 + post.coef_xt.item<double>() * x;  // [N, C, …]
  if (p.raw.size(1) == 2 * C) {
    auto log_var = learned_log_variance(p.raw.narrow(1, C, C), post.variance.log().to(x.scalar_type()),
                                        post.beta.log().to(x.scalar_type()));  // [N, C, …]
    return mean + at::exp(0.5 * log_var) * noise_like(x, gen);
  }
  return mean + std::sqrt(post.variance.item<double>()) * noise_like(x, gen);
}

// Heun step from a to b (b on the grid): Euler predictor (the DDIM point), then the trapezoid
// corrector in the variable whose integrand is smooth on the step's side of SNR = 1:
//   high noise (mid-step λ < 0)  d(x/σ)/d(α/σ) = x̂0, x̂0 is smooth (linear) near α/σ = 0;
//   low noise  (mid-step λ ≥ 0)  d(x/α)/d(σ/α) = ε̂, ε̂ is smooth (linear) near σ/α = 0.
// (EDM's σ/α form alone over-weights the change of ε̂ on a step from very high noise, e.g.
// vp-cosine at t = 1 where σ/α ≈ 2·10⁴; the α/σ form alone does the same near the data.)
at::Tensor heun_step(const Evaluator& eval, const Prediction& p, const Level& a, const Level& b) {
  auto x_euler = b.alpha * p.x0 + b.sigma * p.eps;
  if (b.sigma == 0.0) return x_euler;  // nothing left to correct: the next point is the data
  auto q = eval(x_euler, b);
  if (a.lambda() + b.lambda() < 0.0) return x_euler + 0.5 * (b.alpha - b.sigma * a.alpha / a.sigma) * (q.x0 - p.x0);
  return x_euler + 0.5 * (b.sigma - b.alpha * a.sigma / a.alpha) * (q.eps - p.eps);
}

// DPM-Solver++(2M) step from a to b: x_b = (σ_b/σ_a)·x + α_b·(1 − e^{−h})·D, h = λ_b − λ_a,
// D = (1 + 1/2r)·x̂0 − (1/2r)·x̂0_prev with r = h_prev/h, or x̂0 for a first-order step.
at::Tensor dpmpp_2m_step(const at::Tensor& x, const Prediction& p, const Level& a, const Level& b,
                         const std::optional<at::Tensor>& x0_prev, double h_prev) {
  const double h = b.lambda() - a.lambda();
  at::Tensor d = p.x0;
  if (x0_prev && std::isfinite(h_prev) && std::isfinite(h) && b.sigma > 0.0) {
    const double half_inv_r = 0.5 * h / h_prev;
    d = (1.0 + half_inv_r) * p.x0 - half_inv_r * *x0_prev;
  }
  return (b.sigma / a.sigma) * x + (b.alpha - b.sigma * a.alpha / a.sigma) * d;
}

}  // namespace sampler_detail

at::Tensor sample(const NoiseProcess& process, Objective objective, const Denoiser& denoiser, at::Tensor x_T,
                  const SamplerOptions& options, at::Generator* gen) {
  using namespace sampler_detail;
  const auto times = sampling_times(process, options);
  const bool stochastic = options.method == Sampler::Ddpm || (options.method == Sampler::Ddim && options.eta > 0.0);
  if (stochastic && gen == nullptr)
    throw Error("the " + std::string(choice_name(options.method)) +
                " sampler needs a random generator (the global one is never used)");

  std::vector<Level> levels;  // grid points t_0 > … > t_{K−1}
  for (double t : times) levels.push_back({t, process.alpha(t), process.sigma(t)});
  const Evaluator eval(denoiser, objective);

  at::Tensor x = std::move(x_T);
  std::optional<at::Tensor> x0_prev;  // dpm++2m history
  double h_prev = kInf;
  for (size_t k = 0; k + 1 < levels.size(); ++k) {
    const Level& a = levels[k];
    const Level& b = levels[k + 1];
    const Prediction p = eval(x, a);
    if (options.method == Sampler::Ddpm) {
      x = ddpm_step(x, p, a, b, gen);
    } else if (options.method == Sampler::Ddim || options.method == Sampler::Euler) {
      x = ddim_step(x, p, a, b, options.method == Sampler::Ddim ? options.eta : 0.0, gen);
    } else if (options.method == Sampler::Heun) {
      x = heun_step(eval, p, a, b);
    } else {
      x = dpmpp_2m_step(x, p, a, b, x0_prev, h_prev);
      x0_prev = p.x0;
      h_prev = b.lambda() - a.lambda();
    }
  }
  return eval(x, levels.back()).x0;  // the last step goes to clean data: x̂0 at t_{K−1}
}

}  // namespace ldm::diffusion
