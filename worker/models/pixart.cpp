#include "worker/models/pixart.h"

#include <cmath>
#include <limits>

#include "shared/core/error.h"
#include "worker/torch_compat.h"
#include "worker/models/pos_embed.h"

namespace ldm::models {

namespace {
// The reference's tables start as randn(rows, D) / √D.
void table_init_(torch::Tensor w, at::Generator& gen) { normal_(w, 1.0 / std::sqrt(double(w.size(-1))), gen); }
}  // namespace

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t heads_) : heads(heads_) {
  TORCH_CHECK(dim % heads == 0, "cross-attention: width ", dim, " is not divisible by ", heads, " heads");
  q_linear = register_module("q_linear", torch::nn::Linear(dim, dim));
  kv_linear = register_module("kv_linear", torch::nn::Linear(dim, 2 * dim));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cond,
                                          const torch::Tensor& mask) {
  const auto n = x.size(0), t = x.size(1), d = x.size(2), l = cond.size(1), hd = d / heads;
  auto q = q_linear->forward(x).reshape({n, t, heads, hd}).transpose(1, 2);                   // [N,h,T,hd]
  auto kv = kv_linear->forward(cond).reshape({n, l, 2, heads, hd}).permute({2, 0, 3, 1, 4});  // [2,N,h,L,hd]
  torch::Tensor any_valid, keep;  // [N] and [N, L] bool, only when a mask is given
  if (mask.defined()) {
    TORCH_CHECK(mask.dim() == 2 && mask.size(0) == n && mask.size(1) == l, "cross-attention: mask must be [", n, ", ",
                l, "], got ", mask.sizes());
    auto valid = mask.to(torch::kBool);
    any_valid = valid.any(1);
    // Samples without any valid key attend uniformly and are zeroed below, so no NaN appears.
    keep = valid.logical_or(any_valid.logical_not().unsqueeze(1));
  }
  auto out = torch_compat::attention(q, kv[0], kv[1], {}, keep).transpose(1, 2).reshape({n, t, d});  // [N,T,D]
  if (any_valid.defined()) out = out * any_valid.to(out.dtype()).view({n, 1, 1});
  return proj->forward(out);
}

CaptionEmbedderImpl::CaptionEmbedderImpl(int64_t caption_channels, int64_t dim, int64_t max_tokens, bool learn_null) {
  y_proj = register_module("y_proj", std::make_shared<torch::nn::Module>("Mlp"));
  fc1 = y_proj->register_module("fc1", torch::nn::Linear(caption_channels, dim));
  fc2 = y_proj->register_module("fc2", torch::nn::Linear(dim, dim));
  auto null = torch::zeros({max_tokens, caption_channels});  // drawn from the model generator in initialize()
  y_embedding = learn_null ? register_parameter("y_embedding", null) : register_buffer("y_embedding", null);
}

torch::Tensor CaptionEmbedderImpl::forward(const torch::Tensor& caption) {
  return fc2->forward(torch::gelu(fc1->forward(caption), "tanh"));
}

PixArtBlockImpl::PixArtBlockImpl(int64_t width, int64_t heads, double mlp_ratio) {
  norm1 = register_module("norm1", affine_free_norm(width));
  attn = register_module("attn", Attention(width, heads));
  cross_attn = register_module("cross_attn", CrossAttention(width, heads));
  norm2 = register_module("norm2", affine_free_norm(width));
  mlp = register_module("mlp", Mlp(width, static_cast<int64_t>(width * mlp_ratio)));
  scale_shift_table = register_parameter("scale_shift_table", torch::zeros({6, width}));  // drawn in initialize()
}

torch::Tensor PixArtBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cond, const torch::Tensor& mask,
                                       const torch::Tensor& t0) {
  const auto n = x.size(0), d = x.size(2);
  auto mod = (scale_shift_table.unsqueeze(0) + t0.reshape({n, 6, d})).unbind(1);  // 6 × [N, D]
  const auto &shift_msa = mod[0], &scale_msa = mod[1], &gate_msa = mod[2];
  const auto &shift_mlp = mod[3], &scale_mlp = mod[4], &gate_mlp = mod[5];
  auto h = x + gate_msa.unsqueeze(1) * attn->forward(modulate(norm1->forward(x), shift_msa, scale_msa));
  h = h + cross_attn->forward(h, cond, mask);  // not modulated, not gated
  return h + gate_mlp.unsqueeze(1) * mlp->forward(modulate(norm2->forward(h), shift_mlp, scale_mlp));
}

