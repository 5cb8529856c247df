// Noise processes over continuous time t ∈ [0, 1] (t = 1 is pure noise):
//   x_t = α(t)·x0 + σ(t)·ε,   SNR(t) = α²/σ²,   λ(t) = log SNR(t).
// Kinds:
//   vp-linear, vp-scaled-linear, vp-cosine
//                         discrete variance-preserving (DDPM linear betas as DiT, float64; LDM's
//                         betas linear in √β; Nichol & Dhariwal's cosine, s = 0.008, betas clipped
//                         at 0.999). Index i ∈ [0, T)
//                         sits at t = i/(T−1); between indices λ is interpolated linearly, so
//                         α = √sigmoid(λ), σ = √sigmoid(−λ). Endpoints: t = 0 is ᾱ_0 (not clean
//                         data), t = 1 is ᾱ_{T−1}. Training draws integer i uniformly.
//   flow                  rectified flow (SD3): α = 1 − t, σ = t; training t uniform or logit-normal.
// Resolution shift s (PAPER.md "Noise-schedule scaling"): every kind divides the SNR by s²; for VP
// λ_s = λ − 2 ln s, for flow t_s = shift_time(t, s) (the same SNR/s²). The shift lives inside
// α/σ/λ, so training and sampling see the same process; s = 1 is the identity.
// Model time (what the timestep embedder sees) is the *unshifted* time: i = t·(T−1) for VP,
// 1000·t for flow; callers that want SD3's shifted convention use 1000·shift_time(t, s).
// Every tensor function takes t [N] (any floating dtype, any device), computes in float64 and
// returns [N] in t's dtype on t's device.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "shared/core/choices.h"

namespace ldm::diffusion {

struct ProcessOptions {
  ProcessKind kind = ProcessKind::VpLinear;         // vp-linear | vp-scaled-linear | vp-cosine | flow
  int64_t timesteps = 1000;                         // VP: number of discrete steps T (ignored by flow)
  double beta_start = 1e-4, beta_end = 0.02;        // vp-linear and vp-scaled-linear only
  TimeSampling t_sampling = TimeSampling::Uniform;  // flow: uniform | logit-normal (VP: uniform only)
  double logit_mean = 0.0, logit_std = 1.0;         // logit-normal: t = sigmoid(N(mean, std²))
  double shift = 1.0;                               // resolution shift s > 0
};

// t_s = s·t / (1 + (s−1)·t) and its inverse t = t_s / (s − (s−1)·t_s); both map [0,1] onto itself.
double shift_time(double t, double s);
double unshift_time(double t_shifted, double s);
at::Tensor shift_time(const at::Tensor& t, double s);
at::Tensor unshift_time(const at::Tensor& t_shifted, double s);

class NoiseProcess {
 public:
  // Throws SpecError("recipe.diffusion.<field>") for a bad option.
  static std::unique_ptr<NoiseProcess> create(const ProcessOptions& options);
  virtual ~NoiseProcess() = default;

  const ProcessOptions& options() const { return options_; }
  // True for the discrete VP kinds: training t lies on the grid i/(T−1), and the DDPM sampler and
  // the learned-variance loss are available. Discrete VP also satisfies α² + σ² = 1.
  virtual bool is_discrete() const = 0;
  // T for discrete kinds (grid t = i/(T−1)); 0 for continuous ones.
  virtual int64_t timesteps() const = 0;

  at::Tensor alpha(const at::Tensor& t) const;    // [N]
  at::Tensor sigma(const at::Tensor& t) const;    // [N]
  at::Tensor log_snr(const at::Tensor& t) const;  // [N], ±inf where σ or α is 0
  // Scalar forms for samplers (float64 on the CPU).
  double alpha(double t) const;
  double sigma(double t) const;
  double log_snr(double t) const;
  // What the network's timestep embedder sees: [N] float64 on t's device (see the file comment).
  // Discrete VP snaps values within 1e-6 of an integer onto it, so grid times give exact indices.
  virtual at::Tensor model_time(const at::Tensor& t) const = 0;
  // Training times: [n] float64 on gen's device. Discrete VP: i/(T−1), i uniform in [0, T).
  virtual at::Tensor sample_training_t(int64_t n, at::Generator& gen) const = 0;

 protected:
  explicit NoiseProcess(ProcessOptions options) : options_(std::move(options)) {}
  // t64 [N] float64 → (α, σ) [N] float64, shift included.
  virtual std::pair<at::Tensor, at::Tensor> alpha_sigma64(const at::Tensor& t64) const = 0;
  virtual at::Tensor log_snr64(const at::Tensor& t64) const = 0;

 private:
  ProcessOptions options_;
};

}  // namespace ldm::diffusion
