#include "worker/models/dit.h"

#include "shared/core/error.h"
#include "worker/models/pos_embed.h"

namespace ldm::models {

DiTBlockImpl::DiTBlockImpl(int64_t width, int64_t heads, double mlp_ratio) {
  norm1 = register_module("norm1", affine_free_norm(width));
  attn = register_module("attn", Attention(width, heads));
  norm2 = register_module("norm2", affine_free_norm(width));
  mlp = register_module("mlp", Mlp(width, static_cast<int64_t>(width * mlp_ratio)));
  adaLN_modulation = register_module("adaLN_modulation", silu_linear(width, 6 * width));
}

torch::Tensor DiTBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  auto mod = adaLN_modulation->forward(c).chunk(6, 1);  // 6 × [N, D]
  const auto &shift_msa = mod[0], &scale_msa = mod[1], &gate_msa = mod[2];
  const auto &shift_mlp = mod[3], &scale_mlp = mod[4], &gate_mlp = mod[5];
  auto h = x + gate_msa.unsqueeze(1) * attn->forward(modulate(norm1->forward(x), shift_msa, scale_msa));
  return h + gate_mlp.unsqueeze(1) * mlp->forward(modulate(norm2->forward(h), shift_mlp, scale_mlp));
}

DiTFinalLayerImpl::DiTFinalLayerImpl(int64_t width, int64_t patch, int64_t out_channels) {
  norm_final = register_module("norm_final", affine_free_norm(width));
  linear = register_module("linear", torch::nn::Linear(width, patch * patch * out_channels));
  adaLN_modulation = register_module("adaLN_modulation", silu_linear(width, 2 * width));
}

torch::Tensor DiTFinalLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& c) {
  auto mod = adaLN_modulation->forward(c).chunk(2, 1);
  return linear->forward(modulate(norm_final->forward(x), mod[0], mod[1]));
}

DiT::PatchEmbed::PatchEmbed(int64_t in_channels, int64_t width, int64_t patch) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, width, patch).stride(patch)));
}

DiT::DiT(const DiTConfig& c) : cfg_(c) {
  if (c.latent_h % c.patch || c.latent_w % c.patch)
    throw Error("DiT: latent " + std::to_string(c.latent_h) + "x" + std::to_string(c.latent_w) +
                " is not divisible by patch " + std::to_string(c.patch));
  out_channels_ = c.learn_sigma ? 2 * c.in_channels : c.in_channels;
  grid_h_ = c.latent_h / c.patch;
  grid_w_ = c.latent_w / c.patch;
  x_embedder_ = register_module("x_embedder", std::make_shared<PatchEmbed>(c.in_channels, c.width, c.patch));
  t_embedder_ = register_module("t_embedder", TimestepEmbedder(c.width));
  if (c.num_classes > 0)
    y_embedder_ = register_module("y_embedder", LabelEmbedder(c.num_classes, c.width, c.null_class));
  else if (c.text_channels > 0)
    caption_embedder_ = register_module("caption_embedder", VectorEmbedder(c.text_channels, c.width));
  else throw Error("DiT: set num_classes (class task) or text_channels (text task)");
  pos_embed_ = register_parameter("pos_embed", sincos_2d(c.width, grid_h_, grid_w_).unsqueeze(0),
                                  /*requires_grad=*/false);
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks_->push_back(DiTBlock(c.width, c.heads, c.mlp_ratio));
  final_layer_ = register_module("final_layer", DiTFinalLayer(c.width, c.patch, out_channels_));
  control_embedder_ = add_control_embedder(*this, c.controls, c.width);
}

void DiT::initialize(at::Generator& gen) {
  torch::NoGradGuard no_grad;
  // As DiT's initialize_weights(): xavier-uniform Linear weights with zero bias; the patch
  // embedding like a Linear; N(0, 0.02) label and timestep-MLP weights; then zero the adaLN
  // modulation and the output layer (adaLN-Zero).
  init_linears_and_patch_embed_(*this, x_embedder_->proj, gen);
  if (y_embedder_) normal_(y_embedder_->embedding_table->weight, 0.02, gen);
  if (caption_embedder_)
    for (int i : {0, 2}) normal_(caption_embedder_->mlp[i]->as<torch::nn::Linear>()->weight, 0.02, gen);
  normal_(t_embedder_->mlp[0]->as<torch::nn::Linear>()->weight, 0.02, gen);
  normal_(t_embedder_->mlp[2]->as<torch::nn::Linear>()->weight, 0.02, gen);
  for (auto& b : *blocks_) {
    auto* lin = b->as<DiTBlockImpl>()->adaLN_modulation[1]->as<torch::nn::Linear>();
    lin->weight.zero_();
    lin->bias.zero_();
  }
  auto* fl = final_layer_->adaLN_modulation[1]->as<torch::nn::Linear>();
  fl->weight.zero_();
  fl->bias.zero_();
  final_layer_->linear->weight.zero_();
  final_layer_->linear->bias.zero_();
  pos_embed_.copy_(sincos_2d(cfg_.width, grid_h_, grid_w_).unsqueeze(0));
  if (control_embedder_) control_embedder_->initialize(gen);
}

std::vector<std::string> DiT::zero_initialised() const {
  std::vector<std::string> names;
  for (int64_t i = 0; i < cfg_.depth; ++i)
    for (const char* w : {"weight", "bias"})
      names.push_back("blocks." + std::to_string(i) + ".adaLN_modulation.1." + w);
  for (const char* n : {"final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias",
                        "final_layer.linear.weight", "final_layer.linear.bias"})
    names.push_back(n);
  return names;
}

torch::Tensor DiT::unpatchify(const torch::Tensor& tokens) const {
  return models::unpatchify(tokens, grid_h_, grid_w_, cfg_.patch, out_channels_);
}

torch::Tensor DiT::forward(const torch::Tensor& x, const torch::Tensor& t, const Condition& cond) {
  // [N,C,H,W] -> [N,D,h,w] -> [N,T,D], plus fixed positions
  const int64_t gh = x.size(2) / cfg_.patch, gw = x.size(3) / cfg_.patch;
  auto h = x_embedder_->proj->forward(x).flatten(2).transpose(1, 2) +
           pos_embed_for_grid(pos_embed_, grid_h_, grid_w_, gh, gw, cfg_.pos_embed_resampling, cfg_.pos_embed_grid);
  auto c = t_embedder_->forward(t);  // [N, D]
  c = y_embedder_ ? c + y_embedder_->forward(require_field(cond.labels, "labels", "DiT"))
                  : c + caption_embedder_->forward(pooled_with_drop(cond, "DiT"));
  c = add_controls(c, control_embedder_, cond, "DiT");
  for (auto& b : *blocks_) h = b->as<DiTBlockImpl>()->forward(h, c);
  return models::unpatchify(final_layer_->forward(h, c), gh, gw, cfg_.patch, out_channels_);  // [N, C_out, H, W]
}

DiTConfig dit_config(const PresetInfo& p, const ModelGeometry& g, const RecipeSpec& recipe) {
  DiTConfig c;
  set_transformer_shape(c, p, g, recipe);
  c.num_classes = g.num_classes;
  c.text_channels = g.num_classes > 0 ? 0 : g.text_channels;
  c.controls = control_options(recipe);
  return c;
}

std::shared_ptr<Denoiser> build_dit(const PresetInfo& preset, const ModelGeometry& geometry, const RecipeSpec& recipe) {
  return std::make_shared<DiT>(dit_config(preset, geometry, recipe));
}

LDM_REGISTER_DENOISER(dit, build_dit);

}  // namespace ldm::models
