#include "worker/optim/flat_params.h"

#include "worker/torch_compat.h"

#include <algorithm>
#include <cmath>

namespace ldm::worker {

FlatParams::FlatParams(torch::nn::Module& module, bool decay_1d) {
  struct Entry {
    std::string name;
    torch::Tensor param;
  };
  std::vector<std::vector<Entry>> groups;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const auto& p = item.value();
    if (!p.requires_grad()) continue;
    const bool decay = p.dim() >= 2 || decay_1d;
    auto it = std::find_if(buckets_.begin(), buckets_.end(),
                           [&](const FlatBucket& b) { return b.dtype == p.scalar_type() && b.decay == decay; });
    if (it == buckets_.end()) {
      FlatBucket b;
      b.dtype = p.scalar_type();
      b.decay = decay;
      buckets_.push_back(b);
      groups.emplace_back();
      it = buckets_.end() - 1;
    }
    const auto bucket = static_cast<std::size_t>(it - buckets_.begin());
    FlatSlot slot;
    slot.bucket = bucket;
    slot.offset = static_cast<int64_t>(groups[bucket].size());  // the index in its group, until placed below
    slot.name = item.key();
    slots_.push_back(slot);
    groups[bucket].push_back({item.key(), p});
  }
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    FlatBucket& b = buckets_[i];
    int64_t total = 0;
    for (const auto& e : groups[i]) total += e.param.numel();
    // On the parameters' device (a module moved to a GPU before this keeps its buffers there).
    const auto options = torch::TensorOptions().dtype(b.dtype).device(groups[i].front().param.device());
    b.params = torch::empty({total}, options);
    b.grads = torch::zeros({total}, options);
    int64_t off = 0;
    for (auto& e : groups[i]) {
      const int64_t n = e.param.numel();
      auto view = b.params.narrow(0, off, n).view(e.param.sizes());
      view.copy_(e.param);
      e.param.set_data(view);  // the parameter now lives inside the flat buffer
      e.param.mutable_grad() = b.grads.narrow(0, off, n).view(e.param.sizes());
      b.names.push_back(e.name);
      b.offsets.push_back(off);
      b.shapes.push_back(e.param.sizes().vec());
      off += n;
    }
  }
  for (FlatSlot& slot : slots_) {
    const FlatBucket& b = buckets_[slot.bucket];
    const auto k = static_cast<std::size_t>(slot.offset);
    slot.param = groups[slot.bucket][k].param;
    slot.offset = b.offsets[k];
    slot.numel = slot.param.numel();
  }
}

int64_t FlatParams::numel() const {
  int64_t n = 0;
  for (const auto& b : buckets_) n += b.params.numel();
  return n;
}

void FlatParams::zero_grad() {
  for (auto& b : buckets_) b.grads.zero_();
}

double FlatParams::grad_norm() const {
  double sq = 0;
  for (const auto& b : buckets_) sq += b.grads.to(torch::kFloat64).pow(2).sum().item<double>();
  return std::sqrt(sq);
}

void FlatParams::scale_grads(double factor) {
  for (auto& b : buckets_) b.grads.mul_(factor);
}

std::map<std::string, torch::Tensor> FlatParams::unflatten(const std::vector<torch::Tensor>& flats) const {
  std::map<std::string, torch::Tensor> out;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    const auto& b = buckets_[i];
    for (std::size_t k = 0; k < b.names.size(); ++k) {
      int64_t n = 1;
      for (auto d : b.shapes[k]) n *= d;
      out[b.names[k]] = flats[i].narrow(0, b.offsets[k], n).view(b.shapes[k]);
    }
  }
  return out;
}

std::vector<torch::Tensor> FlatParams::param_buffers() const {
  std::vector<torch::Tensor> out;
  for (const auto& b : buckets_) out.push_back(b.params);
  return out;
}

namespace {
// One zero tensor per bucket, shaped like its parameters (an optimiser moment).
std::vector<torch::Tensor> zero_moment(const FlatParams& params) {
  std::vector<torch::Tensor> out;
  for (const auto& b : params.buckets()) out.push_back(torch::zeros_like(b.params));
  return out;
}
}  // namespace

FlatAdamW::FlatAdamW(FlatParams& params, Options options)
    : p_(params), o_(options), m_(zero_moment(params)), v_(zero_moment(params)) {}

