// PixArt-α (Chen et al. 2023): a DiT backbone whose blocks (a) take their adaLN modulation from ONE
// shared projection of the timestep embedding (`t_block`, adaLN-single) plus a small learned
// per-block table, and (b) cross-attend from image tokens to condition tokens after
// self-attention. Conditions are either captions (text-encoder features projected by `y_embedder`)
// or, in class mode, one label-embedding token per sample. State-dict keys match the reference
// implementation (PixArt-alpha/PixArt-alpha diffusion/model/nets/PixArt.py, PixArt_blocks.py).
#pragma once

#include "shared/core/recipes/card.h"
#include "worker/models/blocks.h"
#include "worker/models/denoiser.h"

namespace ldm::models {

// Exactly one of the two condition modes is active: class mode when num_classes > 0, text mode
// when caption_channels > 0 (setting both or neither throws ldm::Error at construction).
struct PixArtConfig {
  // Inputs on another token grid than the built one (aspect-ratio buckets) get the built
  // positional embedding resampled this way (RecipeSpec's knobs of the same names).
  PosEmbedResampling pos_embed_resampling = PosEmbedResampling::Interpolate;
  GridConvention pos_embed_grid = GridConvention::Center;
  int64_t in_channels = 4, latent_h = 32, latent_w = 32;
  int64_t patch = 2, width = 1152, depth = 28, heads = 16;
  double mlp_ratio = 4.0;
  bool learn_sigma = true;  // output 2·in_channels (ε and variance interpolation) instead of in_channels
  // Class mode: labels 0..num_classes-1, plus the null class `num_classes` for classifier-free guidance.
  int64_t num_classes = 0;
  // Text mode: caption features [N, L, caption_channels] with L <= max_tokens (T5-XXL: 4096, 120).
  int64_t caption_channels = 0, max_tokens = 120;
  // The reference stores the null caption `y_embedder.y_embedding` [max_tokens, caption_channels]
  // as a buffer (random, never trained). true makes it a trainable parameter instead.
  bool learn_null_caption = false;
  // Control metadata added to the timestep embedding before t_block (so every block's adaLN-single
  // modulation and the final layer see it); unset = no control conditioning.
  std::optional<ControlEmbedderOptions> controls;
  // Text mode through forward(x, t, Condition): exclude caption padding slots as cross-attention keys.
  bool mask_padding = false;
};

// Cross-attention from image tokens (queries) to condition tokens (keys/values), as the reference's
// MultiHeadCrossAttention. Keys whose mask entry is false get a -inf bias; a sample with no valid
// key at all receives zero attention output (only proj's bias).
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int64_t dim, int64_t heads);
  // x [N, T, D], cond [N, L, D], mask [N, L] bool or undefined (all valid) -> [N, T, D]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cond, const torch::Tensor& mask);
  int64_t heads;
  torch::nn::Linear q_linear{nullptr}, kv_linear{nullptr}, proj{nullptr};
};
TORCH_MODULE(CrossAttention);

// Caption projection (the reference's CaptionEmbedder): y_proj = fc1 -> GELU(tanh) -> fc2 from
// caption_channels to D, and the null caption y_embedding used for classifier-free dropout.
struct CaptionEmbedderImpl : torch::nn::Module {
  CaptionEmbedderImpl(int64_t caption_channels, int64_t dim, int64_t max_tokens, bool learn_null);
  torch::Tensor forward(const torch::Tensor& caption);  // [N, L, Cc] -> [N, L, D]
  std::shared_ptr<torch::nn::Module> y_proj;            // holds fc1 [Cc -> D], fc2 [D -> D]
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::Tensor y_embedding;  // [max_tokens, Cc]
};
TORCH_MODULE(CaptionEmbedder);

// One PixArt block: modulated self-attention, unmodulated cross-attention, modulated MLP. The six
// modulation vectors are t0 (the shared t_block output, [N, 6D]) plus scale_shift_table [6, D].
struct PixArtBlockImpl : torch::nn::Module {
  PixArtBlockImpl(int64_t width, int64_t heads, double mlp_ratio);
  // x [N,T,D], cond [N,L,D], mask [N,L] bool (or undefined), t0 [N,6D] -> [N,T,D]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cond, const torch::Tensor& mask,
                        const torch::Tensor& t0);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  CrossAttention cross_attn{nullptr};
  Mlp mlp{nullptr};
  torch::Tensor scale_shift_table;  // [6, D]
};
TORCH_MODULE(PixArtBlock);

