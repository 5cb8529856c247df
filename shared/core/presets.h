// The recipe/preset table: model families, their size presets, the tasks each family supports,
// and analytic parameter counts. LibTorch-free, so the coordinator can validate and describe an
// experiment without building the model; the worker checks its built module against these counts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ldm {

struct PresetInfo {
  std::string family;  // "dit"
  std::string name;    // "XL/2", "tiny/2"
  int depth = 0;       // transformer blocks
  int width = 0;       // hidden size
  int heads = 0;
  int patch = 0;       // patch side in latent pixels
  double mlp_ratio = 4.0;
  std::string source;  // where the numbers come from ("DiT paper, Table 1", "ours: CPU tests")
};

// Shape of the data a model is built for (everything besides the preset that sets its size).
struct ModelShape {
  int in_channels = 4;    // latent channels
  int latent_size = 32;   // latent side (square)
  int num_classes = 1000;
  bool learn_sigma = true;
  bool class_dropout = true;  // a learned null-class embedding exists (classifier-free guidance)
};

const std::vector<std::string>& recipe_families();
bool is_known_family(const std::string& family);
std::vector<std::string> preset_names(const std::string& family);
const PresetInfo* find_preset(const std::string& family, const std::string& name);  // nullptr if none

// Tasks ("class", "text") a family can train on: the recipe × task table.
std::vector<std::string> family_tasks(const std::string& family);
bool family_supports_task(const std::string& family, const std::string& task);

// Parameter count as the reference implementation's `sum(p.numel() for p in parameters())`
// (DiT: includes the fixed sin-cos positional embedding, a non-trainable nn.Parameter).
std::int64_t analytic_param_count(const PresetInfo& preset, const ModelShape& shape);

// Forward GFLOPs per sample, one multiply-add counted as one FLOP (as the DiT paper counts).
double analytic_gflops(const PresetInfo& preset, const ModelShape& shape);

}  // namespace ldm
