#include "worker/train/condition_builder.h"

#include <torch/torch.h>

#include "datasets/tensor/encoders.h"
#include "shared/core/error.h"
#include "worker/diffusion/process.h"

namespace ldm::worker {

int64_t ConditionInputs::size() const {
  return static_cast<int64_t>(std::max({labels.size(), captions.size(), text.size(), controls.size()}));
}

ConditionBuilder::ConditionBuilder(const ExperimentSpec& spec, double shift)
    : spec_(spec),
      shift_(shift),
      text_(spec.task == "text"),
      controls_(spec.recipe.conditioning.controls != ControlMode::None) {
  if (text_) encoder_ = data::make_text_encoder(spec.text_encoder);
}

models::ModelGeometry ConditionBuilder::geometry(int64_t latent_channels, int64_t latent_h, int64_t latent_w) const {
  models::ModelGeometry g{latent_channels, latent_h, latent_w, text_ ? 0 : spec_.dataset.classes};
  if (text_) {
    g.text_channels = spec_.text_encoder.dim;  // make_text_encoder checked the encoder agrees
    g.text_tokens = spec_.text_encoder.max_tokens;
  }
  return g;
}

at::Tensor ConditionBuilder::noise_level(const at::Tensor& t) const {
  auto t64 = t.to(torch::kFloat64);
  if (spec_.recipe.conditioning.control_time == "shifted") t64 = diffusion::shift_time(t64, shift_);
  return t64.to(torch::kFloat32);
}

models::Condition ConditionBuilder::base(const ConditionInputs& in, double pad_noise, at::Generator* pad_gen) const {
  models::Condition c;
  const int64_t n = in.size();
  if (text_) {
    std::vector<data::TextEmbedding> features = in.text;
    if (features.empty()) {
      if (static_cast<int64_t>(in.captions.size()) != n)
        throw Error("text task: " + std::to_string(in.captions.size()) + " captions for " + std::to_string(n) +
                    " samples");
      if (!encoder_)
        throw Error(
            "text_encoder.kind = \"precomputed\": captions can only come as stored features (no encoder "
            "to encode a caption with; use the encoder the shards were made with)");
      features = encoder_->encode_batch(in.captions);
    }
    if (static_cast<int64_t>(features.size()) != n)
      throw Error("text task: " + std::to_string(features.size()) + " caption features for " + std::to_string(n) +
                  " samples");
    std::vector<at::Tensor> tokens, masks, pooled;
    std::vector<int64_t> lengths;
    for (const auto& e : features) {
      if (e.tokens.size(0) != spec_.text_encoder.max_tokens || e.tokens.size(1) != spec_.text_encoder.dim)
        throw Error(
            "caption features are " + std::to_string(e.tokens.size(0)) + " x " + std::to_string(e.tokens.size(1)) +
            " but the experiment has text_encoder.max_tokens = " + std::to_string(spec_.text_encoder.max_tokens) +
            ", dim = " + std::to_string(spec_.text_encoder.dim));
      tokens.push_back(e.tokens);
      masks.push_back(e.mask);
      pooled.push_back(e.pooled);
      lengths.push_back(e.length);
    }
    const TextPadding mode = spec_.recipe.conditioning.text_padding;
    c.tokens = models::pad_text_tokens(torch::stack(tokens), torch::tensor(lengths, torch::kInt64), mode,
                                       mode == models::TextPadding::NoisyReplicate ? pad_noise : 0.0, pad_gen);
    c.token_mask = torch::stack(masks);
    c.pooled = torch::stack(pooled);
  } else {
    if (static_cast<int64_t>(in.labels.size()) != n)
      throw Error("class task: " + std::to_string(in.labels.size()) + " labels for " + std::to_string(n) + " samples");
    c.labels = torch::tensor(in.labels, torch::kInt64);
  }
  if (controls_) {
    if (static_cast<int64_t>(in.controls.size()) != n)
      throw Error("recipe.conditioning.controls = '" + std::string(choice_name(spec_.recipe.conditioning.controls)) +
                  "' needs control metadata for every sample (" + std::to_string(in.controls.size()) + " for " +
                  std::to_string(n) + ")");
    c.controls = models::control_tensor(in.controls);
  }
  return c;
}

models::Condition ConditionBuilder::training(const ConditionInputs& in, const at::Tensor& t,
                                             const ConditionGenerators& gens) const {
  const auto& k = spec_.recipe.conditioning;
  models::Condition c = base(in, k.text_pad_noise, gens.padding_noise);
  const int64_t n = in.size();
  auto drop = models::drop_mask(n, k.semantic_dropout, *gens.semantic_drop);
  if (text_) c.semantic_drop = drop;
  else c.labels = torch::where(drop, torch::full_like(c.labels, spec_.dataset.classes), c.labels);
  if (controls_) c.control_drop = models::drop_mask(n, k.control_dropout, *gens.control_drop);
  c.noise_level = noise_level(t);
  return c;
}

models::Condition ConditionBuilder::with_drops(const models::Condition& c, bool drop_semantic,
                                               bool drop_controls) const {
  models::Condition out = c;
  if (drop_semantic) {
    if (text_) out.semantic_drop = torch::ones_like(c.semantic_drop);
    else out.labels = torch::full_like(c.labels, spec_.dataset.classes);
  }
  if (drop_controls && controls_) out.control_drop = torch::ones_like(c.control_drop);
  return out;
}

models::Condition ConditionBuilder::inference(const ConditionInputs& in, bool drop_semantic, bool drop_controls,
                                              at::Generator* padding_noise) const {
  const auto& k = spec_.recipe.conditioning;
  models::Condition c = base(in, k.text_pad_noise_inference, padding_noise);
  const int64_t n = in.size();
  if (text_) c.semantic_drop = torch::full({n}, drop_semantic, torch::kBool);
  else if (drop_semantic) c.labels = torch::full_like(c.labels, spec_.dataset.classes);
  if (controls_) c.control_drop = torch::full({n}, drop_controls, torch::kBool);
  return c;
}

}  // namespace ldm::worker
