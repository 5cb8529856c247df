// What the patch-transformer cards (DiT, PixArt-α, mmDiT, the proposed model, mDT-v2) share: the
// patch-embedding / timestep / final-layer trunk, preset constructors and the SIZE text. The
// mmDiT trunk is here too, because two cards count it (mmdit, and proposed without the pooled
// vector in adaLN).
#pragma once

#include <cstdint>
#include <string>

#include "shared/core/recipes/card.h"

namespace ldm::recipes {

constexpr std::int64_t kTimestepFrequencies = 256;  // timestep frequency embedding size (DiT, PixArt, SD3)

constexpr std::int64_t linear_params(std::int64_t in, std::int64_t out, bool bias = true) {
  return in * out + (bias ? out : 0);
}

// Terms every block-based card counts: the label table (classes + the null row) of width D, a
// self-attention (qkv + proj) and an MLP at the preset's mlp_ratio; their multiply-adds per token;
// the number of patch tokens of a square latent.
std::int64_t label_table_params(const ModelShape& s, std::int64_t width);
std::int64_t self_attention_params(std::int64_t width);
std::int64_t mlp_params(const PresetInfo& p);
double dense_macs_per_token(const PresetInfo& p);
double patch_tokens(const PresetInfo& p, const ModelShape& s);

// Patch embedding, timestep MLP, fixed positions and the final linear decoder.
std::int64_t patch_trunk_params(const PresetInfo& p, const ModelShape& s);
// Their multiply-adds per sample (embed, t-MLP, final linear and its adaLN).
double patch_trunk_macs(const PresetInfo& p, const ModelShape& s);

PresetInfo transformer_preset(const std::string& family, const std::string& name, int depth, int width, int heads,
                              int patch, const std::string& source);
// tiny/P (depth 2, width 64) and small/P (depth 4, width 128), 4 heads, for each patch P: ours, for
// CPU tests and benchmarks.
void add_cpu_presets(RecipeCard& card, std::initializer_list<int> patches);

std::string transformer_size_text(const PresetInfo& p);  // "d28 w1152 h16 p2" (+ " dec4" for mDT)
LatentGrid patch_latent_grid(const PresetInfo& p);       // {patch, "patch"}

// MM-DiT (SD3): context and image streams in every block, the last context block pre-only.
// `pooled_in_adaln`: the pooled condition enters adaLN through y_embedder (SD3), or not (proposed).
std::int64_t mmdit_param_count(const PresetInfo& p, const ModelShape& s, bool pooled_in_adaln);
double mmdit_gflops(const PresetInfo& p, const ModelShape& s);
// SD3's recipe (rectified flow, velocity objective, logit-normal timesteps, Euler sampling).
std::vector<RecipeDefault> mmdit_defaults();
// The XL/2, XL/2-matched and SD3-2B presets both MM-DiT cards carry.
void add_mmdit_presets(RecipeCard& card);

}  // namespace ldm::recipes
