// Activation checkpointing: a block's forward that keeps only its inputs for backward and runs again
// inside backward to get its gradients (PyTorch's torch.utils.checkpoint, reentrant form), for models
// whose activations do not fit (issue 27: DiT-XL/2 at 512², large batches). Compute: one more forward
// per checkpointed block.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace ldm::models {

using BlockFn = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>;

// fn(inputs) without keeping fn's intermediate tensors: the forward runs without autograd; backward
// runs fn again with autograd, under the bf16 autocast state the forward had, and back-propagates the
// outputs' gradients through it, into `inputs` and into the parameters fn uses (accumulated into
// their existing .grad() in place, as any backward: the flat gradient buffers stay views). fn must be
// deterministic (no random draws inside; the recipes' blocks draw none) and return tensors only.
// When autograd is off or no input requires a gradient, fn runs directly.
std::vector<torch::Tensor> checkpointed(const BlockFn& fn, const std::vector<torch::Tensor>& inputs);

}  // namespace ldm::models
