#include "worker/models/conditioning.h"

#include <torch/torch.h>

#include <cmath>

#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/models/blocks.h"

namespace ldm::models {

// Named (not anonymous) so unity builds of ldm_worker_lib cannot collide with other files' helpers.
namespace conditioning_detail {

constexpr double kPi = 3.14159265358979323846;

void check_alpha(double alpha) {
  if (!(alpha >= 0.0) || !std::isfinite(alpha))
    throw SpecError("recipe.conditioning.alpha",
                    "control weight steepness alpha must be a finite number >= 0, got " + std::to_string(alpha));
}

// x [N] -> [N, size]: cos half then sin half (DiT's timestep embedding), built on x's device.
torch::Tensor fourier_features(const torch::Tensor& x, int64_t size, double max_period) {
  const int64_t half = size / 2;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  auto freqs = torch::exp(-std::log(max_period) * torch::arange(half, f32) / double(half));  // [half]
  auto args = x.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);                       // [N, half]
  auto emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);                           // [N, 2·half]
  if (size % 2) emb = torch::cat({emb, torch::zeros_like(emb.narrow(1, 0, 1))}, -1);
  return emb;
}

}  // namespace conditioning_detail

// ---- control weight ------------------------------------------------------------------------------

double control_weight(double t, double alpha) {
  conditioning_detail::check_alpha(alpha);
  t = std::min(1.0, std::max(0.0, t));
  // cos(π/2) is 6e-17, not 0: pin the pure-noise end so the control vanishes exactly there.
  const double base = t >= 1.0 ? 0.0 : std::min(1.0, std::max(0.0, std::cos(conditioning_detail::kPi * t / 2)));
  return std::pow(base, alpha);  // pow(0, 0) = 1: α = 0 is the constant weight
}

torch::Tensor control_weight(const torch::Tensor& t, double alpha) {
  conditioning_detail::check_alpha(alpha);
  const auto out_dtype = t.is_floating_point() ? t.scalar_type() : torch::kFloat32;
  auto td = t.to(torch::kFloat64).clamp(0.0, 1.0);
  auto base = torch::cos(td * (conditioning_detail::kPi / 2)).clamp(0.0, 1.0);
  base = torch::where(td >= 1.0, torch::zeros_like(base), base);
  return torch::pow(base, alpha).to(out_dtype);  // torch::pow(0, 0) = 1 as well
}

// ---- control metadata --------------------------------------------------------------------------------

const char* to_string(ControlGroup g) {
  switch (g) {
    case ControlGroup::Size:
      return "size";
    case ControlGroup::Crop:
      return "crop";
    case ControlGroup::Flip:
      return "flip";
    case ControlGroup::Aspect:
      return "aspect";
  }
  return "?";
}

std::vector<int64_t> control_columns(ControlGroup g) {
  using namespace control_col;
  switch (g) {
    case ControlGroup::Size:
      return {kOrigH, kOrigW};
    case ControlGroup::Crop:
      return {kCropTop, kCropLeft, kCropH, kCropW};
    case ControlGroup::Flip:
      return {kFlip};
    case ControlGroup::Aspect:
      return {kAspect};
  }
  return {};
}

torch::Tensor control_tensor(const std::vector<ControlMeta>& controls) {
  const int64_t n = static_cast<int64_t>(controls.size());
  auto out = torch::zeros({n, kControlColumns}, torch::kFloat32);
  auto a = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& c = controls[static_cast<std::size_t>(i)];
    a[i][control_col::kOrigH] = float(c.orig_h);
    a[i][control_col::kOrigW] = float(c.orig_w);
    a[i][control_col::kCropTop] = float(c.crop_top);
    a[i][control_col::kCropLeft] = float(c.crop_left);
    a[i][control_col::kCropH] = float(c.crop_h);
    a[i][control_col::kCropW] = float(c.crop_w);
    a[i][control_col::kFlip] = c.flip ? 1.0f : 0.0f;
    a[i][control_col::kAspect] = c.orig_h > 0 ? float(double(c.orig_w) / double(c.orig_h)) : 0.0f;
  }
  return out;
}

