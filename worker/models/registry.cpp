// The recipe registry: family name -> network. One line per recipe file.
#include "shared/core/error.h"
#include "shared/core/presets.h"
#include "worker/models/denoiser.h"
#include "worker/models/dit.h"

namespace ldm::models {

std::shared_ptr<Denoiser> build_denoiser(const RecipeSpec& recipe, const ModelGeometry& geometry,
                                         at::Generator& gen) {
  const PresetInfo* preset = find_preset(recipe.family, recipe.preset);
  if (!preset)
    throw SpecError("recipe.preset", "unknown preset '" + recipe.preset + "' for family '" + recipe.family + "'");
  std::shared_ptr<Denoiser> model;
  if (recipe.family == "dit") model = std::make_shared<DiT>(dit_config(*preset, geometry, recipe.learn_sigma));
  else throw SpecError("recipe.family", "recipe family '" + recipe.family + "' is not built yet");
  model->initialize(gen);
  return model;
}

}  // namespace ldm::models
