// The training loss of one batch: per-sample MSE on the objective's target, optional min-SNR-γ
// weighting, optional DiT hybrid loss (MSE + λ·L_vlb term) for a learned variance.
#pragma once

#include <ATen/core/Tensor.h>

#include "worker/diffusion/objective.h"
#include "worker/diffusion/process.h"

namespace ldm::diffusion {

struct LossOptions {
  Objective objective = Objective::Eps;
  double min_snr_gamma = 0.0;     // > 0: weight the MSE by min_snr_weight(γ); 0: unweighted
  bool learned_variance = false;  // output has 2C channels; add vlb_term (discrete VP only)
  // Weight of vlb_term (bits/dim per draw). 1 is DiT's/improved-DDPM's hybrid loss: their
  // λ = 0.001 on L_vlb = T·E_i[L_i] with T = 1000 is 1 on the per-draw term.
  double vlb_weight = 1.0;
};

struct LossTerms {
  at::Tensor loss;  // [N] mse + vlb_weight·vb; the trainer averages it
  at::Tensor mse;   // [N] (weighted) mean over non-batch dims of (target − prediction)²
  at::Tensor vb;    // [N], undefined without learned variance
};

// x_t = α(t)·x0 + σ(t)·noise: x0, noise [N, C, …], t [N] → [N, C, …] in x0's dtype.
at::Tensor add_noise(const NoiseProcess& process, const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t);

// output: the network's raw output [N, C or 2C, …] for x_t = add_noise(process, x0, noise, t).
// Throws Error for learned variance with a continuous process or without 2C channels.
LossTerms diffusion_loss(const NoiseProcess& process, const LossOptions& options, const at::Tensor& output,
                         const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t);

}  // namespace ldm::diffusion
