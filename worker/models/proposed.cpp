// The paper's proposed model: the MM-DiT trunk (worker/models/mmdit.h) with the semantic condition
// (label or caption tokens) reaching the network through joint attention only: no pooled vector in
// adaLN, so adaLN carries the timestep and, when configured, the w_alpha(t)-weighted controls.
#include "worker/models/mmdit.h"

namespace ldm::models {

std::shared_ptr<Denoiser> build_proposed(const PresetInfo& p, const ModelGeometry& g, const RecipeSpec& recipe) {
  MMDiTConfig c = mmdit_config(p, g, recipe);
  c.semantic_in_adaln = false;
  return std::make_shared<MMDiT>(c);
}

LDM_REGISTER_DENOISER(proposed, build_proposed);

}  // namespace ldm::models
