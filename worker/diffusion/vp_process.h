// The variance-preserving (DDPM) noise process with DiT's linear beta schedule, and the
// ε-prediction training loss. Sampling and the other processes come with the diffusion issue.
#pragma once

#include <torch/torch.h>

#include "shared/core/spec.h"

namespace ldm::diffusion {

class VpProcess {
 public:
  explicit VpProcess(const DiffusionSpec& spec);
  int64_t timesteps() const { return timesteps_; }
  // ᾱ_t for t in [0, T): [T] float64, strictly decreasing.
  const torch::Tensor& alphas_cumprod() const { return alphas_cumprod_; }
  // x_t = √ᾱ_t · x0 + √(1-ᾱ_t) · ε, for integer timesteps t [N].
  torch::Tensor q_sample(const torch::Tensor& x0, const torch::Tensor& t, const torch::Tensor& noise) const;

 private:
  int64_t timesteps_;
  torch::Tensor alphas_cumprod_;
  torch::Tensor sqrt_ac_, sqrt_one_minus_ac_;  // float32 lookup tables
};

// Mean squared error between the first C channels of the prediction and the noise.
torch::Tensor eps_loss(const torch::Tensor& prediction, const torch::Tensor& noise);

}  // namespace ldm::diffusion