T2IFinalLayerImpl::T2IFinalLayerImpl(int64_t width, int64_t patch, int64_t out_channels) {
  norm_final = register_module("norm_final", affine_free_norm(width));
  linear = register_module("linear", torch::nn::Linear(width, patch * patch * out_channels));
  scale_shift_table = register_parameter("scale_shift_table", torch::zeros({2, width}));
}

torch::Tensor T2IFinalLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& t_emb) {
  auto mod = (scale_shift_table.unsqueeze(0) + t_emb.unsqueeze(1)).unbind(1);  // 2 × [N, D]
  return linear->forward(modulate(norm_final->forward(x), mod[0], mod[1]));
}

PixArt::PatchEmbed::PatchEmbed(int64_t in_channels, int64_t width, int64_t patch) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, width, patch).stride(patch)));
}

PixArt::PixArt(const PixArtConfig& c) : cfg_(c) {
  if (c.latent_h % c.patch || c.latent_w % c.patch)
    throw Error("PixArt: latent " + std::to_string(c.latent_h) + "x" + std::to_string(c.latent_w) +
                " is not divisible by patch " + std::to_string(c.patch));
  if ((c.num_classes > 0) == (c.caption_channels > 0))
    throw Error("PixArt: set exactly one of num_classes (class mode) and caption_channels (text mode)");
  if (c.caption_channels > 0 && c.max_tokens <= 0) throw Error("PixArt: text mode needs max_tokens > 0");
  out_channels_ = c.learn_sigma ? 2 * c.in_channels : c.in_channels;
  grid_h_ = c.latent_h / c.patch;
  grid_w_ = c.latent_w / c.patch;
  x_embedder_ = register_module("x_embedder", std::make_shared<PatchEmbed>(c.in_channels, c.width, c.patch));
  t_embedder_ = register_module("t_embedder", TimestepEmbedder(c.width));
  t_block_ =
      register_module("t_block", torch::nn::Sequential(torch::nn::SiLU(), torch::nn::Linear(c.width, 6 * c.width)));
  if (text_mode())
    caption_embedder_ =
        register_module("y_embedder", CaptionEmbedder(c.caption_channels, c.width, c.max_tokens, c.learn_null_caption));
  else label_embedder_ = register_module("y_embedder", LabelEmbedder(c.num_classes, c.width, /*with_null_class=*/true));
  pos_embed_ = register_parameter("pos_embed", sincos_2d(c.width, grid_h_, grid_w_).unsqueeze(0),
                                  /*requires_grad=*/false);
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks_->push_back(PixArtBlock(c.width, c.heads, c.mlp_ratio));
  final_layer_ = register_module("final_layer", T2IFinalLayer(c.width, c.patch, out_channels_));
  control_embedder_ = add_control_embedder(*this, c.controls, c.width);
}

void PixArt::initialize(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  // As the reference's initialize_weights(): xavier-uniform Linear weights with zero bias; the patch
  // embedding like a Linear; N(0, 0.02) for the timestep MLP, t_block and the caption MLP (and, as
  // DiT, the label table); zero cross-attention output projections and the output linear. The
  // reference leaves the scale_shift tables and the null caption at their construction values,
  // randn / √(last dim); they are redrawn here from `gen`.
  init_linears_and_patch_embed_(*this, x_embedder_->proj, gen);
  normal_(t_embedder_->mlp[0]->as<torch::nn::Linear>()->weight, 0.02, gen);
  normal_(t_embedder_->mlp[2]->as<torch::nn::Linear>()->weight, 0.02, gen);
  normal_(t_block_[1]->as<torch::nn::Linear>()->weight, 0.02, gen);
  if (text_mode()) {
    normal_(caption_embedder_->fc1->weight, 0.02, gen);
    normal_(caption_embedder_->fc2->weight, 0.02, gen);
    table_init_(caption_embedder_->y_embedding, gen);
  } else {
    normal_(label_embedder_->embedding_table->weight, 0.02, gen);
  }
  for (auto& b : *blocks_) {
    auto* block = b->as<PixArtBlockImpl>();
    table_init_(block->scale_shift_table, gen);
    zero_linear_(block->cross_attn->proj);
  }
  table_init_(final_layer_->scale_shift_table, gen);
  zero_linear_(final_layer_->linear);
  pos_embed_.copy_(sincos_2d(cfg_.width, grid_h_, grid_w_).unsqueeze(0));
  if (control_embedder_) control_embedder_->initialize(gen);
}

