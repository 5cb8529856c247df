// Maps the experiment spec onto the diffusion library's options (the library itself takes plain
// structs and knows nothing of specs), so the trainer and the sampler build identical processes.
#pragma once

#include <memory>

#include "shared/core/spec.h"
#include "worker/diffusion/loss.h"
#include "worker/diffusion/process.h"
#include "worker/diffusion/sampler.h"

namespace ldm::worker {

// The stage's process, with its resolution shift (resolution_shift(spec, stage)).
diffusion::ProcessOptions process_options(const ExperimentSpec& spec, const StageSpec& stage);
std::unique_ptr<diffusion::NoiseProcess> make_process(const ExperimentSpec& spec, const StageSpec& stage);
diffusion::LossOptions loss_options(const RecipeSpec& recipe);
diffusion::SamplerOptions sampler_options(const SamplerSpec& sampler);

}  // namespace ldm::worker
