#include "worker/diffusion/setup.h"

#include "worker/diffusion/objective.h"

namespace ldm::worker {

diffusion::ProcessOptions process_options(const ExperimentSpec& spec, const StageSpec& stage) {
  const DiffusionSpec& d = spec.recipe.diffusion;
  diffusion::ProcessOptions o;
  o.kind = d.process;
  o.timesteps = d.timesteps;
  o.beta_start = d.beta_start;
  o.beta_end = d.beta_end;
  o.t_sampling = d.t_sampling;
  o.logit_mean = d.logit_mean;
  o.logit_std = d.logit_std;
  o.shift = resolution_shift(spec, stage);
  return o;
}

std::unique_ptr<diffusion::NoiseProcess> make_process(const ExperimentSpec& spec, const StageSpec& stage) {
  return diffusion::NoiseProcess::create(process_options(spec, stage));
}

diffusion::LossOptions loss_options(const RecipeSpec& recipe) {
  diffusion::LossOptions o;
  o.objective = recipe.diffusion.objective;
  o.min_snr_gamma = recipe.diffusion.min_snr_gamma;
  o.learned_variance = recipe.learn_sigma;
  o.vlb_weight = recipe.diffusion.vlb_weight;
  return o;
}

diffusion::SamplerOptions sampler_options(const SamplerSpec& s) {
  diffusion::SamplerOptions o;
  o.method = s.name;
  o.steps = s.steps;
  o.spacing = s.spacing;
  o.eta = s.eta;
  return o;
}

}  // namespace ldm::worker
