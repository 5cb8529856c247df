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

ModelShape model_shape(const ModelGeometry& g, const RecipeSpec& recipe) {
  if (g.latent_h != g.latent_w)
    throw Error("analytic sizes are tabulated for square latents, got " + std::to_string(g.latent_h) + "x" +
                std::to_string(g.latent_w));
  ModelShape s;
  s.in_channels = static_cast<int>(g.in_channels);
  s.latent_size = static_cast<int>(g.latent_h);
  s.num_classes = static_cast<int>(g.num_classes);
  s.learn_sigma = recipe.learn_sigma;
  s.class_dropout = true;  // every family builds the null-class row
  if (g.num_classes <= 0) {
    s.text_channels = static_cast<int>(g.text_channels);
    s.text_tokens = static_cast<int>(g.text_tokens);
  }
  s.controls = control_shape(control_options(recipe));
  return s;
}

ControlShape control_shape(const std::optional<ControlEmbedderOptions>& o) {
  ControlShape c;
  if (!o) return c;
  c.enabled = true;
  c.size = o->use_size;
  c.crop = o->use_crop;
  c.flip = o->use_flip;
  c.aspect = o->use_aspect;
  c.frequency_size = static_cast<int>(o->frequency_size);
  c.learned_null = o->dropped == "learned";
  return c;
}

std::shared_ptr<Denoiser> build_denoiser(const RecipeSpec& recipe, const ModelGeometry& geometry, at::Generator& gen) {
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
