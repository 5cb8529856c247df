// PixArt-α (Chen et al. 2023; PixArt-alpha/PixArt-alpha diffusion/model/nets/PixArt.py):
// adaLN-single (one shared timestep modulation, a learned scale_shift_table per block) and
// cross-attention to the condition tokens. Class task: one label token.
#include "shared/core/recipes/transformer.h"

namespace ldm::recipes {
namespace {

std::int64_t pixart_param_count(const PresetInfo& p, const ModelShape& s) {
  const std::int64_t D = p.width;
  std::int64_t n = patch_trunk_params(p, s) + control_embedder_param_count(D, s.controls);
  n += linear_params(D, 6 * D);                                                       // t_block.1
  n += s.text_channels > 0 ? linear_params(s.text_channels, D) + linear_params(D, D)  // y_embedder
                           : label_table_params(s, D);
  const std::int64_t cross = linear_params(D, D) + linear_params(D, 2 * D) + linear_params(D, D);
  n += p.depth * (self_attention_params(D) + cross + mlp_params(p) + 6 * D);  // + scale_shift_table [6, D]
  n += 2 * D;                                                                 // final_layer.scale_shift_table
  return n;
}

double pixart_gflops(const PresetInfo& p, const ModelShape& s) {
  const double D = p.width, T = patch_tokens(p, s), dense = dense_macs_per_token(p);
  const double L = s.text_channels > 0 ? s.text_tokens : 1;  // condition tokens
  const double Cc = s.text_channels > 0 ? s.text_channels : D;
  double macs = patch_trunk_macs(p, s) + 6 * D * D + L * (Cc * D + D * D);  // + t_block, caption MLP
  macs += p.depth * (T * dense + 2 * T * T * D                              // self-attention block
                     + T * 2 * D * D + L * 2 * D * D + 2 * T * L * D);      // cross-attention
  return macs / 1e9;
}

// PixArt-α's recipe (PixArt-alpha/PixArt-alpha configs/PixArt_xl2_internal.py and
// configs/pixart_config/PixArt_xl2_img256_internal.py, diffusion/iddpm.py, train_scripts/train.py,
// scripts/inference.py; the paper's §3.1 and Appendix A.5).
std::vector<RecipeDefault> pixart_defaults() {
  const std::string base = "PixArt-α configs/PixArt_xl2_internal.py ";
  return {
      {"recipe.learn_sigma", true, "PixArt-α diffusion/iddpm.py IDDPM(learn_sigma=True, pred_sigma=True)"},
      {"recipe.diffusion.process", "vp-linear", "PixArt-α diffusion/iddpm.py noise_schedule='linear' (as DiT)"},
      {"recipe.diffusion.timesteps", 1000, base + "train_sampling_steps=1000"},
      {"recipe.diffusion.beta_start", 1e-4, "PixArt-α gaussian_diffusion.py linear schedule: linspace(1e-4, 0.02)"},
      {"recipe.diffusion.beta_end", 0.02, "PixArt-α gaussian_diffusion.py linear schedule: linspace(1e-4, 0.02)"},
      {"recipe.diffusion.objective", "eps", "PixArt-α diffusion/iddpm.py predict_xstart=False (epsilon)"},
      {"recipe.diffusion.t_sampling", "uniform", "PixArt-α train_scripts/train.py: torch.randint(0, num_timesteps)"},
      {"recipe.conditioning.semantic_dropout", 0.1, "PixArt-α nets/PixArt.py class_dropout_prob=0.1 (captions)"},
      {"recipe.optimizer.name", "adamw", base + "optimizer=dict(type='AdamW', ...)"},
      {"recipe.optimizer.beta1", 0.9, base + "AdamW's default betas"},
      {"recipe.optimizer.beta2", 0.999, base + "AdamW's default betas"},
      {"recipe.optimizer.eps", 1e-10, base + "optimizer eps=1e-10"},
      {"recipe.optimizer.weight_decay", 0.03, base + "optimizer weight_decay=3e-2; paper §3.1: weight decay 0.03"},
      {"recipe.optimizer.decay_norms_and_biases", true,
       "PixArt-α diffusion/utils/optimizer.py: one parameter group, every tensor decayed"},
      {"recipe.optimizer.grad_clip", 0.01,
       "PixArt-α configs/pixart_config/PixArt_xl2_img256_internal.py gradient_clip=0.01"},
      {"recipe.ema.decay", 0.9999, base + "ema_rate=0.9999"},
      {"recipe.ema.warmup", false, "PixArt-α train_scripts/train.py: the EMA starts as a copy, no decay warm-up"},
      {"recipe.sampler.name", "dpm++2m",
       "PixArt-α scripts/inference.py sampling_algo 'dpm-solver' (multistep, order 2, dpmsolver++); paper App. A.5"},
      {"recipe.sampler.steps", 20, "PixArt-α scripts/inference.py: 20 DPM-Solver steps; paper App. A.5"},
      {"recipe.sampler.cfg", 4.5,
       "PixArt-α scripts/inference.py cfg_scale=4.5 (the paper states no single FID scale; Fig. 20 sweeps 1.5-6)"},
      {"stage.lr", 2e-5,
       "PixArt-α paper §3.1 and Table 4: constant 2e-5 (the configs warm it up over 1000 steps and scale it by "
       "sqrt(batch / 256): set lr_schedule = \"warmup\" and warmup_steps to follow them)"},
  };
}

}  // namespace

RecipeCard pixart_card() {
  RecipeCard c;
  c.family = "pixart";
  c.title = "PixArt-α (Chen et al. 2023)";
  c.default_preset = "XL/2";
  c.presets.push_back(transformer_preset(c.family, "XL/2", 28, 1152, 16, 2, "PixArt-alpha, PixArt.py PixArt_XL_2"));
  c.presets.back().published_params_m = 611;
  c.presets.back().published_rounding_m = 0.5;
  c.presets.back().published_source =
      "PixArt-α paper §3.3: 611M (T5 captions, 120 tokens; 0.6B in Table 2; the fixed positional table not "
      "counted)";
  add_cpu_presets(c, {2});
  c.param_count = pixart_param_count;
  c.gflops = pixart_gflops;
  c.latent_grid = patch_latent_grid;
  c.size_text = transformer_size_text;
  c.defaults = pixart_defaults();
  return c;
}

}  // namespace ldm::recipes
