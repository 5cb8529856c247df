// mDT-v2 (Gao et al., "Masked Diffusion Transformer is a Strong Image Synthesizer", MDTv2): a DiT-style
// adaLN-Zero transformer with
//   - a U-Net-like encoder: `en_inblocks` whose outputs feed, last first, the `en_outblocks`
//     through long skips (skip_linear on cat[x, skip]);
//   - a decoder `de_blocks` each taking the patch embedding (plus pos_embed) as a dense input skip;
//   - learned relative-position biases in every self-attention (BEiT-style tables);
//   - mask latent modelling in training: a second pass runs the encoder on a random subset of the
//     image tokens, the side-interpolator (`sideblocks`, `mask_token`, `decoder_pos_embed`) fills the
//     masked positions and the decoder predicts every token. Inference never masks: the
//     side-interpolator is bypassed (only decoder_pos_embed is added), as the reference does.
// Module structure, state-dict key names and initialisation follow the reference implementation
// (sail-sg/MDT masked_diffusion/models.py, class MDTv2).
//
// Text task [recon, ours]: the reference is class-conditional only. Here caption tokens are
// projected to the width (y_embedder.y_proj.fc1 -> GELU(tanh) -> fc2, as PixArt's caption
// embedder) and every block cross-attends to them after self-attention (cross_attn, PixArt's
// CrossAttention: unmodulated, ungated, output projection zero at initialisation). The pooled
// caption is not used; a dropped caption is the all-zero token sequence (tokens_with_drop).
#pragma once

#include <optional>

#include "shared/core/recipes/card.h"
#include "worker/models/blocks.h"
#include "worker/models/denoiser.h"
#include "worker/models/dit.h"
#include "worker/models/pixart.h"

namespace ldm::models {

// MDTv2's per-batch widening of the mask ratio: the masked pass masks a fraction drawn uniformly
// from [mask_ratio, mask_ratio + 0.2) once per batch [lit: models.py MDTv2.forward,
// `rand_mask_ratio = rand(1) * 0.2 + mask_ratio`; the paper's "wider masking ratio range"].
constexpr double kMdtMaskRatioJitter = 0.2;

struct MDTConfig {
  // Inputs on another token grid than the built one (aspect-ratio buckets) get the built
  // positional embedding resampled this way (RecipeSpec's knobs of the same names).
  PosEmbedResampling pos_embed_resampling = PosEmbedResampling::Interpolate;
  GridConvention pos_embed_grid = GridConvention::Center;
  int64_t in_channels = 4, latent_h = 32, latent_w = 32;
  int64_t patch = 2, width = 1152, heads = 16;
  int64_t depth = 28;         // encoder + decoder blocks (the reference's depth); the side block is extra
  int64_t decoder_depth = 4;  // the reference's decode_layer; (depth - decoder_depth) must be even
  double mlp_ratio = 4.0;
  bool learn_sigma = true;  // output 2·in_channels
  // Exactly one task: class (num_classes > 0; labels num_classes = the learned null class) or
  // text (text_channels > 0).
  int64_t num_classes = 1000;
  int64_t text_channels = 0;
  bool mask_padding = false;  // text: padding slots (token_mask false) are not attended to
  // Fraction of image tokens masked in the masked training pass; 0 disables the masked pass (then,
  // as the reference with mask_ratio None, mask_token is a frozen zero).
  double mask_ratio = 0.3;
  double mask_ratio_jitter = kMdtMaskRatioJitter;
  std::optional<ControlEmbedderOptions> controls;  // dim is set to width
};

// The tokens one masked pass keeps, per sample (as the reference's random_masking).
struct TokenMask {
  torch::Tensor ids_keep;  // [N, K] int64: kept token indices, in the random order they were drawn
  torch::Tensor mask;      // [N, T] float: 1 = masked, 0 = kept
};

// Tokens kept out of `tokens` at mask ratio `ratio`: ⌊tokens·(1 − ratio)⌋ as the reference's
// int(L * (1 - mask_ratio)), at least 1.
int64_t mdt_kept_tokens(int64_t tokens, double ratio);
// Per-sample random masking: one uniform draw per token from `gen` ([n, tokens] on gen's device),
// the kept tokens are the mdt_kept_tokens(tokens, ratio) smallest. Returned on gen's device.
TokenMask mdt_random_mask(int64_t n, int64_t tokens, double ratio, at::Generator& gen);

// BEiT relative position bias of one attention layer for a grid_h × grid_w token grid.
struct RelativePositionBiasImpl : torch::nn::Module {
  RelativePositionBiasImpl(int64_t grid_h, int64_t grid_w, int64_t heads);
  // index [T, T] (all tokens) or [N, K, K] (kept tokens) int64 into the table -> bias
  // [1, heads, T, T] or [N, heads, K, K].
  torch::Tensor forward(const torch::Tensor& index);
  int64_t heads;
  torch::Tensor relative_position_bias_table;  // [(2h−1)(2w−1) + 3, heads] (3 unused rows, as BEiT's cls slots)
  torch::Tensor relative_position_index;       // buffer [T, T] int64
};
TORCH_MODULE(RelativePositionBias);

// The reference's Attention: qkv (with bias), softmax(QKᵀ/√d + relative bias) V, proj.
struct MDTAttentionImpl : torch::nn::Module {
  MDTAttentionImpl(int64_t dim, int64_t heads, int64_t grid_h, int64_t grid_w);
  // x [N, T', D], rel_index as RelativePositionBias::forward with T' tokens -> [N, T', D]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& rel_index);
  int64_t heads;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  RelativePositionBias rel_pos_bias{nullptr};
};
TORCH_MODULE(MDTAttention);

// MDTBlock: adaLN-Zero self-attention + MLP (as DiT's block, with the attention above), an optional
// long-skip fusion `skip_linear` [2D -> D] applied first, and (text task) a cross-attention.
struct MDTBlockImpl : torch::nn::Module {
  MDTBlockImpl(int64_t width, int64_t heads, double mlp_ratio, int64_t grid_h, int64_t grid_w, bool skip,
               bool cross_attention);
  // x [N,T',D], c [N,D], skip [N,T',D] (required iff the block has skip_linear), rel_index as
  // MDTAttention, cond [N,L,D] and cond_mask [N,L] bool (text task; mask may be undefined).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& skip,
                        const torch::Tensor& rel_index, const torch::Tensor& cond, const torch::Tensor& cond_mask);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MDTAttention attn{nullptr};
  CrossAttention cross_attn{nullptr};  // text task only
  Mlp mlp{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
  torch::nn::Linear skip_linear{nullptr};  // en_outblocks and de_blocks only
};
TORCH_MODULE(MDTBlock);

// Caption tokens -> width (text task, ours): y_proj.fc1 [Cc -> D], GELU(tanh), y_proj.fc2 [D -> D].
struct MDTCaptionProjectionImpl : torch::nn::Module {
  MDTCaptionProjectionImpl(int64_t text_channels, int64_t dim);
  torch::Tensor forward(const torch::Tensor& tokens);  // [N, L, Cc] -> [N, L, D]
  std::shared_ptr<torch::nn::Module> y_proj;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(MDTCaptionProjection);

class MDT final : public Denoiser {
 public:
  explicit MDT(const MDTConfig& config);
  using Denoiser::forward;

