// MM-DiT (Esser et al. 2024, "Scaling Rectified Flow Transformers", SD3): joint attention over
// image and condition token streams, each with its own weights; the pooled condition in adaLN.
#include "shared/core/recipes/transformer.h"

namespace ldm::recipes {

// SD3's recipe (Esser et al. 2024, "Scaling Rectified Flow Transformers", arXiv 2403.03206; the
// reference sampler Stability-AI/sd3-ref). The proposed model's card starts from it too.
std::vector<RecipeDefault> mmdit_defaults() {
  return {
      {"recipe.learn_sigma", false, "SD3 paper §2: rectified flow predicts a velocity, no variance"},
      {"recipe.diffusion.process", "flow", "SD3 paper §2-3: rectified flow, z_t = (1 - t) x0 + t eps"},
      {"recipe.diffusion.objective", "flow", "SD3 paper §2: the network predicts the velocity eps - x0"},
      {"recipe.diffusion.t_sampling", "logit-normal",
       "SD3 paper Table 1: rf/lognorm(0.00, 1.00) ranks best of the samplings compared"},
      {"recipe.diffusion.logit_mean", 0.0, "SD3 paper Table 1: rf/lognorm(0.00, 1.00)"},
      {"recipe.diffusion.logit_std", 1.0, "SD3 paper Table 1: rf/lognorm(0.00, 1.00)"},
      {"recipe.conditioning.semantic_dropout", 0.1,
       "[recon] SD3 paper App. B.3 drops each of its three text encoders with 46.4%, all at once ~10% "
       "(0.464^3); one condition here"},
      {"recipe.optimizer.name", "adamw", "SD3 paper App. B.3: AdamW"},
      {"recipe.optimizer.beta1", 0.9, "[recon] the SD3 paper does not state betas: AdamW's defaults"},
      {"recipe.optimizer.beta2", 0.999, "[recon] the SD3 paper does not state betas: AdamW's defaults"},
      {"recipe.optimizer.weight_decay", 0.0, "[recon] the SD3 paper does not state a weight decay"},
      {"recipe.ema.decay", 0.9999,
       "[recon] SD3's EMA is reported (by a summary of App. B.3) as 0.99 every 100 batches, ~0.9999 per step"},
      {"recipe.ema.warmup", false, "[recon] the SD3 paper states no EMA warm-up"},
      {"recipe.sampler.name", "euler", "SD3 reference sd3-ref sd3_impls.py sample_euler"},
      {"recipe.sampler.steps", 50, "SD3 reference sd3-ref sd3_infer.py STEPS = 50"},
      {"recipe.sampler.cfg", 5.0, "SD3 reference sd3-ref sd3_infer.py CFG = 5"},
      {"stage.lr", 1e-4,
       "SD3 paper App. B.3: AdamW lr 1e-4 (after 1000 linear warm-up steps: set lr_schedule = \"warmup\" to "
       "follow it)"},
  };
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
  c.defaults = mmdit_defaults();
  return c;
}

}  // namespace ldm::recipes
