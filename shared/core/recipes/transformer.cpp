#include "shared/core/recipes/transformer.h"

namespace ldm::recipes {

std::int64_t label_table_params(const ModelShape& s, std::int64_t width) {
  return (s.num_classes + (s.class_dropout ? 1 : 0)) * width;
}

std::int64_t self_attention_params(std::int64_t D) { return linear_params(D, 3 * D) + linear_params(D, D); }

std::int64_t mlp_params(const PresetInfo& p) {
  const std::int64_t D = p.width, H = static_cast<std::int64_t>(D * p.mlp_ratio);
  return linear_params(D, H) + linear_params(H, D);
}

double dense_macs_per_token(const PresetInfo& p) {
  const double D = p.width, H = D * p.mlp_ratio;
  return 3 * D * D + D * D + 2 * D * H;  // qkv, proj, mlp
}

double patch_tokens(const PresetInfo& p, const ModelShape& s) {
  return double(s.latent_size / p.patch) * double(s.latent_size / p.patch);
}

std::int64_t patch_trunk_params(const PresetInfo& p, const ModelShape& s) {
  const std::int64_t D = p.width, P = p.patch, C = s.in_channels, Co = s.learn_sigma ? 2 * C : C;
  const std::int64_t tokens = (s.latent_size / P) * (s.latent_size / P);
  return P * P * C * D + D                                               // x_embedder.proj (conv)
         + linear_params(kTimestepFrequencies, D) + linear_params(D, D)  // t_embedder.mlp.{0,2}
         + tokens * D                                                    // pos_embed (fixed, counted)
         + linear_params(D, P * P * Co);                                 // final_layer.linear
}

double patch_trunk_macs(const PresetInfo& p, const ModelShape& s) {
  const double D = p.width, P = p.patch, C = s.in_channels, Co = s.learn_sigma ? 2 * C : C;
  const double T = patch_tokens(p, s);
  // embed, t-MLP, final linear and the final adaLN
  return T * P * P * C * D + kTimestepFrequencies * D + D * D + T * D * P * P * Co + 2 * D * D;
}

PresetInfo transformer_preset(const std::string& family, const std::string& name, int depth, int width, int heads,
                              int patch, const std::string& source) {
  PresetInfo p;
  p.family = family;
  p.name = name;
  p.depth = depth;
  p.width = width;
  p.heads = heads;
  p.patch = patch;
  p.mlp_ratio = 4.0;
  p.source = source;
  return p;
}

void add_cpu_presets(RecipeCard& card, std::initializer_list<int> patches) {
  for (int p : patches) {
    card.presets.push_back(
        transformer_preset(card.family, "tiny/" + std::to_string(p), 2, 64, 4, p, "ours: CPU tests"));
    card.presets.push_back(
        transformer_preset(card.family, "small/" + std::to_string(p), 4, 128, 4, p, "ours: CPU benchmarks"));
  }
}

std::string transformer_size_text(const PresetInfo& p) {
  std::string s = "d" + std::to_string(p.depth) + " w" + std::to_string(p.width) + " h" + std::to_string(p.heads) +
                  " p" + std::to_string(p.patch);
  if (p.decoder_depth > 0) s += " dec" + std::to_string(p.decoder_depth);
  return s;
}

LatentGrid patch_latent_grid(const PresetInfo& p) { return {p.patch, "patch"}; }

std::int64_t mmdit_param_count(const PresetInfo& p, const ModelShape& s, bool pooled_in_adaln) {
  const std::int64_t D = p.width;
  const bool text = s.text_channels > 0;
  const std::int64_t cc = text ? s.text_channels : D;
  std::int64_t n = patch_trunk_params(p, s) + control_embedder_param_count(D, s.controls);
  n += linear_params(cc, D);                                             // context_embedder
  if (pooled_in_adaln) n += linear_params(cc, D) + linear_params(D, D);  // y_embedder.mlp.{0,2}
  if (!text) n += label_table_params(s, D);                              // label_embedder
  const std::int64_t full = linear_params(D, 6 * D) + self_attention_params(D) + mlp_params(p);
  const std::int64_t pre_only = linear_params(D, 2 * D) + linear_params(D, 3 * D);
  n += p.depth * full + (p.depth - 1) * full + pre_only;  // x streams + context streams
  n += linear_params(D, 2 * D);                           // final_layer.adaLN_modulation.1
  return n;
}

double mmdit_gflops(const PresetInfo& p, const ModelShape& s) {
  const double D = p.width, T = patch_tokens(p, s), dense = dense_macs_per_token(p);
  const double L = s.text_channels > 0 ? s.text_tokens : 1;  // condition tokens
  const double Cc = s.text_channels > 0 ? s.text_channels : D;
  double macs = patch_trunk_macs(p, s) + L * Cc * D;  // + context_embedder
  macs += p.depth * (T * dense + 2 * (T + L) * (T + L) * D + 12 * D * D) + (p.depth - 1) * L * dense + L * 3 * D * D;
  return macs / 1e9;
}

void add_mmdit_presets(RecipeCard& card) {
  // DiT-XL/2 sizing, and parameter-matched to DiT-XL/2 [recon: the paper's exact mmDiT width/depth
  // is unknown; depth 14 keeps width 1152 and ~0.66B parameters].
  card.presets.push_back(transformer_preset(card.family, "XL/2", 28, 1152, 16, 2,
                                            "DiT-XL/2 sizing (two streams: ~2x DiT-XL/2's parameters)"));
  card.presets.push_back(transformer_preset(card.family, "XL/2-matched", 14, 1152, 16, 2,
                                            "ours: parameter-matched to DiT-XL/2 (depth 14) [recon]"));
  // SD3's own sizing rule (hidden 64·depth, depth heads) at depth 24: the model its paper calls 2B.
  card.presets.push_back(
      transformer_preset(card.family, "SD3-2B", 24, 1536, 24, 2, "SD3 paper §4 (hidden 64·d, d heads) at d = 24"));
  if (card.family == "mmdit") {
    card.presets.back().published_params_m = 2000;
    card.presets.back().published_rounding_m = 50;
    card.presets.back().published_source =
        "SD3 paper, Fig. 5 caption and App. E: 'a 2B d = 24 model' (16-channel latents, T5 context)";
  }
}

}  // namespace ldm::recipes
