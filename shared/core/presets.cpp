#include "shared/core/presets.h"

#include <algorithm>

namespace ldm {
namespace {

std::vector<PresetInfo> build_table() {
  std::vector<PresetInfo> t;
  // DiT sizes: Peebles & Xie, "Scalable Diffusion Models with Transformers", Table 1.
  struct Size { const char* name; int depth, width, heads; };
  const Size dit_sizes[] = {{"S", 12, 384, 6}, {"B", 12, 768, 12}, {"L", 24, 1024, 16},
                            {"XL", 28, 1152, 16}};
  for (const auto& s : dit_sizes)
    for (int p : {2, 4, 8})
      t.push_back({"dit", std::string(s.name) + "/" + std::to_string(p), s.depth, s.width, s.heads,
                   p, 4.0, "DiT paper, Table 1"});
  // CPU-sized presets for tests and the quickstart (ours, not from any paper).
  for (int p : {1, 2, 4}) {
    t.push_back({"dit", "tiny/" + std::to_string(p), 2, 64, 4, p, 4.0, "ours: CPU tests"});
    t.push_back({"dit", "small/" + std::to_string(p), 4, 128, 4, p, 4.0, "ours: CPU benchmarks"});
  }
  return t;
}

const std::vector<PresetInfo>& table() {
  static const std::vector<PresetInfo> t = build_table();
  return t;
}

}  // namespace

const std::vector<std::string>& recipe_families() {
  static const std::vector<std::string> f = {"dit"};
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
  if (family == "dit") return {"class"};  // DiT is class-conditional only [lit]
  return {};
}

bool family_supports_task(const std::string& family, const std::string& task) {
  auto t = family_tasks(family);
  return std::find(t.begin(), t.end(), task) != t.end();
}

std::int64_t analytic_param_count(const PresetInfo& p, const ModelShape& s) {
  const std::int64_t D = p.width, P = p.patch, C = s.in_channels;
  const std::int64_t C_out = s.learn_sigma ? 2 * C : C;
  const std::int64_t H = static_cast<std::int64_t>(D * p.mlp_ratio);
  const std::int64_t tokens = (s.latent_size / P) * (s.latent_size / P);
  const std::int64_t freq = 256;  // timestep frequency embedding size (DiT)
  std::int64_t n = 0;
  n += P * P * C * D + D;                              // x_embedder.proj (conv)
  n += freq * D + D + D * D + D;                       // t_embedder.mlp.{0,2}
  n += (s.num_classes + (s.class_dropout ? 1 : 0)) * D;  // y_embedder.embedding_table
  n += tokens * D;                                     // pos_embed (fixed, counted)
  const std::int64_t block = (D * 3 * D + 3 * D)       // attn.qkv
                             + (D * D + D)             // attn.proj
                             + (D * H + H) + (H * D + D)  // mlp.fc1, mlp.fc2
                             + (D * 6 * D + 6 * D);    // adaLN_modulation.1
  n += p.depth * block;
  n += D * P * P * C_out + P * P * C_out;              // final_layer.linear
  n += D * 2 * D + 2 * D;                              // final_layer.adaLN_modulation.1
  return n;
}

double analytic_gflops(const PresetInfo& p, const ModelShape& s) {
  // Multiply-adds of the forward pass: linear layers over tokens plus attention matmuls.
  const double D = p.width, P = p.patch, C = s.in_channels;
  const double C_out = s.learn_sigma ? 2 * C : C;
  const double H = D * p.mlp_ratio;
  const double T = (s.latent_size / p.patch) * (s.latent_size / p.patch);
  double macs = 0;
  macs += T * P * P * C * D;                          // patch embedding
  macs += 256 * D + D * D;                            // timestep MLP
  const double block = T * (3 * D * D + D * D + 2 * D * H)  // qkv, proj, mlp
                       + 2 * T * T * D                       // QK^T and AV
                       + 6 * D * D;                          // adaLN
  macs += p.depth * block;
  macs += T * D * P * P * C_out + 2 * D * D;          // final layer
  return macs / 1e9;
}

}  // namespace ldm
