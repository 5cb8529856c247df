// What the network predicts, for x_t = α·x0 + σ·ε:
//   eps   ε
//   v     α·ε − σ·x0          (Salimans & Ho)
//   flow  ε − x0              (rectified-flow velocity dx/dt for α = 1 − t, σ = t)
// Each is linear in (x0, ε) and invertible given x_t for any α, σ with the formulas below, so any
// objective works with any process (eps needs α > 0 to recover x0). α and σ are [N] (viewed per
// sample against the batch) or 0-dim; outputs may carry extra channels (learned variance): only
// the first C = x_t.size(1) channels are the prediction.
#pragma once

#include <ATen/core/Tensor.h>

#include "shared/core/choices.h"

namespace ldm::diffusion {

using ldm::Objective;  // eps | v | flow: the spec's enum (shared/core/choices.h)

// The regression target: [N, C, …] like x0.
at::Tensor training_target(Objective objective, const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& alpha,
                           const at::Tensor& sigma);

struct X0Eps {
  at::Tensor x0, eps;  // [N, C, …] each
};
// Inverts training_target given x_t: eps: x0 = (x − σε̂)/α; v: x0 = (αx − σv)/(α²+σ²),
// ε = (σx + αv)/(α²+σ²); flow: x0 = (x − σv)/(α+σ), ε = (x + αv)/(α+σ).
X0Eps to_x0_eps(Objective objective, const at::Tensor& output, const at::Tensor& x_t, const at::Tensor& alpha,
                const at::Tensor& sigma);

// Min-SNR-γ loss weight (Hang et al. 2023), [N] like alpha. Every objective gets the weight that
// makes weight·‖target − output‖² = min(SNR, γ)·‖x0 − x̂0‖² (the paper's definition):
//   eps   min(SNR, γ)/SNR
//   v     min(SNR, γ)·σ²/(α²+σ²)²   (= min(SNR, γ)/(SNR + 1) for VP)
//   flow  min(SNR, γ)·σ²/(α+σ)²     (= min(α², γσ²) for the flow process; our choice)
// Written without dividing by α or σ, so SNR = 0 and SNR = ∞ give finite weights.
at::Tensor min_snr_weight(Objective objective, const at::Tensor& alpha, const at::Tensor& sigma, double gamma);

}  // namespace ldm::diffusion
