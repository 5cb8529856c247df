#include "worker/diffusion/objective.h"

#include <ATen/ATen.h>

#include "shared/core/error.h"
#include "worker/diffusion/batch.h"

namespace ldm::diffusion {

at::Tensor training_target(Objective objective, const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& alpha,
                           const at::Tensor& sigma) {
  auto a = per_sample(alpha, x0), s = per_sample(sigma, x0);  // [N, 1, …]
  switch (objective) {
    case Objective::Eps:
      return noise;
    case Objective::V:
      return a * noise - s * x0;
    case Objective::Flow:
      return noise - x0;
  }
  return {};
}

X0Eps to_x0_eps(Objective objective, const at::Tensor& output, const at::Tensor& x_t, const at::Tensor& alpha,
                const at::Tensor& sigma) {
  auto out = output.narrow(1, 0, x_t.size(1));                  // [N, C, …] the prediction channels
  auto a = per_sample(alpha, x_t), s = per_sample(sigma, x_t);  // [N, 1, …]
  switch (objective) {
    case Objective::Eps:
      return {(x_t - s * out) / a, out};
    case Objective::V: {
      auto det = a * a + s * s;
      return {(a * x_t - s * out) / det, (s * x_t + a * out) / det};
    }
    case Objective::Flow: {
      auto det = a + s;
      return {(x_t - s * out) / det, (x_t + a * out) / det};
    }
  }
  return {};
}

at::Tensor min_snr_weight(Objective objective, const at::Tensor& alpha, const at::Tensor& sigma, double gamma) {
  auto a2 = alpha * alpha, s2 = sigma * sigma;
  switch (objective) {
    case Objective::Eps:
      return at::clamp_max(gamma * s2 / a2, 1.0);  // min(SNR, γ)/SNR; α = 0 → 1
    case Objective::V:
      return at::minimum(a2, gamma * s2) / (a2 + s2).square();
    case Objective::Flow:
      return at::minimum(a2, gamma * s2) / (alpha + sigma).square();
  }
  return {};
}

}  // namespace ldm::diffusion
