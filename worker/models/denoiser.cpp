#include "worker/models/denoiser.h"

#include "shared/core/error.h"

namespace ldm::models {
namespace {

template <class F>
Condition map_fields(const Condition& c, F f) {
  Condition out;
  out.labels = f(c.labels);
  out.tokens = f(c.tokens);
  out.token_mask = f(c.token_mask);
  out.pooled = f(c.pooled);
  out.semantic_drop = f(c.semantic_drop);
  out.controls = f(c.controls);
  out.control_drop = f(c.control_drop);
  out.noise_level = f(c.noise_level);
  return out;
}

torch::Tensor zero_dropped_rows(const torch::Tensor& x, const torch::Tensor& drop) {
  if (!drop.defined()) return x;
  std::vector<int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  auto keep = drop.logical_not().to(x.dtype()).reshape(shape);  // [N, 1, ...]
  return x * keep;
}

}  // namespace

Condition Condition::narrow(int64_t start, int64_t length) const {
  return map_fields(*this, [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, start, length) : t; });
}

Condition Condition::cat(const std::vector<Condition>& parts) {
  if (parts.empty()) return {};
  // Gather one field across parts: all defined or all undefined.
  auto gather = [&](torch::Tensor Condition::*field, const char* name) -> torch::Tensor {
    std::vector<torch::Tensor> ts;
    for (const auto& p : parts)
      if ((p.*field).defined()) ts.push_back(p.*field);
    if (ts.empty()) return {};
    if (ts.size() != parts.size())
      throw Error(std::string("Condition::cat: field '") + name + "' is defined in some parts only");
    return torch::cat(ts, 0);
  };
  Condition out;
  out.labels = gather(&Condition::labels, "labels");
  out.tokens = gather(&Condition::tokens, "tokens");
  out.token_mask = gather(&Condition::token_mask, "token_mask");
  out.pooled = gather(&Condition::pooled, "pooled");
  out.semantic_drop = gather(&Condition::semantic_drop, "semantic_drop");
  out.controls = gather(&Condition::controls, "controls");
  out.control_drop = gather(&Condition::control_drop, "control_drop");
  out.noise_level = gather(&Condition::noise_level, "noise_level");
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
    throw Error(std::string(model) + ": the condition has no '" + field + "' (wrong task for this model, or a caller bug)");
  return t;
}

torch::Tensor tokens_with_drop(const Condition& cond, const char* model) {
  return zero_dropped_rows(require_field(cond.tokens, "tokens", model), cond.semantic_drop);
}

torch::Tensor pooled_with_drop(const Condition& cond, const char* model) {
  return zero_dropped_rows(require_field(cond.pooled, "pooled", model), cond.semantic_drop);
}

ControlEmbedder make_control_embedder(const std::optional<ControlEmbedderOptions>& options, int64_t dim) {
  if (!options) return ControlEmbedder(nullptr);
  ControlEmbedderOptions o = *options;
  o.dim = dim;
  return ControlEmbedder(o);
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
