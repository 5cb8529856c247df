#include "worker/cli/forward.h"

#include "worker/cli/commands.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "datasets/tensor/npy.h"
#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"
#include "worker/io/checkpoint.h"
#include "worker/io/pt_reader.h"
#include "worker/io/safetensors.h"
#include "worker/io/weights.h"
#include "worker/models/conditioning.h"
#include "worker/models/denoiser.h"

namespace ldm::worker {

namespace {

namespace fs = std::filesystem;

std::string sizes_text(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

// ---- checkpoint ----------------------------------------------------------------------------

struct Weights {
  TensorMap tensors;
  std::string description;           // "model weights of bundle DIR", for the summary line
  std::optional<RecipeSpec> recipe;  // a bundle's resolved recipe (from its manifest)
};

Weights load_bundle(const std::string& path, bool ema) {
  CheckpointBundle b = read_checkpoint(path);
  Weights w;
  w.tensors = ema ? std::move(b.ema) : std::move(b.model);
  if (w.tensors.empty())
    throw DataError(path + ": the bundle has no " + (ema ? "EMA" : "model") + " weights" +
                    (ema ? " (run without --ema for the raw weights)" : ""));
  w.description = std::string(ema ? "EMA" : "model") + " weights of bundle " + path;
  if (b.manifest.contains("spec")) w.recipe = spec_from_json(b.manifest.at("spec")).recipe;
  return w;
}

// A .pt file: top["model"] / top["ema"] of a training checkpoint, or a plain state dict.
Weights load_pt(const std::string& path, bool ema) {
  const std::string want = ema ? "ema" : "model";
  Weights w;
  try {
    w.tensors = load_pt_state_dict(path, want);
    w.description = "'" + want + "' of " + path;
    return w;
  } catch (const DataError& wanted_error) {
    // Either a plain state dict (its top level is the dict of tensors) or a training checkpoint
    // without `want`. pt_reader picks for an empty key the top level when it is a state dict, else
    // ema/model/state_dict/module, so probe those keys first: on a plain state dict each probe
    // fails before any tensor data is read.
    for (const char* other : {"ema", "model", "state_dict", "module"}) {
      if (want == other) continue;
      bool found = false;
      try {
        load_pt_state_dict(path, other);
        found = true;
      } catch (const DataError&) {
      }
      if (found)
        throw DataError(path + ": a training checkpoint without a '" + want + "' state dict (it has '" + other + "'" +
                        (std::string(other) == "ema" ? ": pass --ema" : "") + "); " + wanted_error.what());
    }
    w.tensors = load_pt_state_dict(path);  // the top level must now be the state dict itself
    if (ema)
      throw DataError(path +
                      ": --ema asks for the 'ema' state dict of a training checkpoint, but this file is a "
                      "plain state dict (run without --ema)");
    w.description = "state dict " + path;
    return w;
  }
}

Weights read_weights(const std::string& path, bool ema) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_bundle(path, ema);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open the checkpoint (no such file or not readable)");
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  in.close();
  // A zip is torch.save's; so is a file named like one, whose reader then says what it is instead.
  const std::string ext = fs::path(path).extension().string();
  if (std::string(magic, 4) == std::string("PK\x03\x04", 4) || ext == ".pt" || ext == ".pth" || ext == ".ckpt")
    return load_pt(path, ema);
  if (ema)
    throw DataError(path +
                    ": --ema: a safetensors file holds one set of weights (--ema applies to checkpoint "
                    "bundles and .pt training checkpoints)");
  Weights w;
  w.tensors = safetensors_decode(read_file(path), path);
  w.description = "safetensors " + path;
  return w;
}

// ---- model settings ------------------------------------------------------------------------

// A patch transformer's preset from its weights: width and patch from the patch embedding, depth
// from the highest block index under the card's weights_block_prefix.
std::string infer_preset(const RecipeCard& card, const TensorMap& w, const std::string& source) {
  const std::string names = join(preset_names(card.family), ", ");
  auto it = w.find("x_embedder.proj.weight");
  if (it == w.end() || it->second.dim() != 4)
    throw SpecError("preset", source + ": cannot infer the " + card.family +
                                  " preset: no 4-D 'x_embedder.proj.weight' in the weights; give --preset (one of " +
                                  names + ")");
  const int64_t width = it->second.size(0), patch = it->second.size(2);
  const std::string& prefix = card.weights_block_prefix;
  int64_t depth = 0;
  for (const auto& kv : w) {
    if (!starts_with(kv.first, prefix)) continue;
    const std::string rest = kv.first.substr(prefix.size());
    const std::size_t dot = rest.find('.');
    try {
      depth = std::max<int64_t>(depth, std::stoll(rest.substr(0, dot)) + 1);
    } catch (const std::exception&) {
      throw SpecError("preset", source + ": cannot infer the " + card.family + " preset: key '" + kv.first +
                                    "' has no block index");
    }
  }
  std::vector<const PresetInfo*> matches;
  for (const PresetInfo& p : card.presets)
    if (p.depth == depth && p.width == width && p.patch == patch) matches.push_back(&p);
  const std::string found =
      "depth " + std::to_string(depth) + ", width " + std::to_string(width) + ", patch " + std::to_string(patch);
  if (matches.empty())
    throw SpecError("preset", source + ": no " + card.family + " preset has the weights' " + found +
                                  " (presets: " + names + "); give --preset");
  for (const PresetInfo* p : matches)
    if (p->heads != matches[0]->heads || p->mlp_ratio != matches[0]->mlp_ratio)
      throw SpecError("preset", source + ": the weights' " + found + " fit several " + card.family +
                                    " presets with different heads; give --preset");
  return matches[0]->name;
}

// The label-embedding table of each family, for a first guess at num_classes (rows - 1).
constexpr const char* kLabelTableKeys[] = {"y_embedder.embedding_table.weight", "label_embedder.embedding_table.weight",
                                           "class_embedder.embedding.weight"};

// Copies the checkpoint into the model by name (worker/io/weights.h: a missing parameter, a key the
// model lacks or a shape mismatch is an error naming the key), adding what to check to the error.
void load_into(models::Denoiser& model, const Weights& w, const RecipeSpec& recipe) {
  try {
    load_weights(model, w.tensors, w.description);
  } catch (const DataError& e) {
    std::string hint = "; the model is " + recipe.family + " " + recipe.preset + " with learn_sigma " +
                       (recipe.learn_sigma ? "on" : "off") + " and controls " +
                       choice_name(recipe.conditioning.controls) + ", built for the shape of x";
    const bool weights_have_controls = std::any_of(
        w.tensors.begin(), w.tensors.end(), [](const auto& kv) { return starts_with(kv.first, "control_embedder."); });
    if (weights_have_controls && recipe.conditioning.controls == ControlMode::None)
      hint += " (the weights have a control embedder: pass --controls sdxl or proposed)";
    else if (!weights_have_controls && recipe.conditioning.controls != ControlMode::None)
      hint += " (the weights have no control embedder: --controls none?)";
    else hint += " (check --preset, --learn-sigma and the shape of x)";
    throw DataError(std::string(e.what()) + hint);
  }
}

// ---- inputs --------------------------------------------------------------------------------

const std::vector<std::string> kInputKeys = {"x",      "t",        "y",           "ctx",           "ctx_mask",
                                             "pooled", "controls", "noise_level", "semantic_drop", "control_drop"};

struct Inputs {
  torch::Tensor x, t;
  models::Condition cond;
  bool text = false;
};

Inputs read_inputs(const std::string& path) {
  data::NpzMap in = data::read_npz(path);
  for (const auto& kv : in)
    if (std::find(kInputKeys.begin(), kInputKeys.end(), kv.first) == kInputKeys.end())
      throw DataError(path + ": unknown input '" + kv.first + "'" + did_you_mean(kv.first, kInputKeys) +
                      " (inputs: " + join(kInputKeys, ", ") + ")");
  auto get = [&](const std::string& key) -> torch::Tensor {
    auto it = in.find(key);
    return it == in.end() ? torch::Tensor() : it->second;
  };
  auto bad = [&](const std::string& key, const std::string& what) {
    return DataError(path + ": input '" + key + "' " + what + ", got " +
                     std::string(c10::toString(in.at(key).scalar_type())) + " " + sizes_text(in.at(key).sizes()));
  };
  auto numeric = [&](const std::string& key) {
    const auto s = in.at(key).scalar_type();
    return s != torch::kBool;
  };
  Inputs r;
  r.x = get("x");
  if (!r.x.defined()) throw DataError(path + ": no input 'x' (the latents [N, C, H, W])");
  if (r.x.dim() != 4 || !at::isFloatingType(r.x.scalar_type())) throw bad("x", "must be float [N, C, H, W]");
  const int64_t n = r.x.size(0);
  auto check_rows = [&](const std::string& key, int64_t dims, const std::string& what) {
    const auto& v = in.at(key);
    if (v.dim() != dims || v.size(0) != n) throw bad(key, "must be " + what + " with N = " + std::to_string(n));
  };
  r.x = r.x.to(torch::kFloat32);
  r.t = get("t");
  if (!r.t.defined()) throw DataError(path + ": no input 't' (the model time [N])");
  check_rows("t", 1, "numeric [N]");
  if (!numeric("t")) throw bad("t", "must be numeric [N]");
  r.t = r.t.to(torch::kFloat32);

  models::Condition& c = r.cond;
  const bool has_y = in.count("y"), has_text = in.count("ctx") || in.count("pooled");
  if (has_y && has_text) throw DataError(path + ": both 'y' (class task) and 'ctx'/'pooled' (text task) are given");
  if (!has_y && !has_text)
    throw DataError(path + ": no condition: give 'y' [N] labels (class task) or 'ctx' [N, L, D] (text task)");
  if (has_y) {
    check_rows("y", 1, "integer [N]");
    if (!at::isIntegralType(in.at("y").scalar_type(), /*includeBool=*/false)) throw bad("y", "must be integer [N]");
    c.labels = in.at("y").to(torch::kInt64);
  } else {
    r.text = true;
    if (in.count("ctx")) {
      check_rows("ctx", 3, "float [N, L, D]");
      if (!at::isFloatingType(in.at("ctx").scalar_type())) throw bad("ctx", "must be float [N, L, D]");
      c.tokens = in.at("ctx").to(torch::kFloat32);
    }
    if (in.count("ctx_mask")) {
      if (!c.tokens.defined()) throw DataError(path + ": 'ctx_mask' is given without 'ctx'");
      check_rows("ctx_mask", 2, "bool [N, L]");
      if (in.at("ctx_mask").size(1) != c.tokens.size(1))
        throw bad("ctx_mask", "must be [N, L] with L = " + std::to_string(c.tokens.size(1)) + " as in ctx");
      c.token_mask = in.at("ctx_mask").to(torch::kBool);
    }
    if (in.count("pooled")) {
      check_rows("pooled", 2, "float [N, D]");
      if (!at::isFloatingType(in.at("pooled").scalar_type())) throw bad("pooled", "must be float [N, D]");
      c.pooled = in.at("pooled").to(torch::kFloat32);
    }
  }
  if (in.count("controls")) {
    check_rows("controls", 2, "float [N, 8]");
    if (in.at("controls").size(1) != models::kControlColumns || !numeric("controls"))
      throw bad("controls", "must be float [N, 8] (orig_h, orig_w, crop_top, crop_left, crop_h, crop_w, flip, aspect)");
    c.controls = in.at("controls").to(torch::kFloat32);
  }
  if (in.count("noise_level")) {
    check_rows("noise_level", 1, "float [N]");
    if (!numeric("noise_level")) throw bad("noise_level", "must be float [N]");
    c.noise_level = in.at("noise_level").to(torch::kFloat32);
  } else {
    c.noise_level = (r.t / 1000.0).clamp(0.0, 1.0);  // [N]: DiT-style model time 0..999 -> [0, 1]
  }
  for (const char* key : {"semantic_drop", "control_drop"})
    if (in.count(key)) check_rows(key, 1, "bool [N]");
  if (in.count("semantic_drop")) c.semantic_drop = in.at("semantic_drop").to(torch::kBool);
  if (in.count("control_drop")) c.control_drop = in.at("control_drop").to(torch::kBool);
  return r;
}

// ---- the recipe ----------------------------------------------------------------------------

RecipeSpec resolve_recipe(const ForwardArgs& a, const Weights& w) {
  const RecipeCard* card = find_recipe_card(a.recipe);
  if (!card)
    throw SpecError("recipe", "unknown recipe family '" + a.recipe + "'" + did_you_mean(a.recipe, recipe_families()) +
                                  " (families: " + join(recipe_families(), ", ") + ")");
  RecipeSpec r;
  if (w.recipe) {  // a bundle: its own resolved recipe, which the options may only confirm
    r = *w.recipe;
    auto disagree = [&](const std::string& what, const std::string& given, const std::string& bundle) {
      return SpecError(
          what, a.checkpoint + ": --" + what + " " + given + " disagrees with the bundle's recipe (" + bundle + ")");
    };
    if (a.recipe != r.family) throw disagree("recipe", a.recipe, r.family);
    if (!a.preset.empty() && a.preset != r.preset) throw disagree("preset", a.preset, r.preset);
    if (a.controls && *a.controls != r.conditioning.controls)
      throw disagree("controls", choice_name(*a.controls), choice_name(r.conditioning.controls));
    if (a.learn_sigma && !r.learn_sigma) throw disagree("learn-sigma", "(on)", "learn_sigma off");
    return r;
  }
  r.family = a.recipe;
  r.learn_sigma = a.learn_sigma;
  r.conditioning.controls = a.controls.value_or(ControlMode::None);
  if (!a.preset.empty()) r.preset = a.preset;
  else if (!card->weights_block_prefix.empty()) r.preset = infer_preset(*card, w.tensors, a.checkpoint);
  else
    throw SpecError("preset", "--preset is required for recipe '" + a.recipe +
                                  "' (its card names no weights layout to infer it from); presets: " +
                                  join(preset_names(a.recipe), ", "));
  if (!find_preset(r.family, r.preset))
    throw SpecError("preset", "unknown preset '" + r.preset + "' for recipe '" + r.family + "'" +
                                  did_you_mean(r.preset, preset_names(r.family)) +
                                  " (presets: " + join(preset_names(r.family), ", ") + ")");
  return r;
}

// The one tensor whose shape differs between a model and the weights, if it is a label table.
std::optional<int64_t> label_rows_delta(models::Denoiser& model, const TensorMap& w) {
  const TensorMap ours = model_state(model);
  std::vector<std::string> differing;
  for (const auto& [name, t] : ours) {
    auto it = w.find(name);
    if (it != w.end() && it->second.sizes() != t.sizes()) differing.push_back(name);
  }
  if (differing.size() != 1) return std::nullopt;
  const std::string& name = differing[0];
  const auto &ours_t = ours.at(name), &theirs = w.at(name);
  if (ours_t.dim() != 2 || theirs.dim() != 2 || ours_t.size(1) != theirs.size(1) ||
      name.find("embed") == std::string::npos)
    return std::nullopt;
  return theirs.size(0) - ours_t.size(0);
}

}  // namespace

int cmd_forward(const ForwardArgs& a) {
  if (a.recipe.empty() || a.checkpoint.empty() || a.inputs.empty() || a.out.empty())
    throw Error("forward needs --recipe, --checkpoint, --inputs and --out");
  if (a.threads > 0) at::set_num_threads(a.threads);
  torch::NoGradGuard no_grad;

  Inputs in = read_inputs(a.inputs);
  Weights w = read_weights(a.checkpoint, a.ema);
  RecipeSpec recipe = resolve_recipe(a, w);
  if (in.cond.token_mask.defined() && !w.recipe) recipe.conditioning.mask_padding = true;
  if (recipe.conditioning.mask_padding && in.text && !in.cond.token_mask.defined())
    throw DataError(a.inputs +
                    ": the bundle's recipe masks caption padding (conditioning.mask_padding) but the "
                    "inputs have no 'ctx_mask'");
  const bool with_controls = recipe.conditioning.controls != ControlMode::None;
  if (with_controls && !in.cond.controls.defined())
    throw DataError(a.inputs + ": the recipe conditions on controls (" + choice_name(recipe.conditioning.controls) +
                    ") but the inputs have no 'controls' [N, 8]");
  if (!with_controls && in.cond.controls.defined())
    throw DataError(a.inputs +
                    ": the inputs have 'controls' but the recipe has none (pass --controls sdxl or proposed)");
  const std::string task = in.text ? "text" : "class";
  if (!family_supports_task(recipe.family, task))
    throw SpecError("recipe", "recipe '" + recipe.family + "' does not support the " + task + " task (inputs " +
                                  (in.text ? "'ctx'/'pooled'" : "'y'") + ")");

  models::ModelGeometry g{in.x.size(1), in.x.size(2), in.x.size(3), 0};
  if (in.text) {
    g.text_channels = in.cond.tokens.defined() ? in.cond.tokens.size(2) : in.cond.pooled.size(1);
    g.text_tokens = in.cond.tokens.defined() ? in.cond.tokens.size(1) : 0;
    if (in.cond.tokens.defined() && in.cond.pooled.defined() && in.cond.pooled.size(1) != g.text_channels)
      throw DataError(a.inputs + ": 'pooled' has width " + std::to_string(in.cond.pooled.size(1)) + " but 'ctx' has " +
                      std::to_string(g.text_channels));
  } else if (a.classes > 0) {
    g.num_classes = a.classes;
  } else {
    g.num_classes = 1;
    for (const char* key : kLabelTableKeys)
      if (auto it = w.tensors.find(key); it != w.tensors.end() && it->second.dim() == 2 && it->second.size(0) >= 2) {
        g.num_classes = it->second.size(0) - 1;
        break;
      }
  }

  auto gen = at::detail::createCPUGenerator(0);  // the weights replace the initialisation
  std::shared_ptr<models::Denoiser> model = models::build_denoiser(recipe, g, gen);
  if (!in.text && a.classes <= 0) {
    if (auto delta = label_rows_delta(*model, w.tensors); delta && g.num_classes + *delta >= 1) {
      g.num_classes += *delta;
      model.reset();
      model = models::build_denoiser(recipe, g, gen);
    }
  }
  load_into(*model, w, recipe);
  w.tensors.clear();  // the model holds its own copy (XL/2: 2.7 GB each)
  if (!in.text && in.cond.labels.numel() > 0) {
    const int64_t lo = in.cond.labels.min().item<int64_t>(), hi = in.cond.labels.max().item<int64_t>();
    if (lo < 0 || hi > g.num_classes)
      throw DataError(a.inputs + ": labels 'y' must be in [0, " + std::to_string(g.num_classes) + "] (" +
                      std::to_string(g.num_classes) + " = the null class), got [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]");
  }

  model->eval();
  const torch::Tensor out = model->forward(in.x, in.t, in.cond).to(torch::kFloat32).contiguous();
  data::write_npy(a.out, out);
  std::cout << "forward: " << recipe.family << " " << recipe.preset << " ("
            << (in.text ? "text " + std::to_string(g.text_tokens) + "x" + std::to_string(g.text_channels)
                        : std::to_string(g.num_classes) + " classes")
            << ", controls " << choice_name(recipe.conditioning.controls) << ") with " << w.description << ": x "
            << sizes_text(in.x.sizes()) << " -> " << a.out << " " << sizes_text(out.sizes()) << "\n";
  return 0;
}

namespace {

int run_forward(const cli::Args& a) {
  ForwardArgs f;
  f.recipe = a.text("recipe");
  f.preset = a.text("preset");
  f.checkpoint = a.text("checkpoint");
  f.inputs = a.text("inputs");
  f.out = a.text("out");
  f.ema = a.has("ema");
  f.learn_sigma = a.has("learn-sigma");
  if (a.has("controls")) f.controls = a.choice("controls", ControlMode::None);
  f.classes = a.integer("classes", 0);
  f.threads = static_cast<int>(a.integer("threads", 0));
  return cmd_forward(f);
}

}  // namespace

cli::Command forward_command() {
  const cli::Option controls = cli::choice<ControlMode>("controls", "control conditioning of the model (default none)");
  return {"forward",
          {},
          "One forward pass of a recipe on given inputs, for checks against reference implementations.",
          {cli::text("recipe", "FAMILY", "the model family").required(),
           cli::text("preset", "P", "size preset (inferred from DiT-layout weights when omitted)"),
           cli::text("checkpoint", "C", "a bundle directory, a PyTorch .pt or a safetensors file").required(),
           cli::text("inputs", "IN.npz",
                     "x [N,C,H,W], t [N], and y [N] or ctx [N,L,D] (+ ctx_mask, pooled);\n"
                     "optional controls [N,8], noise_level [N]")
               .required(),
           cli::text("out", "OUT.npy", "float32 output").required(),
           cli::flag("ema", "the EMA weights (bundles and .pt training checkpoints)"),
           cli::flag("learn-sigma", "learned-variance output channels"), controls,
           cli::integer("classes", "N", "class task: number of classes (default: inferred from the weights)", 1),
           cli::integer("threads", "T", "intra-op threads (default: LibTorch's)", 1, 1024)},
          run_forward};
}

}  // namespace ldm::worker
