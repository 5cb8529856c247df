// Loading a state dict into a built recipe by name, with positional embeddings resampled when the
// weights come from another token grid (e.g. 256² pre-training loaded at 512²; PAPER.md
// "Positional-embedding resampling").
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

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

// The label table across a change of class set (StageSpec::classes). Tables are
// `*embedding_table.weight` (DiT, mDT-v2, mmDiT) and `class_embedder.embedding.weight` (UNet):
// [classes (+1 null row), D]. The null row, when both tables have one, is always kept [recon].
struct ClassTransfer {
  enum class Mode { Keep, Reinit, Remap } mode = Mode::Keep;
  int64_t old_classes = 0, new_classes = 0;
  std::vector<int64_t> new_from_old;  // Remap: new id -> old id, -1 = a new class (fresh row)
};

// Reads a classes_map file: one "old new" pair of class ids per line (whitespace or a comma
// between them; blank lines and '#' comments ignored). Throws DataError naming file:line for
// malformed lines, ids out of range and a new id mapped twice.
ClassTransfer read_class_map(const std::string& path, int64_t old_classes, int64_t new_classes);

struct LoadOptions {
  GridChange grid;
  bool allow_unexpected = false;
  ClassTransfer classes;
  // A class <-> text swap of the conditioning input: tensors only the model has keep their fresh
  // initialisation, tensors only the weights have are dropped, and a same-named tensor of another
  // shape is fresh too (each is listed in the report).
  bool conditioning_swap = false;
};

// What loading did, tensor by tensor (for logs and lineage).
struct LoadReport {
  int64_t copied = 0;
  std::vector<std::string> resampled, classes, fresh, dropped;
  std::string summary() const;
};

// Copies `weights` into every parameter and buffer of `model` with the same name.
// - A parameter or buffer missing from `weights` is an error naming `source` and the key, except
//   buffers the model derives from its configuration (mDT's relative-position indices).
// - `pos_embed` / `decoder_pos_embed` tensors [1, h0·w0, D] are resampled to [1, h1·w1, D] with
//   `grid.mode` when the grid changed (model tensors of that shape are the target): fixed sin-cos
//   tables (not trainable) with resample_pos_embed, learned ones (mDT-v2) with
//   resample_learned_pos_embed; mDT-v2's `relative_position_bias_table` with resample_relative_bias.
// - Any other shape mismatch is an error naming the key and both shapes; tensors in `weights` that
//   the model does not have are an error unless `allow_unexpected`.
// Returns the number of tensors resampled.
int load_weights(torch::nn::Module& model, const TensorMap& weights, const std::string& source,
                 const GridChange& grid = {}, bool allow_unexpected = false);
// The same with a class table and conditioning transfer (a stage started from another's weights).
LoadReport load_weights(torch::nn::Module& model, const TensorMap& weights, const std::string& source,
                        const LoadOptions& options);

// The model's parameters and buffers by name (detached), as checkpoints store them.
TensorMap model_state(const torch::nn::Module& model);

}  // namespace ldm::worker
