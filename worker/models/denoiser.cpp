#include "worker/models/denoiser.h"

#include "shared/core/error.h"

namespace ldm::models {
namespace {

// Every tensor field of Condition, once: narrow() and cat() walk this list.
struct ConditionField {
  torch::Tensor Condition::*member;
  const char* name;
};
constexpr ConditionField kConditionFields[] = {
    {&Condition::labels, "labels"},
    {&Condition::tokens, "tokens"},
    {&Condition::token_mask, "token_mask"},
    {&Condition::pooled, "pooled"},
    {&Condition::semantic_drop, "semantic_drop"},
    {&Condition::controls, "controls"},
    {&Condition::control_drop, "control_drop"},
    {&Condition::noise_level, "noise_level"},
};

torch::Tensor zero_dropped_rows(const torch::Tensor& x, const torch::Tensor& drop) {
  if (!drop.defined()) return x;
  std::vector<int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  auto keep = drop.logical_not().to(x.dtype()).reshape(shape);  // [N, 1, ...]
  return x * keep;
}

}  // namespace

Condition Condition::narrow(int64_t start, int64_t length) const {
  Condition out;
  for (const auto& f : kConditionFields)
    if ((this->*f.member).defined()) out.*f.member = (this->*f.member).narrow(0, start, length);
  return out;
}

Condition Condition::to(const torch::Device& device) const {
  Condition out;
  for (const auto& f : kConditionFields)
    if ((this->*f.member).defined()) out.*f.member = (this->*f.member).to(device);
  return out;
}

Condition Condition::cat(const std::vector<Condition>& parts) {
  Condition out;
  for (const auto& f : kConditionFields) {
    // One field across parts: all defined or all undefined.
    std::vector<torch::Tensor> ts;
    for (const auto& p : parts)
      if ((p.*f.member).defined()) ts.push_back(p.*f.member);
    if (ts.empty()) continue;
    if (ts.size() != parts.size())
      throw Error(std::string("Condition::cat: field '") + f.name + "' is defined in some parts only");
    out.*f.member = torch::cat(ts, 0);
  }
  return out;
}

torch::Tensor Denoiser::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) {
  Condition c;
  c.labels = y;
  return forward(x, t, c);
}

std::vector<torch::Tensor> Denoiser::training_outputs(const torch::Tensor& x, const torch::Tensor& t,
                                                      const Condition& cond, at::Generator&) {
  return {forward(x, t, cond)};
}

const torch::Tensor& require_field(const torch::Tensor& t, const char* field, const char* model) {
  if (!t.defined())
    throw Error(std::string(model) + ": the condition has no '" + field +
                "' (wrong task for this model, or a caller bug)");
  return t;
}

torch::Tensor tokens_with_drop(const Condition& cond, const char* model) {
  return zero_dropped_rows(require_field(cond.tokens, "tokens", model), cond.semantic_drop);
}

torch::Tensor pooled_with_drop(const Condition& cond, const char* model) {
  return zero_dropped_rows(require_field(cond.pooled, "pooled", model), cond.semantic_drop);
}

ControlEmbedder add_control_embedder(torch::nn::Module& owner, const std::optional<ControlEmbedderOptions>& options,
                                     int64_t dim) {
  if (!options) return ControlEmbedder(nullptr);
  ControlEmbedderOptions o = *options;
  o.dim = dim;
  return owner.register_module("control_embedder", ControlEmbedder(o));
}

torch::Tensor add_controls(const torch::Tensor& c, const ControlEmbedder& embedder, const Condition& cond,
                           const char* model) {
  if (!embedder) return c;
  require_field(cond.controls, "controls", model);
  if (embedder->options().weighting == "noise_weighted") require_field(cond.noise_level, "noise_level", model);
  ControlEmbedder e = embedder;  // a holder copy: forward is non-const
  return c + e->forward(cond.controls.to(c.dtype()), cond.noise_level, cond.control_drop);
}

}  // namespace ldm::models
