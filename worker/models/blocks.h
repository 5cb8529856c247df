// Building blocks shared by the recipe files: attention, MLP, embedders, adaLN modulation,
// sin-cos positional embeddings, explicit initialisation with our own generators.
// Submodule names follow the reference implementations (timm / DiT) so state-dict keys match.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace ldm::models {

// x * (1 + scale) + shift, with shift/scale [N, D] broadcast over tokens of x [N, T, D].
torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale);

// Multi-head self-attention as timm's Attention: qkv (one Linear), softmax(QKᵀ/√d)V, proj.
struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);  // [N, T, D] -> [N, T, D]
  int64_t heads;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

// fc1 -> GELU(tanh) -> fc2, as timm's Mlp in DiT.
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

// Scalar timesteps -> D-dim vector: sinusoidal frequencies (cos first, as DiT) -> Linear-SiLU-Linear.
struct TimestepEmbedderImpl : torch::nn::Module {
  TimestepEmbedderImpl(int64_t dim, int64_t frequency_size = 256);
  torch::Tensor forward(const torch::Tensor& t);  // [N] float -> [N, D]
  static torch::Tensor frequency_embedding(const torch::Tensor& t, int64_t size, double max_period = 10000);
  int64_t frequency_size;
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(TimestepEmbedder);

// Class labels -> vectors; row `num_classes` is the learned null class for classifier-free guidance.
struct LabelEmbedderImpl : torch::nn::Module {
  LabelEmbedderImpl(int64_t num_classes, int64_t dim, bool with_null_class);
  torch::Tensor forward(const torch::Tensor& labels);  // [N] int64 -> [N, D]
  torch::nn::Embedding embedding_table{nullptr};
};
TORCH_MODULE(LabelEmbedder);

// Pooled vector -> width: Linear-SiLU-Linear (SD3's VectorEmbedder; keys mlp.0 / mlp.2).
struct VectorEmbedderImpl : torch::nn::Module {
  VectorEmbedderImpl(int64_t in, int64_t width);
  torch::Tensor forward(const torch::Tensor& v) { return mlp->forward(v); }  // [N,Cp] -> [N,D]
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(VectorEmbedder);

// 2-D sin-cos positional embedding for a grid_h × grid_w token grid, row-major tokens: the first
// half of the channels encodes the column, the second half the row (as DiT/MAE). [T, D] float32.
torch::Tensor sincos_2d(int64_t dim, int64_t grid_h, int64_t grid_w);

// LayerNorm without learned scale/shift (eps 1e-6), as DiT-style blocks use before modulation.
torch::nn::LayerNorm affine_free_norm(int64_t width);
// SiLU -> Linear(in, out): the adaLN modulation head; state keys "<name>.1.weight/bias" as the
// references (index 0 is the parameter-free SiLU).
torch::nn::Sequential silu_linear(int64_t in, int64_t out);
void zero_linear_(torch::nn::Linear& linear);  // weight and bias to zero (adaLN-Zero outputs)

// [N, h·w, p·p·C] tokens -> [N, C, h·p, w·p]: the inverse of the patch embedding's token layout.
torch::Tensor unpatchify(const torch::Tensor& tokens, int64_t grid_h, int64_t grid_w, int64_t patch, int64_t channels);

// The common start of the DiT-family initialisations: xavier-uniform weights and zero biases for
// every Linear below `module`, and the patch-embedding convolution treated like a Linear.
void init_linears_and_patch_embed_(torch::nn::Module& module, torch::nn::Conv2d& patch_proj, at::Generator& gen);

// Explicit, generator-driven initialisers (the global default generator is never used).
void xavier_uniform_(torch::Tensor w, at::Generator& gen);  // fan from w viewed as [out, -1]
void normal_(torch::Tensor w, double std, at::Generator& gen);

}  // namespace ldm::models
