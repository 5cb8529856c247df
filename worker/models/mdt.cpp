#include "worker/models/mdt.h"

#include <algorithm>
#include <cmath>

#include "shared/core/error.h"
#include "worker/torch_compat.h"

namespace ldm::models {

// Named (not anonymous) so unity builds that merge recipe files do not collide.
namespace mdt_detail {

// [T, T] int64: BEiT's relative_position_index for a grid_h × grid_w grid, row-major tokens:
// (Δrow + grid_h − 1)·(2·grid_w − 1) + (Δcol + grid_w − 1).
torch::Tensor relative_position_index(int64_t grid_h, int64_t grid_w) {
  auto rows = torch::arange(grid_h, torch::kLong).repeat_interleave(grid_w);  // token -> row
  auto cols = torch::arange(grid_w, torch::kLong).repeat({grid_h});           // token -> column
  auto d_row = rows.unsqueeze(1) - rows.unsqueeze(0) + (grid_h - 1);          // [T, T]
  auto d_col = cols.unsqueeze(1) - cols.unsqueeze(0) + (grid_w - 1);          // [T, T]
  return d_row * (2 * grid_w - 1) + d_col;
}

// The full [T, T] index restricted to each sample's kept tokens: [N, K, K] with entry (i, j) =
// full[ids_keep[i], ids_keep[j]], which is the reference's get_masked_rel_bias done on indices.
torch::Tensor masked_index(const torch::Tensor& full, const torch::Tensor& ids_keep) {
  const auto n = ids_keep.size(0), k = ids_keep.size(1), t = full.size(0);
  auto rows = full.index_select(0, ids_keep.reshape(-1)).view({n, k, t});  // [N, K, T]
  return rows.gather(2, ids_keep.unsqueeze(1).expand({n, k, k}));          // [N, K, K]
}

// timm's trunc_normal_(std=0.02) truncates at ±2 absolute, i.e. at 100σ: a normal draw in practice.
void trunc_normal_002_(torch::Tensor w, at::Generator& gen) {
  normal_(w, 0.02, gen);
  torch::NoGradGuard g;
  w.clamp_(-2.0, 2.0);
}

}  // namespace mdt_detail

int64_t mdt_kept_tokens(int64_t tokens, double ratio) {
  // int(L * (1 - ratio)) as the reference; the epsilon keeps a product that should be an integer
  // (T·0.75 with T a multiple of 4) from truncating one below it after rounding.
  const auto kept = static_cast<int64_t>(std::floor(double(tokens) * (1.0 - ratio) + 1e-9));
  return std::max<int64_t>(1, std::min(tokens, kept));
}

TokenMask mdt_random_mask(int64_t n, int64_t tokens, double ratio, at::Generator& gen) {
  const int64_t keep = mdt_kept_tokens(tokens, ratio);
  auto noise = torch::rand({n, tokens}, gen, torch::TensorOptions().device(gen.device()));  // [N, T] in [0, 1)
  auto ids_shuffle = noise.argsort(/*dim=*/int64_t{1});                                     // ascending: small is kept
  TokenMask m;
  m.ids_keep = ids_shuffle.narrow(1, 0, keep).contiguous();                        // [N, K]
  m.mask = torch::ones({n, tokens}, noise.options()).scatter(1, m.ids_keep, 0.0);  // [N, T], 1 = masked
  return m;
}

RelativePositionBiasImpl::RelativePositionBiasImpl(int64_t grid_h, int64_t grid_w, int64_t heads_) : heads(heads_) {
  const int64_t distances = (2 * grid_h - 1) * (2 * grid_w - 1) + 3;
  relative_position_bias_table = register_parameter("relative_position_bias_table", torch::zeros({distances, heads}));
  relative_position_index =
      register_buffer("relative_position_index", mdt_detail::relative_position_index(grid_h, grid_w));
}

torch::Tensor RelativePositionBiasImpl::forward(const torch::Tensor& index) {
  auto sizes = index.sizes().vec();
  sizes.push_back(heads);
  auto bias = relative_position_bias_table.index_select(0, index.reshape(-1)).view(sizes);  // [..., heads]
  if (index.dim() == 2) return bias.permute({2, 0, 1}).unsqueeze(0);                        // [1, heads, T, T]
  return bias.permute({0, 3, 1, 2});                                                        // [N, heads, K, K]
}

MDTAttentionImpl::MDTAttentionImpl(int64_t dim, int64_t heads_, int64_t grid_h, int64_t grid_w) : heads(heads_) {
  TORCH_CHECK(dim % heads == 0, "mDT attention: width ", dim, " is not divisible by ", heads, " heads");
  qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
  rel_pos_bias = register_module("rel_pos_bias", RelativePositionBias(grid_h, grid_w, heads));
}

torch::Tensor MDTAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& rel_index) {
  const auto n = x.size(0), t = x.size(1), d = x.size(2), hd = d / heads;
  // [N,T,3D] -> [3, N, heads, T, hd]
  auto qkv_ = qkv->forward(x).reshape({n, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  auto bias = rel_pos_bias->forward(rel_index);  // [h,T,T], added to the scores
  auto out = torch_compat::attention(qkv_[0], qkv_[1], qkv_[2], bias).transpose(1, 2).reshape({n, t, d});  // [N,T,D]
  return proj->forward(out);
}

MDTBlockImpl::MDTBlockImpl(int64_t width, int64_t heads, double mlp_ratio, int64_t grid_h, int64_t grid_w, bool skip,
                           bool cross_attention) {
  norm1 = register_module("norm1", affine_free_norm(width));
  attn = register_module("attn", MDTAttention(width, heads, grid_h, grid_w));
  if (cross_attention) cross_attn = register_module("cross_attn", CrossAttention(width, heads));
  norm2 = register_module("norm2", affine_free_norm(width));
  mlp = register_module("mlp", Mlp(width, static_cast<int64_t>(width * mlp_ratio)));
  adaLN_modulation = register_module("adaLN_modulation", silu_linear(width, 6 * width));
  if (skip) skip_linear = register_module("skip_linear", torch::nn::Linear(2 * width, width));
}

torch::Tensor MDTBlockImpl::forward(const torch::Tensor& x_in, const torch::Tensor& c, const torch::Tensor& skip,
                                    const torch::Tensor& rel_index, const torch::Tensor& cond,
                                    const torch::Tensor& cond_mask) {
  auto x = x_in;
  if (skip_linear) {
    TORCH_CHECK(skip.defined(), "mDT block: a block with skip_linear needs its skip input");
    x = skip_linear->forward(torch::cat({x, skip}, -1));  // [N,T,2D] -> [N,T,D]
  }
  auto mod = adaLN_modulation->forward(c).chunk(6, 1);  // 6 × [N, D]
  const auto &shift_msa = mod[0], &scale_msa = mod[1], &gate_msa = mod[2];
  const auto &shift_mlp = mod[3], &scale_mlp = mod[4], &gate_mlp = mod[5];
  x = x + gate_msa.unsqueeze(1) * attn->forward(modulate(norm1->forward(x), shift_msa, scale_msa), rel_index);
  if (cross_attn) x = x + cross_attn->forward(x, cond, cond_mask);  // text task: not modulated, not gated (PixArt)
  return x + gate_mlp.unsqueeze(1) * mlp->forward(modulate(norm2->forward(x), shift_mlp, scale_mlp));
}

MDTCaptionProjectionImpl::MDTCaptionProjectionImpl(int64_t text_channels, int64_t dim) {
  y_proj = register_module("y_proj", std::make_shared<torch::nn::Module>("Mlp"));
  fc1 = y_proj->register_module("fc1", torch::nn::Linear(text_channels, dim));
  fc2 = y_proj->register_module("fc2", torch::nn::Linear(dim, dim));
}

torch::Tensor MDTCaptionProjectionImpl::forward(const torch::Tensor& tokens) {
  return fc2->forward(torch::gelu(fc1->forward(tokens), "tanh"));
}

MDT::MDT(const MDTConfig& c) : cfg_(c) {
  if (c.latent_h % c.patch || c.latent_w % c.patch)
    throw Error("mDT: latent " + std::to_string(c.latent_h) + "x" + std::to_string(c.latent_w) +
                " is not divisible by patch " + std::to_string(c.patch));
  if (c.decoder_depth < 0 || c.decoder_depth > c.depth || (c.depth - c.decoder_depth) % 2)
    throw Error("mDT: depth " + std::to_string(c.depth) + " minus decoder_depth " + std::to_string(c.decoder_depth) +
                " must be even and non-negative (equal encoder in/out halves)");
  if ((c.num_classes > 0) == (c.text_channels > 0))
    throw Error("mDT: set exactly one of num_classes (class task) and text_channels (text task)");
  if (!(c.mask_ratio >= 0.0 && c.mask_ratio < 1.0))
    throw Error("mDT: mask_ratio must be in [0, 1), got " + std::to_string(c.mask_ratio));
  out_channels_ = c.learn_sigma ? 2 * c.in_channels : c.in_channels;
  grid_h_ = c.latent_h / c.patch;
  grid_w_ = c.latent_w / c.patch;
  encoder_half_ = (c.depth - c.decoder_depth) / 2;
  const bool text = text_task();
  const int64_t T = grid_h_ * grid_w_;

  // Registration order = the reference's attribute order, so parameters() lists the same sequence.
  x_embedder_ = register_module("x_embedder", std::make_shared<DiT::PatchEmbed>(c.in_channels, c.width, c.patch));
  t_embedder_ = register_module("t_embedder", TimestepEmbedder(c.width));
  if (text) caption_embedder_ = register_module("y_embedder", MDTCaptionProjection(c.text_channels, c.width));
  else label_embedder_ = register_module("y_embedder", LabelEmbedder(c.num_classes, c.width, /*with_null_class=*/true));
  pos_embed_ = register_parameter("pos_embed", torch::zeros({1, T, c.width}));
  auto blocks = [&](const char* name, int64_t count, bool skip) {
    auto list = register_module(name, torch::nn::ModuleList());
    for (int64_t i = 0; i < count; ++i)
      list->push_back(MDTBlock(c.width, c.heads, c.mlp_ratio, grid_h_, grid_w_, skip, text));
    return list;
  };
  en_inblocks_ = blocks("en_inblocks", encoder_half_, false);
  en_outblocks_ = blocks("en_outblocks", encoder_half_, true);
  de_blocks_ = blocks("de_blocks", c.decoder_depth, true);
  sideblocks_ = blocks("sideblocks", 1, false);
  final_layer_ = register_module("final_layer", DiTFinalLayer(c.width, c.patch, out_channels_));
  decoder_pos_embed_ = register_parameter("decoder_pos_embed", torch::zeros({1, T, c.width}));
  // As the reference: trainable when masking is on, a frozen zero otherwise.
  mask_token_ = register_parameter("mask_token", torch::zeros({1, 1, c.width}), /*requires_grad=*/c.mask_ratio > 0);
  control_embedder_ = add_control_embedder(*this, c.controls, c.width);
}

void MDT::initialize(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  // As MDTv2.initialize_weights(): xavier-uniform Linear weights with zero bias; the patch
  // embedding like a Linear; N(0, 0.02) label table and timestep-MLP weights; sin-cos pos_embed and
  // decoder_pos_embed (learned from there); zero adaLN modulation in every block (encoder, decoder,
  // side) and in the final layer, zero output linear; mask_token N(0, 0.02) when masking is on
  // (zero otherwise). The relative-position tables are trunc_normal(0.02) as RelativePositionBias's
  // constructor. Text task (ours): the caption MLP N(0, 0.02) and zero cross-attention output
  // projections, as PixArt.
  init_linears_and_patch_embed_(*this, x_embedder_->proj, gen);
  if (text_task()) {
    normal_(caption_embedder_->fc1->weight, 0.02, gen);
    normal_(caption_embedder_->fc2->weight, 0.02, gen);
  } else {
    normal_(label_embedder_->embedding_table->weight, 0.02, gen);
  }
  normal_(t_embedder_->mlp[0]->as<torch::nn::Linear>()->weight, 0.02, gen);
  normal_(t_embedder_->mlp[2]->as<torch::nn::Linear>()->weight, 0.02, gen);
  for (auto* list : {&en_inblocks_, &en_outblocks_, &de_blocks_, &sideblocks_}) {
    for (auto& b : **list) {
      auto* block = b->as<MDTBlockImpl>();
      mdt_detail::trunc_normal_002_(block->attn->rel_pos_bias->relative_position_bias_table, gen);
      auto* lin = block->adaLN_modulation[1]->as<torch::nn::Linear>();
      lin->weight.zero_();
      lin->bias.zero_();
      if (block->cross_attn) zero_linear_(block->cross_attn->proj);
    }
  }
  auto* fl = final_layer_->adaLN_modulation[1]->as<torch::nn::Linear>();
  fl->weight.zero_();
  fl->bias.zero_();
  zero_linear_(final_layer_->linear);
  const auto sincos = sincos_2d(cfg_.width, grid_h_, grid_w_).unsqueeze(0);  // [1, T, D]
  pos_embed_.copy_(sincos);
  decoder_pos_embed_.copy_(sincos);
  if (cfg_.mask_ratio > 0) normal_(mask_token_, 0.02, gen);
  else mask_token_.zero_();
  if (control_embedder_) control_embedder_->initialize(gen);
}

std::vector<std::string> MDT::zero_initialised() const {
  std::vector<std::string> names;
  auto add_blocks = [&](const std::string& prefix, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      const std::string p = prefix + "." + std::to_string(i) + ".";
      names.push_back(p + "adaLN_modulation.1.weight");
      names.push_back(p + "adaLN_modulation.1.bias");
      if (text_task()) {
        names.push_back(p + "cross_attn.proj.weight");
        names.push_back(p + "cross_attn.proj.bias");
      }
    }
  };
  add_blocks("en_inblocks", encoder_half_);
  add_blocks("en_outblocks", encoder_half_);
  add_blocks("de_blocks", cfg_.decoder_depth);
  add_blocks("sideblocks", 1);
  for (const char* n : {"final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias",
                        "final_layer.linear.weight", "final_layer.linear.bias"})
    names.push_back(n);
  if (cfg_.mask_ratio <= 0) names.push_back("mask_token");  // frozen zero when masking is off
  return names;
}

torch::Tensor MDT::run(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond, const TokenMask* mask) {
  if (x.size(2) != cfg_.latent_h || x.size(3) != cfg_.latent_w)
    throw Error("mDT-v2 was built for " + std::to_string(cfg_.latent_h) + "x" + std::to_string(cfg_.latent_w) +
                " latents and got " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                ": other grids in one model (aspect-ratio buckets) are not supported yet for mDT-v2 "
                "(learned position maps and relative-position tables are resampled when weights are loaded "
                "into a model built for another resolution)");
  // [N,C,H,W] -> [N,D,h,w] -> [N,T,D], plus learned positions
  auto tokens = x_embedder_->proj->forward(x).flatten(2).transpose(1, 2) + pos_embed_;
  const auto n = tokens.size(0), T = tokens.size(1), d = tokens.size(2);
  auto c = t_embedder_->forward(t);  // [N, D]
  torch::Tensor caption, caption_mask;
  if (text_task()) {
    auto raw = tokens_with_drop(cond, "mDT");  // [N, L, Cc], dropped captions zeroed
    TORCH_CHECK(raw.dim() == 3 && raw.size(0) == n && raw.size(2) == cfg_.text_channels, "mDT: tokens must be [", n,
                ", L, ", cfg_.text_channels, "], got ", raw.sizes());
    caption = caption_embedder_->forward(raw.to(tokens.dtype()));  // [N, L, D]
    if (cfg_.mask_padding) caption_mask = require_field(cond.token_mask, "token_mask", "mDT");
  } else {
    c = c + label_embedder_->forward(require_field(cond.labels, "labels", "mDT"));
  }
  c = add_controls(c, control_embedder_, cond, "mDT");

  // Every block of one model shares the grid, hence the same relative_position_index.
  const auto& full_index = sideblocks_[0]->as<MDTBlockImpl>()->attn->rel_pos_bias->relative_position_index;  // [T, T]
  auto h = tokens;
  auto encoder_index = full_index;
  torch::Tensor ids_keep, token_mask;
  if (mask) {
    ids_keep = mask->ids_keep.to(tokens.device(), torch::kLong);        // [N, K]
    token_mask = mask->mask.to(tokens.device(), tokens.scalar_type());  // [N, T], 1 = masked
    TORCH_CHECK(ids_keep.dim() == 2 && ids_keep.size(0) == n && ids_keep.size(1) >= 1 && ids_keep.size(1) <= T,
                "mDT: ids_keep must be [", n, ", 1..", T, "], got ", ids_keep.sizes());
    TORCH_CHECK(token_mask.sizes() == torch::IntArrayRef({n, T}), "mDT: mask must be [", n, ", ", T, "], got ",
                token_mask.sizes());
    const auto k = ids_keep.size(1);
    h = tokens.gather(1, ids_keep.unsqueeze(-1).expand({n, k, d}));  // [N, K, D]
    encoder_index = mdt_detail::masked_index(full_index, ids_keep);  // [N, K, K]
  }

  // U-Net-like encoder: en_outblocks take the en_inblocks outputs last-first through skip_linear.
  std::vector<torch::Tensor> skips;
  for (auto& b : *en_inblocks_) {
    h = b->as<MDTBlockImpl>()->forward(h, c, {}, encoder_index, caption, caption_mask);
    skips.push_back(h);
  }
  for (auto& b : *en_outblocks_) {
    h = b->as<MDTBlockImpl>()->forward(h, c, skips.back(), encoder_index, caption, caption_mask);
    skips.pop_back();
  }

  if (mask) {
    // Side-interpolator: kept tokens back at their positions, mask_token elsewhere, decoder
    // positions; the side block's output replaces the masked positions only ("masked shortcut").
    const auto k = ids_keep.size(1);
    auto full = mask_token_.to(h.dtype()).repeat({n, T, 1}).scatter(1, ids_keep.unsqueeze(-1).expand({n, k, d}), h);
    full = full + decoder_pos_embed_;  // [N, T, D]
    auto side = full;
    for (auto& b : *sideblocks_) side = b->as<MDTBlockImpl>()->forward(side, c, {}, full_index, caption, caption_mask);
    auto m = token_mask.unsqueeze(-1);  // [N, T, 1]
    h = side * m + (1 - m) * full;
  } else {
    h = h + decoder_pos_embed_;  // inference: the side-interpolator is bypassed
  }

  // Decoder: every block fuses the (unmasked) patch embedding as a dense input skip.
  for (auto& b : *de_blocks_) h = b->as<MDTBlockImpl>()->forward(h, c, tokens, full_index, caption, caption_mask);
  return unpatchify(final_layer_->forward(h, c), grid_h_, grid_w_, cfg_.patch, out_channels_);  // [N, C_out, H, W]
}

torch::Tensor MDT::forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) {
  return run(x, t, cond, nullptr);
}