std::vector<std::string> PixArt::zero_initialised() const {
  std::vector<std::string> names;
  for (int64_t i = 0; i < cfg_.depth; ++i)
    for (const char* w : {"weight", "bias"}) names.push_back("blocks." + std::to_string(i) + ".cross_attn.proj." + w);
  names.push_back("final_layer.linear.weight");
  names.push_back("final_layer.linear.bias");
  return names;
}

torch::Tensor PixArt::null_caption() const {
  TORCH_CHECK(text_mode(), "PixArt: null_caption() needs text mode");
  return caption_embedder_->y_embedding;
}

torch::Tensor PixArt::unpatchify(const torch::Tensor& tokens) const {
  return models::unpatchify(tokens, grid_h_, grid_w_, cfg_.patch, out_channels_);
}

torch::Tensor PixArt::run(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& cond,
                          const torch::Tensor& mask, const Condition& controls) {
  // [N,C,H,W] -> [N,D,h,w] -> [N,T,D], plus fixed positions
  const int64_t gh = x.size(2) / cfg_.patch, gw = x.size(3) / cfg_.patch;
  auto h = x_embedder_->proj->forward(x).flatten(2).transpose(1, 2) +
           pos_embed_for_grid(pos_embed_, grid_h_, grid_w_, gh, gw, cfg_.pos_embed_resampling, cfg_.pos_embed_grid);
  auto t_emb = add_controls(t_embedder_->forward(t), control_embedder_, controls, "PixArt");  // [N, D]
  auto t0 = t_block_->forward(t_emb);  // [N, 6D], shared by every block (adaLN-single)
  for (auto& b : *blocks_) h = b->as<PixArtBlockImpl>()->forward(h, cond, mask, t0);
  return models::unpatchify(final_layer_->forward(h, t_emb), gh, gw, cfg_.patch, out_channels_);  // [N, C_out, H, W]
}

torch::Tensor PixArt::forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) {
  if (!text_mode())  // one label token: [N, 1, D]
    return run(x, t, label_embedder_->forward(require_field(cond.labels, "labels", "PixArt")).unsqueeze(1),
               /*mask=*/{}, cond);
  const auto& tokens = require_field(cond.tokens, "tokens", "PixArt");
  check_caption(tokens, x.size(0));
  auto caption = tokens;  // [N, L, Cc]
  if (cond.semantic_drop.defined()) caption = with_null_caption(tokens, cond.semantic_drop);
  return run(x, t, caption_embedder_->forward(caption), cfg_.mask_padding ? cond.token_mask : torch::Tensor(), cond);
}

void PixArt::check_caption(const torch::Tensor& tokens, int64_t n) const {
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(0) == n && tokens.size(2) == cfg_.caption_channels &&
                  tokens.size(1) <= cfg_.max_tokens,
              "PixArt: tokens must be [N, L <= ", cfg_.max_tokens, ", ", cfg_.caption_channels, "], got ",
              tokens.sizes());
}

torch::Tensor PixArt::with_null_caption(const torch::Tensor& tokens, const torch::Tensor& drop) const {
  TORCH_CHECK(tokens.size(1) == cfg_.max_tokens, "PixArt: caption dropout needs L == max_tokens");
  auto null = caption_embedder_->y_embedding.to(tokens.dtype()).unsqueeze(0);  // [1, L, Cc]
  return torch::where(drop.to(torch::kBool).view({-1, 1, 1}), null, tokens);
}

torch::Tensor PixArt::forward_text(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& tokens,
                                   const torch::Tensor& mask, const torch::Tensor& drop) {
  if (!text_mode()) throw Error("PixArt: forward_text needs text mode (caption_channels > 0)");
  check_caption(tokens, x.size(0));
  auto caption = drop.defined() ? with_null_caption(tokens, drop) : tokens;  // [N, L, Cc]
  return run(x, t, caption_embedder_->forward(caption), mask, Condition());  // condition tokens [N, L, D]
}

std::shared_ptr<Denoiser> build_pixart(const PresetInfo& p, const ModelGeometry& g, const RecipeSpec& recipe) {
  PixArtConfig c;
  set_transformer_shape(c, p, g, recipe);
  if (g.num_classes > 0) {
    c.num_classes = g.num_classes;
  } else {
    c.caption_channels = g.text_channels;
    c.max_tokens = g.text_tokens;
  }
  c.controls = control_options(recipe);
  c.mask_padding = recipe.conditioning.mask_padding;
  return std::make_shared<PixArt>(c);
}

LDM_REGISTER_DENOISER(pixart, build_pixart);

}  // namespace ldm::models
