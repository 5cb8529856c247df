// Generating images from a checkpoint bundle: rebuild the recipe from the bundle's own resolved
// spec, load its EMA weights (or the raw model weights), sample latents with any sampler and
// classifier-free guidance, decode them through the run's autoencoder, and write a PNG grid.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/tensor/autoencoder.h"
#include "shared/core/spec.h"
#include "worker/diffusion/objective.h"
#include "worker/diffusion/process.h"
#include "worker/diffusion/sampler.h"
#include "worker/models/denoiser.h"
#include "worker/train/condition_builder.h"

namespace ldm::worker {

struct SamplingModel {
  ExperimentSpec spec;
  int stage_index = 0;
  int64_t step = 0;
  bool ema = true;  // which weights were loaded
  std::shared_ptr<models::Denoiser> model;
  std::unique_ptr<diffusion::NoiseProcess> process;
  diffusion::Objective objective = diffusion::Objective::Eps;
  std::shared_ptr<const data::Autoencoder> autoencoder;
  std::shared_ptr<const ConditionBuilder> conditions;
  int64_t latent_channels = 0, latent_side = 0;
  // Where the network runs and in which precision ([hardware] of the experiment, resolved on this
  // machine); sample_from_noise takes and returns host tensors either way.
  torch::Device device = torch::kCPU;
  bool bf16 = false;
};

// `checkpoint` is a bundle directory or a checkpoints directory (its `latest` is used).
// EMA weights by default, as the DiT reference samples. `resolution` 0 samples at the stage's
// resolution; another one builds the model for it and resamples the positional embeddings as
// recipe.pos_embed_resampling says. The noise schedule keeps the trained stage's shift (the
// network was trained with it) unless `shift` > 0 sets another. Every family can change resolution
// (mDT-v2's learned and relative-position tables as resample_learned_pos_embed and
// resample_relative_bias say). `spec` is the stage's view (stage_view) of the bundle's experiment.
SamplingModel load_sampling_model(const std::string& checkpoint, bool use_ema = true, int64_t resolution = 0,
                                  double shift = 0);

struct SampleRequest {
  std::vector<int64_t> labels;        // class task: one per sample; num_classes = unconditional
  std::vector<std::string> captions;  // text task: one per sample
  std::vector<ControlMeta> controls;  // one per sample when the recipe conditions on controls
  double cfg = 1.0;                   // semantic guidance scale; 1 = plain conditional sampling
  double cfg_control = 1.0;           // control guidance scale (recipes with controls); 1 = none
  diffusion::SamplerOptions sampler;
  uint64_t seed = 0;
};

// Latents [N, C, h, w]. Guidance: without controls, one scale (2 branches, skipped at cfg 1);
// with controls, two scales (3 branches (∅,∅), (c,∅), (c,k); skipped at cfg = cfg_control = 1).
// Sample i's starting noise comes from its own generator seeded by
// (seed, i), so a sample does not depend on what else is in the batch.
torch::Tensor sample_latents(const SamplingModel& m, const SampleRequest& request);

// How latents are sampled from given noise: sampler, guidance scales (sample_latents' meaning:
// one scale without controls, two with), and whether every row's controls are dropped.
struct GuidedSampling {
  diffusion::SamplerOptions sampler;
  double cfg = 1.0;
  double cfg_control = 1.0;
  bool drop_controls = false;  // the control-dropped condition for every row (diagnostics)
};

// sample_latents() with the caller's starting noise x_T [N, C, h, w] (instead of noise drawn
// from (seed, i)) and generators: `sampler_gen` for stochastic samplers, `padding_gen` for noisy
// caption padding (both CPU). Returns latents [N, C, h, w]. The guidance branches share one
// encoding of the inputs (one padding-noise draw) and differ only in what is dropped.
torch::Tensor sample_from_noise(const SamplingModel& m, const ConditionInputs& inputs, const torch::Tensor& x_T,
                                const GuidedSampling& sampling, at::Generator& sampler_gen, at::Generator& padding_gen);

// Control metadata from "orig_h=512,orig_w=384,crop_top=0,crop_left=0,crop_h=..,crop_w=..,flip=1"
// (the --controls option of `ldm-worker sample|generate`): unnamed fields are those of an
// uncropped, unflipped square image of side `resolution`. Throws ldm::Error naming the bad item.
ControlMeta parse_control_meta(const std::string& text, int64_t resolution);

// [N, C, h, w] latents -> [N, 3, H, W] images in [-1, 1].
torch::Tensor decode_latents(const SamplingModel& m, const torch::Tensor& latents);

// Images [N, 3, H, W] in [-1, 1] -> a PNG grid with `columns` images per row and 2 px gaps.
void write_image_grid(const torch::Tensor& images, const std::string& path, int64_t columns);

}  // namespace ldm::worker
