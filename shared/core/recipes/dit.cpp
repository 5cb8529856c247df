// DiT (Peebles & Xie 2023, "Scalable Diffusion Models with Transformers"; facebookresearch/DiT
// models.py): adaLN-Zero blocks over patch tokens, the class label in adaLN. Text task [recon]: the
// pooled caption through Linear-SiLU-Linear in place of the label table.
#include "shared/core/error.h"
#include "shared/core/recipes/transformer.h"

namespace ldm::recipes {
namespace {

std::int64_t dit_param_count(const PresetInfo& p, const ModelShape& s) {
  const std::int64_t D = p.width;
  std::int64_t n = patch_trunk_params(p, s) + control_embedder_param_count(D, s.controls);
  n += s.text_channels > 0 ? linear_params(s.text_channels, D) + linear_params(D, D)  // y_embedder
                           : label_table_params(s, D);
  n += p.depth * (self_attention_params(D) + mlp_params(p) + linear_params(D, 6 * D));  // + adaLN_modulation.1
  n += linear_params(D, 2 * D);  // final_layer.adaLN_modulation.1
  return n;
}

double dit_gflops(const PresetInfo& p, const ModelShape& s) {
  const double D = p.width, T = patch_tokens(p, s);
  return (patch_trunk_macs(p, s) + p.depth * (T * dense_macs_per_token(p) + 2 * T * T * D + 6 * D * D)) / 1e9;
}

void dit_validate(const ExperimentSpec& spec) {
  const ConditioningSpec& k = spec.recipe.conditioning;
  if (spec.task == "text" && (k.text_padding != TextPadding::Zero || k.mask_padding))
    throw SpecError("recipe.conditioning.text_padding",
                    "DiT's text path reads the pooled caption only, so caption padding and masking have no effect; "
                    "leave text_padding = 'zero' and mask_padding = false");
}

}  // namespace

RecipeCard dit_card() {
  RecipeCard c;
  c.family = "dit";
  c.title = "DiT (Peebles & Xie 2023)";
  c.default_preset = "XL/2";
  // Sizes: the DiT paper, Table 1.
  struct Size {
    const char* name;
    int depth, width, heads;
  };
  for (const Size& s :
       {Size{"S", 12, 384, 6}, Size{"B", 12, 768, 12}, Size{"L", 24, 1024, 16}, Size{"XL", 28, 1152, 16}})
    for (int patch : {2, 4, 8})
      c.presets.push_back(transformer_preset(c.family, std::string(s.name) + "/" + std::to_string(patch), s.depth,
                                             s.width, s.heads, patch, "DiT paper, Table 1"));
  add_cpu_presets(c, {1, 2, 4});
  for (PresetInfo& p : c.presets)
    if (p.name == "XL/2") {
      p.published_params_m = 675;
      p.published_rounding_m = 0.5;
      p.published_source = "DiT paper, Table 4: 675M (ImageNet 256, learned sigma; the VAE not counted)";
    }
  c.param_count = dit_param_count;
  c.gflops = dit_gflops;
  c.latent_grid = patch_latent_grid;
  c.size_text = transformer_size_text;
  // Recipe: facebookresearch/DiT train.py, sample_ddp.py, diffusion/__init__.py and the paper's §4.
  // Most equal the spec's struct defaults (shared/core/spec.h); listed so `ldm-worker describe`
  // names each source.
  c.defaults = {
      {"recipe.learn_sigma", true, "DiT diffusion/__init__.py create_diffusion(learn_sigma=True): hybrid loss"},
      {"recipe.diffusion.process", "vp-linear",
       "DiT diffusion/gaussian_diffusion.py get_named_beta_schedule('linear'): betas linear in beta"},
      {"recipe.diffusion.timesteps", 1000, "DiT diffusion/__init__.py diffusion_steps=1000"},
      {"recipe.diffusion.beta_start", 1e-4, "DiT gaussian_diffusion.py: linspace(1e-4, 0.02) at 1000 steps"},
      {"recipe.diffusion.beta_end", 0.02, "DiT gaussian_diffusion.py: linspace(1e-4, 0.02) at 1000 steps"},
      {"recipe.diffusion.objective", "eps", "DiT diffusion/__init__.py predict_xstart=False (epsilon)"},
      {"recipe.diffusion.t_sampling", "uniform", "DiT train.py: t = torch.randint(0, num_timesteps)"},
      {"recipe.diffusion.vlb_weight", 1.0, "DiT gaussian_diffusion.py training_losses: loss = mse + vb (LossType.MSE)"},
      {"recipe.conditioning.semantic_dropout", 0.1, "DiT models.py LabelEmbedder class_dropout_prob=0.1"},
      {"recipe.optimizer.name", "adamw", "DiT train.py: torch.optim.AdamW"},
      {"recipe.optimizer.beta1", 0.9, "DiT train.py: AdamW's default betas (paper §4: not tuned)"},
      {"recipe.optimizer.beta2", 0.999, "DiT train.py: AdamW's default betas (paper §4: not tuned)"},
      {"recipe.optimizer.weight_decay", 0.0, "DiT train.py: AdamW(weight_decay=0)"},
      {"recipe.optimizer.grad_clip", 0.0, "DiT train.py: no gradient clipping"},
      {"recipe.ema.decay", 0.9999, "DiT train.py update_ema(decay=0.9999); paper §4"},
      {"recipe.ema.warmup", false, "DiT train.py: the EMA starts as a copy, no decay warm-up"},
      {"recipe.sampler.name", "ddpm", "DiT sample_ddp.py: diffusion.p_sample_loop (ancestral DDPM)"},
      {"recipe.sampler.steps", 250, "DiT sample_ddp.py num_sampling_steps=250; paper Table 4 (FID-50K 2.27)"},
      {"recipe.sampler.cfg", 1.5,
       "DiT sample_ddp.py cfg_scale=1.5 for FID (paper Table 4). DiT guides only the first 3 latent channels "
       "(models.py forward_with_cfg); we guide all of them [recon: the paper's appendix finds 4-channel guidance "
       "as good at a lower scale]"},
      {"stage.lr", 1e-4, "DiT train.py: AdamW(lr=1e-4), constant; paper §4"},
  };
  c.validate = dit_validate;
  c.weights_block_prefix = "blocks.";
  return c;
}

}  // namespace ldm::recipes
