#include "worker/models/unet.h"

#include <cmath>
#include <limits>
#include <set>

#include "shared/core/error.h"
#include "worker/torch_compat.h"
#include "worker/models/blocks.h"

namespace ldm::models {
namespace unet_blocks {
namespace {

// LDM's GroupNorm32: normalise in float32, return in the input's dtype (under autocast too).
template <class Norm>
torch::Tensor norm32(Norm& norm, const torch::Tensor& x) {
  torch_compat::NoAutocast fp32;
  return norm.forward(x.to(torch::kFloat32)).to(x.dtype());
}
torch::Tensor group_norm32(torch::nn::GroupNormImpl& norm, const torch::Tensor& x) { return norm32(norm, x); }

torch::nn::GroupNorm group_norm(int64_t channels, int64_t max_groups, double eps) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(norm_group_count(channels, max_groups), channels).eps(eps));
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2));
}

// PyTorch's default Linear/Conv init, drawn from `gen`: kaiming_uniform(a=√5) on the weight is
// U(±1/√fan_in), and the bias is U(±1/√fan_in) too (fan_in = weight.numel() / out_features).
void torch_default_init_(torch::Tensor& weight, torch::Tensor& bias, at::Generator& gen) {
  const double fan_in = double(weight.numel()) / double(weight.size(0));
  const double bound = 1.0 / std::sqrt(fan_in);
  weight.uniform_(-bound, bound, gen);
  if (bias.defined()) bias.uniform_(-bound, bound, gen);
}

void zero_conv_(torch::nn::Conv2dImpl& c) {
  c.weight.zero_();
  c.bias.zero_();
}

std::string sizes_text(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

}  // namespace

int64_t norm_group_count(int64_t channels, int64_t max_groups) {
  for (int64_t g = std::min(channels, max_groups); g > 1; --g)
    if (channels % g == 0) return g;
  return 1;
}

ResBlockImpl::ResBlockImpl(int64_t channels, int64_t emb_channels, int64_t out_channels, int64_t norm_groups) {
  in_layers = register_module("in_layers", torch::nn::Sequential(group_norm(channels, norm_groups, 1e-5),
                                                                 torch::nn::SiLU(), conv(channels, out_channels, 3)));
  emb_layers = register_module("emb_layers", silu_linear(emb_channels, out_channels));
  out_layers = register_module("out_layers",
                               torch::nn::Sequential(group_norm(out_channels, norm_groups, 1e-5), torch::nn::SiLU(),
                                                     torch::nn::Identity(), conv(out_channels, out_channels, 3)));
  if (out_channels != channels) skip_conv = register_module("skip_connection", conv(channels, out_channels, 1));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  auto h = group_norm32(*in_layers[0]->as<torch::nn::GroupNorm>(), x);
  h = in_layers[2]->as<torch::nn::Conv2d>()->forward(torch::silu(h));  // [N, out, H, W]
  auto e = emb_layers->forward(emb).to(h.dtype());                     // [N, out]
  h = h + e.unsqueeze(-1).unsqueeze(-1);
  h = torch::silu(group_norm32(*out_layers[0]->as<torch::nn::GroupNorm>(), h));
  h = out_layers[3]->as<torch::nn::Conv2d>()->forward(h);
  return (skip_conv ? skip_conv->forward(x) : x) + h;
}

DownsampleImpl::DownsampleImpl(int64_t channels) { op = register_module("op", conv(channels, channels, 3, 2)); }

torch::Tensor DownsampleImpl::forward(const torch::Tensor& x) { return op->forward(x); }

UpsampleImpl::UpsampleImpl(int64_t channels) {
  conv = register_module("conv", unet_blocks::conv(channels, channels, 3));
}

torch::Tensor UpsampleImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  auto up = F::interpolate(x, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{2 * x.size(2), 2 * x.size(3)})
                                  .mode(torch::kNearest));  // [N, C, 2H, 2W]
  return conv->forward(up);
}

