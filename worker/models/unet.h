// LDM's UNet (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models";
// CompVis/latent-diffusion ldm/modules/diffusionmodules/openaimodel.py UNetModel with
// use_spatial_transformer=True, ldm/modules/attention.py SpatialTransformer): a convolutional
// encoder/decoder of ResBlocks conditioned on the timestep embedding, with cross-attention
// transformers at the down-sampling factors listed in the preset (LDM's attention_resolutions),
// always one in the middle block. LDM-4-G is configs/latent-diffusion/cin256-v2.yaml.
//
// Conditioning:
//   class task (num_classes > 0): the label is embedded by `class_embedder` (LDM's ClassEmbedder,
//     nn.Embedding(num_classes + 1, context_dim)) into ONE cross-attention context token
//     [N, 1, context_dim]; row num_classes is the null class for classifier-free guidance.
//     cin256-v2 has n_classes 1001 = 1000 + its unconditional class, i.e. the same layout.
//     With a single key the cross-attention softmax is 1, so attn2 returns to_out(to_v(token))
//     whatever the image features: attn2.to_q, attn2.to_k and norm2 get exactly zero gradient in
//     the class task, in the reference as here.
//   text task (num_classes == 0): the caption tokens [N, L, text_channels] are the context (the
//     cross-attention k/v take text_channels inputs); dropped captions are zero rows
//     (tokens_with_drop); with recipe.conditioning.mask_padding, padding slots are not attended to.
//   controls (recipe.conditioning.controls != "none"): `control_embedder` of width 4·model_channels
//     is added to the timestep embedding `emb` that every ResBlock receives (as SDXL adds its
//     `label_emb` vector there).
//
// State-dict keys are those of UNetModel (time_embed.0/2, input_blocks.N.M..., middle_block.*,
// output_blocks.*, out.0/2) so an LDM checkpoint's `model.diffusion_model.<key>` maps to `<key>`
// here, and its `cond_stage_model.embedding.weight` [1001, 512] to `class_embedder.embedding.weight`
// (our null class row 1000 = LDM's class 1000). Our additions: `control_embedder.*`.
//
// Deviations from the reference (documented knobs, identical to it where LDM-4-G is concerned):
//   * GroupNorm group count: the largest divisor of the channel count that is <= norm_groups (32),
//     so small presets work; equals GroupNorm32's 32 whenever 32 divides the channels (every
//     LDM-4-G site: all channel counts are multiples of 192).
//   * heads: head_channels > 0 gives heads = channels / head_channels (LDM's num_head_channels);
//     head_channels == 0 gives `num_heads` heads of channels / num_heads (LDM's num_heads; LDM-4-G
//     uses num_heads 1, i.e. one head as wide as the level).
//   * A key mask (text task with mask_padding) follows CrossAttention's masked_fill: a sample with
//     no valid key attends uniformly over all keys.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "shared/core/recipes/card.h"
#include "worker/models/denoiser.h"

namespace ldm::models {

struct UNetConfig {
  int64_t in_channels = 4;
  int64_t latent_h = 32, latent_w = 32;  // construction-time check only; forward accepts any divisible size
  int64_t model_channels = 192;
  std::vector<int64_t> channel_mult = {1, 2, 3, 5};
  int64_t num_res_blocks = 2;
  std::vector<int64_t> attention_ds = {2, 4, 8};  // LDM's attention_resolutions (down-sampling factors)
  int64_t head_channels = 0;                      // > 0: channels per head; 0: use num_heads
  int64_t num_heads = 1;
  int64_t transformer_depth = 1;
  int64_t context_dim = 512;   // class task: class-embedding width (text task: set to text_channels)
  int64_t num_classes = 1000;  // > 0: class task; 0: text task
  int64_t text_channels = 0;   // text task: token feature width
  bool null_class = true;      // class task: row num_classes of class_embedder (classifier-free guidance)
  bool learn_sigma = false;    // output 2·in_channels
  bool mask_padding = false;   // text task: padding slots (token_mask false) are not attention keys
  int64_t norm_groups = 32;    // GroupNorm groups upper bound (see the header comment)
  std::optional<ControlEmbedderOptions> controls;  // dim is set by the model (4·model_channels)
};

// Submodules, named as the reference's classes. Shapes: x [N, C, H, W], emb [N, 4·model_channels],
// context [N, L, context_dim], mask [N, L] bool (true = attend) or undefined.
namespace unet_blocks {

// ResBlock (no up/down, no scale-shift norm, as LDM-4-G): in_layers = (GroupNorm32, SiLU, conv3x3),
// emb_layers = (SiLU, Linear(emb, out)), out_layers = (GroupNorm32, SiLU, Identity, zero conv3x3),
// skip_connection = Identity or conv1x1 when the width changes.
// LDM's dropout layers (rate 0 in every LDM config, and in CrossAttention.to_out and FeedForward.net)
// are Identity placeholders here: they keep the reference's indices in the key names
// (out_layers.3.weight), and a nonzero rate would draw from the global generator, which the worker
// never uses (DESIGN.md "Randomness"): one would need a purpose generator first.
struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(int64_t channels, int64_t emb_channels, int64_t out_channels, int64_t norm_groups);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  torch::nn::Sequential in_layers{nullptr}, emb_layers{nullptr}, out_layers{nullptr};
  torch::nn::Conv2d skip_conv{nullptr};  // null when skip_connection is the Identity
};
TORCH_MODULE(ResBlock);

// conv3x3 stride 2 (key `op`).
struct DownsampleImpl : torch::nn::Module {
  explicit DownsampleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d op{nullptr};
};
TORCH_MODULE(Downsample);

// Nearest ×2, then conv3x3 (key `conv`).
struct UpsampleImpl : torch::nn::Module {
  explicit UpsampleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample);

// attention.py CrossAttention: to_q/to_k/to_v without bias, to_out = (Linear, Dropout).
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t dim_head);
  // x [N, T, D]; context [N, L, Dc] (undefined: self-attention); mask [N, L] or undefined -> [N, T, D]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {}, const torch::Tensor& mask = {});
  int64_t heads, dim_head;
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::Sequential to_out{nullptr};
};
TORCH_MODULE(CrossAttention);

