#include "worker/models/mmdit.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "shared/core/error.h"
#include "worker/torch_compat.h"
#include "worker/models/pos_embed.h"

namespace ldm::models {

namespace {
int64_t mlp_hidden(int64_t width, double ratio) { return static_cast<int64_t>(width * ratio); }
}  // namespace

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * weight;
}

JointAttentionImpl::JointAttentionImpl(int64_t width, int64_t heads_, bool pre_only, bool qk_norm) : heads(heads_) {
  TORCH_CHECK(width % heads == 0, "mmdit attention: width ", width, " is not divisible by ", heads, " heads");
  qkv = register_module("qkv", torch::nn::Linear(width, 3 * width));
  if (qk_norm) {
    ln_q = register_module("ln_q", RMSNorm(width / heads));
    ln_k = register_module("ln_k", RMSNorm(width / heads));
  }
  if (!pre_only) proj = register_module("proj", torch::nn::Linear(width, width));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> JointAttentionImpl::pre_attention(const torch::Tensor& x) {
  const auto n = x.size(0), t = x.size(1), d = x.size(2);
  // [N,T,3D] -> [3, N, heads, T, hd]
  auto qkv_ = qkv->forward(x).reshape({n, t, 3, heads, d / heads}).permute({2, 0, 3, 1, 4});
  auto q = qkv_[0], k = qkv_[1], v = qkv_[2];
  if (ln_q) {
    q = ln_q->forward(q);
    k = ln_k->forward(k);
  }
  return {q, k, v};
}

MMDiTStreamBlockImpl::MMDiTStreamBlockImpl(int64_t width, int64_t heads, double mlp_ratio, bool pre_only_, bool qk_norm)
    : pre_only(pre_only_) {
  norm1 = register_module("norm1", affine_free_norm(width));
  attn = register_module("attn", JointAttention(width, heads, pre_only, qk_norm));
  if (!pre_only) {
    norm2 = register_module("norm2", affine_free_norm(width));
    mlp = register_module("mlp", Mlp(width, mlp_hidden(width, mlp_ratio)));
  }
  adaLN_modulation = register_module("adaLN_modulation", silu_linear(width, (pre_only ? 2 : 6) * width));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> MMDiTStreamBlockImpl::pre_attention(const torch::Tensor& x,
                                                                                            const torch::Tensor& c,
                                                                                            Pending& state) {
  auto mod = adaLN_modulation->forward(c).chunk(pre_only ? 2 : 6, 1);  // 2 or 6 × [N, D]
  if (!pre_only) state = {x, mod[2], mod[3], mod[4], mod[5]};
  return attn->pre_attention(modulate(norm1->forward(x), mod[0], mod[1]));
}

torch::Tensor MMDiTStreamBlockImpl::post_attention(const torch::Tensor& a, const Pending& s) {
  TORCH_CHECK(!pre_only, "mmdit: post_attention on a pre_only stream");
  auto h = s.x + s.gate_msa.unsqueeze(1) * attn->proj->forward(a);
  return h + s.gate_mlp.unsqueeze(1) * mlp->forward(modulate(norm2->forward(h), s.shift_mlp, s.scale_mlp));
}

MMDiTJointBlockImpl::MMDiTJointBlockImpl(int64_t width, int64_t heads, double mlp_ratio, bool context_pre_only,
                                         bool qk_norm) {
  context_block =
      register_module("context_block", MMDiTStreamBlock(width, heads, mlp_ratio, context_pre_only, qk_norm));
  x_block = register_module("x_block", MMDiTStreamBlock(width, heads, mlp_ratio, false, qk_norm));
}

std::pair<torch::Tensor, torch::Tensor> MMDiTJointBlockImpl::forward(const torch::Tensor& context,
                                                                     const torch::Tensor& x, const torch::Tensor& c,
                                                                     const torch::Tensor& key_keep) {
  MMDiTStreamBlockImpl::Pending cs, xs;
  auto [cq, ck, cv] = context_block->pre_attention(context, c, cs);  // [N,h,L,hd]
  auto [xq, xk, xv] = x_block->pre_attention(x, c, xs);              // [N,h,T,hd]
  const int64_t n = x.size(0), L = context.size(1), T = x.size(1), d = x.size(2);
  // One attention over [context | image] tokens (context first, as SD3).
  auto q = torch::cat({cq, xq}, 2), k = torch::cat({ck, xk}, 2), v = torch::cat({cv, xv}, 2);
  torch::Tensor keep;  // [N, L+T]
  if (key_keep.defined()) {
    // Padding context tokens are never keys; image keys always exist, so no row is all -inf.
    keep = torch::cat({key_keep.to(torch::kBool), torch::ones({n, T}, key_keep.options().dtype(torch::kBool))}, 1);
  }
  auto out = torch_compat::attention(q, k, v, {}, keep).transpose(1, 2).reshape({n, L + T, d});  // [N,L+T,D]
  auto x_out = x_block->post_attention(out.narrow(1, L, T), xs);
  if (context_block->pre_only) return {torch::Tensor(), x_out};
  return {context_block->post_attention(out.narrow(1, 0, L), cs), x_out};
}

MMDiT::MMDiT(const MMDiTConfig& c) : cfg_(c) {
  if (c.latent_h % c.patch || c.latent_w % c.patch)
    throw Error("MMDiT: latent " + std::to_string(c.latent_h) + "x" + std::to_string(c.latent_w) +
                " is not divisible by patch " + std::to_string(c.patch));
  if (c.depth < 1) throw Error("MMDiT: depth must be at least 1");
  const bool class_mode = c.num_classes > 0;
  if (!class_mode && (c.context_channels <= 0 || c.pooled_channels <= 0))
    throw Error("MMDiT: text mode (num_classes 0) needs context_channels and pooled_channels");
  if (class_mode) cfg_.context_channels = cfg_.pooled_channels = c.width;
  out_channels_ = c.learn_sigma ? 2 * c.in_channels : c.in_channels;
  grid_h_ = c.latent_h / c.patch;
  grid_w_ = c.latent_w / c.patch;
  x_embedder_ = register_module("x_embedder", std::make_shared<DiT::PatchEmbed>(c.in_channels, c.width, c.patch));
  t_embedder_ = register_module("t_embedder", TimestepEmbedder(c.width));
  if (c.semantic_in_adaln) y_embedder_ = register_module("y_embedder", VectorEmbedder(cfg_.pooled_channels, c.width));
  context_embedder_ = register_module("context_embedder", torch::nn::Linear(cfg_.context_channels, c.width));
  if (class_mode) label_embedder_ = register_module("label_embedder", LabelEmbedder(c.num_classes, c.width, true));
  pos_embed_ = register_parameter("pos_embed", sincos_2d(c.width, grid_h_, grid_w_).unsqueeze(0),
                                  /*requires_grad=*/false);
  joint_blocks_ = register_module("joint_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i)
    joint_blocks_->push_back(
        MMDiTJointBlock(c.width, c.heads, c.mlp_ratio, /*context_pre_only=*/i == c.depth - 1, c.qk_norm));
  final_layer_ = register_module("final_layer", DiTFinalLayer(c.width, c.patch, out_channels_));
  control_embedder_ = add_control_embedder(*this, c.controls, c.width);
}

void MMDiT::initialize(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  init_linears_and_patch_embed_(*this, x_embedder_->proj, gen);
  for (auto& m : modules(/*include_self=*/false))
    if (auto* rms = m->as<RMSNorm>()) rms->weight.fill_(1.0);
  for (int i : {0, 2}) {
    normal_(t_embedder_->mlp[i]->as<torch::nn::Linear>()->weight, 0.02, gen);
    if (y_embedder_) normal_(y_embedder_->mlp[i]->as<torch::nn::Linear>()->weight, 0.02, gen);
  }
  normal_(context_embedder_->weight, 0.02, gen);
  if (label_embedder_) normal_(label_embedder_->embedding_table->weight, 0.02, gen);
  auto zero = [](torch::nn::Sequential& seq) {
    auto* lin = seq[1]->as<torch::nn::Linear>();
    lin->weight.zero_();
    lin->bias.zero_();
  };
  for (auto& b : *joint_blocks_) {
    auto* jb = b->as<MMDiTJointBlockImpl>();
    zero(jb->x_block->adaLN_modulation);
    zero(jb->context_block->adaLN_modulation);
  }
  zero(final_layer_->adaLN_modulation);
  final_layer_->linear->weight.zero_();
  final_layer_->linear->bias.zero_();
  pos_embed_.copy_(sincos_2d(cfg_.width, grid_h_, grid_w_).unsqueeze(0));
  if (control_embedder_) control_embedder_->initialize(gen);
}

std::vector<std::string> MMDiT::zero_initialised() const {
  std::vector<std::string> names;
  for (int64_t i = 0; i < cfg_.depth; ++i)
    for (const char* stream : {"x_block", "context_block"})
      for (const char* w : {"weight", "bias"})
        names.push_back("joint_blocks." + std::to_string(i) + "." + stream + ".adaLN_modulation.1." + w);
  for (const char* n : {"final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias",
                        "final_layer.linear.weight", "final_layer.linear.bias"})
    names.push_back(n);
  return names;
}

torch::Tensor MMDiT::unpatchify(const torch::Tensor& tokens) const {
  return models::unpatchify(tokens, grid_h_, grid_w_, cfg_.patch, out_channels_);
}

torch::Tensor MMDiT::run(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                         const torch::Tensor& key_keep, const torch::Tensor& pooled, const Condition& controls) {
  // [N,C,H,W] -> [N,D,h,w] -> [N,T,D], plus fixed positions
  const int64_t gh = x.size(2) / cfg_.patch, gw = x.size(3) / cfg_.patch;
  auto h = x_embedder_->proj->forward(x).flatten(2).transpose(1, 2) +
           pos_embed_for_grid(pos_embed_, grid_h_, grid_w_, gh, gw, cfg_.pos_embed_resampling, cfg_.pos_embed_grid);
  auto c = t_embedder_->forward(t);  // [N, D]
  if (y_embedder_) c = c + y_embedder_->forward(pooled);
  c = add_controls(c, control_embedder_, controls, "MMDiT");
  auto ctx = context_embedder_->forward(context);  // [N, L, D]
  for (auto& b : *joint_blocks_) std::tie(ctx, h) = b->as<MMDiTJointBlockImpl>()->forward(ctx, h, c, key_keep);
  return models::unpatchify(final_layer_->forward(h, c), gh, gw, cfg_.patch, out_channels_);  // [N, C_out, H, W]
}

torch::Tensor MMDiT::forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) {
  if (label_embedder_) {
    auto e = label_embedder_->forward(require_field(cond.labels, "labels", "MMDiT"));  // [N, D]
    return run(x, t, e.unsqueeze(1), torch::Tensor(), e, cond);  // one context token; e also pooled
  }
  auto tokens = tokens_with_drop(cond, "MMDiT");
  auto pooled = cfg_.semantic_in_adaln ? pooled_with_drop(cond, "MMDiT") : torch::Tensor();
  check_text(x, tokens, cfg_.mask_padding ? cond.token_mask : torch::Tensor(), pooled);
  return run(x, t, tokens, cfg_.mask_padding ? cond.token_mask : torch::Tensor(), pooled, cond);
}

void MMDiT::check_text(const torch::Tensor& x, const torch::Tensor& tokens, const torch::Tensor& mask,
                       const torch::Tensor& pooled) const {
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(0) == x.size(0) && tokens.size(2) == cfg_.context_channels,
              "MMDiT: tokens must be [N, L, ", cfg_.context_channels, "], got ", tokens.sizes());
  TORCH_CHECK(
      !pooled.defined() || (pooled.dim() == 2 && pooled.size(0) == x.size(0) && pooled.size(1) == cfg_.pooled_channels),
      "MMDiT: pooled must be [N, ", cfg_.pooled_channels, "], got ", pooled.sizes());
  TORCH_CHECK(!mask.defined() || (mask.dim() == 2 && mask.size(0) == tokens.size(0) && mask.size(1) == tokens.size(1)),
              "MMDiT: mask must be [N, L] like tokens ", tokens.sizes(), ", got ", mask.sizes());
}

torch::Tensor MMDiT::forward_text(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& tokens,
                                  const torch::Tensor& mask, const torch::Tensor& pooled) {
  if (label_embedder_) throw Error("MMDiT: built for class conditioning; call forward(x, t, y)");
  if (cfg_.semantic_in_adaln) require_field(pooled, "pooled", "MMDiT");
  check_text(x, tokens, mask, pooled);
  return run(x, t, tokens, mask, pooled, Condition());
}

int64_t mmdit_param_count(const MMDiTConfig& c) {
  const int64_t D = c.width, p = c.patch, H = mlp_hidden(D, c.mlp_ratio), hd = D / c.heads;
  const int64_t co = c.learn_sigma ? 2 * c.in_channels : c.in_channels;
  const int64_t tokens = (c.latent_h / p) * (c.latent_w / p);
  const bool class_mode = c.num_classes > 0;
  const int64_t cc = class_mode ? D : c.context_channels, cp = class_mode ? D : c.pooled_channels;
  auto linear = [](int64_t in, int64_t out) { return in * out + out; };
  int64_t n = c.in_channels * p * p * D + D;                   // x_embedder
  n += tokens * D;                                             // pos_embed
  n += linear(256, D) + linear(D, D);                          // t_embedder
  if (c.semantic_in_adaln) n += linear(cp, D) + linear(D, D);  // y_embedder
  n += control_embedder_param_count(D, control_shape(c.controls));
  n += linear(cc, D);                            // context_embedder
  if (class_mode) n += (c.num_classes + 1) * D;  // label_embedder (with null row)
  const int64_t qkv = linear(D, 3 * D) + (c.qk_norm ? 2 * hd : 0);
  const int64_t full = linear(D, 6 * D) + qkv + linear(D, D) + linear(D, H) + linear(H, D);
  const int64_t pre_only = linear(D, 2 * D) + qkv;
  n += c.depth * full + (c.depth - 1) * full + pre_only;  // x streams + context streams
  n += linear(D, 2 * D) + linear(D, p * p * co);          // final_layer
  return n;
}

int64_t mmdit_param_matched_depth(const MMDiTConfig& config, int64_t target_params) {
  MMDiTConfig c = config;
  int64_t best = 1, best_err = std::numeric_limits<int64_t>::max();
  for (c.depth = 1; c.depth <= 256; ++c.depth) {
    const int64_t err = std::llabs(mmdit_param_count(c) - target_params);
    if (err < best_err) best = c.depth, best_err = err;
  }
  return best;
}

}  // namespace ldm::models

namespace ldm::models {

MMDiTConfig mmdit_config(const PresetInfo& p, const ModelGeometry& g, const RecipeSpec& recipe) {
  MMDiTConfig c;
  set_transformer_shape(c, p, g, recipe);
  c.num_classes = g.num_classes;
  if (g.num_classes <= 0) c.context_channels = c.pooled_channels = g.text_channels;
  c.controls = control_options(recipe);
  c.mask_padding = recipe.conditioning.mask_padding;
  return c;
}

std::shared_ptr<Denoiser> build_mmdit(const PresetInfo& p, const ModelGeometry& g, const RecipeSpec& recipe) {
  return std::make_shared<MMDiT>(mmdit_config(p, g, recipe));  // SD3: the pooled condition in adaLN
}

LDM_REGISTER_DENOISER(mmdit, build_mmdit);

}  // namespace ldm::models