CrossAttentionImpl::CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads_, int64_t dim_head_)
    : heads(heads_), dim_head(dim_head_) {
  const int64_t inner = heads * dim_head;
  to_q = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(query_dim, inner).bias(false)));
  to_k = register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(context_dim, inner).bias(false)));
  to_v = register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(context_dim, inner).bias(false)));
  to_out = register_module("to_out", torch::nn::Sequential(torch::nn::Linear(inner, query_dim), torch::nn::Identity()));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context,
                                          const torch::Tensor& mask) {
  const auto& ctx = context.defined() ? context : x;
  const int64_t n = x.size(0), t = x.size(1), l = ctx.size(1);
  auto q = to_q->forward(x).view({n, t, heads, dim_head}).transpose(1, 2);    // [N, h, T, dh]
  auto k = to_k->forward(ctx).view({n, l, heads, dim_head}).transpose(1, 2);  // [N, h, L, dh]
  auto v = to_v->forward(ctx).view({n, l, heads, dim_head}).transpose(1, 2);  // [N, h, L, dh]
  torch::Tensor keep;                                                         // [N, L]
  if (mask.defined()) {
    TORCH_CHECK(mask.dim() == 2 && mask.size(0) == n && mask.size(1) == l, "UNet cross-attention: mask must be [", n,
                ", ", l, "], got ", mask.sizes());
    // The reference fills masked keys with -finfo.max, so a sample without any valid key attends
    // uniformly; -inf on the masked keys of the other samples gives the same softmax, in any dtype.
    auto valid = mask.to(torch::kBool);
    keep = valid.logical_or(valid.any(1, /*keepdim=*/true).logical_not());
  }
  auto out =
      torch_compat::attention(q, k, v, {}, keep).transpose(1, 2).reshape({n, t, heads * dim_head});  // [N,T,inner]
  return to_out->forward(out);
}

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", torch::nn::Linear(dim_in, 2 * dim_out));
}

torch::Tensor GEGLUImpl::forward(const torch::Tensor& x) {
  auto parts = proj->forward(x).chunk(2, -1);  // value, gate: [..., dim_out] each
  return parts[0] * torch::gelu(parts[1]);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim) {
  net = register_module(
      "net", torch::nn::Sequential(GEGLU(dim, 4 * dim), torch::nn::Identity(), torch::nn::Linear(4 * dim, dim)));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) { return net->forward(x); }

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t dim_head,
                                                     int64_t context_dim) {
  // Registration order as the reference (attn1, ff, attn2, norm1..3) so parameters() lines up.
  attn1 = register_module("attn1", CrossAttention(dim, dim, heads, dim_head));
  ff = register_module("ff", FeedForward(dim));
  attn2 = register_module("attn2", CrossAttention(dim, context_dim, heads, dim_head));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  norm3 = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context,
                                                 const torch::Tensor& mask) {
  // The LayerNorms in float32 as CUDA autocast runs them (LibTorch 1.13's CPU autocast would give them
  // bf16 input with fp32 weights, which they refuse); in float32 training this changes nothing.
  auto h = attn1->forward(norm32(*norm1, x)) + x;
  h = attn2->forward(norm32(*norm2, h), context, mask) + h;
  return ff->forward(norm32(*norm3, h)) + h;
}

SpatialTransformerImpl::SpatialTransformerImpl(int64_t channels, int64_t heads, int64_t dim_head, int64_t depth,
                                               int64_t context_dim, int64_t norm_groups) {
  const int64_t inner = heads * dim_head;
  norm = register_module("norm", group_norm(channels, norm_groups, 1e-6));  // attention.py Normalize
  proj_in = register_module("proj_in", conv(channels, inner, 1));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t d = 0; d < depth; ++d)
    transformer_blocks->push_back(BasicTransformerBlock(inner, heads, dim_head, context_dim));
  proj_out = register_module("proj_out", conv(inner, channels, 1));
}

torch::Tensor SpatialTransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& context,
                                              const torch::Tensor& mask) {
  const int64_t n = x.size(0), hgt = x.size(2), wid = x.size(3);
  // In float32 (LDM's Normalize is a plain GroupNorm, which CUDA autocast runs in float32 anyway;
  // LibTorch 1.13's CPU autocast does not, and its group_norm refuses bf16 input with fp32 weights).
  auto h = proj_in->forward(unet_blocks::group_norm32(*norm, x));  // [N, inner, H, W]
  const int64_t inner = h.size(1);
  h = h.flatten(2).transpose(1, 2);  // [N, H·W, inner], row-major tokens
  for (auto& b : *transformer_blocks) h = b->as<BasicTransformerBlockImpl>()->forward(h, context, mask);
  h = h.transpose(1, 2).reshape({n, inner, hgt, wid});  // [N, inner, H, W]
  return proj_out->forward(h) + x;
}

