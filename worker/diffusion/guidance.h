// Classifier-free guidance, applied to the raw network output (every objective's output is linear
// in (x0, ε), so combining outputs equals combining ε̂ for fixed x_t):
//   two scales  out = o(∅,∅) + s_sem·(o(c,∅) − o(∅,∅)) + s_ctrl·(o(c,k) − o(c,∅))
//   one scale   out = o(∅) + s·(o(c) − o(∅))
// on the first C channels; learned-variance channels (C..2C) come from the fully conditional branch.
// s_sem = s_ctrl = 0 gives the unconditional output, s_sem = 1, s_ctrl = 0 the semantic-only one,
// s_sem = s_ctrl = 1 the fully conditional one.
// All branches are one batched forward: the caller's `forward` receives x, t stacked along dim 0 and
// attaches the conditions by block, rows [0,B) = (∅,∅), [B,2B) = (c,∅), [2B,3B) = (c,k) (one-scale
// form: [0,B) = ∅, [B,2B) = c).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "worker/diffusion/sampler.h"

namespace ldm::diffusion {

// out3 [3B, C', …] in the layout above → [B, C', …]; channels = C (the prediction channels).
at::Tensor combine_guidance(const at::Tensor& out3, int64_t channels, double s_sem, double s_ctrl);
// out2 [2B, C', …] → [B, C', …].
at::Tensor combine_guidance(const at::Tensor& out2, int64_t channels, double scale);

// Sampler denoisers built on one batched forward (x [kB, C, …], t [kB]) → [kB, C', …] per call.
Denoiser guided_denoiser(Denoiser forward, double s_sem, double s_ctrl);  // k = 3
Denoiser guided_denoiser(Denoiser forward, double scale);                 // k = 2

}  // namespace ldm::diffusion
