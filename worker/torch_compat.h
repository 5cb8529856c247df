// The differences between the LibTorch versions we build against (Debian's CPU LibTorch 1.13 in
// CI, a CUDA LibTorch 2.x on GPU machines), in one place, and the LibTorch-aware helpers every
// torch program shares. Everything version-dependent is decided in torch_compat.cpp; callers never
// test TORCH_VERSION themselves.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace ldm::torch_compat {

// An exception's message for people: LibTorch's errors (c10::Error) carry a C++ backtrace in
// what(); what_without_backtrace() is the message. Pass it to cli::run as the error text.
inline std::string error_text(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

// "1.13.1": the LibTorch this program was built against.
std::string libtorch_version();

// ---- attention ---------------------------------------------------------------------------------

// softmax(q kᵀ / √d + bias) v, per head. q [N, h, T, d], k and v [N, h, L, d] -> [N, h, T, d].
// bias: undefined, or additive scores broadcastable to [N, h, T, L] (cast to the scores' dtype).
// key_keep: undefined, or bool [N, L]: keys that are false are never attended; every row must keep
// at least one key (the callers make sure: a sample without any valid key keeps all of them).
// LibTorch >= 2 runs at::scaled_dot_product_attention (flash / memory-efficient kernels on a GPU)
// unless set_math_attention(true); LibTorch 1.13 and the math setting run explicit_attention().
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias = {},
                     const at::Tensor& key_keep = {});
// The same, always as matmul + softmax + matmul (the reference implementations' form).
at::Tensor explicit_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& bias = {}, const at::Tensor& key_keep = {});
// Whether attention() can use the fused kernel (LibTorch >= 2).
bool has_fused_attention();
// Process-wide: attention() takes the explicit form even where the fused kernel exists
// (`[hardware] deterministic`: flash attention's backward is not deterministic).
void set_math_attention(bool on);
bool math_attention();

// ---- autocast ----------------------------------------------------------------------------------

// bf16 autocast on `device` for the scope's lifetime (this thread), restoring the state before it.
// When it ends it clears autocast's cache of bf16 copies of fp32 weights, so the next forward after
// an optimiser step casts the updated weights (a stale cache would silently train on old ones).
// Not enabled (enabled = false): does nothing.
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType device, bool enabled);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_ = false;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::ScalarType::Undefined;
};
// Autocast off on this thread (CPU and CUDA) for the scope's lifetime, as around an op that must
// run in float32 (the UNet's GroupNorm32: LibTorch 1.13's CPU autocast runs group_norm in bf16 with
// fp32 weights, which it refuses).
class NoAutocast {
 public:
  NoAutocast();
  ~NoAutocast();
  NoAutocast(const NoAutocast&) = delete;
  NoAutocast& operator=(const NoAutocast&) = delete;

 private:
  bool cpu_ = false, cuda_ = false;
};
// Whether bf16 autocast is on for `device` on this thread.
bool autocast_enabled(c10::DeviceType device);

// ---- numerics ----------------------------------------------------------------------------------

// fp32 matrix products and cuDNN convolutions in TF32 on CUDA (no effect on the CPU).
void set_tf32(bool on);
// LibTorch's deterministic algorithms (warn-only where an op has none) and the math attention form.
void set_deterministic(bool on);

// ---- optimiser ---------------------------------------------------------------------------------

// One AdamW step (PyTorch's decoupled form: param *= 1 - lr·wd, then the Adam update with bias
// corrections from `step`, a float32 tensor on the parameter's device holding the 1-based step) in
// LibTorch's fused multi-tensor kernel, where this LibTorch has one for the parameter's device
// (CUDA, LibTorch >= 2.2). Returns false, having done nothing, where it has not.
bool fused_adamw_step(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                      const at::Tensor& step, double lr, double beta1, double beta2, double weight_decay, double eps);
bool has_fused_adamw(const c10::Device& device);

}  // namespace ldm::torch_compat