ClassEmbedderImpl::ClassEmbedderImpl(int64_t rows, int64_t dim) {
  embedding = register_module("embedding", torch::nn::Embedding(rows, dim));
}

torch::Tensor ClassEmbedderImpl::forward(const torch::Tensor& labels) {
  return embedding->forward(labels.unsqueeze(1));  // [N] -> [N, 1, D]
}

}  // namespace unet_blocks

UNet::UNet(const UNetConfig& c) : cfg_(c) {
  auto bad = [](const std::string& msg) { throw SpecError("recipe.preset", "UNet: " + msg); };
  if (c.model_channels <= 0 || c.channel_mult.empty() || c.num_res_blocks <= 0 || c.transformer_depth <= 0)
    bad("model_channels, channel_mult, num_res_blocks and transformer_depth must be set and positive");
  if (c.in_channels <= 0) throw Error("UNet: in_channels must be positive, got " + std::to_string(c.in_channels));
  if (text_task() && c.text_channels <= 0)
    throw SpecError("task", "UNet: neither a class task (num_classes > 0) nor a text task (text_channels > 0)");
  if (c.context_dim <= 0) bad("context_dim must be positive");
  const int64_t div = size_divisor();
  if (c.latent_h % div || c.latent_w % div)
    throw Error("UNet: latent " + unet_blocks::sizes_text(c.latent_h, c.latent_w) +
                " is not divisible by 2^(levels-1) = " + std::to_string(div) + " (" +
                std::to_string(c.channel_mult.size()) + " resolution levels)");
  out_channels_ = c.learn_sigma ? 2 * c.in_channels : c.in_channels;
  const int64_t mc = c.model_channels, E = 4 * mc;
  const int64_t ctx_dim = text_task() ? c.text_channels : c.context_dim;
  const std::set<int64_t> attn_ds(c.attention_ds.begin(), c.attention_ds.end());

  // (heads, dim_head) at a site of `ch` channels, as UNetModel with use_spatial_transformer.
  auto heads_for = [&](int64_t ch) -> std::pair<int64_t, int64_t> {
    const int64_t heads = c.head_channels > 0 ? ch / c.head_channels : c.num_heads;
    if (heads <= 0 || ch % heads || (c.head_channels > 0 && ch % c.head_channels))
      bad("attention width " + std::to_string(ch) + " is not divisible into heads (head_channels " +
          std::to_string(c.head_channels) + ", num_heads " + std::to_string(c.num_heads) + ")");
    return {heads, ch / heads};
  };
  auto transformer = [&](int64_t ch) {
    auto [heads, dim_head] = heads_for(ch);
    return unet_blocks::SpatialTransformer(ch, heads, dim_head, c.transformer_depth, ctx_dim, c.norm_groups);
  };
  auto res = [&](int64_t in, int64_t out) { return unet_blocks::ResBlock(in, E, out, c.norm_groups); };

  time_embed_ = register_module(
      "time_embed", torch::nn::Sequential(torch::nn::Linear(mc, E), torch::nn::SiLU(), torch::nn::Linear(E, E)));
  input_blocks_ = register_module("input_blocks", torch::nn::ModuleList());
  {
    torch::nn::ModuleList first;
    first->push_back(unet_blocks::conv(c.in_channels, mc, 3));
    input_blocks_->push_back(first);
  }
  std::vector<int64_t> skip_channels = {mc};  // input_block_chans
  int64_t ch = mc, ds = 1;
  const int64_t levels = static_cast<int64_t>(c.channel_mult.size());
  for (int64_t level = 0; level < levels; ++level) {
    for (int64_t r = 0; r < c.num_res_blocks; ++r) {
      torch::nn::ModuleList layers;
      const int64_t out = c.channel_mult[level] * mc;
      layers->push_back(res(ch, out));
      ch = out;
      if (attn_ds.count(ds)) layers->push_back(transformer(ch));
      input_blocks_->push_back(layers);
      skip_channels.push_back(ch);
    }
    if (level != levels - 1) {
      torch::nn::ModuleList down;
      down->push_back(unet_blocks::Downsample(ch));
      input_blocks_->push_back(down);
      skip_channels.push_back(ch);
      ds *= 2;
    }
  }
  middle_block_ = register_module("middle_block", torch::nn::ModuleList());
  middle_block_->push_back(res(ch, ch));
  middle_block_->push_back(transformer(ch));
  middle_block_->push_back(res(ch, ch));
  output_blocks_ = register_module("output_blocks", torch::nn::ModuleList());
  for (int64_t level = levels - 1; level >= 0; --level) {
    for (int64_t i = 0; i <= c.num_res_blocks; ++i) {
      torch::nn::ModuleList layers;
      const int64_t skip = skip_channels.back();
      skip_channels.pop_back();
      const int64_t out = c.channel_mult[level] * mc;
      layers->push_back(res(ch + skip, out));
      ch = out;
      if (attn_ds.count(ds)) layers->push_back(transformer(ch));
      if (level > 0 && i == c.num_res_blocks) {
        layers->push_back(unet_blocks::Upsample(ch));
        ds /= 2;
      }
      output_blocks_->push_back(layers);
    }
  }
  out_ = register_module("out", torch::nn::Sequential(unet_blocks::group_norm(ch, c.norm_groups, 1e-5),
                                                      torch::nn::SiLU(), unet_blocks::conv(mc, out_channels_, 3)));
  if (!text_task())
    class_embedder_ = register_module(
        "class_embedder", unet_blocks::ClassEmbedder(c.num_classes + (c.null_class ? 1 : 0), c.context_dim));
  control_embedder_ = add_control_embedder(*this, c.controls, E);
}

