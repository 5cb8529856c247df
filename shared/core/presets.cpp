#include "shared/core/presets.h"

#include <algorithm>

namespace ldm {
namespace {

constexpr std::int64_t kFreq = 256;  // timestep frequency embedding size (DiT, PixArt, SD3)

std::int64_t linear(std::int64_t in, std::int64_t out) { return in * out + out; }

void add_transformer_presets(std::vector<PresetInfo>& t) {
  // DiT sizes: Peebles & Xie, "Scalable Diffusion Models with Transformers", Table 1.
  struct Size {
    const char* name;
    int depth, width, heads;
  };
  const Size dit_sizes[] = {{"S", 12, 384, 6}, {"B", 12, 768, 12}, {"L", 24, 1024, 16}, {"XL", 28, 1152, 16}};
  for (const auto& s : dit_sizes)
    for (int p : {2, 4, 8})
      t.push_back({"dit", std::string(s.name) + "/" + std::to_string(p), s.depth, s.width, s.heads, p, 4.0});
  for (auto& p : t) p.source = "DiT paper, Table 1";
  // The other transformers at the paper's XL/2 sizing: PixArt-α-XL/2 (PixArt-α paper, Table 7 /
  // PixArt.py PixArt_XL_2), mmDiT at DiT-XL/2 sizing and parameter-matched to DiT-XL/2 [recon:
  // the paper's exact mmDiT width/depth is unknown; depth 14 keeps width 1152 and ~0.66B params].
  PresetInfo pixart{"pixart", "XL/2", 28, 1152, 16, 2, 4.0};
  pixart.source = "PixArt-alpha, PixArt.py PixArt_XL_2";
  t.push_back(pixart);
  for (const char* family : {"mmdit", "proposed"}) {
    PresetInfo xl{family, "XL/2", 28, 1152, 16, 2, 4.0};
    xl.source = "DiT-XL/2 sizing (two streams: ~2x DiT-XL/2's parameters)";
    t.push_back(xl);
    PresetInfo matched{family, "XL/2-matched", 14, 1152, 16, 2, 4.0};
    matched.source = "ours: parameter-matched to DiT-XL/2 (depth 14) [recon]";
    t.push_back(matched);
  }
  // CPU-sized presets for tests, the quickstart and benchmarks (ours, not from any paper).
  for (const char* family : {"dit", "pixart", "mmdit", "proposed"})
    for (int p : {1, 2, 4}) {
      if (std::string(family) != "dit" && p != 2) continue;
      PresetInfo tiny{family, "tiny/" + std::to_string(p), 2, 64, 4, p, 4.0};
      tiny.source = "ours: CPU tests";
      t.push_back(tiny);
      PresetInfo small{family, "small/" + std::to_string(p), 4, 128, 4, p, 4.0};
      small.source = "ours: CPU benchmarks";
      t.push_back(small);
    }
}

std::vector<PresetInfo> build_table() {
  std::vector<PresetInfo> t;
  add_transformer_presets(t);
  add_unet_presets(t);
  add_mdt_presets(t);
  return t;
}

const std::vector<PresetInfo>& table() {
  static const std::vector<PresetInfo> t = build_table();
  return t;
}

// Parameters shared by the patch-transformer families: patch embedding, timestep MLP, fixed
// positions, final linear decoder.
std::int64_t trunk_params(const PresetInfo& p, const ModelShape& s) {
  const std::int64_t D = p.width, P = p.patch, C = s.in_channels, Co = s.learn_sigma ? 2 * C : C;
  const std::int64_t tokens = (s.latent_size / P) * (s.latent_size / P);
  return P * P * C * D + D                  // x_embedder.proj (conv)
         + linear(kFreq, D) + linear(D, D)  // t_embedder.mlp.{0,2}
         + tokens * D                       // pos_embed (fixed, counted)
         + linear(D, P * P * Co);           // final_layer.linear
}

std::int64_t transformer_param_count(const PresetInfo& p, const ModelShape& s) {
  const std::int64_t D = p.width, H = static_cast<std::int64_t>(D * p.mlp_ratio);
  const bool text = s.text_channels > 0;
  const std::int64_t labels = (s.num_classes + (s.class_dropout ? 1 : 0)) * D;
  std::int64_t n = trunk_params(p, s) + control_embedder_param_count(D, s.controls);
  const std::int64_t attn = linear(D, 3 * D) + linear(D, D), mlp = linear(D, H) + linear(H, D);
  if (p.family == "dit") {
    // [recon] text task: pooled caption through Linear-SiLU-Linear in place of the label table.
    n += text ? linear(s.text_channels, D) + linear(D, D) : labels;
    n += p.depth * (attn + mlp + linear(D, 6 * D));  // blocks with adaLN_modulation.1
    n += linear(D, 2 * D);                           // final_layer.adaLN_modulation.1
  } else if (p.family == "pixart") {
    n += linear(D, 6 * D);                                           // t_block.1 (adaLN-single)
    n += text ? linear(s.text_channels, D) + linear(D, D) : labels;  // y_embedder
    const std::int64_t cross = linear(D, D) + linear(D, 2 * D) + linear(D, D);
    n += p.depth * (attn + cross + mlp + 6 * D);  // + scale_shift_table [6, D]
    n += 2 * D;                                   // final_layer.scale_shift_table
  } else {                                        // mmdit, proposed
    const bool pooled_in_adaln = p.family == "mmdit";
    const std::int64_t cc = text ? s.text_channels : D;
    n += linear(cc, D);                                      // context_embedder
    if (pooled_in_adaln) n += linear(cc, D) + linear(D, D);  // y_embedder.mlp.{0,2}
    if (!text) n += labels;                                  // label_embedder
    const std::int64_t full = linear(D, 6 * D) + attn + mlp;
    const std::int64_t pre_only = linear(D, 2 * D) + linear(D, 3 * D);
    n += p.depth * full + (p.depth - 1) * full + pre_only;  // x streams + context streams
    n += linear(D, 2 * D);                                  // final_layer.adaLN_modulation.1
  }
  return n;
}

double transformer_gflops(const PresetInfo& p, const ModelShape& s) {
  const double D = p.width, P = p.patch, C = s.in_channels, Co = s.learn_sigma ? 2 * C : C;
  const double H = D * p.mlp_ratio;
  const double T = double(s.latent_size / p.patch) * double(s.latent_size / p.patch);
  const double L = s.text_channels > 0 ? s.text_tokens : 1;  // condition tokens
  const double Cc = s.text_channels > 0 ? s.text_channels : D;
  const double dense = 3 * D * D + D * D + 2 * D * H;                                    // qkv, proj, mlp per token
  double macs = T * P * P * C * D + kFreq * D + D * D + T * D * P * P * Co + 2 * D * D;  // embed, t-MLP, final
  if (p.family == "dit") {
    macs += p.depth * (T * dense + 2 * T * T * D + 6 * D * D);
  } else if (p.family == "pixart") {
    macs += 6 * D * D + L * (Cc * D + D * D);                             // t_block, caption MLP
    macs += p.depth * (T * dense + 2 * T * T * D                          // self-attention block
                       + T * 2 * D * D + L * 2 * D * D + 2 * T * L * D);  // cross-attention
  } else {
    macs += L * Cc * D;  // context_embedder
    macs += p.depth * (T * dense + 2 * (T + L) * (T + L) * D + 12 * D * D) + (p.depth - 1) * L * dense + L * 3 * D * D;
  }
  return macs / 1e9;
}

}  // namespace

const std::vector<std::string>& recipe_families() {
  static const std::vector<std::string> f = {"unet", "dit", "mdt", "pixart", "mmdit", "proposed"};
  return f;
}

bool is_known_family(const std::string& family) {
  const auto& f = recipe_families();
  return std::find(f.begin(), f.end(), family) != f.end();
}

std::vector<std::string> preset_names(const std::string& family) {
  std::vector<std::string> out;
  for (const auto& p : table())
    if (p.family == family) out.push_back(p.name);
  return out;
}

const PresetInfo* find_preset(const std::string& family, const std::string& name) {
  for (const auto& p : table())
    if (p.family == family && p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> family_tasks(const std::string& family) {
  // The paper's Table 1 runs every architecture on ImageNet (class) and CC12M (text) [paper]. Where
  // the original model has no caption path we add the simplest one [recon]: DiT takes the pooled
  // caption in place of the label embedding; mDT-v2 cross-attends to caption tokens.
  if (is_known_family(family)) return {"class", "text"};
  return {};
}

bool family_supports_task(const std::string& family, const std::string& task) {
  auto t = family_tasks(family);
  return std::find(t.begin(), t.end(), task) != t.end();
}

std::int64_t control_embedder_param_count(std::int64_t dim, const ControlShape& c) {
  if (!c.enabled) return 0;
  std::int64_t n = 0;
  const std::pair<bool, int> groups[] = {{c.size, 2}, {c.crop, 4}, {c.flip, 1}, {c.aspect, 1}};
  for (const auto& [on, columns] : groups)
    if (on) n += linear(columns * c.frequency_size, dim) + linear(dim, dim) + (c.learned_null ? dim : 0);
  return n;
}

std::int64_t analytic_param_count(const PresetInfo& p, const ModelShape& s) {
  if (p.family == "unet") return unet_param_count(p, s);
  if (p.family == "mdt") return mdt_param_count(p, s);
  return transformer_param_count(p, s);
}

double analytic_gflops(const PresetInfo& p, const ModelShape& s) {
  if (p.family == "unet") return unet_gflops(p, s);
  if (p.family == "mdt") return mdt_gflops(p, s);
  return transformer_gflops(p, s);
}

}  // namespace ldm
