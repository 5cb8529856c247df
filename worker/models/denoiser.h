// What every recipe's network is to the trainer and samplers: a module that predicts from noisy
// latents, timesteps and a Condition. Recipes are built from the spec by build_denoiser().
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/core/recipes/card.h"
#include "shared/core/spec.h"
#include "worker/models/conditioning.h"

namespace ldm::models {

// Everything a network may be conditioned on for one batch of N samples. Which fields a model
// reads depends on its task and configuration; a field it needs but finds undefined is an
// ldm::Error naming the field. Undefined optional fields mean "nothing dropped".
struct Condition {
  // Class task: [N] int64 labels in [0, num_classes]; the value num_classes is the null class.
  torch::Tensor labels;
  // Text task: token features [N, L, text_channels] with padding already applied (pad_text_tokens),
  // token_mask [N, L] bool (true = a real caption token, false = padding; padding slots are still
  // attended to unless a recipe masks them: recipe.conditioning.mask_padding), pooled
  // [N, text_channels] (recipes whose adaLN takes a pooled caption vector).
  torch::Tensor tokens, token_mask, pooled;
  // [N] bool: true = the semantic condition (label or caption) is dropped. Class task: the caller
  // already replaced the label with the null class and may leave this undefined. Text task: the
  // model substitutes its null caption (see each recipe's header).
  torch::Tensor semantic_drop;
  // Control metadata [N, kControlColumns] float (see conditioning.h) and control_drop [N] bool.
  // Ignored by a model built without controls; required by one built with them.
  torch::Tensor controls, control_drop;
  // [N] float noise level in [0, 1] (1 = pure noise) that w_α(t) is evaluated at. Required when the
  // controls are noise-weighted.
  torch::Tensor noise_level;

  // Rows [start, start + length) of every defined field (micro-batches, guidance halves).
  Condition narrow(int64_t start, int64_t length) const;
  // Every defined field on `device` (the same tensors when they are there already).
  Condition to(const torch::Device& device) const;
  // Row-wise concatenation of conditions with the same defined fields.
  static Condition cat(const std::vector<Condition>& parts);
};

class Denoiser : public torch::nn::Module {
 public:
  // x [N, C, H, W] noisy latents; t [N] model time (what process.model_time returns); returns
  // [N, out_channels(), H, W].
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) = 0;
  // Class-label convenience: Condition{labels = y}.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y);

  // The outputs whose diffusion losses are summed in training. Default: {forward(x, t, cond)}.
  // mDT-v2 returns {unmasked output, masked output}, its masks drawn from `mask_gen`.
  virtual std::vector<torch::Tensor> training_outputs(const torch::Tensor& x, const torch::Tensor& t,
                                                      const Condition& cond, at::Generator& mask_gen);

  // (Re)initialises every parameter from `gen` as the recipe's reference does.
  virtual void initialize(at::Generator& gen) = 0;
  virtual int64_t out_channels() const = 0;
  // Names of the parameters the recipe initialises to exactly zero (adaLN-Zero modulation, output
  // layers, ...): tests re-initialise them randomly before checking that every gradient flows.
  virtual std::vector<std::string> zero_initialised() const = 0;
};

struct ModelGeometry {
  int64_t in_channels;
  int64_t latent_h, latent_w;
  int64_t num_classes;        // class task (0 in the text task)
  int64_t text_channels = 0;  // text task: token feature width of the text encoder
  int64_t text_tokens = 0;    // text task: token slots L (max caption length)
};

// Text task: cond.tokens with the rows whose caption is dropped (cond.semantic_drop) set to zero,
// the "empty caption" of recipes without a learned null caption [recon]. Requires cond.tokens.
torch::Tensor tokens_with_drop(const Condition& cond, const char* model);
// cond.pooled likewise (zero rows where dropped). Requires cond.pooled.
torch::Tensor pooled_with_drop(const Condition& cond, const char* model);
// Throws ldm::Error("<model>: the condition has no <field> ...") when `t` is undefined; returns t.
const torch::Tensor& require_field(const torch::Tensor& t, const char* field, const char* model);

// A ControlEmbedder of output width `dim`, registered in `owner` as "control_embedder", when
// `options` is set; else an empty holder (nothing registered).
ControlEmbedder add_control_embedder(torch::nn::Module& owner, const std::optional<ControlEmbedderOptions>& options,
                                     int64_t dim);
// c [N, D] plus the control embedding of `cond` (c itself when `embedder` is empty). Requires
// cond.controls, and cond.noise_level for noise-weighted controls.
torch::Tensor add_controls(const torch::Tensor& c, const ControlEmbedder& embedder, const Condition& cond,
                           const char* model);

// Sets the fields every patch-transformer config shares (in_channels, latent_h/w, patch, width,
// depth, heads, mlp_ratio, learn_sigma) from the preset, the geometry and the recipe.
template <class Config>
void set_transformer_shape(Config& c, const PresetInfo& p, const ModelGeometry& g, const RecipeSpec& recipe) {
  c.in_channels = g.in_channels;
  c.latent_h = g.latent_h;
  c.latent_w = g.latent_w;
  c.patch = p.patch;
  c.width = p.width;
  c.depth = p.depth;
  c.heads = p.heads;
  c.mlp_ratio = p.mlp_ratio;
  c.learn_sigma = recipe.learn_sigma;
  c.pos_embed_resampling = recipe.pos_embed_resampling;
  c.pos_embed_grid = recipe.pos_embed_grid;
}

// The shape the LibTorch-free preset table (shared/core/presets.h) counts for a model that
// build_denoiser(recipe, geometry) builds: analytic_param_count(preset, model_shape(g, r)) equals
// the built module's parameter count. The table is square-latent only: latent_h != latent_w throws.
ModelShape model_shape(const ModelGeometry& geometry, const RecipeSpec& recipe);
// The control embedder's size in the preset table's terms (disabled when `options` is unset).
ControlShape control_shape(const std::optional<ControlEmbedderOptions>& options);

// The recipe's control embedder settings (disabled when recipe.conditioning.controls = "none"),
// with the output width left for the model to fill in.
std::optional<ControlEmbedderOptions> control_options(const RecipeSpec& recipe);

// Builds one family's network (not initialised) for a preset of its card, the data geometry and the
// recipe. Throws SpecError for settings the family does not support.
using DenoiserBuilder =
    std::function<std::shared_ptr<Denoiser>(const PresetInfo&, const ModelGeometry&, const RecipeSpec&)>;

// Registers the builder of `family` (the name of its recipe card). Each model file registers its
// own with LDM_REGISTER_DENOISER, at static initialisation; tests may register more. Throws Error
// for a family registered twice; returns true.
bool register_denoiser(const std::string& family, DenoiserBuilder builder);
bool has_denoiser(const std::string& family);

// In a model file, at namespace scope: LDM_REGISTER_DENOISER(dit, build_dit) registers
// build_dit for family "dit". (The worker links its model files whole, so none is dropped.)
#define LDM_REGISTER_DENOISER(family, builder) \
  static const bool ldm_denoiser_registered_##family = ::ldm::models::register_denoiser(#family, builder)

// Builds the spec's recipe (family + preset) for the given latent geometry, initialised from `gen`.
// Throws SpecError for an unknown family or preset, or settings the family does not support.
std::shared_ptr<Denoiser> build_denoiser(const RecipeSpec& recipe, const ModelGeometry& geometry, at::Generator& gen);

}  // namespace ldm::models
