// Trainable parameters, their gradients, optimiser moments and EMA in flat contiguous buffers.
//
// Parameters are grouped into buckets, one per (dtype, weight-decay group); every trainable
// parameter becomes a view into its bucket's parameter buffer and its .grad() a view into the
// bucket's gradient buffer. So the gradient all-reduce is one call per bucket, the global norm a
// reduction per bucket, the optimiser and the EMA a handful of vector ops, and a checkpoint a few
// tensors. Autograd accumulates into the existing gradient views in place (which is also what
// makes gradient accumulation work); zero_grad() zeroes the buffers and never resets .grad().
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace ldm::worker {

struct FlatBucket {
  torch::ScalarType dtype = torch::kFloat32;
  bool decay = true;               // weight decay applies to this bucket
  torch::Tensor params;            // [numel]
  torch::Tensor grads;             // [numel]
  std::vector<std::string> names;  // parameter names, in buffer order
  std::vector<int64_t> offsets;    // start of each parameter in the buffer
  std::vector<std::vector<int64_t>> shapes;
};

// Where one trainable parameter lives: `numel` elements from `offset` of bucket `bucket`'s buffers.
struct FlatSlot {
  std::size_t bucket = 0;
  int64_t offset = 0, numel = 0;
  std::string name;
  torch::Tensor param;  // the module's parameter (a view into the bucket)
};

class FlatParams {
 public:
  // Decay group: tensors with 2+ dimensions (weights, embeddings) decay; 1-D tensors (biases,
  // norm scales) decay only if `decay_1d`. Non-trainable parameters (DiT's pos_embed) stay out.
  FlatParams(torch::nn::Module& module, bool decay_1d);
  std::vector<FlatBucket>& buckets() { return buckets_; }
  const std::vector<FlatBucket>& buckets() const { return buckets_; }
  int64_t numel() const;
  void zero_grad();
  double grad_norm() const;  // L2 over all buckets
  void scale_grads(double factor);
  // Views of `flats` (one tensor per bucket, laid out like the parameters) by parameter name.
  std::map<std::string, torch::Tensor> unflatten(const std::vector<torch::Tensor>& flats) const;
  std::vector<torch::Tensor> param_buffers() const;
  // Every trainable parameter, in the module's registration order (the order of the forward pass,
  // roughly; backward produces gradients in about the reverse order).
  const std::vector<FlatSlot>& slots() const { return slots_; }

 private:
  std::vector<FlatBucket> buckets_;
  std::vector<FlatSlot> slots_;
};

// Decoupled-weight-decay Adam on flat buffers, with PyTorch's AdamW update and every
// hyper-parameter explicit (LibTorch's C++ AdamW defaults to weight decay 1e-2; DiT uses 0).
// An optimiser over the flat buckets. state() names every tensor a checkpoint must keep
// ("bucket<i>.<name>").
class FlatOptimizer {
 public:
  virtual ~FlatOptimizer() = default;
  virtual void step(double lr) = 0;
  virtual std::map<std::string, torch::Tensor> state() = 0;
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t s) { step_ = s; }

 protected:
  int64_t step_ = 0;
};

class FlatAdamW final : public FlatOptimizer {
 public:
  struct Options {
    double beta1, beta2, eps, weight_decay;
    // LibTorch's fused AdamW kernel where it has one for the buffers' device (CUDA, LibTorch >= 2.2);
    // the vector ops below otherwise. Both compute PyTorch's AdamW.
    bool fused = true;
  };
  FlatAdamW(FlatParams& params, Options options);
  bool fused() const;  // whether step() uses the fused kernel
  void step(double lr) override;
  std::map<std::string, torch::Tensor> state() override;  // exp_avg, exp_avg_sq
  std::vector<torch::Tensor>& exp_avg() { return m_; }    // one per bucket
  std::vector<torch::Tensor>& exp_avg_sq() { return v_; }

 private:
  FlatParams& p_;
  Options o_;
  std::vector<torch::Tensor> m_, v_;
  std::vector<torch::Tensor> step_tensors_;  // the fused kernel's step count, one per bucket, on the device
};

// Adan (Xie et al. 2022, "Adaptive Nesterov Momentum"), MDTv2's optimiser. With g_k the gradient
// and g_0 := g_1 (so the first difference is zero):
//   m_k = β1·m + (1−β1)·g_k                     (gradient average)
//   v_k = β2·v + (1−β2)·(g_k − g_{k−1})         (gradient-difference average)
//   n_k = β3·n + (1−β3)·(g_k + β2·(g_k − g_{k−1}))²
//   θ  ← (θ − lr·(m_k/c1 + β2·v_k/c2) / (√(n_k/c3) + ε)) / (1 + lr·λ)
// with c_i = 1 − β_i^k and λ applied to decayed buckets only ("proximal" decay, the reference's
// default). Betas as the Adan paper's convention: (0.98, 0.92, 0.99) by default there.
class FlatAdan final : public FlatOptimizer {
 public:
  struct Options {
    double beta1, beta2, beta3, eps, weight_decay;
  };
  FlatAdan(FlatParams& params, Options options);
  void step(double lr) override;
  std::map<std::string, torch::Tensor> state() override;  // exp_avg, exp_avg_diff, exp_avg_sq, prev_grad

 private:
  FlatParams& p_;
  Options o_;
  std::vector<torch::Tensor> m_, v_, n_, prev_;
};

// Exponential moving average of the trainable parameters: ema ← ema + (1 − d)·(θ − ema), one
// lerp_ per bucket. With warm-up the decay at update t (1-based) is min(d, (1 + t)/(10 + t)).
class FlatEma {
 public:
  FlatEma(const FlatParams& params, double decay, bool warmup);
  void update(int64_t step);
  double decay_at(int64_t step) const;
  std::vector<torch::Tensor>& buffers() { return ema_; }
  const std::vector<torch::Tensor>& buffers() const { return ema_; }

 private:
  const FlatParams& p_;
  double decay_;
  bool warmup_;
  std::vector<torch::Tensor> ema_;
};

}  // namespace ldm::worker
