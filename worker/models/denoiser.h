// What every recipe's network is to the trainer and samplers: a module that predicts from noisy
// latents, timesteps and a condition. Recipes are built from the spec by build_denoiser().
#pragma once

#include <torch/torch.h>

#include <memory>

#include "shared/core/spec.h"

namespace ldm::models {

class Denoiser : public torch::nn::Module {
 public:
  // x [N, C, H, W] noisy latents; t [N] timesteps (float or int); y [N] int64 labels, where the
  // value num_classes means "no label" (classifier-free guidance). Returns [N, C_out, H, W].
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) = 0;
  // (Re)initialises every parameter from `gen` as the recipe's reference does.
  virtual void initialize(at::Generator& gen) = 0;
  virtual int64_t out_channels() const = 0;
};

struct ModelGeometry {
  int64_t in_channels;
  int64_t latent_h, latent_w;
  int64_t num_classes;
};

// Builds the spec's recipe (family + preset) for the given latent geometry, initialised from `gen`.
// Throws SpecError for unknown or unsupported settings.
std::shared_ptr<Denoiser> build_denoiser(const RecipeSpec& recipe, const ModelGeometry& geometry,
                                         at::Generator& gen);

}  // namespace ldm::models
