// LDM's UNet (Rombach et al. 2022; CompVis/latent-diffusion openaimodel.UNetModel with
// use_spatial_transformer): presets, parameter count and forward cost. Mirrors
// worker/models/unet.{h,cpp} module by module (one walk over the same block layout); the worker
// test checks that the built module's parameter count equals the card's.
//
// LDM-4-G (configs/latent-diffusion/cin256-v2.yaml) is an f=4 model on 3-channel 64x64 VQ latents.
// Our latents differ (ModelShape: in_channels 4, latent 32 by default), which only changes the
// input/output convolutions: 400,924,036 UNet parameters at 4 channels (400,920,579 at the
// original 3), plus the class embedder 1001 x 512 = 512,512 (LDM's cond_stage_model, trained with
// the UNet; our class_embedder). The LDM paper reports ~400M for LDM-4-G; both 400.9M (UNet only)
// and 401.4M (with the class embedder) round to that, so the published figure cannot tell whether
// the embedder was counted. Forward cost (multiply-adds of convolutions, linears and attention
// matmuls; norms, activations and the embedding lookup not counted): 104.2 G per sample at 3x64x64,
// 25.2 G at 4x32x32.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/recipes/transformer.h"  // linear_params
#include "shared/core/text.h"

namespace ldm::recipes {
namespace {

constexpr std::int64_t kControlColumns[] = {2, 4, 1, 1};  // size, crop, flip, aspect (conditioning.h)

struct UNetCost {
  std::int64_t params = 0;
  double macs = 0;  // per sample, forward
};

std::int64_t conv_params(std::int64_t in, std::int64_t out, std::int64_t k) { return in * out * k * k + out; }

// One walk over UNetModel's layout at a square latent of side shape.latent_size.
UNetCost unet_cost(const PresetInfo& p, const ModelShape& s) {
  if (p.family != "unet") throw Error("unet: preset '" + p.family + " " + p.name + "' is not a unet preset");
  if (p.model_channels <= 0 || p.channel_mult.empty() || p.num_res_blocks <= 0 || p.transformer_depth <= 0)
    throw Error("unet: preset '" + p.name +
                "' lacks model_channels, channel_mult, num_res_blocks or transformer_depth");
  const bool text = s.num_classes <= 0;
  if (text && s.text_channels <= 0)
    throw Error("unet: the shape has neither classes (class task) nor text_channels (text task)");
  const std::int64_t mc = p.model_channels, E = 4 * mc;
  const std::int64_t C = s.in_channels, Co = s.learn_sigma ? 2 * C : C;
  const std::int64_t ctx = text ? s.text_channels : p.context_dim;  // cross-attention k/v input width
  const double L = text ? std::max(1, s.text_tokens) : 1;           // context tokens
  const std::set<int> attn_ds(p.attention_ds.begin(), p.attention_ds.end());
  UNetCost c;
  double side = s.latent_size;  // current feature-map side

  auto resblock = [&](std::int64_t in, std::int64_t out) {
    const double hw = side * side;
    c.params += 2 * in + conv_params(in, out, 3)              // in_layers.0 GroupNorm, in_layers.2
                + linear_params(E, out)                       // emb_layers.1
                + 2 * out + conv_params(out, out, 3)          // out_layers.0, out_layers.3
                + (in != out ? conv_params(in, out, 1) : 0);  // skip_connection
    c.macs += hw * (9.0 * in * out + 9.0 * out * out + (in != out ? double(in) * out : 0)) + double(E) * out;
  };
  auto transformer = [&](std::int64_t d) {  // inner width = d (heads · dim_head = channels)
    const double T = side * side;
    const std::int64_t block = 3 * linear_params(d, d, false) + linear_params(d, d)  // attn1 to_q/k/v, to_out.0
                               + linear_params(d, 8 * d) + linear_params(4 * d, d)   // ff.net.0.proj (GEGLU), ff.net.2
                               + linear_params(d, d, false) + 2 * linear_params(ctx, d, false)  // attn2 to_q, to_k/v
                               + linear_params(d, d)                                            // attn2 to_out.0
                               + 3 * 2 * d;                                                     // norm1..3
    c.params += 2 * d + conv_params(d, d, 1) + p.transformer_depth * block + conv_params(d, d, 1);  // norm, proj_in/out
    const double dd = double(d) * d;
    const double per_block = T * 4 * dd + 2 * T * T * d                        // self-attention: q,k,v,out; QK^T and AV
                             + T * 2 * dd + L * 2.0 * ctx * d + 2 * T * L * d  // cross: q, out; k, v; matmuls
                             + T * 12 * dd;                                    // GEGLU d->8d, d<-4d
    c.macs += 2 * T * dd + p.transformer_depth * per_block;
  };
  auto resample_conv = [&](std::int64_t ch, double out_side) {
    c.params += conv_params(ch, ch, 3);
    c.macs += out_side * out_side * 9.0 * ch * ch;
  };

  c.params += linear_params(mc, E) + linear_params(E, E);  // time_embed.0 / .2
  c.macs += double(mc) * E + double(E) * E;
  if (!text) c.params += (s.num_classes + (s.class_dropout ? 1 : 0)) * p.context_dim;  // class_embedder
  if (s.controls.enabled) {
    c.params += control_embedder_param_count(E, s.controls);
    const bool on[] = {s.controls.size, s.controls.crop, s.controls.flip, s.controls.aspect};
    for (int g = 0; g < 4; ++g)
      if (on[g]) c.macs += double(kControlColumns[g]) * s.controls.frequency_size * E + double(E) * E;
  }
  c.params += conv_params(C, mc, 3);  // input_blocks.0.0
  c.macs += side * side * 9.0 * C * mc;
  std::vector<std::int64_t> skips = {mc};
  std::int64_t ch = mc;
  int ds = 1;
  const int levels = static_cast<int>(p.channel_mult.size());
  for (int level = 0; level < levels; ++level) {
    for (int r = 0; r < p.num_res_blocks; ++r) {
      const std::int64_t out = p.channel_mult[level] * mc;
      resblock(ch, out);
      ch = out;
      if (attn_ds.count(ds)) transformer(ch);
      skips.push_back(ch);
    }
    if (level != levels - 1) {
      resample_conv(ch, side / 2);  // Downsample.op, stride 2
      side /= 2;
      skips.push_back(ch);
      ds *= 2;
    }
  }
  resblock(ch, ch);  // middle_block.0 / .1 / .2
  transformer(ch);
  resblock(ch, ch);
  for (int level = levels - 1; level >= 0; --level) {
    for (int i = 0; i <= p.num_res_blocks; ++i) {
      const std::int64_t skip = skips.back(), out = p.channel_mult[level] * mc;
      skips.pop_back();
      resblock(ch + skip, out);
      ch = out;
      if (attn_ds.count(ds)) transformer(ch);
      if (level > 0 && i == p.num_res_blocks) {
        resample_conv(ch, side * 2);  // Upsample.conv after nearest x2
        side *= 2;
        ds /= 2;
      }
    }
  }
  c.params += 2 * ch + conv_params(mc, Co, 3);  // out.0 GroupNorm, out.2
  c.macs += side * side * 9.0 * mc * Co;
  return c;
}

PresetInfo unet_preset(const std::string& name, int model_channels, std::vector<int> channel_mult, int num_res_blocks,
                       std::vector<int> attention_ds, int head_channels, int heads, int context_dim,
                       const std::string& source) {
  PresetInfo p;
  p.family = "unet";
  p.name = name;
  p.model_channels = model_channels;
  p.channel_mult = std::move(channel_mult);
  p.num_res_blocks = num_res_blocks;
  p.attention_ds = std::move(attention_ds);
  p.head_channels = head_channels;
  p.heads = heads;
  p.context_dim = context_dim;
  p.transformer_depth = 1;
  p.source = source;
  return p;
}

// "ch192 x1,2,3,5 res2 attn@2,4,8": base channels, multipliers per level, ResBlocks per level,
// down-sampling factors with attention.
std::string unet_size_text(const PresetInfo& p) {
  std::vector<std::string> mult, attn;
  for (int m : p.channel_mult) mult.push_back(std::to_string(m));
  for (int d : p.attention_ds) attn.push_back(std::to_string(d));
  return "ch" + std::to_string(p.model_channels) + " x" + join(mult, ",") + " res" + std::to_string(p.num_res_blocks) +
         " attn@" + join(attn, ",");
}

// The latent side halves (levels - 1) times.
LatentGrid unet_latent_grid(const PresetInfo& p) {
  const std::size_t levels = std::max<std::size_t>(p.channel_mult.size(), 1);
  return {std::int64_t{1} << (levels - 1), "2^(UNet levels - 1)"};
}

// LDM's recipe for LDM-4-G (Rombach et al. 2022; CompVis/latent-diffusion configs/latent-diffusion/
// cin256-v2.yaml, ldm/models/diffusion/ddpm.py, ldm/modules/ema.py, the paper's Tables 3, 10, 15).
std::vector<RecipeDefault> unet_defaults() {
  const std::string yaml = "LDM configs/latent-diffusion/cin256-v2.yaml ";
  return {
      {"recipe.learn_sigma", false, "LDM ddpm.py: fixed variance (learn_logvar=False), no learned sigma"},
      {"recipe.diffusion.process", "vp-scaled-linear",
       "LDM ddpm.py beta_schedule='linear' = util.py make_beta_schedule: linspace(sqrt(start), sqrt(end))**2"},
      {"recipe.diffusion.timesteps", 1000, yaml + "timesteps: 1000"},
      {"recipe.diffusion.beta_start", 0.0015, yaml + "linear_start: 0.0015"},
      {"recipe.diffusion.beta_end", 0.0195, yaml + "linear_end: 0.0195"},
      {"recipe.diffusion.objective", "eps", yaml + "parameterization: eps (ddpm.py default)"},
      {"recipe.diffusion.t_sampling", "uniform", "LDM ddpm.py: t = torch.randint(0, num_timesteps)"},
      {"recipe.optimizer.name", "adamw", "LDM ddpm.py configure_optimizers: torch.optim.AdamW(params, lr=lr)"},
      {"recipe.optimizer.beta1", 0.9, "LDM ddpm.py: AdamW's default betas"},
      {"recipe.optimizer.beta2", 0.999, "LDM ddpm.py: AdamW's default betas"},
      {"recipe.optimizer.weight_decay", 0.01, "LDM ddpm.py: AdamW without weight_decay = PyTorch's default 0.01"},
      {"recipe.optimizer.decay_norms_and_biases", true,
       "LDM ddpm.py: one parameter group, so biases and norm scales are decayed too"},
      {"recipe.ema.decay", 0.9999,
       "LDM ldm/modules/ema.py LitEma(decay=0.9999), ddpm.py use_ema=True by default (cin256-v2.yaml, an "
       "inference config, sets use_ema: False)"},
      {"recipe.ema.warmup", true, "LDM ldm/modules/ema.py LitEma: decay = min(decay, (1 + n) / (10 + n))"},
      {"recipe.sampler.name", "ddim", "LDM paper, Tables 3 and 10: LDM-4-G FID 3.60 with 250 DDIM steps"},
      {"recipe.sampler.steps", 250, "LDM paper, Tables 3 and 10: 250 DDIM steps"},
      {"recipe.sampler.eta", 1.0,
       "[recon] the paper does not state eta for FID 3.60; LDM scripts/sample_diffusion.py defaults to eta 1.0"},
      {"recipe.sampler.cfg", 1.5, "LDM paper, Tables 3 and 10: classifier-free guidance scale 1.5 (FID 3.60)"},
      {"stage.lr", 1e-4,
       "LDM paper, Table 15 (class-conditional ImageNet): learning rate 1.0e-4 (cin256-v2.yaml base_learning_rate "
       "1.0e-4; main.py's --scale_lr would multiply it by the batch, which the paper's figure does not)"},
  };
}

}  // namespace

RecipeCard unet_card() {
  RecipeCard c;
  c.family = "unet";
  c.title = "UNet (LDM, Rombach et al. 2022)";
  c.default_preset = "LDM-4-G";
  // head_channels > 0: heads = channels / head_channels (LDM's num_head_channels); head_channels 0:
  // `heads` heads (LDM's num_heads; LDM-4-G: num_heads 1, one head as wide as the level).
  c.presets.push_back(
      unet_preset("LDM-4-G", 192, {1, 2, 3, 5}, 2, {2, 4, 8}, 0, 1, 512,
                  "LDM paper (LDM-4-G), CompVis/latent-diffusion configs/latent-diffusion/cin256-v2.yaml"));
  c.presets.back().published_params_m = 400;
  c.presets.back().published_rounding_m = 5;
  c.presets.back().published_source =
      "LDM paper, Tables 3, 10 and 18: 400M (395M in Table 15, so read as two significant figures)";
  // CPU-sized presets (ours, not from any paper). Two levels: latent sides must be even.
  c.presets.push_back(unet_preset("tiny", 32, {1, 2}, 1, {2}, 16, 0, 32, "ours: CPU tests"));
  c.presets.push_back(unet_preset("small", 64, {1, 2}, 1, {2}, 32, 0, 64, "ours: CPU benchmarks (~4x tiny)"));
  c.param_count = [](const PresetInfo& p, const ModelShape& s) { return unet_cost(p, s).params; };
  c.gflops = [](const PresetInfo& p, const ModelShape& s) { return unet_cost(p, s).macs / 1e9; };
  c.latent_grid = unet_latent_grid;
  c.size_text = unet_size_text;
  c.defaults = unet_defaults();
  return c;
}

}  // namespace ldm::recipes
