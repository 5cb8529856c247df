// What `ldm-worker generate` and `ldm-worker disentanglement` share: caption files, and the sampler,
// guidance and resource options over a checkpoint's recipe.
#pragma once

#include <string>
#include <vector>

#include "shared/core/cli.h"
#include "worker/diffusion/sampling.h"
#include "worker/eval/generate.h"

namespace ldm::worker {

// One caption per line; empty lines are skipped. A missing or empty file is a cli::UsageError.
std::vector<std::string> read_captions(const std::string& path);

// The recipe's sampling (sampler, steps, spacing, eta, guidance) with the options' overrides.
eval::GuidedSampling sampling_from_args(const SamplingModel& m, const cli::Args& a);

// --sampler --steps --spacing --eta --cfg --cfg-control --batch --threads --no-ema.
std::vector<cli::Option> sampling_options();

}  // namespace ldm::worker
