#include "worker/diffusion/process.h"

#include <ATen/ATen.h>

#include <cmath>

#include "shared/core/error.h"

namespace ldm::diffusion {

double shift_time(double t, double s) { return s * t / (1.0 + (s - 1.0) * t); }
double unshift_time(double t_shifted, double s) { return t_shifted / (s - (s - 1.0) * t_shifted); }
at::Tensor shift_time(const at::Tensor& t, double s) { return s * t / (1.0 + (s - 1.0) * t); }
at::Tensor unshift_time(const at::Tensor& t_shifted, double s) { return t_shifted / (s - (s - 1.0) * t_shifted); }

at::Tensor NoiseProcess::alpha(const at::Tensor& t) const {
  return alpha_sigma64(t.to(at::kDouble)).first.to(t.scalar_type());
}
at::Tensor NoiseProcess::sigma(const at::Tensor& t) const {
  return alpha_sigma64(t.to(at::kDouble)).second.to(t.scalar_type());
}
at::Tensor NoiseProcess::log_snr(const at::Tensor& t) const { return log_snr64(t.to(at::kDouble)).to(t.scalar_type()); }
double NoiseProcess::alpha(double t) const { return alpha_sigma64(at::full({1}, t, at::kDouble)).first.item<double>(); }
double NoiseProcess::sigma(double t) const {
  return alpha_sigma64(at::full({1}, t, at::kDouble)).second.item<double>();
}
double NoiseProcess::log_snr(double t) const { return log_snr64(at::full({1}, t, at::kDouble)).item<double>(); }

// Named (not anonymous) so unity builds cannot merge these helpers with another file's.
namespace process_detail {

// Discrete VP: a float64 table of λ_i = log(ᾱ_i / (1 − ᾱ_i)), interpolated linearly in i = t·(T−1).
class DiscreteVpProcess final : public NoiseProcess {
 public:
  DiscreteVpProcess(const ProcessOptions& o, const at::Tensor& betas) : NoiseProcess(o) {
    auto log_ac = at::cumsum(at::log1p(-betas), 0);         // [T] log ᾱ_i
    log_snr_table_ = log_ac - at::log(-at::expm1(log_ac));  // [T] log ᾱ − log(1 − ᾱ)
  }
  bool is_discrete() const override { return true; }
  int64_t timesteps() const override { return log_snr_table_.size(0); }

  at::Tensor model_time(const at::Tensor& t) const override {
    auto u = t.to(at::kDouble) * double(timesteps() - 1);  // [N]
    auto r = at::round(u);
    return at::where((u - r).abs() < 1e-6, r, u);
  }
  at::Tensor sample_training_t(int64_t n, at::Generator& gen) const override {
    auto i = at::randint(timesteps(), {n}, gen, at::TensorOptions().dtype(at::kLong).device(gen.device()));
    return i.to(at::kDouble) / double(timesteps() - 1);  // [n]
  }

 protected:
  at::Tensor log_snr64(const at::Tensor& t) const override {
    const int64_t T = timesteps();
    auto table = log_snr_table_.to(t.device());
    auto u = (t * double(T - 1)).clamp(0.0, double(T - 1));  // [N] fractional index
    auto i0 = at::floor(u).clamp(0.0, double(T - 2));        // [N] left neighbour
    auto frac = u - i0;                                      // [N] in [0, 1]
    auto idx = i0.to(at::kLong);
    auto lam = table.index_select(0, idx) * (1.0 - frac) + table.index_select(0, idx + 1) * frac;
    return lam - 2.0 * std::log(options().shift);
  }
  std::pair<at::Tensor, at::Tensor> alpha_sigma64(const at::Tensor& t) const override {
    auto lam = log_snr64(t);
    return {at::sigmoid(lam).sqrt(), at::sigmoid(-lam).sqrt()};
  }

 private:
  at::Tensor log_snr_table_;  // [T] float64, CPU, unshifted
};

// Rectified flow: α = 1 − t_s, σ = t_s with t_s = shift_time(t, s).
class FlowProcess final : public NoiseProcess {
 public:
  explicit FlowProcess(const ProcessOptions& o) : NoiseProcess(o) {}
  bool is_discrete() const override { return false; }
  int64_t timesteps() const override { return 0; }

