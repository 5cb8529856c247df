// Samplers from x_T at t_max (normally pure noise) to data.
//
// Grid and ending. A run of `steps` = K has grid points t_0 = t_max > t_1 > … > t_{K−1} = t_min and
// evaluates the denoiser at each; step k moves x from t_k to t_{k+1}, and the last step goes from
// t_{K−1} to clean data, i.e. sample() returns x̂0 predicted at t_{K−1} (DiT's ending: its last
// step, at index 0, returns the posterior mean with ᾱ_prev = 1, which is x̂0). First-order methods
// make K evaluations, Heun 2K − 1 (one fewer when a step ends at σ = 0).
//
// Time. The denoiser gets continuous t as [N] float64 on x's device; the caller's lambda converts it
// to what its network sees, e.g. [&](auto& x, auto& t) { return net(x, process.model_time(t)); }.
// It returns the raw network output [N, C or 2C, …]; samplers convert it with to_x0_eps.
//
// Methods (all work for every process unless noted):
//   ddpm     ancestral sampling from p(x_s | x_t) with the posterior mean; variance β̃ (fixed small)
//            or, when the output has 2C channels, the learned range between β̃ and β of the
//            step (β = 1 − ᾱ_t/ᾱ_s, as DiT's respacing). Discrete VP only.
//   ddim     x_s = α_s·x̂0 + √(σ_s² − c²)·ε̂ + c·z, c² = η²·σ_s²·(1 − SNR_t/SNR_s) (η = 1 is the
//            ancestral posterior variance, for any α, σ).
//   euler    Euler on the probability-flow ODE in EDM form, d(x/α)/d(σ/α) = ε̂ (an exact
//            reparametrisation of dx/dt = α'·x̂0 + σ'·ε̂ that does not depend on the schedule's
//            derivatives). Its update is algebraically DDIM with η = 0, and SD3's flow Euler.
//   heun     Heun on the PF-ODE (Karras et al. 2022, Alg. 1): the Euler/DDIM predictor, then a
//            trapezoid corrector in σ/α on ε̂ where the step's mean λ ≥ 0, and in the mirror form
//            d(x/σ)/d(α/σ) = x̂0 where it is < 0 (each variable keeps its integrand smooth at its
//            end of the schedule, so steps from t = 1 with α ≈ 0 stay accurate); no corrector on
//            a step that ends at σ = 0.
//   dpm++2m  DPM-Solver++(2M): multistep, data prediction, in λ = log(α/σ); first order on the
//            first step and where the previous step length is infinite (from α = 0) or the next
//            point has σ = 0.
// Spacings: uniform (linspace t_max → t_min), quadratic (t_min + (t_max − t_min)·u², u linspace
// 1 → 0: denser near the data), and for discrete VP diffusers' index spacings leading
// (i_k = (K−1−k)·⌊T/K⌋) and trailing (i_k = round(T − k·T/K) − 1), at t = i/(T−1); those ignore
// t_max/t_min.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "worker/diffusion/objective.h"
#include "worker/diffusion/process.h"

namespace ldm::diffusion {

using Denoiser = std::function<at::Tensor(const at::Tensor& x, const at::Tensor& t)>;

struct SamplerOptions {
  Sampler method = Sampler::Ddim;      // ddpm | ddim | euler | heun | dpm++2m
  int64_t steps = 50;                  // K ≥ 1 grid points
  Spacing spacing = Spacing::Uniform;  // uniform | quadratic | leading | trailing
  double eta = 0.0;                    // ddim only
  double t_max = 1.0, t_min = 0.0;     // grid ends for uniform / quadratic
};

// Throws SpecError("recipe.sampler.<field>", the spec's keys) for bad steps, η or ends, an index
// spacing or ddpm on a continuous process.
void validate_sampler(const NoiseProcess& process, const SamplerOptions& options);

// The K grid times t_0 > … > t_{K−1} (strictly decreasing).
std::vector<double> sampling_times(const NoiseProcess& process, const SamplerOptions& options);

// x_T [N, C, …] at t_max → x̂0 [N, C, …]. `gen` (on x_T's device) is required by ddpm and by ddim
// with η > 0 (the global default generator is never used); deterministic methods ignore it.
// Throws Error for the eps objective at a point with α = 0 (x̂0 undefined; start at t_max < 1).
at::Tensor sample(const NoiseProcess& process, Objective objective, const Denoiser& denoiser, at::Tensor x_T,
                  const SamplerOptions& options, at::Generator* gen);

}  // namespace ldm::diffusion
