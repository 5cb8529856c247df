// The paper's proposed model ("On Improved Conditioning Mechanisms and Pre-training Strategies for
// Diffusion Models", NeurIPS 2024): the MM-DiT trunk with the semantic condition through attention
// only (no pooled vector in adaLN) and control metadata weighted by w_alpha(t).
#include "shared/core/recipes/transformer.h"

namespace ldm::recipes {

namespace {

// SD3's recipe (the trunk's), then what PAPER.md says of the paper's own training.
std::vector<RecipeDefault> proposed_defaults() {
  std::vector<RecipeDefault> d = mmdit_defaults();
  const std::vector<RecipeDefault> own = {
      {"recipe.conditioning.controls", "proposed", "the paper: control metadata weighted by w_alpha(t) [paper]"},
      {"recipe.conditioning.text_padding", "noisy_replicate", "the paper: noisy replicate caption padding [paper]"},
      {"recipe.optimizer.beta2", 0.95, "the paper's appendix, via a third-party summary: Adam betas (0.9, 0.95)"},
      {"recipe.sampler.steps", 250, "the paper, Table 2: samples with 250 steps"},
      {"stage.lr", 1e-4, "the paper: constant learning rate 1e-4 (doubling it diverged) [paper]"},
  };
  d.insert(d.end(), own.begin(), own.end());
  return d;
}

}  // namespace

RecipeCard proposed_card() {
  RecipeCard c;
  c.family = "proposed";
  c.title = "the paper's model (MM-DiT trunk, semantics through attention only)";
  c.default_preset = "XL/2";
  add_mmdit_presets(c);
  add_cpu_presets(c, {2});
  c.param_count = [](const PresetInfo& p, const ModelShape& s) { return mmdit_param_count(p, s, false); };
  c.gflops = mmdit_gflops;
  c.latent_grid = patch_latent_grid;
  c.size_text = transformer_size_text;
  c.defaults = proposed_defaults();
  return c;
}

}  // namespace ldm::recipes
