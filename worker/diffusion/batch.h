// Broadcasting per-sample coefficients against batched tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace ldm::diffusion {

// a [N] → [N, 1, …, 1] with like.dim() dimensions, so it scales like [N, …] per sample. A 0-dim
// (or already broadcastable) `a` is returned unchanged.
inline at::Tensor per_sample(const at::Tensor& a, const at::Tensor& like) {
  if (a.dim() != 1 || like.dim() <= 1) return a;
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = a.size(0);
  return a.view(shape);  // [N, 1, …, 1]
}

}  // namespace ldm::diffusion
