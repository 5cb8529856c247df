// Classifier-free guidance, applied to the raw network output (every objective's output is linear
// in (x0, ε), so combining outputs equals combining ε̂ for fixed x_t):
//   two scales  out = o(∅,∅) + s_sem·(o(c,∅) − o(∅,∅)) + s_ctrl·(o(c,k) − o(c,∅))
//   one scale   out = o(∅) + s·(o(c) − o(∅))
// on the first C channels; learned-variance channels (C..2C) come from the fully conditional branch.
// s_sem = s_ctrl = 0 gives the unconditional output, s_sem = 1, s_ctrl = 0 the semantic-only one,
// s_sem = s_ctrl = 1 the fully conditional one.
// The semantic scale may vary over sampling time (a GuidanceScale): MDT ramps it from no guidance
// at pure noise to the full scale at the data (power_cosine_scale).
// All branches are one batched forward: the caller's `forward` receives x, t stacked along dim 0 and
// attaches the conditions by block, rows [0,B) = (∅,∅), [B,2B) = (c,∅), [2B,3B) = (c,k) (one-scale
// form: [0,B) = ∅, [B,2B) = c).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include "worker/diffusion/sampler.h"

namespace ldm::diffusion {

// out3 [3B, C', …] in the layout above → [B, C', …]; channels = C (the prediction channels).
at::Tensor combine_guidance(const at::Tensor& out3, int64_t channels, double s_sem, double s_ctrl);
// out2 [2B, C', …] → [B, C', …].
at::Tensor combine_guidance(const at::Tensor& out2, int64_t channels, double scale);

// The same with one scale per row: s [B] (any floating dtype).
at::Tensor combine_guidance(const at::Tensor& out3, int64_t channels, const at::Tensor& s_sem, double s_ctrl);
at::Tensor combine_guidance(const at::Tensor& out2, int64_t channels, const at::Tensor& scale);

// A semantic guidance scale as a function of sampling time: t [B] (1 = noise) → scale [B] float64.
using GuidanceScale = std::function<at::Tensor(const at::Tensor& t)>;
// MDT's power-cosine ramp (sail-sg/MDT masked_diffusion/models.py forward_with_cfg):
//   scale(t) = 1 + (scale − 1)·(1 − cos(π·(1 − u)^power))/2,
// u = t·(T−1)/T for a discrete process of T steps (MDT's timestep / num_timesteps), u = t for a
// continuous one (timesteps 0). 1 at pure noise, `scale` at the data.
GuidanceScale power_cosine_scale(double scale, double power, int64_t timesteps);

// Sampler denoisers built on one batched forward (x [kB, C, …], t [kB]) → [kB, C', …] per call.
Denoiser guided_denoiser(Denoiser forward, double s_sem, double s_ctrl);         // k = 3
Denoiser guided_denoiser(Denoiser forward, double scale);                        // k = 2
Denoiser guided_denoiser(Denoiser forward, GuidanceScale s_sem, double s_ctrl);  // k = 3
Denoiser guided_denoiser(Denoiser forward, GuidanceScale scale);                 // k = 2

}  // namespace ldm::diffusion
