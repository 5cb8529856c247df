// The recipe/preset table: model families, their size presets, the tasks each family supports,
// and analytic parameter counts and GFLOPs. LibTorch-free, so the coordinator can validate and
// describe an experiment without building the model; the worker checks its built module against
// these counts (`ldm-worker describe`).
//
// One file per family computes its sizes: presets.cpp (DiT, PixArt-α, mmDiT and the proposed
// model, which share the transformer trunk), presets_unet.cpp, presets_mdt.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ldm {

struct PresetInfo {
  std::string family;  // "unet" | "dit" | "mdt" | "pixart" | "mmdit" | "proposed"
  std::string name;    // "XL/2", "tiny/2", "LDM-4-G"
  // Transformer families.
  int depth = 0;  // transformer blocks (mDT: encoder + decoder blocks)
  int width = 0;  // hidden size
  int heads = 0;
  int patch = 0;  // patch side in latent pixels
  double mlp_ratio = 4.0;
  // mDT-v2: blocks after the side-interpolator (the decoder part of `depth`).
  int decoder_depth = 0;
  // UNet (LDM's openaimodel.UNetModel names).
  int model_channels = 0;
  std::vector<int> channel_mult;  // per resolution level
  int num_res_blocks = 0;         // per level
  std::vector<int> attention_ds;  // down-sampling factors (1, 2, 4, ...) with attention blocks
  int head_channels = 0;          // channels per attention head (num_head_channels)
  int context_dim = 0;            // cross-attention context width (class task: label-embedding width)
  int transformer_depth = 1;      // transformer blocks per attention site
  std::string source;             // where the numbers come from ("DiT paper, Table 1", "ours: CPU tests")
};

// Control-metadata embedder sizes (see worker/models/conditioning.h).
struct ControlShape {
  bool enabled = false;
  bool size = true, crop = true, flip = true, aspect = true;  // groups conditioned on
  int frequency_size = 256;                                   // Fourier features per scalar
  bool learned_null = false;                                  // a learned null vector per group
};

// Shape of the data a model is built for (everything besides the preset that sets its size).
struct ModelShape {
  int in_channels = 4;     // latent channels
  int latent_size = 32;    // latent side (square)
  int num_classes = 1000;  // class task; 0 in the text task
  bool learn_sigma = true;
  bool class_dropout = true;  // a learned null-class embedding exists (classifier-free guidance)
  int text_channels = 0;      // text task: token feature width of the text encoder (0: class task)
  int text_tokens = 0;        // text task: token slots
  ControlShape controls;
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

// Parameters of the control embedder with output width `dim` (0 when disabled).
std::int64_t control_embedder_param_count(std::int64_t dim, const ControlShape& controls);

// Per-family parts of the table (one file each).
void add_unet_presets(std::vector<PresetInfo>& table);
std::int64_t unet_param_count(const PresetInfo& preset, const ModelShape& shape);
double unet_gflops(const PresetInfo& preset, const ModelShape& shape);
void add_mdt_presets(std::vector<PresetInfo>& table);
std::int64_t mdt_param_count(const PresetInfo& preset, const ModelShape& shape);
double mdt_gflops(const PresetInfo& preset, const ModelShape& shape);

}  // namespace ldm
