// Loading a state dict into a built recipe by name, with positional embeddings resampled when the
// weights come from another token grid (e.g. 256² pre-training loaded at 512²; PAPER.md
// "Positional-embedding resampling").
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "shared/core/choices.h"
#include "worker/io/safetensors.h"

namespace ldm::worker {

struct GridChange {
  int64_t h0 = 0, w0 = 0;                                     // token grid the weights were trained on
  int64_t h1 = 0, w1 = 0;                                     // token grid of the model they go into
  PosEmbedResampling mode = PosEmbedResampling::Interpolate;  // recipe.pos_embed_resampling
  GridConvention grid = GridConvention::Center;               // recipe.pos_embed_grid
  bool changed() const { return h0 != h1 || w0 != w1; }
};

// Copies `weights` into every parameter and buffer of `model` with the same name.
// - A parameter or buffer missing from `weights` is an error naming `source` and the key, except
//   buffers the model derives from its configuration (mDT's relative-position indices).
// - `pos_embed` / `decoder_pos_embed` tensors [1, h0·w0, D] are resampled to [1, h1·w1, D] with
//   `grid.mode` when the grid changed (model tensors of that shape are the target).
// - Any other shape mismatch is an error naming the key and both shapes; tensors in `weights` that
//   the model does not have are an error unless `allow_unexpected`.
// Returns the number of tensors resampled.
int load_weights(torch::nn::Module& model, const TensorMap& weights, const std::string& source,
                 const GridChange& grid = {}, bool allow_unexpected = false);

// The model's parameters and buffers by name (detached), as checkpoints store them.
TensorMap model_state(const torch::nn::Module& model);

}  // namespace ldm::worker
