#include "worker/torch_compat.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

// LibTorch 2.0 brought at::scaled_dot_product_attention; 2.4 made autocast's state per device type
// (the CUDA/CPU-specific functions of 1.13 became deprecated wrappers).
#if TORCH_VERSION_MAJOR >= 2
#define LDM_TORCH_HAS_SDPA 1
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LDM_TORCH_AUTOCAST_BY_DEVICE 1
#endif
// 2.2: at::_fused_adamw_ (the kernel of torch.optim.AdamW(fused=True)) with a plain double lr.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
#define LDM_HAS_FUSED_ADAMW 1
#endif

namespace ldm::torch_compat {

std::string libtorch_version() { return TORCH_VERSION; }

namespace {

std::atomic<bool> g_math_attention{false};

// The key mask as [N, 1, 1, L] (true = attend), checked against k [N, h, L, d].
at::Tensor key_mask(const at::Tensor& key_keep, const at::Tensor& k) {
  const int64_t n = k.size(0), l = k.size(2);
  TORCH_CHECK(key_keep.dim() == 2 && key_keep.size(0) == n && key_keep.size(1) == l, "attention: key mask must be [", n,
              ", ", l, "], got ", key_keep.sizes());
  return key_keep.to(at::kBool).view({n, 1, 1, l});
}

}  // namespace

at::Tensor explicit_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                              const at::Tensor& key_keep) {
  auto scores = at::matmul(q, k.transpose(-2, -1)).mul(1.0 / std::sqrt(double(q.size(-1))));  // [N,h,T,L]
  if (bias.defined()) scores = scores + bias.to(scores.dtype());
  if (key_keep.defined())
    scores = scores.masked_fill(key_mask(key_keep, k).logical_not(), -std::numeric_limits<double>::infinity());
  return at::matmul(scores.softmax(-1), v);  // [N,h,T,d]
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                     const at::Tensor& key_keep) {
#ifdef LDM_TORCH_HAS_SDPA
  if (!g_math_attention.load(std::memory_order_relaxed)) {
    c10::optional<at::Tensor> mask;
    if (bias.defined()) {
      // A float mask is added to the scores; it must have the queries' dtype (bf16 under autocast).
      auto m = bias.to(q.scalar_type());
      if (key_keep.defined())
        m = m.masked_fill(key_mask(key_keep, k).logical_not(), -std::numeric_limits<double>::infinity());
      mask = m;
    } else if (key_keep.defined()) {
      mask = key_mask(key_keep, k);  // a bool mask: true takes part
    }
    return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false);
  }
#endif
  return explicit_attention(q, k, v, bias, key_keep);
}

bool has_fused_attention() {
#ifdef LDM_TORCH_HAS_SDPA
  return true;
#else
  return false;
#endif
}

void set_math_attention(bool on) { g_math_attention.store(on); }
bool math_attention() { return g_math_attention.load(); }

// ---- autocast ----------------------------------------------------------------------------------

namespace {

void check_autocast_device(c10::DeviceType device) {
  TORCH_CHECK(device == c10::DeviceType::CPU || device == c10::DeviceType::CUDA,
              "autocast: only the CPU and CUDA are supported, not ", device);
}

c10::ScalarType autocast_dtype(c10::DeviceType device) {
#ifdef LDM_TORCH_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                         : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast(c10::DeviceType device, bool enabled, c10::ScalarType dtype) {
#ifdef LDM_TORCH_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(device, dtype);
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

}  // namespace

bool autocast_enabled(c10::DeviceType device) {
  check_autocast_device(device);
#ifdef LDM_TORCH_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

AutocastScope::AutocastScope(c10::DeviceType device, bool enabled) : device_(device), enabled_(enabled) {
  if (!enabled_) return;
  check_autocast_device(device);
  was_enabled_ = autocast_enabled(device);
  was_dtype_ = autocast_dtype(device);
  set_autocast(device, true, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  // As Python's torch.autocast: the outermost scope's end empties the weight cache.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_, was_enabled_, was_dtype_);
}

NoAutocast::NoAutocast()
    : cpu_(autocast_enabled(c10::DeviceType::CPU)), cuda_(autocast_enabled(c10::DeviceType::CUDA)) {
  if (cpu_) set_autocast(c10::DeviceType::CPU, false, autocast_dtype(c10::DeviceType::CPU));
  if (cuda_) set_autocast(c10::DeviceType::CUDA, false, autocast_dtype(c10::DeviceType::CUDA));
}

NoAutocast::~NoAutocast() {
  if (cpu_) set_autocast(c10::DeviceType::CPU, true, autocast_dtype(c10::DeviceType::CPU));
  if (cuda_) set_autocast(c10::DeviceType::CUDA, true, autocast_dtype(c10::DeviceType::CUDA));
}

// ---- numerics ----------------------------------------------------------------------------------

void set_tf32(bool on) {
  at::globalContext().setFloat32MatmulPrecision(on ? "high" : "highest");
  at::globalContext().setAllowTF32CuDNN(on);
}

void set_deterministic(bool on) {
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/true);
  at::globalContext().setDeterministicCuDNN(on);
  set_math_attention(on);
}

// ---- optimiser ---------------------------------------------------------------------------------

bool has_fused_adamw(const c10::Device& device) {
#ifdef LDM_HAS_FUSED_ADAMW
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

bool fused_adamw_step(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                      const at::Tensor& step, double lr, double beta1, double beta2, double weight_decay, double eps) {
  if (!has_fused_adamw(param.device())) return false;
#ifdef LDM_HAS_FUSED_ADAMW
  const std::vector<at::Tensor> p{param}, g{grad}, m{exp_avg}, v{exp_avg_sq}, s{step}, none;
  at::_fused_adamw_(p, g, m, v, none, s, lr, beta1, beta2, weight_decay, eps, /*amsgrad=*/false,
                    /*maximize=*/false);
#endif
  return true;
}

}  // namespace ldm::torch_compat