double ControlEmbedderOptions::alpha(ControlGroup g) const {
  switch (g) {
    case ControlGroup::Size:
      return alpha_size;
    case ControlGroup::Crop:
      return alpha_crop;
    case ControlGroup::Flip:
      return alpha_flip;
    case ControlGroup::Aspect:
      return alpha_aspect;
  }
  return 1.0;
}

bool ControlEmbedderOptions::uses(ControlGroup g) const {
  switch (g) {
    case ControlGroup::Size:
      return use_size;
    case ControlGroup::Crop:
      return use_crop;
    case ControlGroup::Flip:
      return use_flip;
    case ControlGroup::Aspect:
      return use_aspect;
  }
  return false;
}

ControlEmbedderImpl::ControlEmbedderImpl(ControlEmbedderOptions o) : options_(std::move(o)) {
  if (options_.dim <= 0) throw Error("ControlEmbedder: width must be positive, got " + std::to_string(options_.dim));
  if (options_.frequency_size <= 0)
    throw SpecError("recipe.conditioning.frequency_size",
                    "must be positive, got " + std::to_string(options_.frequency_size));
  if (options_.weighting == "noise_weighted") {
    noise_weighted_ = true;
  } else if (options_.weighting == "constant") {
    noise_weighted_ = false;
  } else {
    throw SpecError("recipe.conditioning.controls",
                    "unknown control weighting '" + options_.weighting + "': expected constant or noise_weighted" +
                        did_you_mean(options_.weighting, {"constant", "noise_weighted"}));
  }
  if (options_.dropped == "learned") {
    learned_null_ = true;
  } else if (options_.dropped != "zero") {
    throw SpecError("recipe.conditioning.dropped_controls", "unknown dropped-control embedding '" + options_.dropped +
                                                                "': expected zero or learned" +
                                                                did_you_mean(options_.dropped, {"zero", "learned"}));
  }
  for (int gi = 0; gi < kControlGroups; ++gi) {
    const auto g = static_cast<ControlGroup>(gi);
    conditioning_detail::check_alpha(options_.alpha(g));
    if (!options_.uses(g)) continue;
    const int64_t in = options_.frequency_size * static_cast<int64_t>(control_columns(g).size());
    torch::nn::Sequential mlp(torch::nn::Linear(in, options_.dim), torch::nn::SiLU(),
                              torch::nn::Linear(options_.dim, options_.dim));
    mlps_[gi] = register_module(to_string(g), mlp);
    if (learned_null_)
      nulls_[gi] = register_parameter(std::string(to_string(g)) + "_null", torch::zeros({options_.dim}));
  }
}

void ControlEmbedderImpl::initialize(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (int gi = 0; gi < kControlGroups; ++gi) {
    if (!mlps_[gi]) continue;
    auto& mlp = *mlps_[gi]->as<torch::nn::Sequential>();
    auto* in = mlp[0]->as<torch::nn::Linear>();
    auto* out = mlp[2]->as<torch::nn::Linear>();
    normal_(in->weight, 0.02, gen);
    in->bias.zero_();
    xavier_uniform_(out->weight, gen);
    out->bias.zero_();
    if (nulls_[gi].defined()) normal_(nulls_[gi], 0.02, gen);
  }
}

torch::Tensor ControlEmbedderImpl::forward(const torch::Tensor& controls, const torch::Tensor& t,
                                           const torch::Tensor& drop_mask) {
  TORCH_CHECK(controls.dim() == 2 && controls.size(1) == kControlColumns, "ControlEmbedder: controls must be [N, ",
              kControlColumns, "], got ", controls.sizes());
  const int64_t n = controls.size(0);
  if (noise_weighted_)
    TORCH_CHECK(t.defined() && t.numel() == n, "ControlEmbedder: noise_weighted mode needs t [", n, "]");
  torch::Tensor drop;  // [N, 1] bool
  if (drop_mask.defined()) {
    TORCH_CHECK(drop_mask.numel() == n, "ControlEmbedder: drop_mask must be [", n, "], got ", drop_mask.sizes());
    drop = drop_mask.to(controls.device(), torch::kBool).reshape({n, 1});
  }
  auto dtype = controls.is_floating_point() ? controls.scalar_type() : torch::kFloat32;
  auto out = torch::zeros({n, options_.dim}, controls.options().dtype(dtype));  // [N, D]
  for (int gi = 0; gi < kControlGroups; ++gi) {
    if (!mlps_[gi]) continue;
    const auto g = static_cast<ControlGroup>(gi);
    std::vector<torch::Tensor> feats;
    for (int64_t c : control_columns(g))
      feats.push_back(conditioning_detail::fourier_features(controls.select(1, c), options_.frequency_size,
                                                            options_.max_period));             // [N, F]
    auto e = mlps_[gi]->as<torch::nn::Sequential>()->forward(torch::cat(feats, 1)).to(dtype);  // [N, k·F] -> [N, D]
    if (learned_null_ && drop.defined()) e = torch::where(drop, nulls_[gi].to(dtype).unsqueeze(0), e);
    if (noise_weighted_)
      e = e * control_weight(t.reshape({n}).to(controls.device()), options_.alpha(g)).to(dtype).unsqueeze(1);
    out = out + e;
  }
  // Zero null: exact zeros (and no gradient) for dropped samples.
  if (!learned_null_ && drop.defined()) out = torch::where(drop, torch::zeros_like(out), out);
  return out;
}

