#include "worker/models/blocks.h"

#include <cmath>

#include "worker/torch_compat.h"

namespace ldm::models {

torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads_) : heads(heads_) {
  TORCH_CHECK(dim % heads == 0, "attention: width ", dim, " is not divisible by ", heads, " heads");
  qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const auto n = x.size(0), t = x.size(1), d = x.size(2), hd = d / heads;
  // [N,T,3D] -> [3, N, heads, T, hd]
  auto qkv_ = qkv->forward(x).reshape({n, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  auto out = torch_compat::attention(qkv_[0], qkv_[1], qkv_[2]).transpose(1, 2).reshape({n, t, d});  // [N,T,D]
  return proj->forward(out);
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2->forward(torch::gelu(fc1->forward(x), "tanh")); }

TimestepEmbedderImpl::TimestepEmbedderImpl(int64_t dim, int64_t frequency_size_) : frequency_size(frequency_size_) {
  // Keys mlp.0 / mlp.2 as in DiT (mlp.1 is the parameter-free SiLU).
  mlp = register_module("mlp", torch::nn::Sequential(torch::nn::Linear(frequency_size, dim), torch::nn::SiLU(),
                                                     torch::nn::Linear(dim, dim)));
}

torch::Tensor TimestepEmbedderImpl::frequency_embedding(const torch::Tensor& t, int64_t size, double max_period) {
  const int64_t half = size / 2;
  auto freqs = torch::exp(-std::log(max_period) *
                          torch::arange(half, torch::TensorOptions().dtype(torch::kFloat32).device(t.device())) /
                          half);                                        // [half]
  auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);  // [N, half]
  auto emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);      // [N, 2·half]
  if (size % 2) emb = torch::cat({emb, torch::zeros_like(emb.narrow(1, 0, 1))}, -1);
  return emb;
}

torch::Tensor TimestepEmbedderImpl::forward(const torch::Tensor& t) {
  return mlp->forward(frequency_embedding(t, frequency_size));
}

VectorEmbedderImpl::VectorEmbedderImpl(int64_t in, int64_t width) {
  mlp = register_module(
      "mlp", torch::nn::Sequential(torch::nn::Linear(in, width), torch::nn::SiLU(), torch::nn::Linear(width, width)));
}

LabelEmbedderImpl::LabelEmbedderImpl(int64_t num_classes, int64_t dim, bool with_null_class) {
  embedding_table =
      register_module("embedding_table", torch::nn::Embedding(num_classes + (with_null_class ? 1 : 0), dim));
}

torch::Tensor LabelEmbedderImpl::forward(const torch::Tensor& labels) { return embedding_table->forward(labels); }

torch::Tensor sincos_2d(int64_t dim, int64_t grid_h, int64_t grid_w) {
  TORCH_CHECK(dim % 4 == 0, "sin-cos positional embedding: width ", dim, " must be divisible by 4");
  auto one_d = [&](const torch::Tensor& pos) {  // pos [T] -> [T, dim/2]: sin | cos
    const int64_t half = dim / 4;
    auto omega = torch::arange(half, torch::kFloat64) / double(half);
    omega = 1.0 / torch::pow(10000.0, omega);
    auto out = pos.to(torch::kFloat64).unsqueeze(1) * omega.unsqueeze(0);  // [T, dim/4]
    return torch::cat({out.sin(), out.cos()}, 1);
  };
  auto rows = torch::arange(grid_h, torch::kFloat64).repeat_interleave(grid_w);  // token t -> row
  auto cols = torch::arange(grid_w, torch::kFloat64).repeat({grid_h});           // token t -> column
  return torch::cat({one_d(cols), one_d(rows)}, 1).to(torch::kFloat32);          // [T, dim]
}

torch::nn::LayerNorm affine_free_norm(int64_t width) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).elementwise_affine(false).eps(1e-6));
}

torch::nn::Sequential silu_linear(int64_t in, int64_t out) {
  return torch::nn::Sequential(torch::nn::SiLU(), torch::nn::Linear(in, out));
}

void zero_linear_(torch::nn::Linear& linear) {
  torch::NoGradGuard g;
  linear->weight.zero_();
  linear->bias.zero_();
}

torch::Tensor unpatchify(const torch::Tensor& tokens, int64_t grid_h, int64_t grid_w, int64_t patch, int64_t channels) {
  const int64_t n = tokens.size(0), p = patch;
  // [N, h·w, p·p·C] -> [N, h, w, p, p, C] -> [N, C, h, p, w, p] -> [N, C, h·p, w·p]
  return tokens.reshape({n, grid_h, grid_w, p, p, channels})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({n, channels, grid_h * p, grid_w * p});
}

void init_linears_and_patch_embed_(torch::nn::Module& module, torch::nn::Conv2d& patch_proj, at::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      xavier_uniform_(lin->weight, gen);
      lin->bias.zero_();
    }
  }
  xavier_uniform_(patch_proj->weight, gen);
  patch_proj->bias.zero_();
}

void xavier_uniform_(torch::Tensor w, at::Generator& gen) {
  torch::NoGradGuard g;
  const double fan_out = double(w.size(0));
  const double fan_in = double(w.numel()) / fan_out;
  const double bound = std::sqrt(6.0 / (fan_in + fan_out));
  w.uniform_(-bound, bound, gen);
}

void normal_(torch::Tensor w, double std, at::Generator& gen) {
  torch::NoGradGuard g;
  w.normal_(0.0, std, gen);
}

}  // namespace ldm::models
