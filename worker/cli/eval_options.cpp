#include "worker/cli/eval_options.h"

#include <cstdlib>
#include <fstream>

namespace ldm::worker {

// One caption per line; empty lines are skipped.
std::vector<std::string> read_captions(const std::string& path) {
  try {
    return eval::read_caption_file(path);
  } catch (const Error& e) {
    throw cli::UsageError("--captions " + std::string(e.what()));
  }
}

// The sampler and guidance options shared by both commands, over the recipe's defaults.
eval::GuidedSampling sampling_from_args(const SamplingModel& m, const cli::Args& a) {
  eval::GuidedSampling s = eval::recipe_sampling(m);
  s.sampler.method = a.choice("sampler", s.sampler.method);
  s.sampler.steps = a.integer("steps", s.sampler.steps);
  s.sampler.spacing = a.choice("spacing", s.sampler.spacing);
  s.sampler.eta = a.number("eta", s.sampler.eta);
  s.cfg = a.number("cfg", s.cfg);
  if (a.has("cfg-control")) {
    if (!m.conditions->uses_controls())
      throw cli::UsageError("--cfg-control: this checkpoint's recipe has no control conditioning");
    s.cfg_control = a.number("cfg-control", s.cfg_control);
  }
  return s;
}

// The sampler, guidance and resource options both commands take.
std::vector<cli::Option> sampling_options() {
  return {cli::choice<Sampler>("sampler", "sampler (default: the recipe's)"),
          cli::integer("steps", "K", "sampling steps (default: the recipe's)", 1, 100000),
          cli::choice<Spacing>("spacing", "timestep spacing (default: the recipe's)"),
          cli::number("eta", "E", "DDIM stochasticity (default: the recipe's)", 0, 1),
          cli::number("cfg", "S_SEM", "semantic guidance scale (default: the recipe's)", 0, 100),
          cli::number("cfg-control", "S_CTRL", "control guidance scale (default: the recipe's)", 0, 100),
          cli::integer("batch", "B", "samples per network batch (default 8)", 1, 100000),
          cli::integer("threads", "T", "intra-op threads per process (default 1)", 1, 1024),
          cli::flag("no-ema", "the raw weights instead of the EMA")};
}

// Started by mpirun (Open MPI), or a PMI/PMIx launcher (srun, MPICH's hydra)?
}  // namespace ldm::worker
