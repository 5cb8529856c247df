// Recipe cards: everything the system knows about a model family without building it. One card
// per family (shared/core/recipes/<family>.cpp): its size presets, analytic parameter counts and
// GFLOPs, the recipe defaults of the family's own paper (with their sources), the tasks it trains
// on and what it can do. The built-in cards are listed in one table (recipes/registry.cpp); tests
// may register more. LibTorch-free: the coordinator validates and describes experiments from the
// cards, and the worker checks each built module against them (`ldm-worker describe`). The
// network itself is built by the family's model file (worker/models/<family>.cpp), which
// registers its builder under the card's name.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/core/spec.h"

namespace ldm {

struct PresetInfo {
  std::string family;  // the card's name: "unet", "dit", ...
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
  // A published parameter count of this preset, in millions, as the source rounds it (0: none);
  // checked against the analytic count at `published_shape` (tests/shared/core/recipes/).
  double published_params_m = 0;
  double published_rounding_m = 0;  // half the last published digit: 675M -> 0.5
  std::string published_source;     // "DiT paper, Table 4 (675M)"
};

// Control-metadata embedder sizes (see worker/models/conditioning.h).
struct ControlShape {
  bool enabled = false;
  bool size = true, crop = true, flip = true, aspect = true;  // groups conditioned on
  int frequency_size = 256;                                   // Fourier features per scalar
  bool learned_null = false;                                  // a learned null vector per group
};

// One setting of a family's published training recipe, and where it comes from.
struct RecipeDefault {
  // A key path of an experiment file: "recipe.optimizer.weight_decay" starts the experiment's
  // recipe; "stage.lr" applies to every training stage that does not set the key itself.
  std::string key;
  nlohmann::json value;  // as the file would write it: 0.03, "adan", true
  // The paper section or reference file and key it comes from; "[recon] ..." where the default
  // is ours (say why it differs from the reference).
  std::string source;
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

// What a family's network can do beyond training at one square resolution.
struct RecipeCapabilities {
  bool resolution_change = true;  // weights load at another latent grid (positional embeddings resampled)
  bool buckets = true;            // trains on aspect-ratio buckets (several latent grids in one run)
  bool learned_sigma = true;      // DiT's learned-variance output channels (recipe.learn_sigma)
};

// The latent side a preset needs: a multiple of `multiple` (a patch, or the UNet's down-sampling).
struct LatentGrid {
  std::int64_t multiple = 1;
  std::string why;  // "patch", "2^(UNet levels - 1)": how the error message explains the multiple
};

struct RecipeCard {
  std::string family;          // "dit": the name in experiment files, command lines and the registry
  std::string title;           // "DiT (Peebles & Xie 2023)"
  std::string default_preset;  // what tools use when no preset is given
  std::vector<std::string> tasks = {"class", "text"};  // the recipe x task table's row
  RecipeCapabilities capabilities;
  std::vector<PresetInfo> presets;  // each with `family` set to this card's name

  // Parameter count as the reference implementation's `sum(p.numel() for p in parameters())`, and
  // forward GFLOPs per sample (one multiply-add = one FLOP, as the DiT paper counts).
  std::function<std::int64_t(const PresetInfo&, const ModelShape&)> param_count;
  std::function<double(const PresetInfo&, const ModelShape&)> gflops;
  // The latent-side multiple a preset needs.
  std::function<LatentGrid(const PresetInfo&)> latent_grid;
  // The SIZE column of `ldm-coord presets`: "d28 w1152 h16 p2".
  std::function<std::string(const PresetInfo&)> size_text;
  // The family's own recipe (optimiser, learning rate, diffusion, EMA, sampler and conditioning
  // defaults of its paper), applied over the spec's struct defaults, in order (a later entry wins).
  // Every value names its source. Checked when the card is registered.
  std::vector<RecipeDefault> defaults;
  // Checks only this family needs (throws SpecError naming the key). Empty: none.
  std::function<void(const ExperimentSpec&)> validate;
  // State-dict prefix of the transformer blocks ("blocks."): `ldm-worker forward` then infers the
  // preset from reference weights (x_embedder.proj.weight and the highest block index). "": not
  // inferable, --preset is required.
  std::string weights_block_prefix;
};

// Every card, built-in ones first in their table's order, then registered ones.
std::vector<const RecipeCard*> recipe_cards();
// The card of `family`, or nullptr.
const RecipeCard* find_recipe_card(const std::string& family);
// The card of `family`; an unknown family is SpecError(key_path, "... known: ...; did you mean").
const RecipeCard& recipe_card(const std::string& family, const std::string& key_path = "recipe.family");
// Adds a card (tests, plug-ins). Throws Error if the name is taken or the card is incomplete.
// Returns true, so a file can register at static-initialisation time.
bool register_recipe_card(RecipeCard card);

// The card's defaults under `table` ("recipe" or "stage") as one nested JSON object
// ({"optimizer": {"eps": 1e-10}}), later entries over earlier ones.
nlohmann::json recipe_defaults_table(const RecipeCard& card, const std::string& table);

// Where one setting of a family's recipe comes from, for `ldm-worker describe`.
struct DefaultOrigin {
  std::string key;       // "recipe.optimizer.eps", "stage.lr"
  nlohmann::json value;  // what a file that does not set the key gets
  std::string source;    // the card's source, or the spec's documentation of the key
  bool from_card = false;
};
// Every key of the recipe table (family and preset aside) and the stage keys the card sets (and
// stage.lr), in declaration order.
std::vector<DefaultOrigin> recipe_default_origins(const RecipeCard& card);

// ---- lookups over the cards -----------------------------------------------------------------------

std::vector<std::string> recipe_families();
bool is_known_family(const std::string& family);
std::vector<std::string> preset_names(const std::string& family);
const PresetInfo* find_preset(const std::string& family, const std::string& name);  // nullptr if none
// The preset of a card; an unknown name is SpecError(key_path, "... known: <the family's presets>").
const PresetInfo& recipe_preset(const std::string& family, const std::string& name,
                                const std::string& key_path = "recipe.preset");
std::vector<std::string> family_tasks(const std::string& family);  // {} for an unknown family
bool family_supports_task(const std::string& family, const std::string& task);

// The preset's card's analytic counts (see RecipeCard).
std::int64_t analytic_param_count(const PresetInfo& preset, const ModelShape& shape);
double analytic_gflops(const PresetInfo& preset, const ModelShape& shape);

// Parameters of the control embedder with output width `dim` (0 when disabled); every family's
// count adds it.
std::int64_t control_embedder_param_count(std::int64_t dim, const ControlShape& controls);

}  // namespace ldm
