#include "worker/diffusion/learned_variance.h"

#include <ATen/ATen.h>

#include <cmath>

#include "shared/core/error.h"
#include "worker/diffusion/batch.h"

namespace ldm::diffusion {

VpPosterior vp_posterior(const at::Tensor& abar_t, const at::Tensor& abar_s) {
  auto beta = 1.0 - abar_t / abar_s;
  auto one_minus_t = 1.0 - abar_t;
  return {beta, abar_s.sqrt() * beta / one_minus_t, (1.0 - abar_s) * (1.0 - beta).sqrt() / one_minus_t,
          beta * (1.0 - abar_s) / one_minus_t};
}

at::Tensor learned_log_variance(const at::Tensor& v, const at::Tensor& min_log, const at::Tensor& max_log) {
  auto frac = (v + 1.0) / 2.0;  // [N, C, …]
  return frac * per_sample(max_log, v) + (1.0 - frac) * per_sample(min_log, v);
}

namespace learned_variance_detail {

// KL(N(m1, e^lv1) ‖ N(m2, e^lv2)) elementwise, as improved-DDPM's normal_kl.
at::Tensor normal_kl(const at::Tensor& m1, const at::Tensor& lv1, const at::Tensor& m2, const at::Tensor& lv2) {
  return 0.5 * (-1.0 + lv2 - lv1 + at::exp(lv1 - lv2) + (m1 - m2).square() * at::exp(-lv2));
}

// improved-DDPM's approx_standard_normal_cdf and discretized_gaussian_log_likelihood (x in [−1, 1],
// 256 bins; the edge bins extend to ±∞), elementwise.
at::Tensor approx_standard_normal_cdf(const at::Tensor& x) {
  return 0.5 * (1.0 + at::tanh(std::sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x.pow(3))));
}
at::Tensor discretized_gaussian_log_likelihood(const at::Tensor& x, const at::Tensor& mean,
                                               const at::Tensor& log_scale) {
  auto centered = x - mean;
  auto inv_std = at::exp(-log_scale);
  auto cdf_plus = approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0));
  auto cdf_min = approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0));
  auto log_cdf_plus = at::log(cdf_plus.clamp_min(1e-12));
  auto log_one_minus_cdf_min = at::log((1.0 - cdf_min).clamp_min(1e-12));
  auto log_cdf_delta = at::log((cdf_plus - cdf_min).clamp_min(1e-12));
  return at::where(x < -0.999, log_cdf_plus, at::where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta));
}

at::Tensor mean_bits(const at::Tensor& nats) {  // [N, …] → [N]
  return nats.reshape({nats.size(0), -1}).mean(1) / std::log(2.0);
}

}  // namespace learned_variance_detail

at::Tensor vlb_term(const NoiseProcess& process, Objective objective, const at::Tensor& output, const at::Tensor& x0,
                    const at::Tensor& x_t, const at::Tensor& t) {
  using namespace learned_variance_detail;
  if (!process.is_discrete())
    throw Error("the learned-variance (hybrid) loss needs a discrete VP process, not '" +
                std::string(choice_name(process.options().kind)) + "'");
  const int64_t C = x_t.size(1);
  if (output.size(1) != 2 * C)
    throw Error("the learned-variance loss needs " + std::to_string(2 * C) +
                " output channels (prediction + "
                "variance), got " +
                std::to_string(output.size(1)));
  const double step = 1.0 / double(process.timesteps() - 1);
  auto t64 = t.to(at::kDouble);
  auto i = at::round(t64 / step);           // [N] grid index, float64
  auto abar = process.alpha(t64).square();  // [N] ᾱ_i
  auto abar_prev = at::where(i >= 1.0, process.alpha((i - 1.0).clamp_min(0.0) * step).square(),
                             at::ones_like(abar));  // [N] ᾱ_{i−1}, 1 before the first step
  auto post = vp_posterior(abar, abar_prev);
  // DiT clips the log posterior variance at i = 0 (where β̃ = 0) to β̃_1.
  auto j = i.clamp_min(1.0);
  auto min_log =
      vp_posterior(process.alpha(j * step).square(), process.alpha((j - 1.0) * step).square()).variance.log();  // [N]
  auto max_log = post.beta.log();                                                                               // [N]

  // Coefficients are float64 on t's device; cast to the output's dtype and device.
  auto like = [&](const at::Tensor& a) { return a.to(output.device(), output.scalar_type()); };  // [N]
  auto cast = [&](const at::Tensor& a) { return per_sample(like(a), x_t); };                     // [N, 1, …]
  auto x0_hat = to_x0_eps(objective, output.detach(), x_t, like(process.alpha(t64)), like(process.sigma(t64))).x0;
  auto true_mean = cast(post.coef_x0) * x0 + cast(post.coef_xt) * x_t;       // [N, C, …]
  auto model_mean = cast(post.coef_x0) * x0_hat + cast(post.coef_xt) * x_t;  // [N, C, …]
  auto model_log_var = learned_log_variance(output.narrow(1, C, C), like(min_log), like(max_log));
  auto kl = mean_bits(normal_kl(true_mean, cast(min_log), model_mean, model_log_var));
  auto nll = mean_bits(-discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var));
  return at::where(i.to(output.device()) == 0.0, nll, kl);  // [N]
}

}  // namespace ldm::diffusion