  at::Tensor model_time(const at::Tensor& t) const override { return t.to(at::kDouble) * 1000.0; }
  at::Tensor sample_training_t(int64_t n, at::Generator& gen) const override {
    auto opts = at::TensorOptions().dtype(at::kDouble).device(gen.device());
    if (options().t_sampling == TimeSampling::LogitNormal)
      return at::sigmoid(options().logit_mean + options().logit_std * at::randn({n}, gen, opts));  // [n]
    return at::rand({n}, gen, opts);                                                               // [n] in [0, 1)
  }

 protected:
  at::Tensor log_snr64(const at::Tensor& t) const override {
    auto ts = shift_time(t, options().shift);
    return 2.0 * (at::log1p(-ts) - at::log(ts));
  }
  std::pair<at::Tensor, at::Tensor> alpha_sigma64(const at::Tensor& t) const override {
    auto ts = shift_time(t, options().shift);
    return {1.0 - ts, ts};
  }
};

at::Tensor linear_betas(const ProcessOptions& o) {
  return at::linspace(o.beta_start, o.beta_end, o.timesteps, at::kDouble);  // [T], as DiT
}

// LDM's "linear" schedule (ldm/modules/diffusionmodules/util.py make_beta_schedule): linear in
// sqrt(beta), squared, in float64.
at::Tensor scaled_linear_betas(const ProcessOptions& o) {
  return at::linspace(std::sqrt(o.beta_start), std::sqrt(o.beta_end), o.timesteps, at::kDouble).square();  // [T]
}

// Nichol & Dhariwal: ᾱ(u) = cos²((u + s)/(1 + s)·π/2), β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999).
at::Tensor cosine_betas(int64_t T) {
  auto alpha_bar = [](double u) {
    double c = std::cos((u + 0.008) / 1.008 * 3.14159265358979323846 / 2.0);
    return c * c;
  };
  auto betas = at::empty({T}, at::kDouble);  // [T]
  auto acc = betas.accessor<double, 1>();
  for (int64_t i = 0; i < T; ++i)
    acc[i] = std::min(1.0 - alpha_bar(double(i + 1) / T) / alpha_bar(double(i) / T), 0.999);
  return betas;
}

void validate(const ProcessOptions& o) {
  const std::string key = "recipe.diffusion.";
  if (!(o.shift > 0.0) || !std::isfinite(o.shift))
    throw SpecError(key + "shift", "the resolution shift must be a positive number");
  if (o.kind == ProcessKind::Flow) {
    if (!(o.logit_std > 0.0)) throw SpecError(key + "logit_std", "must be positive");
    return;
  }
  if (o.timesteps < 2) throw SpecError(key + "timesteps", "a discrete process needs at least 2 timesteps");
  if (o.t_sampling != TimeSampling::Uniform)
    throw SpecError(key + "t_sampling", "discrete VP processes draw timesteps uniformly; '" +
                                            std::string(choice_name(o.t_sampling)) + "' is only for the flow process");
  const bool linear = o.kind == ProcessKind::VpLinear || o.kind == ProcessKind::VpScaledLinear;
  if (linear && !(0.0 < o.beta_start && o.beta_start <= o.beta_end && o.beta_end < 1.0))
    throw SpecError(key + "beta_start", "linear betas need 0 < beta_start <= beta_end < 1");
}

}  // namespace process_detail

std::unique_ptr<NoiseProcess> NoiseProcess::create(const ProcessOptions& o) {
  using namespace process_detail;
  validate(o);
  switch (o.kind) {
    case ProcessKind::VpLinear:
      return std::make_unique<DiscreteVpProcess>(o, linear_betas(o));
    case ProcessKind::VpScaledLinear:
      return std::make_unique<DiscreteVpProcess>(o, scaled_linear_betas(o));
    case ProcessKind::VpCosine:
      return std::make_unique<DiscreteVpProcess>(o, cosine_betas(o.timesteps));
    case ProcessKind::Flow:
      break;
  }
  return std::make_unique<FlowProcess>(o);
}

}  // namespace ldm::diffusion
