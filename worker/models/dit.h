// DiT (Peebles & Xie 2023): patchify -> transformer blocks with adaLN-Zero conditioning on
// timestep + class embedding -> linear decoder -> unpatchify. State-dict keys match the reference
// implementation (facebookresearch/DiT models.py).
#pragma once

#include "shared/core/recipes/card.h"
#include "worker/models/blocks.h"
#include "worker/models/denoiser.h"

namespace ldm::models {

struct DiTConfig {
  // Inputs on another token grid than the built one (aspect-ratio buckets) get the built
  // positional embedding resampled this way (RecipeSpec's knobs of the same names).
  PosEmbedResampling pos_embed_resampling = PosEmbedResampling::Interpolate;
  GridConvention pos_embed_grid = GridConvention::Center;
  int64_t in_channels = 4, latent_h = 32, latent_w = 32;
  int64_t patch = 2, width = 1152, depth = 28, heads = 16;
  double mlp_ratio = 4.0;
  int64_t num_classes = 1000;  // class task; 0 selects the text task
  // Text task [recon: DiT has no caption path]: the pooled caption [N, text_channels] through
  // `caption_embedder` (Linear-SiLU-Linear) takes the label embedding's place in c.
  int64_t text_channels = 0;
  bool learn_sigma = true;
  bool null_class = true;  // classifier-free guidance embedding row
  // Control metadata summed into c = t_emb + y_emb (+ controls); unset = no control conditioning.
  std::optional<ControlEmbedderOptions> controls;
};

// One transformer block with adaLN-Zero: the six modulation vectors come from c through SiLU-Linear
// whose weights start at zero, so every block is the identity at initialisation.
struct DiTBlockImpl : torch::nn::Module {
  DiTBlockImpl(int64_t width, int64_t heads, double mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c);  // x [N,T,D], c [N,D]
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
};
TORCH_MODULE(DiTBlock);

struct DiTFinalLayerImpl : torch::nn::Module {
  DiTFinalLayerImpl(int64_t width, int64_t patch, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c);  // -> [N,T,p·p·C_out]
  torch::nn::LayerNorm norm_final{nullptr};
  torch::nn::Linear linear{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
};
TORCH_MODULE(DiTFinalLayer);

class DiT final : public Denoiser {
 public:
  explicit DiT(const DiTConfig& config);
  using Denoiser::forward;
  // Class task: cond.labels; text task: cond.pooled (zeroed rows where cond.semantic_drop). And
  // cond.controls / control_drop / noise_level when built with controls.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) override;
  void initialize(at::Generator& gen) override;
  int64_t out_channels() const override { return out_channels_; }
  std::vector<std::string> zero_initialised() const override;
  const DiTConfig& config() const { return cfg_; }

  // [N, T, p·p·C] tokens -> [N, C, H, W] image (inverse of the patch embedding layout).
  torch::Tensor unpatchify(const torch::Tensor& tokens) const;

  struct PatchEmbed : torch::nn::Module {
    PatchEmbed(int64_t in_channels, int64_t width, int64_t patch);
    torch::nn::Conv2d proj{nullptr};
  };

 private:
  DiTConfig cfg_;
  int64_t out_channels_, grid_h_, grid_w_;
  std::shared_ptr<PatchEmbed> x_embedder_;
  TimestepEmbedder t_embedder_{nullptr};
  LabelEmbedder y_embedder_{nullptr};         // class task
  VectorEmbedder caption_embedder_{nullptr};  // text task
  torch::Tensor pos_embed_;                   // [1, T, D], fixed sin-cos (a non-trainable parameter, as the reference)
  torch::nn::ModuleList blocks_{nullptr};
  DiTFinalLayer final_layer_{nullptr};
  ControlEmbedder control_embedder_{nullptr};
};

DiTConfig dit_config(const PresetInfo& preset, const ModelGeometry& geometry, const RecipeSpec& recipe);
// Builds (without initialising) a DiT for a preset of family "dit" (class task only).
std::shared_ptr<Denoiser> build_dit(const PresetInfo& preset, const ModelGeometry& geometry, const RecipeSpec& recipe);

}  // namespace ldm::models