  // Unmasked (inference) pass. Class task: cond.labels; text task: cond.tokens (+ token_mask when
  // mask_padding, semantic_drop zeroes dropped captions); controls when built with them.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) override;
  // {unmasked output, masked output}, both [N, C_out, H, W]; only {unmasked} when mask_ratio is 0.
  // The masked pass draws its ratio (mask_ratio + jitter·U[0,1)) and its per-sample token choice
  // from `mask_gen` only. MDTv2 trains on the sum of the two outputs' diffusion losses.
  std::vector<torch::Tensor> training_outputs(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond,
                                              at::Generator& mask_gen) override;
  // The masked pass with a given mask (ids_keep [N, K], mask [N, T], on any device).
  torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond,
                               const TokenMask& mask);

  void initialize(at::Generator& gen) override;
  int64_t out_channels() const override { return out_channels_; }
  std::vector<std::string> zero_initialised() const override;
  const MDTConfig& config() const { return cfg_; }
  int64_t tokens() const { return grid_h_ * grid_w_; }
  bool text_task() const { return cfg_.num_classes <= 0; }

 private:
  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond, const TokenMask* mask);

  MDTConfig cfg_;
  int64_t out_channels_, grid_h_, grid_w_, encoder_half_;
  std::shared_ptr<DiT::PatchEmbed> x_embedder_;
  TimestepEmbedder t_embedder_{nullptr};
  LabelEmbedder label_embedder_{nullptr};           // class task: y_embedder.embedding_table
  MDTCaptionProjection caption_embedder_{nullptr};  // text task: y_embedder.y_proj.fc1/fc2
  torch::Tensor pos_embed_;                         // [1, T, D] learned, sin-cos initialised
  torch::nn::ModuleList en_inblocks_{nullptr}, en_outblocks_{nullptr}, de_blocks_{nullptr}, sideblocks_{nullptr};
  DiTFinalLayer final_layer_{nullptr};
  torch::Tensor decoder_pos_embed_;  // [1, T, D] learned, sin-cos initialised
  torch::Tensor mask_token_;         // [1, 1, D]
  ControlEmbedder control_embedder_{nullptr};
};

// Builds (without initialising) the mDT-v2 network for a preset of family "mdt": class task when
// geometry.num_classes > 0, else text task (geometry.text_channels > 0). Mask ratio from
// recipe.mask_ratio, output channels doubled when recipe.learn_sigma.
std::shared_ptr<Denoiser> build_mdt(const PresetInfo& preset, const ModelGeometry& geometry, const RecipeSpec& recipe);

}  // namespace ldm::models