bool FlatAdamW::fused() const {
  return o_.fused && !p_.buckets().empty() && torch_compat::has_fused_adamw(p_.buckets().front().params.device());
}

void FlatAdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  if (fused()) {
    auto& buckets = p_.buckets();
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      if (step_tensors_.size() <= i)
        step_tensors_.push_back(torch::zeros({1}, buckets[i].params.options().dtype(torch::kFloat32)));
      step_tensors_[i].fill_(double(step_));
      torch_compat::fused_adamw_step(buckets[i].params, buckets[i].grads, m_[i], v_[i], step_tensors_[i], lr, o_.beta1,
                                     o_.beta2, buckets[i].decay ? o_.weight_decay : 0.0, o_.eps);
    }
    return;
  }
  const double bc1 = 1.0 - std::pow(o_.beta1, double(step_));
  const double bc2 = 1.0 - std::pow(o_.beta2, double(step_));
  auto& buckets = p_.buckets();
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    auto& p = buckets[i].params;
    const auto& g = buckets[i].grads;
    if (buckets[i].decay && o_.weight_decay != 0) p.mul_(1.0 - lr * o_.weight_decay);
    m_[i].mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
    auto denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(o_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

std::map<std::string, torch::Tensor> FlatAdamW::state() {
  std::map<std::string, torch::Tensor> out;
  for (std::size_t i = 0; i < m_.size(); ++i) {
    out["bucket" + std::to_string(i) + ".exp_avg"] = m_[i];
    out["bucket" + std::to_string(i) + ".exp_avg_sq"] = v_[i];
  }
  return out;
}

FlatAdan::FlatAdan(FlatParams& params, Options options)
    : p_(params),
      o_(options),
      m_(zero_moment(params)),
      v_(zero_moment(params)),
      n_(zero_moment(params)),
      prev_(zero_moment(params)) {}

void FlatAdan::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double c1 = 1.0 - std::pow(o_.beta1, double(step_));
  const double c2 = 1.0 - std::pow(o_.beta2, double(step_));
  const double c3 = 1.0 - std::pow(o_.beta3, double(step_));
  auto& buckets = p_.buckets();
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    auto& p = buckets[i].params;
    const auto& g = buckets[i].grads;
    if (step_ == 1) prev_[i].copy_(g);  // no difference at the first step
    auto diff = g - prev_[i];
    m_[i].mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
    v_[i].mul_(o_.beta2).add_(diff, 1.0 - o_.beta2);
    auto nesterov = g + o_.beta2 * diff;
    n_[i].mul_(o_.beta3).addcmul_(nesterov, nesterov, 1.0 - o_.beta3);
    auto denom = (n_[i] / c3).sqrt_().add_(o_.eps);
    p.addcdiv_(m_[i], denom, -lr / c1);
    p.addcdiv_(v_[i], denom, -lr * o_.beta2 / c2);
    if (buckets[i].decay && o_.weight_decay != 0) p.div_(1.0 + lr * o_.weight_decay);
    prev_[i].copy_(g);
  }
}

std::map<std::string, torch::Tensor> FlatAdan::state() {
  std::map<std::string, torch::Tensor> out;
  for (std::size_t i = 0; i < m_.size(); ++i) {
    const std::string b = "bucket" + std::to_string(i) + ".";
    out[b + "exp_avg"] = m_[i];
    out[b + "exp_avg_diff"] = v_[i];
    out[b + "exp_avg_sq"] = n_[i];
    out[b + "prev_grad"] = prev_[i];
  }
  return out;
}

FlatEma::FlatEma(const FlatParams& params, double decay, bool warmup) : p_(params), decay_(decay), warmup_(warmup) {
  for (const auto& b : p_.buckets()) ema_.push_back(b.params.detach().clone());
}

double FlatEma::decay_at(int64_t step) const {
  return warmup_ ? std::min(decay_, (1.0 + double(step)) / (10.0 + double(step))) : decay_;
}

void FlatEma::update(int64_t step) {
  torch::NoGradGuard no_grad;
  const double d = decay_at(step);
  const auto& buckets = p_.buckets();
  for (std::size_t i = 0; i < buckets.size(); ++i) ema_[i].lerp_(buckets[i].params, 1.0 - d);
}

}  // namespace ldm::worker
