// DiT / improved-DDPM learned variance for VP processes: the network's second C channels v ∈
// [−1, 1] interpolate the log variance of p(x_s | x_t) between the posterior variance β̃ (v = −1)
// and β (v = +1); the variational-bound term trains them with the mean frozen.
#pragma once

#include <ATen/core/Tensor.h>

#include "worker/diffusion/objective.h"
#include "worker/diffusion/process.h"

namespace ldm::diffusion {

// q(x_s | x_t, x0) of a VP process between ᾱ_t < ᾱ_s ≤ 1 (any two levels, so respaced grids work):
//   β = 1 − ᾱ_t/ᾱ_s,  mean = coef_x0·x0 + coef_xt·x_t,  variance β̃ = β·(1 − ᾱ_s)/(1 − ᾱ_t).
// Inputs [N] (or 0-dim) float64; outputs the same shape.
struct VpPosterior {
  at::Tensor beta, coef_x0, coef_xt, variance;
};
VpPosterior vp_posterior(const at::Tensor& abar_t, const at::Tensor& abar_s);

// log σ² = frac·max_log + (1 − frac)·min_log with frac = (v + 1)/2 (no clamping, as DiT).
// v [N, C, …]; min_log, max_log [N] (viewed per sample) or 0-dim.
at::Tensor learned_log_variance(const at::Tensor& v, const at::Tensor& min_log, const at::Tensor& max_log);

// improved-DDPM's L_vlb term for one training draw, as DiT's _vb_terms_bpd with the mean frozen
// (stop-gradient on the prediction channels; only the variance channels get gradients):
//   i ≥ 1: KL(q(x_{i−1} | x_i, x0) ‖ p(x_{i−1} | x_i)), p's mean from x̂0 = to_x0_eps(detached output);
//   i = 0: the decoder NLL −log p(x0 | x_1-step), DiT's *discretized* Gaussian likelihood over 256
//          bins in [−1, 1] (applied to latents as DiT does; not a continuous Gaussian NLL).
// Both in bits per dimension, averaged over the non-batch dims: [N] float32/64 like output.
// Model log variance: learned range between log β̃_i (β̃_1 at i = 0, DiT's clipping) and log β_i.
// process must be discrete VP (throws Error otherwise); t [N] on the grid i/(T−1); x_t, x0 [N, C, …];
// output [N, 2C, …].
at::Tensor vlb_term(const NoiseProcess& process, Objective objective, const at::Tensor& output, const at::Tensor& x0,
                    const at::Tensor& x_t, const at::Tensor& t);

}  // namespace ldm::diffusion
