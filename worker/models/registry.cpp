// The recipe registry: family name -> network. One line per recipe file.
#include "shared/core/error.h"
#include "shared/core/presets.h"
#include "worker/models/denoiser.h"
#include "worker/models/dit.h"
#include "worker/models/mdt.h"
#include "worker/models/mmdit.h"
#include "worker/models/pixart.h"
#include "worker/models/unet.h"

namespace ldm::models {

std::optional<ControlEmbedderOptions> control_options(const RecipeSpec& recipe) {
  const ConditioningSpec& c = recipe.conditioning;
  if (c.controls == "none") return std::nullopt;
  ControlEmbedderOptions o;
  o.frequency_size = c.frequency_size;
  o.weighting = c.controls == "proposed" ? "noise_weighted" : "constant";
  auto pick = [&](double a) { return a < 0 ? c.alpha : a; };
  o.alpha_size = pick(c.alpha_size);
  o.alpha_crop = pick(c.alpha_crop);
  o.alpha_flip = pick(c.alpha_flip);
  o.alpha_aspect = pick(c.alpha_aspect);
  o.use_size = c.use_size;
  o.use_crop = c.use_crop;
  o.use_flip = c.use_flip;
  o.use_aspect = c.use_aspect;
  o.dropped = c.dropped_controls;
  return o;
}

std::shared_ptr<Denoiser> build_denoiser(const RecipeSpec& recipe, const ModelGeometry& geometry,
                                         at::Generator& gen) {
  const PresetInfo* preset = find_preset(recipe.family, recipe.preset);
  if (!preset)
    throw SpecError("recipe.preset", "unknown preset '" + recipe.preset + "' for family '" + recipe.family + "'");
  std::shared_ptr<Denoiser> model;
  if (recipe.family == "dit") model = build_dit(*preset, geometry, recipe);
  else if (recipe.family == "unet") model = build_unet(*preset, geometry, recipe);
  else if (recipe.family == "mdt") model = build_mdt(*preset, geometry, recipe);
  else if (recipe.family == "pixart") model = build_pixart(*preset, geometry, recipe);
  else if (recipe.family == "mmdit" || recipe.family == "proposed") model = build_mmdit(*preset, geometry, recipe);
  else throw SpecError("recipe.family", "recipe family '" + recipe.family + "' is not built yet");
  model->initialize(gen);
  return model;
}

}  // namespace ldm::models