torch::Tensor MDT::forward_masked(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond,
                                  const TokenMask& mask) {
  return run(x, t, cond, &mask);
}

std::vector<torch::Tensor> MDT::training_outputs(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond,
                                                 at::Generator& mask_gen) {
  auto unmasked = run(x, t, cond, nullptr);
  if (cfg_.mask_ratio <= 0) return {unmasked};
  // One ratio per batch, then per-sample token choices, all from mask_gen (reference: torch.rand).
  const double u = torch::rand({1}, mask_gen, torch::TensorOptions().device(mask_gen.device())).item<double>();
  auto mask = mdt_random_mask(x.size(0), tokens(), cfg_.mask_ratio + cfg_.mask_ratio_jitter * u, mask_gen);
  // Drawn on the generator's device (the CPU: the same choices wherever the model runs).
  mask.ids_keep = mask.ids_keep.to(x.device());
  mask.mask = mask.mask.to(x.device());
  return {unmasked, run(x, t, cond, &mask)};
}

std::shared_ptr<Denoiser> build_mdt(const PresetInfo& p, const ModelGeometry& g, const RecipeSpec& recipe) {
  if (g.num_classes <= 0 && g.text_channels <= 0)
    throw SpecError("task", "mdt needs classes (class task) or text token features (text task)");
  if (!(recipe.mask_ratio >= 0.0 && recipe.mask_ratio < 1.0))
    throw SpecError("recipe.mask_ratio", "must be in [0, 1), got " + std::to_string(recipe.mask_ratio));
  MDTConfig c;
  set_transformer_shape(c, p, g, recipe);
  c.decoder_depth = p.decoder_depth;
  if (g.num_classes > 0) {
    c.num_classes = g.num_classes;
    c.text_channels = 0;
  } else {
    c.num_classes = 0;
    c.text_channels = g.text_channels;
  }
  c.mask_padding = recipe.conditioning.mask_padding;
  c.mask_ratio = recipe.mask_ratio;
  c.controls = control_options(recipe);
  return std::make_shared<MDT>(c);
}

LDM_REGISTER_DENOISER(mdt, build_mdt);

}  // namespace ldm::models