// GEGLU: proj Linear(d, 2·inner); x · GELU(gate) (exact GELU).
struct GEGLUImpl : torch::nn::Module {
  GEGLUImpl(int64_t dim_in, int64_t dim_out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

// FeedForward(glu=True, mult=4): net = (GEGLU, Dropout, Linear(4d, d)).
struct FeedForwardImpl : torch::nn::Module {
  explicit FeedForwardImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential net{nullptr};
};
TORCH_MODULE(FeedForward);

// x += attn1(norm1 x); x += attn2(norm2 x, context); x += ff(norm3 x).
struct BasicTransformerBlockImpl : torch::nn::Module {
  BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t dim_head, int64_t context_dim);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& mask);
  CrossAttention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

// norm (GroupNorm, eps 1e-6) -> proj_in conv1x1 -> transformer_blocks -> zero proj_out conv1x1, residual.
struct SpatialTransformerImpl : torch::nn::Module {
  SpatialTransformerImpl(int64_t channels, int64_t heads, int64_t dim_head, int64_t depth, int64_t context_dim,
                         int64_t norm_groups);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& mask);
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
};
TORCH_MODULE(SpatialTransformer);

// LDM's ClassEmbedder: labels [N] -> [N, 1, D] (key `embedding.weight`).
struct ClassEmbedderImpl : torch::nn::Module {
  ClassEmbedderImpl(int64_t rows, int64_t dim);
  torch::Tensor forward(const torch::Tensor& labels);
  torch::nn::Embedding embedding{nullptr};
};
TORCH_MODULE(ClassEmbedder);

// The GroupNorm group count used for `channels` (largest divisor of channels <= max_groups).
int64_t norm_group_count(int64_t channels, int64_t max_groups);

}  // namespace unet_blocks

class UNet final : public Denoiser {
 public:
  explicit UNet(const UNetConfig& config);
  using Denoiser::forward;
  // x [N, C, H, W] with H and W divisible by 2^(levels-1) (else ldm::Error naming the sizes),
  // t [N] model time (sinusoidal embedding of width model_channels, cos half first, as LDM).
  // Class task reads cond.labels (cond.semantic_drop, when given, also maps rows to the null
  // class); text task reads cond.tokens (+ semantic_drop, + token_mask with mask_padding);
  // controls read cond.controls (+ noise_level, control_drop). -> [N, out_channels(), H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) override;
  // As the reference: PyTorch's default init for every conv/linear (weights kaiming-uniform a=√5,
  // biases U(±1/√fan_in)), N(0, 1) class embedding, norms 1/0, then zero out_layers.3 of every
  // ResBlock, proj_out of every SpatialTransformer and out.2; the control embedder's own init.
  // Draws only from `gen`.
  void initialize(at::Generator& gen) override;
  int64_t out_channels() const override { return out_channels_; }
  // Every weight and bias of out_layers.3, proj_out and out.2 (the zero_module'd convolutions).
  std::vector<std::string> zero_initialised() const override;
  const UNetConfig& config() const { return cfg_; }
  bool text_task() const { return cfg_.num_classes <= 0; }
  // The cross-attention context of `cond`: [N, 1, context_dim] (class) or [N, L, text_channels].
  torch::Tensor context(const Condition& cond);
  // Side divisor required of latents: 2^(levels-1).
  int64_t size_divisor() const { return int64_t{1} << (cfg_.channel_mult.size() - 1); }

 private:
  torch::Tensor run_sequence(torch::nn::ModuleListImpl& seq, torch::Tensor h, const torch::Tensor& emb,
                             const torch::Tensor& ctx, const torch::Tensor& mask);

  UNetConfig cfg_;
  int64_t out_channels_ = 0;
  torch::nn::Sequential time_embed_{nullptr};  // time_embed.0 / .2
  torch::nn::ModuleList input_blocks_{nullptr}, output_blocks_{nullptr};
  torch::nn::ModuleList middle_block_{nullptr};
  torch::nn::Sequential out_{nullptr};                  // out.0 GroupNorm32, out.1 SiLU, out.2 zero conv
  unet_blocks::ClassEmbedder class_embedder_{nullptr};  // class task only
  ControlEmbedder control_embedder_{nullptr};
};

UNetConfig unet_config(const PresetInfo& preset, const ModelGeometry& geometry, const RecipeSpec& recipe);
// Builds (without initialising) the UNet network for a preset of family "unet".
std::shared_ptr<Denoiser> build_unet(const PresetInfo& preset, const ModelGeometry& geometry, const RecipeSpec& recipe);

}  // namespace ldm::models
