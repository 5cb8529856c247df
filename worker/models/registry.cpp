// The model registry: family name -> builder. Each family's model file registers its own builder
// (LDM_REGISTER_DENOISER); this file only looks them up.
#include <map>
#include <mutex>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "worker/models/denoiser.h"

namespace ldm::models {

std::optional<ControlEmbedderOptions> control_options(const RecipeSpec& recipe) {
  const ConditioningSpec& c = recipe.conditioning;
  if (c.controls == ControlMode::None) return std::nullopt;
  ControlEmbedderOptions o;
  o.frequency_size = c.frequency_size;
  o.weighting = c.controls == ControlMode::Proposed ? "noise_weighted" : "constant";
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

namespace {

struct Builders {
  std::mutex mutex;
  std::map<std::string, DenoiserBuilder> by_family;
};

Builders& builders() {
  static Builders b;
  return b;
}

}  // namespace

bool register_denoiser(const std::string& family, DenoiserBuilder builder) {
  Builders& b = builders();
  std::lock_guard<std::mutex> lock(b.mutex);
  if (!b.by_family.emplace(family, std::move(builder)).second)
    throw Error("a model builder for recipe family '" + family + "' is registered twice");
  return true;
}

bool has_denoiser(const std::string& family) {
  Builders& b = builders();
  std::lock_guard<std::mutex> lock(b.mutex);
  return b.by_family.count(family) > 0;
}

std::shared_ptr<Denoiser> build_denoiser(const RecipeSpec& recipe, const ModelGeometry& geometry, at::Generator& gen) {
  recipe_card(recipe.family);  // an unknown family is a SpecError listing the known ones
  const PresetInfo& preset = recipe_preset(recipe.family, recipe.preset);
  DenoiserBuilder build;
  {
    Builders& b = builders();
    std::lock_guard<std::mutex> lock(b.mutex);
    auto it = b.by_family.find(recipe.family);
    if (it == b.by_family.end())
      throw SpecError("recipe.family", "recipe family '" + recipe.family +
                                           "' has a card but no model builder in this ldm-worker (its model file "
                                           "registers one with LDM_REGISTER_DENOISER)");
    build = it->second;
  }
  std::shared_ptr<Denoiser> model = build(preset, geometry, recipe);
  model->initialize(gen);
  return model;
}

}  // namespace ldm::models