// The reference's T2IFinalLayer: shift/scale = scale_shift_table [2, D] + the timestep embedding
// (not t_block's output), then a linear decoder to p·p·C_out per token.
struct T2IFinalLayerImpl : torch::nn::Module {
  T2IFinalLayerImpl(int64_t width, int64_t patch, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t_emb);  // -> [N,T,p·p·C_out]
  torch::nn::LayerNorm norm_final{nullptr};
  torch::nn::Linear linear{nullptr};
  torch::Tensor scale_shift_table;  // [2, D]
};
TORCH_MODULE(T2IFinalLayer);

class PixArt final : public Denoiser {
 public:
  explicit PixArt(const PixArtConfig& config);

  using Denoiser::forward;
  // Class mode: cond.labels [N] int64 (num_classes = null class) becomes a single cross-attention
  // token. Text mode: cond.tokens [N, max_tokens, caption_channels], cond.semantic_drop replaces a
  // caption by the null caption y_embedding, cond.token_mask masks keys when config.mask_padding.
  // Controls (when configured): cond.controls, cond.control_drop, cond.noise_level.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) override;

  // Text mode only. tokens [N, L, caption_channels], L <= max_tokens; mask [N, L] bool, true = real
  // token (undefined: all real). drop [N] bool or undefined: rows set replace the caption with the
  // null caption y_embedding (requires L == max_tokens; the mask is kept, as the reference does).
  // Random classifier-free dropout is the caller's choice of `drop`. -> [N, C_out, H, W]
  torch::Tensor forward_text(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& tokens,
                             const torch::Tensor& mask, const torch::Tensor& drop = {});

  // As the reference's initialize_weights(); see pixart.cpp for which tensor gets what.
  void initialize(at::Generator& gen) override;
  int64_t out_channels() const override { return out_channels_; }
  std::vector<std::string> zero_initialised() const override;
  const PixArtConfig& config() const { return cfg_; }
  bool text_mode() const { return cfg_.caption_channels > 0; }
  // The null caption [max_tokens, caption_channels] (text mode), e.g. for unconditional sampling.
  torch::Tensor null_caption() const;

  // [N, T, p·p·C] tokens -> [N, C, H, W] image (inverse of the patch embedding layout).
  torch::Tensor unpatchify(const torch::Tensor& tokens) const;

  struct PatchEmbed : torch::nn::Module {
    PatchEmbed(int64_t in_channels, int64_t width, int64_t patch);
    torch::nn::Conv2d proj{nullptr};
  };

 private:
  // Shared trunk: cond [N, L, D] condition tokens, mask [N, L] bool or undefined.
  void check_caption(const torch::Tensor& tokens, int64_t n) const;
  torch::Tensor with_null_caption(const torch::Tensor& tokens, const torch::Tensor& drop) const;
  // `controls` supplies the control fields only.
  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                    const torch::Tensor& mask, const Condition& controls);

  PixArtConfig cfg_;
  int64_t out_channels_, grid_h_, grid_w_;
  std::shared_ptr<PatchEmbed> x_embedder_;
  TimestepEmbedder t_embedder_{nullptr};
  torch::nn::Sequential t_block_{nullptr};     // SiLU, Linear(D, 6D): keys t_block.1.*
  LabelEmbedder label_embedder_{nullptr};      // class mode: y_embedder.embedding_table
  CaptionEmbedder caption_embedder_{nullptr};  // text mode: y_embedder.y_proj.fc1/fc2, y_embedder.y_embedding
  torch::Tensor pos_embed_;                    // [1, T, D], fixed sin-cos (a non-trainable parameter, as DiT here)
  torch::nn::ModuleList blocks_{nullptr};
  T2IFinalLayer final_layer_{nullptr};
  ControlEmbedder control_embedder_{nullptr};
};

// Builds (without initialising) PixArt-α for a preset of family "pixart": class mode when
// geometry.num_classes > 0, else text mode with caption_channels = text_channels and
// max_tokens = text_tokens.
std::shared_ptr<Denoiser> build_pixart(const PresetInfo& preset, const ModelGeometry& geometry,
                                       const RecipeSpec& recipe);

}  // namespace ldm::models
