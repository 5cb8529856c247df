// MM-DiT (Esser et al. 2024, "Scaling Rectified Flow Transformers", SD3): joint attention over
// image and condition token streams, each with its own weights; the pooled condition in adaLN.
#include "shared/core/recipes/transformer.h"

namespace ldm::recipes {

// SD3 (Esser et al. 2024): rectified flow, velocity objective, logit-normal(0, 1) timesteps, AdamW,
// Euler sampling (50 steps: ours). The proposed model's card starts from it too.
void mmdit_defaults(RecipeSpec& r) {
  r.diffusion.process = ProcessKind::Flow;
  r.diffusion.objective = Objective::Flow;
  r.diffusion.t_sampling = TimeSampling::LogitNormal;
  r.sampler.name = Sampler::Euler;
  r.sampler.steps = 50;
}

RecipeCard mmdit_card() {
  RecipeCard c;
  c.family = "mmdit";
  c.title = "MM-DiT (Esser et al. 2024, SD3)";
  c.default_preset = "XL/2";
  add_mmdit_presets(c);
  add_cpu_presets(c, {2});
  c.param_count = [](const PresetInfo& p, const ModelShape& s) { return mmdit_param_count(p, s, true); };
  c.gflops = mmdit_gflops;
  c.latent_grid = patch_latent_grid;
  c.size_text = transformer_size_text;
  c.defaults = mmdit_defaults;
  return c;
}

}  // namespace ldm::recipes
