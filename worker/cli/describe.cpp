// `ldm-worker describe FAMILY`: build a model, count its parameters against its recipe card.
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <string>

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
  recipe.learn_sigma = a.has("learn-sigma");
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
  if (a.has("json")) {
    std::cout << nlohmann::json{{"family", recipe.family},
                                {"preset", recipe.preset},
                                {"task", task},
                                {"controls", choice_name(recipe.conditioning.controls)},
                                {"resolution", resolution},
                                {"latent", {in_channels, resolution / factor, resolution / factor}},
                                {"parameters", params},
                                {"trainable", trainable},
                                {"analytic_parameters", analytic},
                                {"gflops", gflops}}
                     .dump(2)
              << "\n";
  } else {
    const std::string cond = task == "class"
                                 ? std::to_string(classes) + " classes"
                                 : "captions " + std::to_string(text_tokens) + "x" + std::to_string(text_dim);
    std::printf("%s %s at %lldpx (latent %lldx%lldx%lld, %s, controls %s)\n", recipe.family.c_str(),
                recipe.preset.c_str(), (long long)resolution, (long long)in_channels, (long long)(resolution / factor),
                (long long)(resolution / factor), cond.c_str(), choice_name(recipe.conditioning.controls));
    std::printf("  parameters  %lld (trainable %lld; analytic %lld)\n", (long long)params, (long long)trainable,
                (long long)analytic);
    std::printf("  forward     %.4g GFLOPs per sample (multiply-add = 1 FLOP)\n", gflops);
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
          "Build a model and print its parameter count (checked against the analytic count) and forward GFLOPs.",
          {cli::text("preset", "P", "size preset (default: the family's own, see `ldm-coord presets`)"),
           cli::integer("resolution", "R", "image side in pixels (default 256)", 1, 65536),
           cli::integer("factor", "F", "autoencoder down-sampling factor (default 8)", 1, 64),
           cli::integer("in-channels", "C", "latent channels (default 4)", 1, 4096),
           cli::integer("classes", "N", "class task: number of classes (default 1000)", 1, 1000000),
           cli::choice("task", {"class", "text"}, "class-conditional or text-to-image (default class)"),
           cli::integer("text-dim", "D", "text task: token feature width (default 4096)", 1, 65536),
           cli::integer("text-tokens", "L", "text task: token slots (default 120)", 1, 4096), controls,
           cli::flag("learn-sigma", "learned-variance output channels"), cli::flag("json", "print JSON")},
          cmd_describe};
}

}  // namespace ldm::worker
