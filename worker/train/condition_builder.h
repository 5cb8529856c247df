// From what a batch carries (labels, captions, control metadata) to the network's Condition, as the
// spec's task and recipe.conditioning say: semantic and control dropout (independent generators),
// caption encoding and padding, control tensors, and the noise level w_alpha(t) is evaluated at.
// The trainer and the sampler both go through here, so training and inference see the same inputs.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "datasets/format/shard.h"
#include "datasets/tensor/text_encoder.h"
#include "shared/core/spec.h"
#include "worker/models/denoiser.h"

namespace ldm::worker {

struct ConditionInputs {
  std::vector<int64_t> labels;            // class task: one per sample
  std::vector<std::string> captions;      // text task: one per sample (encoded here) ...
  std::vector<ControlMeta> controls;      // one per sample when the recipe conditions on controls
  std::vector<data::TextEmbedding> text;  // ... or the captions' stored features (used when non-empty)
  int64_t size() const;
};

// The generators of the training-time randomness, one per purpose (DESIGN.md "Randomness").
struct ConditionGenerators {
  at::Generator* semantic_drop = nullptr;
  at::Generator* control_drop = nullptr;
  at::Generator* padding_noise = nullptr;
};

class ConditionBuilder {
 public:
  // `shift` is the stage's resolution shift (used when control_time = "shifted").
  ConditionBuilder(const ExperimentSpec& spec, double shift);

  bool text_task() const { return text_; }
  bool uses_controls() const { return controls_; }
  // Null when the captions' features come precomputed from the shards.
  const data::TextEncoder* text_encoder() const { return encoder_.get(); }
  models::ModelGeometry geometry(int64_t latent_channels, int64_t latent_h, int64_t latent_w) const;

  // Training: labels are replaced by the null class (class task) or semantic_drop is set (text)
  // with probability semantic_dropout; controls are dropped with control_dropout; noisy_replicate
  // padding uses text_pad_noise. `t` [N] is the process's continuous time in [0, 1].
  models::Condition training(const ConditionInputs& in, const at::Tensor& t, const ConditionGenerators& gens) const;

  // Inference: nothing dropped unless asked; noisy_replicate padding uses text_pad_noise_inference
  // (drawn from `padding_noise` when that is non-zero). noise_level is left for set_time().
  models::Condition inference(const ConditionInputs& in, bool drop_semantic, bool drop_controls,
                              at::Generator* padding_noise = nullptr) const;

  // `c` with every row's semantic condition and/or controls dropped (guidance branches).
  models::Condition with_drops(const models::Condition& c, bool drop_semantic, bool drop_controls) const;

  // The noise level w_alpha(t) sees for continuous times t [N]: raw t or shift_time(t, shift).
  at::Tensor noise_level(const at::Tensor& t) const;

 private:
  models::Condition base(const ConditionInputs& in, double pad_noise, at::Generator* pad_gen) const;
  ExperimentSpec spec_;
  double shift_;
  bool text_, controls_;
  std::shared_ptr<const data::TextEncoder> encoder_;  // null for text_encoder.kind = "precomputed"
};

}  // namespace ldm::worker
