// MM-DiT (Esser et al. 2024, Stable Diffusion 3): two token streams — image tokens (patchified
// latents + fixed 2-D sin-cos positions) and condition tokens — with separate weights per stream
// (adaLN modulation, qkv, optional q/k RMSNorm, output projection, MLP) and ONE joint attention over
// the concatenated [context | image] tokens in every block. c = timestep embedding + pooled-condition
// embedding drives every adaLN. The last block's context stream is "pre_only" (it only supplies keys
// and values; no projection/MLP after attention), and the final layer decodes the image tokens.
// State-dict keys follow Stability-AI's sd3 mmditx.py (x_embedder.proj, t_embedder.mlp.0/2,
// y_embedder.mlp.0/2, context_embedder, joint_blocks.i.{x_block,context_block}.{adaLN_modulation.1,
// attn.qkv, attn.proj, attn.ln_q, attn.ln_k, mlp.fc1, mlp.fc2}, final_layer.{adaLN_modulation.1,
// linear}, pos_embed). Differences from SD3: the positional embedding is fixed to the latent grid
// (no cropping from a larger table) and class mode adds `label_embedder.embedding_table`.
#pragma once

#include <tuple>
#include <utility>

#include "worker/models/blocks.h"
#include "worker/models/denoiser.h"
#include "worker/models/dit.h"

namespace ldm::models {

struct MMDiTConfig {
  // Inputs on another token grid than the built one (aspect-ratio buckets) get the built
  // positional embedding resampled this way (RecipeSpec's knobs of the same names).
  PosEmbedResampling pos_embed_resampling = PosEmbedResampling::Interpolate;
  GridConvention pos_embed_grid = GridConvention::Center;
  int64_t in_channels = 4, latent_h = 32, latent_w = 32;
  int64_t patch = 2, width = 1152, depth = 28, heads = 16;
  double mlp_ratio = 4.0;    // MLP hidden = int(width · mlp_ratio), both streams
  bool learn_sigma = false;  // true: 2·in_channels outputs (SD3 rectified flow predicts no sigma)
  // Condition: num_classes > 0 selects class mode (forward(x, t, y)); the label's embedding (row
  // num_classes is the null class) is both the ONE context token and the pooled vector, so
  // context_channels/pooled_channels are ignored and taken as `width`. num_classes == 0 selects text
  // mode (forward_text) with token features of context_channels and a pooled vector of pooled_channels.
  int64_t num_classes = 1000;
  int64_t context_channels = 0, pooled_channels = 0;
  // RMSNorm on q and k per head (SD3.5); off as SD3-medium's original. As in the reference, the
  // last (pre_only) context stream also gets ln_q although its queries are unused: that one
  // parameter never receives a gradient.
  bool qk_norm = false;
  // SD3: the pooled condition (class embedding / pooled caption) joins the timestep in adaLN. The
  // proposed model sets false: semantics reach the network only as attention tokens, adaLN carries
  // timestep + controls [summary/recon], and there is no y_embedder.
  bool semantic_in_adaln = true;
  // Control metadata summed into c (adaLN of every stream); unset = no control conditioning.
  std::optional<ControlEmbedderOptions> controls;
  // forward(x, t, Condition) in text mode: exclude caption padding slots as attention keys.
  bool mask_padding = false;
};

// x · rsqrt(mean(x²) + eps) · weight over the last dimension (key: weight).
struct RMSNormImpl : torch::nn::Module {
  explicit RMSNormImpl(int64_t dim, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);
  double eps;
  torch::Tensor weight;
};
TORCH_MODULE(RMSNorm);

// One stream's half of a joint attention: its own qkv (and q/k norms) before, and proj after
// (absent when pre_only). The attention itself is computed by MMDiTJointBlock over both streams.
struct JointAttentionImpl : torch::nn::Module {
  JointAttentionImpl(int64_t width, int64_t heads, bool pre_only, bool qk_norm);
  // x [N, T, D] -> q, k, v each [N, heads, T, D/heads]
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> pre_attention(const torch::Tensor& x);
  int64_t heads;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};  // proj null when pre_only
  RMSNorm ln_q{nullptr}, ln_k{nullptr};           // null unless qk_norm
};
TORCH_MODULE(JointAttention);

