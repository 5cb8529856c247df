// `ldm-worker describe FAMILY`: build a model, count its parameters against its recipe card (and
// the published count), and list the family's recipe defaults with their sources.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "worker/cli/commands.h"
#include "worker/models/denoiser.h"

namespace ldm::worker {
namespace {

int cmd_describe(const cli::Args& a) {
  RecipeSpec recipe;
  recipe.family = a.positional.at(0);
  const RecipeCard* card = nullptr;
  const PresetInfo* found = nullptr;
  try {  // a name typed on the command line: a usage error that lists what exists
    card = &recipe_card(recipe.family);
    recipe.preset = a.text("preset", card->default_preset);
    found = &recipe_preset(recipe.family, recipe.preset);
  } catch (const SpecError& e) {
    throw cli::UsageError(e.detail());
  }
  const PresetInfo& preset = *found;
  if (a.has("learn-sigma") && a.has("no-learn-sigma"))
    throw cli::UsageError("--learn-sigma and --no-learn-sigma contradict each other");
  recipe.learn_sigma = recipe_defaults(recipe.family).learn_sigma;  // the family's published default
  if (a.has("learn-sigma")) recipe.learn_sigma = true;
  if (a.has("no-learn-sigma")) recipe.learn_sigma = false;
  recipe.conditioning.controls = a.choice("controls", ControlMode::None);
  const int64_t resolution = a.integer("resolution", 256);
  const int64_t factor = a.integer("factor", 8);
  const int64_t in_channels = a.integer("in-channels", 4);
  const std::string task = a.text("task", "class");
  const int64_t classes = task == "class" ? a.integer("classes", 1000) : 0;
  const int64_t text_dim = a.integer("text-dim", 4096);
  const int64_t text_tokens = a.integer("text-tokens", 120);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(0);
  models::ModelGeometry g{in_channels, resolution / factor, resolution / factor, classes};
  if (task == "text") {
    g.text_channels = text_dim;
    g.text_tokens = text_tokens;
  }
  auto model = models::build_denoiser(recipe, g, gen);
  int64_t params = 0, trainable = 0;
  for (const auto& p : model->parameters()) {
    params += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  const ModelShape shape = models::model_shape(g, recipe);
  const int64_t analytic = card->param_count(preset, shape);
  const double gflops = card->gflops(preset, shape);
  const std::vector<DefaultOrigin> origins = recipe_default_origins(*card);
  if (a.has("json")) {
    nlohmann::json defaults = nlohmann::json::array();
    for (const DefaultOrigin& o : origins)
      defaults.push_back({{"key", o.key}, {"value", o.value}, {"source", o.source}, {"from_card", o.from_card}});
    nlohmann::json out{{"family", recipe.family},
                       {"preset", recipe.preset},
                       {"preset_source", preset.source},
                       {"task", task},
                       {"controls", choice_name(recipe.conditioning.controls)},
                       {"learn_sigma", recipe.learn_sigma},
                       {"resolution", resolution},
                       {"latent", {in_channels, resolution / factor, resolution / factor}},
                       {"parameters", params},
                       {"trainable", trainable},
                       {"analytic_parameters", analytic},
                       {"gflops", gflops},
                       {"defaults", defaults}};
    if (preset.published_params_m > 0)
      out["published"] = {{"parameters_m", preset.published_params_m},
                          {"rounding_m", preset.published_rounding_m},
                          {"source", preset.published_source}};
    std::cout << out.dump(2) << "\n";
  } else {
    const std::string cond = task == "class"
                                 ? std::to_string(classes) + " classes"
                                 : "captions " + std::to_string(text_tokens) + "x" + std::to_string(text_dim);
    std::printf("%s %s at %lldpx (latent %lldx%lldx%lld, %s, controls %s)\n", recipe.family.c_str(),
                recipe.preset.c_str(), (long long)resolution, (long long)in_channels, (long long)(resolution / factor),
                (long long)(resolution / factor), cond.c_str(), choice_name(recipe.conditioning.controls));
    std::printf("  parameters  %lld (trainable %lld; analytic %lld)\n", (long long)params, (long long)trainable,
                (long long)analytic);
    if (preset.published_params_m > 0)
      std::printf("  published   %gM (%s)\n", preset.published_params_m, preset.published_source.c_str());
    std::printf("  forward     %.4g GFLOPs per sample (multiply-add = 1 FLOP)\n", gflops);
    std::printf("  sizes from  %s\n", preset.source.c_str());
    std::printf("\n%s recipe defaults (a file's keys override them; `ldm-coord show FILE` prints one resolved):\n",
                card->title.c_str());
    std::size_t width = 0;
    for (const DefaultOrigin& o : origins) width = std::max(width, o.key.size() + 2 + o.value.dump().size());
    for (const DefaultOrigin& o : origins) {
      const std::string kv = o.key + "  " + o.value.dump();
      std::printf("  %-*s  %s\n", int(width), kv.c_str(), o.source.c_str());
    }
  }
  if (params != analytic) {
    std::cerr << "ldm-worker: error: built module has " << params << " parameters but the analytic count is "
              << analytic << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

cli::Command describe_command() {
  const cli::Option controls = cli::choice<ControlMode>("controls", "control conditioning of the model (default none)");
  return {"describe",
          {"FAMILY"},
          "Build a model and print its parameter count (checked against the analytic count and, where the preset "
          "has one, the published figure), its forward GFLOPs, and the family's recipe defaults with the paper "
          "section or reference file each comes from.",
          {cli::text("preset", "P", "size preset (default: the family's own, see `ldm-coord presets`)"),
           cli::integer("resolution", "R", "image side in pixels (default 256)", 1, 65536),
           cli::integer("factor", "F", "autoencoder down-sampling factor (default 8)", 1, 64),
           cli::integer("in-channels", "C", "latent channels (default 4)", 1, 4096),
           cli::integer("classes", "N", "class task: number of classes (default 1000)", 1, 1000000),
           cli::choice("task", {"class", "text"}, "class-conditional or text-to-image (default class)"),
           cli::integer("text-dim", "D", "text task: token feature width (default 4096)", 1, 65536),
           cli::integer("text-tokens", "L", "text task: token slots (default 120)", 1, 4096), controls,
           cli::flag("learn-sigma", "learned-variance output channels (default: the family's recipe)"),
           cli::flag("no-learn-sigma", "no learned-variance output channels"), cli::flag("json", "print JSON")},
          cmd_describe};
}

}  // namespace ldm::worker