void UNet::initialize(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  // One pass in registration order, so the draws are a function of the structure and the seed.
  for (auto& item : named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (item.key().rfind("control_embedder", 0) == 0) continue;  // its own initialize() below
    auto& m = item.value();
    if (auto* lin = m->as<torch::nn::Linear>()) {
      unet_blocks::torch_default_init_(lin->weight, lin->bias, gen);
    } else if (auto* cv = m->as<torch::nn::Conv2d>()) {
      unet_blocks::torch_default_init_(cv->weight, cv->bias, gen);
    } else if (auto* emb = m->as<torch::nn::Embedding>()) {
      normal_(emb->weight, 1.0, gen);  // nn.Embedding's default N(0, 1), as LDM's ClassEmbedder
    } else if (auto* gn = m->as<torch::nn::GroupNorm>()) {
      gn->weight.fill_(1.0);
      gn->bias.zero_();
    } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
  // zero_module sites.
  for (auto& item : named_modules("", false)) {
    if (auto* rb = item.value()->as<unet_blocks::ResBlockImpl>()) {
      unet_blocks::zero_conv_(*rb->out_layers[3]->as<torch::nn::Conv2d>());
    } else if (auto* st = item.value()->as<unet_blocks::SpatialTransformerImpl>()) {
      unet_blocks::zero_conv_(*st->proj_out);
    }
  }
  unet_blocks::zero_conv_(*out_[2]->as<torch::nn::Conv2d>());
  if (control_embedder_) control_embedder_->initialize(gen);
}

std::vector<std::string> UNet::zero_initialised() const {
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  std::vector<std::string> names;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& k = item.key();
    if (k.rfind("control_embedder", 0) == 0) continue;
    for (const char* w : {"weight", "bias"}) {
      const std::string suffix = std::string(".") + w;
      if (ends_with(k, ".out_layers.3" + suffix) || ends_with(k, ".proj_out" + suffix) || k == "out.2" + suffix)
        names.push_back(k);
    }
  }
  return names;
}

torch::Tensor UNet::context(const Condition& cond) {
  if (!text_task()) {
    auto labels = require_field(cond.labels, "labels", "UNet");
    // The caller normally already wrote the null class; doing it again is idempotent.
    if (cond.semantic_drop.defined() && cfg_.null_class)
      labels = torch::where(cond.semantic_drop.to(torch::kBool), torch::full_like(labels, cfg_.num_classes), labels);
    return class_embedder_->forward(labels);  // [N, 1, context_dim]
  }
  auto tokens = tokens_with_drop(cond, "UNet");  // [N, L, text_channels]
  if (tokens.dim() != 3 || tokens.size(2) != cfg_.text_channels)
    throw Error("UNet: caption tokens must be [N, L, " + std::to_string(cfg_.text_channels) + "], got " +
                std::to_string(tokens.dim()) + "-d with last side " + std::to_string(tokens.size(-1)));
  return tokens;
}

