// `ldm-worker forward`: one forward pass of any recipe on inputs given as a .npz file, written to a
// .npy file, for checking our networks against reference implementations (in Python or elsewhere).
//
//   ldm-worker forward --recipe R [--preset P] --checkpoint C --inputs IN.npz --out OUT.npy
//                      [--ema] [--learn-sigma] [--controls none|sdxl|proposed] [--classes N] [--threads T]
//
// Inputs (IN.npz, keys as numpy.savez names them):
//   x            [N, C, H, W] latents (any float dtype; computed in float32). C, H, W set the geometry.
//   t            [N] model time, as the network takes it (DiT: 0..999), any numeric dtype -> float32
//   condition, exactly one of:
//     y          [N] integer class labels (class task; num_classes is the null class)
//     ctx        [N, L, D] caption token features as the network takes them (text padding already
//                applied; text task), optional ctx_mask [N, L] (bool or 0/1, true = a real token)
//                and pooled [N, D]; or pooled alone for recipes that read only the pooled vector
//   controls     [N, 8] float control metadata (orig_h, orig_w, crop_top, crop_left, crop_h, crop_w,
//                flip, aspect); required exactly when the recipe is built with controls
//   noise_level  [N] in [0, 1] that w_α(t) sees; default clamp(t / 1000, 0, 1)
//   semantic_drop, control_drop
//                [N] bool, optional: rows whose caption / controls are dropped (guidance branches)
// Any other key is an error (a misspelt key must not be silently ignored).
//
// Checkpoint C, told apart by its content, not its name:
//   - a directory: a checkpoint bundle (worker/io/checkpoint.h; a checkpoints dir means its `latest`);
//     `model` weights, or `ema` with --ema. Its manifest's resolved recipe is used (preset,
//     learn_sigma, the whole conditioning section); --recipe must name its family, and --preset,
//     --controls, --learn-sigma, when given, must agree with it.
//   - a zip file: a PyTorch .pt (worker/io/pt_reader.h): a plain state dict, or a training checkpoint
//     dict such as the reference DiT's {"model", "ema", "opt", "args"}: top["model"], or top["ema"]
//     with --ema. --ema on a plain state dict is an error.
//   - otherwise a safetensors state dict (worker/io/safetensors.h); --ema is an error.
// Weights are matched by state-dict name (worker/io/weights.h load_weights, without positional-
// embedding resampling: x must have the grid the weights were trained on): a checkpoint key the
// model lacks, a model parameter the checkpoint lacks, or a shape mismatch is an error naming the
// key (and saying which model was built). Buffers (e.g. mDT's relative_position_index) are loaded
// when present and keep the model's value when absent (bundles from before buffers were saved).
// Weights of another precision (float16, bfloat16, float64) are converted to float32.
//
// Model settings:
//   --preset     required except for families whose card names the weights' block prefix (DiT's
//                "blocks."), where it is inferred from the weights: width from
//                x_embedder.proj.weight, patch from its kernel, depth from the highest <prefix><i>,
//                heads from the one preset of the family with that depth, width and patch.
//   classes      class task: inferred from the weights, by building the model with a guess taken
//                from a known label-embedding key (y_embedder.embedding_table.weight,
//                label_embedder.embedding_table.weight, class_embedder.embedding.weight: rows - 1,
//                the last row being the null class) and, if the one tensor that differs is a 2-D
//                *embed* table differing only in rows, rebuilding with the corrected count.
//                --classes N overrides the inference.
//   text dims    text_channels = D and text_tokens = L from ctx (or D from pooled).
//   mask_padding on when ctx_mask is given (padding slots are excluded as attention keys), except
//                for bundles, whose manifest decides (and then ctx_mask is required if it says so).
//   learn_sigma  --learn-sigma (the reference DiT checkpoints need it: their output has 2C channels).
//   controls     --controls sets recipe.conditioning.controls; the other conditioning settings
//                (α per group, groups used, frequency size, dropped-control embedding) keep their
//                defaults except for bundles.
//
// The model runs in eval mode under NoGradGuard; OUT.npy is float32 [N, out_channels, H, W].
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shared/core/choices.h"

namespace ldm::worker {

struct ForwardArgs {
  std::string recipe;      // family: dit | unet | mdt | pixart | mmdit | proposed
  std::string preset;      // "" = infer (families with RecipeCard::weights_block_prefix)
  std::string checkpoint;  // bundle directory, .pt file or safetensors file
  std::string inputs;      // .npz
  std::string out;         // .npy
  bool ema = false;        // bundles and .pt training checkpoints: the EMA weights
  bool learn_sigma = false;
  std::optional<ControlMode> controls;  // not given: none, or the bundle's
  int64_t classes = 0;                  // class task; 0 = infer from the weights
  int threads = 0;                      // intra-op threads; 0 = LibTorch's default
};

// Runs the forward pass and writes args.out. Prints one line to stdout saying what ran. Throws
// ldm::Error (DataError for bad files, SpecError for recipe settings) with the file, key or
// setting named; returns 0.
int cmd_forward(const ForwardArgs& args);

}  // namespace ldm::worker
