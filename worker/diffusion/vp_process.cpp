#include "worker/diffusion/vp_process.h"

#include "shared/core/error.h"

namespace ldm::diffusion {

VpProcess::VpProcess(const DiffusionSpec& spec) : timesteps_(spec.timesteps) {
  if (spec.process != "vp-linear")
    throw SpecError("recipe.diffusion.process", "process '" + spec.process + "' is not supported yet");
  // Linear betas in float64, as DiT's get_beta_schedule("linear").
  auto betas = torch::linspace(spec.beta_start, spec.beta_end, timesteps_, torch::kFloat64);
  alphas_cumprod_ = torch::cumprod(1.0 - betas, 0);
  sqrt_ac_ = alphas_cumprod_.sqrt().to(torch::kFloat32);
  sqrt_one_minus_ac_ = (1.0 - alphas_cumprod_).sqrt().to(torch::kFloat32);
}

torch::Tensor VpProcess::q_sample(const torch::Tensor& x0, const torch::Tensor& t,
                                  const torch::Tensor& noise) const {
  auto a = sqrt_ac_.index_select(0, t).view({-1, 1, 1, 1});            // [N,1,1,1]
  auto s = sqrt_one_minus_ac_.index_select(0, t).view({-1, 1, 1, 1});  // [N,1,1,1]
  return a * x0 + s * noise;
}

torch::Tensor eps_loss(const torch::Tensor& prediction, const torch::Tensor& noise) {
  return torch::mse_loss(prediction.narrow(1, 0, noise.size(1)), noise);
}

}  // namespace ldm::diffusion