torch::Tensor UNet::run_sequence(torch::nn::ModuleListImpl& seq, torch::Tensor h, const torch::Tensor& emb,
                                 const torch::Tensor& ctx, const torch::Tensor& mask) {
  // TimestepEmbedSequential: ResBlocks take emb, transformers the context, the rest x only.
  for (auto& m : seq) {
    if (auto* rb = m->as<unet_blocks::ResBlockImpl>()) h = rb->forward(h, emb);
    else if (auto* st = m->as<unet_blocks::SpatialTransformerImpl>()) h = st->forward(h, ctx, mask);
    else if (auto* dn = m->as<unet_blocks::DownsampleImpl>()) h = dn->forward(h);
    else if (auto* up = m->as<unet_blocks::UpsampleImpl>()) h = up->forward(h);
    else h = m->as<torch::nn::Conv2d>()->forward(h);
  }
  return h;
}

torch::Tensor UNet::forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) {
  if (x.dim() != 4 || x.size(1) != cfg_.in_channels)
    throw Error("UNet: input must be [N, " + std::to_string(cfg_.in_channels) + ", H, W], got " +
                std::to_string(x.dim()) + "-d with " + std::to_string(x.dim() > 1 ? x.size(1) : 0) + " channels");
  const int64_t div = size_divisor();
  if (x.size(2) % div || x.size(3) % div)
    throw Error("UNet: latent " + unet_blocks::sizes_text(x.size(2), x.size(3)) +
                " is not divisible by 2^(levels-1) = " + std::to_string(div) + " (" +
                std::to_string(cfg_.channel_mult.size()) + " resolution levels)");
  auto ctx = context(cond).to(x.dtype());
  torch::Tensor mask;
  if (text_task() && cfg_.mask_padding) mask = require_field(cond.token_mask, "token_mask", "UNet");
  auto* lin0 = time_embed_[0]->as<torch::nn::Linear>();
  auto t_freq = TimestepEmbedderImpl::frequency_embedding(t, cfg_.model_channels)  // [N, mc], cos half first
                    .to(lin0->weight.dtype());
  auto emb = time_embed_->forward(t_freq);  // [N, 4·mc]
  emb = add_controls(emb, control_embedder_, cond, "UNet");

  std::vector<torch::Tensor> hs;  // skip activations, one per input block
  auto h = x;
  for (auto& m : *input_blocks_) {
    h = run_sequence(*m->as<torch::nn::ModuleListImpl>(), h, emb, ctx, mask);
    hs.push_back(h);
  }
  h = run_sequence(*middle_block_, h, emb, ctx, mask);
  for (auto& m : *output_blocks_) {
    h = torch::cat({h, hs.back()}, 1);  // [N, ch + skip, h, w]
    hs.pop_back();
    h = run_sequence(*m->as<torch::nn::ModuleListImpl>(), h, emb, ctx, mask);
  }
  h = torch::silu(unet_blocks::group_norm32(*out_[0]->as<torch::nn::GroupNorm>(), h));
  return out_[2]->as<torch::nn::Conv2d>()->forward(h);  // [N, C_out, H, W]
}

UNetConfig unet_config(const PresetInfo& p, const ModelGeometry& g, const RecipeSpec& recipe) {
  UNetConfig c;
  c.in_channels = g.in_channels;
  c.latent_h = g.latent_h;
  c.latent_w = g.latent_w;
  c.model_channels = p.model_channels;
  c.channel_mult.assign(p.channel_mult.begin(), p.channel_mult.end());
  c.num_res_blocks = p.num_res_blocks;
  c.attention_ds.assign(p.attention_ds.begin(), p.attention_ds.end());
  c.head_channels = p.head_channels;
  c.num_heads = p.heads > 0 ? p.heads : 1;
  c.transformer_depth = p.transformer_depth;
  c.num_classes = g.num_classes > 0 ? g.num_classes : 0;
  c.text_channels = c.num_classes > 0 ? 0 : g.text_channels;
  c.context_dim = c.num_classes > 0 ? p.context_dim : g.text_channels;
  c.learn_sigma = recipe.learn_sigma;
  c.mask_padding = recipe.conditioning.mask_padding;
  c.controls = control_options(recipe);
  return c;
}

std::shared_ptr<Denoiser> build_unet(const PresetInfo& preset, const ModelGeometry& geometry,
                                     const RecipeSpec& recipe) {
  if (geometry.num_classes <= 0 && geometry.text_channels <= 0)
    throw SpecError("task", "UNet needs a class task (num_classes > 0) or a text task (text_channels > 0)");
  return std::make_shared<UNet>(unet_config(preset, geometry, recipe));
}

LDM_REGISTER_DENOISER(unet, build_unet);

}  // namespace ldm::models
