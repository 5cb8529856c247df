// The paper's proposed model ("On Improved Conditioning Mechanisms and Pre-training Strategies for
// Diffusion Models", NeurIPS 2024): the MM-DiT trunk with the semantic condition through attention
// only (no pooled vector in adaLN) and control metadata weighted by w_alpha(t).
#include "shared/core/recipes/transformer.h"

namespace ldm::recipes {

namespace {

void proposed_defaults(RecipeSpec& r) {
  mmdit_defaults(r);
  // The paper's model: controls weighted by w_alpha(t) [paper], noisy-replicate caption padding
  // [paper], Adam betas (0.9, 0.95) [paper appendix, via a third party].
  r.conditioning.controls = ControlMode::Proposed;
  r.conditioning.text_padding = TextPadding::NoisyReplicate;
  r.optimizer.beta2 = 0.95;
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
  c.defaults = proposed_defaults;
  return c;
}

}  // namespace ldm::recipes