// SD3's DismantledBlock: one stream's adaLN-Zero transformer block, split around the attention.
// pre_only: 2 modulation vectors (shift, scale) and no post-attention part.
struct MMDiTStreamBlockImpl : torch::nn::Module {
  MMDiTStreamBlockImpl(int64_t width, int64_t heads, double mlp_ratio, bool pre_only, bool qk_norm);
  struct Pending {  // what post_attention needs besides the attention output
    torch::Tensor x, gate_msa, shift_mlp, scale_mlp, gate_mlp;  // x [N,T,D], the rest [N,D]
  };
  // x [N,T,D], c [N,D] -> (q, k, v) [N, heads, T, hd] and the residual state
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> pre_attention(const torch::Tensor& x, const torch::Tensor& c,
                                                                        Pending& state);
  // attn [N,T,D] (heads merged, before proj) -> [N,T,D]. Not valid when pre_only.
  torch::Tensor post_attention(const torch::Tensor& attn, const Pending& state);
  bool pre_only;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  JointAttention attn{nullptr};
  Mlp mlp{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
};
TORCH_MODULE(MMDiTStreamBlock);

// context_block + x_block around one attention over cat([context, x]) tokens.
struct MMDiTJointBlockImpl : torch::nn::Module {
  MMDiTJointBlockImpl(int64_t width, int64_t heads, double mlp_ratio, bool context_pre_only, bool qk_norm);
  // context [N,L,D], x [N,T,D], c [N,D], key_keep [N,L] bool (true = attend; undefined = all).
  // Returns (context' or undefined when the context stream is pre_only, x').
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& context, const torch::Tensor& x,
                                                  const torch::Tensor& c, const torch::Tensor& key_keep);
  MMDiTStreamBlock context_block{nullptr}, x_block{nullptr};
};
TORCH_MODULE(MMDiTJointBlock);

class MMDiT final : public Denoiser {
 public:
  explicit MMDiT(const MMDiTConfig& config);
  using Denoiser::forward;
  // Class mode: cond.labels [N] int64, value num_classes = null label. Text mode: cond.tokens
  // (rows of cond.semantic_drop zeroed), cond.pooled when semantic_in_adaln, cond.token_mask when
  // mask_padding. Controls (when configured): cond.controls, control_drop, noise_level.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) override;
  // Text mode: tokens [N, L, context_channels]; mask [N, L] (bool or 0/1; true = real token,
  // false = padding, excluded as an attention key everywhere; undefined = all real);
  // pooled [N, pooled_channels]. Returns [N, C_out, H, W]. Throws in class mode.
  torch::Tensor forward_text(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& tokens,
                             const torch::Tensor& mask, const torch::Tensor& pooled);
  // Xavier-uniform Linear weights (zero bias) and patch embedding, N(0, 0.02) for the timestep,
  // pooled, context and label embedders, RMSNorm weights 1, zero adaLN modulation in every stream
  // and zero final layer (adaLN-Zero: the output is exactly zero at initialisation).
  void initialize(at::Generator& gen) override;
  int64_t out_channels() const override { return out_channels_; }
  std::vector<std::string> zero_initialised() const override;
  const MMDiTConfig& config() const { return cfg_; }
  torch::Tensor unpatchify(const torch::Tensor& tokens) const;  // [N,T,p·p·C] -> [N,C,H,W]

 private:
  void check_text(const torch::Tensor& x, const torch::Tensor& tokens, const torch::Tensor& mask,
                  const torch::Tensor& pooled) const;
  // pooled may be undefined when !semantic_in_adaln; `controls` supplies the control fields only.
  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                    const torch::Tensor& key_keep, const torch::Tensor& pooled, const Condition& controls);
  MMDiTConfig cfg_;
  int64_t out_channels_, grid_h_, grid_w_;
  std::shared_ptr<DiT::PatchEmbed> x_embedder_;
  TimestepEmbedder t_embedder_{nullptr};
  VectorEmbedder y_embedder_{nullptr};
  torch::nn::Linear context_embedder_{nullptr};
  LabelEmbedder label_embedder_{nullptr};  // class mode only
  torch::Tensor pos_embed_;                // [1, T, D] fixed sin-cos, non-trainable parameter
  torch::nn::ModuleList joint_blocks_{nullptr};
  DiTFinalLayer final_layer_{nullptr};
  ControlEmbedder control_embedder_{nullptr};
};

// The configuration of an MM-DiT of a preset for the geometry and recipe (SD3 conditioning: the
// pooled condition in adaLN); the proposed model's file starts from it too.
MMDiTConfig mmdit_config(const PresetInfo& preset, const ModelGeometry& geometry, const RecipeSpec& recipe);
// Builds (without initialising) an MM-DiT of family "mmdit".
std::shared_ptr<Denoiser> build_mmdit(const PresetInfo& preset, const ModelGeometry& geometry,
                                      const RecipeSpec& recipe);

// sum(p.numel() for p in parameters()) of MMDiT(config), pos_embed included, without building it.
// DiT-XL/2 sizing (depth 28, width 1152, 16 heads, patch 2, 4 ch, 32×32, 1000 classes) gives
// ≈1.32B, about twice DiT-XL/2's 675M, because every block carries two streams' weights.
int64_t mmdit_param_count(const MMDiTConfig& config);

// The depth (≥ 1) whose mmdit_param_count, other settings as in `config`, is closest to
// `target_params`. Parameter-matched preset suggestion: width 1152, 16 heads, patch 2, depth
// mmdit_param_matched_depth(xl, 675M) = 14 (≈0.66B, within 5% of DiT-XL/2).
int64_t mmdit_param_matched_depth(const MMDiTConfig& config, int64_t target_params);

}  // namespace ldm::models
