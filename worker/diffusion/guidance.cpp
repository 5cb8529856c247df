#include "worker/diffusion/guidance.h"

#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "shared/core/error.h"

namespace ldm::diffusion {

namespace guidance_detail {

// Guided first `channels` channels, followed by the remaining channels of `conditional`.
at::Tensor with_extra_channels(const at::Tensor& guided, const at::Tensor& conditional, int64_t channels) {
  if (conditional.size(1) == channels) return guided;
  return at::cat({guided, conditional.narrow(1, channels, conditional.size(1) - channels)}, 1);  // [B, C', …]
}

void check_blocks(const at::Tensor& out, int64_t blocks, int64_t channels) {
  if (out.size(0) % blocks != 0 || out.size(1) < channels)
    throw Error("guidance expects " + std::to_string(blocks) + " equal batch blocks with at least " +
                std::to_string(channels) + " channels, got batch " + std::to_string(out.size(0)) + " with " +
                std::to_string(out.size(1)) + " channels");
}

// s [B] → [B, 1, …] in `like`'s dtype, to scale rows of `like`.
at::Tensor per_row(const at::Tensor& s, const at::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  if (s.dim() != 1 || s.size(0) != like.size(0))
    throw Error("guidance: expected one scale per row (" + std::to_string(like.size(0)) + "), got " +
                std::to_string(s.numel()));
  return s.to(like.scalar_type()).view(shape);
}

}  // namespace guidance_detail

at::Tensor combine_guidance(const at::Tensor& out3, int64_t channels, double s_sem, double s_ctrl) {
  using namespace guidance_detail;
  check_blocks(out3, 3, channels);
  auto parts = out3.chunk(3, 0);  // 3 × [B, C', …]: (∅,∅), (c,∅), (c,k)
  auto u = parts[0].narrow(1, 0, channels), c = parts[1].narrow(1, 0, channels), k = parts[2].narrow(1, 0, channels);
  return with_extra_channels(u + s_sem * (c - u) + s_ctrl * (k - c), parts[2], channels);
}

at::Tensor combine_guidance(const at::Tensor& out2, int64_t channels, double scale) {
  using namespace guidance_detail;
  check_blocks(out2, 2, channels);
  auto parts = out2.chunk(2, 0);  // 2 × [B, C', …]: ∅, c
  auto u = parts[0].narrow(1, 0, channels), c = parts[1].narrow(1, 0, channels);
  return with_extra_channels(u + scale * (c - u), parts[1], channels);
}

at::Tensor combine_guidance(const at::Tensor& out3, int64_t channels, const at::Tensor& s_sem, double s_ctrl) {
  using namespace guidance_detail;
  check_blocks(out3, 3, channels);
  auto parts = out3.chunk(3, 0);  // 3 × [B, C', …]: (∅,∅), (c,∅), (c,k)
  auto u = parts[0].narrow(1, 0, channels), c = parts[1].narrow(1, 0, channels), k = parts[2].narrow(1, 0, channels);
  return with_extra_channels(u + per_row(s_sem, u) * (c - u) + s_ctrl * (k - c), parts[2], channels);
}

at::Tensor combine_guidance(const at::Tensor& out2, int64_t channels, const at::Tensor& scale) {
  using namespace guidance_detail;
  check_blocks(out2, 2, channels);
  auto parts = out2.chunk(2, 0);  // 2 × [B, C', …]: ∅, c
  auto u = parts[0].narrow(1, 0, channels), c = parts[1].narrow(1, 0, channels);
  return with_extra_channels(u + per_row(scale, u) * (c - u), parts[1], channels);
}

GuidanceScale power_cosine_scale(double scale, double power, int64_t timesteps) {
  if (!(power > 0.0)) throw Error("power-cosine guidance: the power must be positive, got " + std::to_string(power));
  const double to_u = timesteps > 0 ? double(timesteps - 1) / double(timesteps) : 1.0;
  return [scale, power, to_u](const at::Tensor& t) {
    auto u = t.to(at::kDouble) * to_u;                                  // [B]
    auto ramp = (1.0 - at::cos(M_PI * at::pow(1.0 - u, power))) * 0.5;  // [B]: 0 at noise, 1 at the data
    return 1.0 + (scale - 1.0) * ramp;
  };
}

Denoiser guided_denoiser(Denoiser forward, GuidanceScale s_sem, double s_ctrl) {
  return [forward = std::move(forward), s_sem = std::move(s_sem), s_ctrl](const at::Tensor& x, const at::Tensor& t) {
    auto out = forward(at::cat({x, x, x}, 0), at::cat({t, t, t}, 0));  // x [3B, C, …], t [3B]
    return combine_guidance(out, x.size(1), s_sem(t), s_ctrl);
  };
}

Denoiser guided_denoiser(Denoiser forward, GuidanceScale scale) {
  return [forward = std::move(forward), scale = std::move(scale)](const at::Tensor& x, const at::Tensor& t) {
    auto out = forward(at::cat({x, x}, 0), at::cat({t, t}, 0));  // x [2B, C, …], t [2B]
    return combine_guidance(out, x.size(1), scale(t));
  };
}

Denoiser guided_denoiser(Denoiser forward, double s_sem, double s_ctrl) {
  return [forward = std::move(forward), s_sem, s_ctrl](const at::Tensor& x, const at::Tensor& t) {
    auto out = forward(at::cat({x, x, x}, 0), at::cat({t, t, t}, 0));  // x [3B, C, …], t [3B]
    return combine_guidance(out, x.size(1), s_sem, s_ctrl);
  };
}

Denoiser guided_denoiser(Denoiser forward, double scale) {
  return [forward = std::move(forward), scale](const at::Tensor& x, const at::Tensor& t) {
    auto out = forward(at::cat({x, x}, 0), at::cat({t, t}, 0));  // x [2B, C, …], t [2B]
    return combine_guidance(out, x.size(1), scale);
  };
}

}  // namespace ldm::diffusion
