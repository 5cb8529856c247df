#include "worker/diffusion/loss.h"

#include <ATen/ATen.h>

#include "shared/core/error.h"
#include "worker/diffusion/batch.h"
#include "worker/diffusion/learned_variance.h"

namespace ldm::diffusion {

at::Tensor add_noise(const NoiseProcess& process, const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) {
  auto a = per_sample(process.alpha(t).to(x0.device(), x0.scalar_type()), x0);  // [N, 1, …]
  auto s = per_sample(process.sigma(t).to(x0.device(), x0.scalar_type()), x0);  // [N, 1, …]
  return a * x0 + s * noise;
}

LossTerms diffusion_loss(const NoiseProcess& process, const LossOptions& options, const at::Tensor& output,
                         const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) {
  const int64_t C = x0.size(1);
  if (!options.learned_variance && output.size(1) != C)
    throw Error("the network outputs " + std::to_string(output.size(1)) + " channels for " + std::to_string(C) +
                "-channel latents; set learned variance for 2C outputs");
  auto alpha = process.alpha(t).to(x0.device(), x0.scalar_type());            // [N]
  auto sigma = process.sigma(t).to(x0.device(), x0.scalar_type());            // [N]
  auto target = training_target(options.objective, x0, noise, alpha, sigma);  // [N, C, …]
  auto err = (output.narrow(1, 0, C) - target).square();                      // [N, C, …]
  LossTerms terms;
  terms.mse = err.reshape({err.size(0), -1}).mean(1);  // [N]
  if (options.min_snr_gamma > 0.0)
    terms.mse = terms.mse * min_snr_weight(options.objective, alpha, sigma, options.min_snr_gamma);
  terms.loss = terms.mse;
  if (options.learned_variance) {
    auto x_t = per_sample(alpha, x0) * x0 + per_sample(sigma, x0) * noise;  // [N, C, …]
    terms.vb = vlb_term(process, options.objective, output, x0, x_t, t);
    terms.loss = terms.mse + options.vlb_weight * terms.vb;
  }
  return terms;
}

}  // namespace ldm::diffusion