// ---- text-token padding -----------------------------------------------------------------------------

torch::Tensor pad_text_tokens(const torch::Tensor& tokens, const torch::Tensor& lengths, TextPadding mode,
                              double noise_scale, at::Generator* gen) {
  TORCH_CHECK(tokens.dim() == 3, "pad_text_tokens: tokens must be [N, L, D], got ", tokens.sizes());
  const int64_t n = tokens.size(0), l = tokens.size(1), d = tokens.size(2);
  TORCH_CHECK(lengths.numel() == n, "pad_text_tokens: lengths must be [", n, "], got ", lengths.sizes());
  auto len = lengths.to(tokens.device(), torch::kInt64).reshape({n, 1});  // [N, 1]
  if (n > 0) {
    const int64_t lo = len.min().item<int64_t>(), hi = len.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi <= l, "pad_text_tokens: lengths must lie in [0, ", l, "], got [", lo, ", ", hi, "]");
  }
  if (!std::isfinite(noise_scale) || noise_scale < 0)
    throw SpecError("recipe.conditioning.text_pad_noise",
                    "must be a finite number >= 0, got " + std::to_string(noise_scale));

  auto j = torch::arange(l, len.options()).unsqueeze(0);  // [1, L]
  auto real = j < len;                                    // [N, L]
  auto empty = (len == 0).expand({n, l});                 // [N, L]: captions with no tokens
  auto real3 = real.unsqueeze(2);                         // [N, L, 1]
  auto zeros = torch::zeros_like(tokens);
  if (mode == TextPadding::Zero) return torch::where(real3, tokens, zeros);

  // Slot j reads token j mod len (len clamped to 1 so empty captions index slot 0, then zeroed).
  auto src = torch::remainder(j, len.clamp_min(1));                         // [N, L]
  auto rep = torch::gather(tokens, 1, src.unsqueeze(2).expand({n, l, d}));  // [N, L, D]
  rep = torch::where(empty.unsqueeze(2), zeros, rep);
  if (mode == TextPadding::Replicate || noise_scale == 0.0) return rep;

  TORCH_CHECK(gen != nullptr, "pad_text_tokens: noisy_replicate with noise_scale ", noise_scale,
              " needs an explicit generator (the global one is never used)");
  auto noise = torch::randn({n, l, d}, *gen, tokens.options().device(gen->device())).to(tokens.device());
  auto padded = (~real) & (~empty);  // [N, L]
  return torch::where(padded.unsqueeze(2), rep + noise_scale * noise, rep);
}

// ---- condition dropout ---------------------------------------------------------------------------------

torch::Tensor drop_mask(int64_t n, double p, at::Generator& gen) {
  if (!(p >= 0.0 && p <= 1.0))
    throw SpecError("recipe.conditioning.semantic_dropout",
                    "dropout probability must lie in [0, 1], got " + std::to_string(p));
  TORCH_CHECK(n >= 0, "drop_mask: negative size ", n);
  auto u = torch::rand({n}, gen, torch::TensorOptions().dtype(torch::kFloat64).device(gen.device()));
  return u < p;  // u ∈ [0, 1): p = 0 never drops, p = 1 always drops
}

}  // namespace ldm::models
