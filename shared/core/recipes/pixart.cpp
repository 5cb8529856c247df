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

void pixart_defaults(RecipeSpec& r) {
  // PixArt-α (configs/pixart_config): AdamW lr 2e-5, weight decay 0.03, eps 1e-10; DiT's diffusion
  // with learned sigma; 1-D tensors decayed too (the reference decays every tensor).
  r.optimizer.weight_decay = 0.03;
  r.optimizer.eps = 1e-10;
  r.optimizer.decay_norms_and_biases = true;
}

}  // namespace

RecipeCard pixart_card() {
  RecipeCard c;
  c.family = "pixart";
  c.title = "PixArt-α (Chen et al. 2023)";
  c.default_preset = "XL/2";
  c.presets.push_back(transformer_preset(c.family, "XL/2", 28, 1152, 16, 2, "PixArt-alpha, PixArt.py PixArt_XL_2"));
  add_cpu_presets(c, {2});
  c.param_count = pixart_param_count;
  c.gflops = pixart_gflops;
  c.latent_grid = patch_latent_grid;
  c.size_text = transformer_size_text;
  c.defaults = pixart_defaults;
  return c;
}

}  // namespace ldm::recipes
