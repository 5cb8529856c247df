#include "worker/flat_params.h"

#include <cmath>

namespace ldm::worker {

FlatParams::FlatParams(torch::nn::Module& module) {
  std::vector<torch::Tensor> trainable;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;  // fixed buffers (DiT's pos_embed) stay out
    TORCH_CHECK(item.value().scalar_type() == torch::kFloat32, "flat params: ", item.key(),
                " is not float32 (mixed dtypes come with per-dtype buckets)");
    names_.push_back(item.key());
    trainable.push_back(item.value());
    numel_ += item.value().numel();
  }
  params_ = torch::empty({numel_}, torch::kFloat32);
  grad_storage_ = torch::zeros({numel_ + 1}, torch::kFloat32);
  torch::NoGradGuard no_grad;
  int64_t off = 0;
  for (auto& p : trainable) {
    const int64_t n = p.numel();
    auto view = params_.narrow(0, off, n).view(p.sizes());
    view.copy_(p);
    p.set_data(view);  // the parameter now lives inside the flat buffer
    p.mutable_grad() = grad_storage_.narrow(0, off, n).view(p.sizes());
    off += n;
  }
}

FlatAdamW::FlatAdamW(FlatParams& params, Options options) : p_(params), o_(options) {
  m_ = torch::zeros_like(p_.params());
  v_ = torch::zeros_like(p_.params());
}

void FlatAdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  auto& p = p_.params();
  auto g = p_.grads();
  if (o_.weight_decay != 0) p.mul_(1.0 - lr * o_.weight_decay);
  m_.mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
  v_.mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
  const double bc1 = 1.0 - std::pow(o_.beta1, double(step_));
  const double bc2 = 1.0 - std::pow(o_.beta2, double(step_));
  auto denom = (v_.sqrt() / std::sqrt(bc2)).add_(o_.eps);
  p.addcdiv_(m_, denom, -lr / bc1);
}

}  // namespace ldm::worker
