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
  c.param_count = dit_param_count;
  c.gflops = dit_gflops;
  c.latent_grid = patch_latent_grid;
  c.size_text = transformer_size_text;
  // Recipe: DiT's train.py / sample.py are the spec's struct defaults (shared/core/spec.h): AdamW
  // lr 1e-4, betas (0.9, 0.999), weight decay 0; VP linear betas 1e-4..0.02 over 1000 steps;
  // ε-prediction with learned sigma (off by default here: the hybrid loss is opt-in); EMA 0.9999;
  // 250 DDPM steps; cfg 1.5 for FID. No `defaults` to apply.
  c.validate = dit_validate;
  c.weights_block_prefix = "blocks.";
  return c;
}

}  // namespace ldm::recipes
