// Trainable parameters and their gradients in flat contiguous buffers.
//
// Every trainable parameter becomes a view into one float32 buffer, and its .grad() a view into a
// second one, so the gradient all-reduce is one call, the global norm one reduction, the optimiser
// a handful of vector ops, and a checkpoint a few tensors. Autograd accumulates into the existing
// gradient views in place; zero_grad() zeroes the flat buffer (never resets .grad()).
// One extra float slot after the gradients carries a scalar (the loss) through the same
// all-reduce.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace ldm::worker {

class FlatParams {
 public:
  explicit FlatParams(torch::nn::Module& module);
  int64_t numel() const { return numel_; }
  torch::Tensor& params() { return params_; }  // [numel]
  torch::Tensor grads() { return grad_storage_.narrow(0, 0, numel_); }  // [numel] view
  torch::Tensor& grad_storage() { return grad_storage_; }  // [numel + 1]: grads, then the extra slot
  float& extra_slot() { return grad_storage_.data_ptr<float>()[numel_]; }
  void zero_grad() { grad_storage_.zero_(); }
  const std::vector<std::string>& names() const { return names_; }

 private:
  int64_t numel_ = 0;
  torch::Tensor params_, grad_storage_;
  std::vector<std::string> names_;
};

// Decoupled-weight-decay Adam on flat buffers, with PyTorch's AdamW update and every
// hyper-parameter explicit (LibTorch's C++ AdamW defaults to weight decay 1e-2; DiT uses 0).
class FlatAdamW {
 public:
  struct Options {
    double beta1, beta2, eps, weight_decay;
  };
  FlatAdamW(FlatParams& params, Options options);
  void step(double lr);  // uses params.grads()
  int64_t steps_taken() const { return step_; }
  torch::Tensor& exp_avg() { return m_; }
  torch::Tensor& exp_avg_sq() { return v_; }
  void set_steps_taken(int64_t s) { step_ = s; }

 private:
  FlatParams& p_;
  Options o_;
  torch::Tensor m_, v_;
  int64_t step_ = 0;
};

}  // namespace ldm::worker
