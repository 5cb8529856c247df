// mDT-v2 (Gao et al., "Masked Diffusion Transformer is a Strong Image Synthesizer", MDTv2): presets,
// parameter count and forward cost. Mirrors worker/models/mdt.{h,cpp} term by term; the worker test
// checks that the built module's parameter count equals the card's.
#include <string>

#include "shared/core/error.h"
#include "shared/core/recipes/transformer.h"

namespace ldm::recipes {
namespace {

struct MdtDims {
  std::int64_t D, P, C, C_out, H, heads, grid, T;
  std::int64_t encoder_half;  // en_inblocks = en_outblocks = (depth - decoder_depth) / 2
  std::int64_t decoder;       // de_blocks
  bool text;
};

MdtDims mdt_dims(const PresetInfo& p, const ModelShape& s) {
  if (p.family != "mdt") throw Error("mdt: preset '" + p.family + " " + p.name + "' is not an mdt preset");
  if (p.decoder_depth < 0 || p.decoder_depth > p.depth || (p.depth - p.decoder_depth) % 2)
    throw Error("mdt: preset '" + p.name + "': depth " + std::to_string(p.depth) + " minus decoder_depth " +
                std::to_string(p.decoder_depth) + " must be even and non-negative (encoder in/out halves)");
  if (p.patch <= 0 || s.latent_size % p.patch)
    throw Error("mdt: latent size " + std::to_string(s.latent_size) + " is not divisible by patch " +
                std::to_string(p.patch));
  if (s.num_classes <= 0 && s.text_channels <= 0)
    throw Error("mdt: the shape has neither classes (class task) nor text_channels (text task)");
  MdtDims d;
  d.D = p.width;
  d.P = p.patch;
  d.C = s.in_channels;
  d.C_out = s.learn_sigma ? 2 * d.C : d.C;
  d.H = static_cast<std::int64_t>(p.width * p.mlp_ratio);
  d.heads = p.heads;
  d.grid = s.latent_size / p.patch;
  d.T = d.grid * d.grid;
  d.encoder_half = (p.depth - p.decoder_depth) / 2;
  d.decoder = p.decoder_depth;
  d.text = s.num_classes <= 0;
  return d;
}

std::int64_t mdt_param_count(const PresetInfo& p, const ModelShape& s) {
  const MdtDims d = mdt_dims(p, s);
  const std::int64_t D = d.D, P = d.P, H = d.H;
  const std::int64_t freq = 256;  // timestep frequency embedding size (as DiT)
  std::int64_t n = 0;
  n += P * P * d.C * D + D;                                   // x_embedder.proj (conv)
  n += freq * D + D + D * D + D;                              // t_embedder.mlp.{0,2}
  if (d.text) n += s.text_channels * D + D + D * D + D;       // y_embedder.y_proj.fc{1,2} (ours)
  else n += (s.num_classes + (s.class_dropout ? 1 : 0)) * D;  // y_embedder.embedding_table
  n += 2 * d.T * D;                                           // pos_embed, decoder_pos_embed (learned)
  n += D;                                                     // mask_token
  const std::int64_t rel_table = ((2 * d.grid - 1) * (2 * d.grid - 1) + 3) * d.heads;
  std::int64_t block = (D * 3 * D + 3 * D)          // attn.qkv
                       + (D * D + D)                // attn.proj
                       + rel_table                  // attn.rel_pos_bias.relative_position_bias_table
                       + (D * H + H) + (H * D + D)  // mlp.fc1, mlp.fc2
                       + (D * 6 * D + 6 * D);       // adaLN_modulation.1
  if (d.text) block += (D * D + D) + (D * 2 * D + 2 * D) + (D * D + D);  // cross_attn.{q_linear,kv_linear,proj} (ours)
  const std::int64_t skip = 2 * D * D + D;                               // skip_linear
  n += (2 * d.encoder_half + d.decoder + 1) * block;                     // en_in, en_out, de, side blocks
  n += (d.encoder_half + d.decoder) * skip;                              // en_outblocks, de_blocks have skip_linear
  n += D * P * P * d.C_out + P * P * d.C_out;                            // final_layer.linear
  n += D * 2 * D + 2 * D;                                                // final_layer.adaLN_modulation.1
  n += control_embedder_param_count(D, s.controls);                      // control_embedder
  return n;
}

double mdt_gflops(const PresetInfo& p, const ModelShape& s) {
  // Multiply-adds of the unmasked (inference) forward pass: the side-interpolator is bypassed there.
  // As the other transformer families, the (negligible) control embedder is not counted.
  const MdtDims d = mdt_dims(p, s);
  const double D = double(d.D), P = double(d.P), H = double(d.H), T = double(d.T);
  const double L = s.text_tokens, Cc = s.text_channels;
  double macs = 0;
  macs += T * P * P * d.C * D;                                         // patch embedding
  macs += 256 * D + D * D;                                             // timestep MLP
  if (d.text) macs += L * (Cc * D + D * D);                            // caption projection
  double block = T * (3 * D * D + D * D + 2 * D * H)                   // qkv, proj, mlp
                 + 2 * T * T * D                                       // QK^T and AV
                 + 6 * D * D;                                          // adaLN
  if (d.text) block += 2 * T * D * D + 2 * L * D * D + 2 * T * L * D;  // cross-attention q/proj, kv, scores/AV
  macs += double(2 * d.encoder_half + d.decoder) * block;
  macs += double(d.encoder_half + d.decoder) * T * 2 * D * D;  // skip_linear
  macs += T * D * P * P * d.C_out + 2 * D * D;                 // final layer
  return macs / 1e9;
}

// MDTv2's recipe (sail-sg/MDT: scripts/image_train.py, scripts/image_sample.py,
// masked_diffusion/train_util.py, masked_diffusion/__init__.py, gaussian_diffusion.py).
std::vector<RecipeDefault> mdt_defaults() {
  return {
      {"recipe.learn_sigma", true, "MDT masked_diffusion/__init__.py create_diffusion(learn_sigma=True)"},
      {"recipe.mask_ratio", 0.3,
       "MDT README/run scripts --mask_ratio 0.30; models.py draws 0.30 + U(0, 0.2) per batch (ours: the jitter "
       "is the model's, worker/models/mdt.cpp)"},
      {"recipe.diffusion.process", "vp-linear", "MDT masked_diffusion/__init__.py noise_schedule='linear' (as DiT)"},
      {"recipe.diffusion.timesteps", 1000, "MDT masked_diffusion/__init__.py diffusion_steps=1000"},
      {"recipe.diffusion.beta_start", 1e-4, "MDT gaussian_diffusion.py linear schedule: linspace(1e-4, 0.02)"},
      {"recipe.diffusion.beta_end", 0.02, "MDT gaussian_diffusion.py linear schedule: linspace(1e-4, 0.02)"},
      {"recipe.diffusion.objective", "eps", "MDT masked_diffusion/__init__.py predict_xstart=False (epsilon)"},
      {"recipe.diffusion.t_sampling", "uniform", "MDT resample.py UniformSampler"},
      {"recipe.diffusion.min_snr_gamma", 5.0,
       "MDT gaussian_diffusion.py training_losses: Min-SNR weighting min(snr, 5) / snr of the epsilon loss"},
      {"recipe.conditioning.semantic_dropout", 0.1,
       "MDT masked_diffusion/models.py LabelEmbedder class_dropout_prob=0.1"},
      {"recipe.optimizer.name", "adan", "MDT masked_diffusion/train_util.py opt_type='adan'"},
      {"recipe.optimizer.beta1", 0.98, "MDT train_util.py: Adan's default betas (sail-sg/Adan adan.py)"},
      {"recipe.optimizer.beta2", 0.92, "MDT train_util.py: Adan's default betas (sail-sg/Adan adan.py)"},
      {"recipe.optimizer.beta3", 0.99, "MDT train_util.py: Adan's default betas (sail-sg/Adan adan.py)"},
      {"recipe.optimizer.weight_decay", 0.0, "MDT scripts/image_train.py weight_decay=0.0"},
      {"recipe.optimizer.grad_clip", 1.0, "MDT masked_diffusion/train_util.py Adan(max_grad_norm=1)"},
      {"recipe.ema.decay", 0.9999, "MDT scripts/image_train.py ema_rate='0.9999'"},
      {"recipe.ema.warmup", false, "MDT train_util.py: the EMA starts as a copy, no decay warm-up"},
      {"recipe.sampler.name", "ddpm", "MDT scripts/image_sample.py: p_sample_loop (ancestral DDPM)"},
      {"recipe.sampler.steps", 250, "MDT README/run_sample.sh: 250 sampling steps for FID-50K"},
      {"recipe.sampler.cfg", 3.8,
       "MDT scripts/image_sample.py cfg_scale=3.8 for FID-50K (MDT guides the first 3 latent channels, we guide "
       "all 4 [recon])"},
      {"recipe.sampler.cfg_schedule", "power-cosine",
       "MDT masked_diffusion/models.py forward_with_cfg: scale ramped by (1 - cos(pi (1 - t/T)^scale_pow)) / 2"},
      {"recipe.sampler.cfg_power", 4.0, "MDT scripts/image_sample.py scale_pow=4"},
      {"stage.lr", 3e-4, "MDT scripts/image_train.py lr=3e-4 (run_ddp_master.sh, the XL/2 run, keeps it)"},
  };
}

}  // namespace

RecipeCard mdt_card() {
  RecipeCard c;
  c.family = "mdt";
  c.title = "mDT-v2 (Gao et al. 2023)";
  c.default_preset = "XL/2";
  // Learned positional maps and relative-position tables are resampled when weights move to another
  // resolution (worker/models/pos_embed.h); the model is built for one token grid, so no buckets.
  c.capabilities.buckets = false;
  auto add = [&](const char* name, int depth, int width, int heads, int decoder_depth, const char* source) {
    PresetInfo p = transformer_preset(c.family, name, depth, width, heads, 2, source);
    p.decoder_depth = decoder_depth;
    c.presets.push_back(p);
  };
  // MDTv2_{S,B,L,XL}_2 of sail-sg/MDT masked_diffusion/models.py; depth counts encoder + decoder
  // blocks (the reference's `depth`), decoder_depth is its `decode_layer`. The one side-interpolator
  // block comes on top of `depth`.
  add("XL/2", 28, 1152, 16, 4,
      "sail-sg/MDT masked_diffusion/models.py MDTv2_XL_2; decode_layer 4 as its README's XL/2 runs");
  c.presets.back().published_params_m = 676;
  c.presets.back().published_rounding_m = 0.5;
  c.presets.back().published_source =
      "MDT paper's comparison table: MDT-XL/2 676M, the v1 inference network (no side-interpolator, no v2 long "
      "skips); v2 adds 16 skip linears (tests/worker/models/mdt_test.cpp reconciles them)";
  add("L/2", 24, 1024, 16, 4, "sail-sg/MDT masked_diffusion/models.py MDTv2_L_2; decode_layer 4 = MDTv2's default");
  add("B/2", 12, 768, 12, 4, "sail-sg/MDT masked_diffusion/models.py MDTv2_B_2; decode_layer 4 = MDTv2's default");
  add("S/2", 12, 384, 6, 6, "sail-sg/MDT masked_diffusion/models.py MDTv2_S_2; decode_layer 6 as its run.sh");
  // CPU-sized presets (ours): 1 in + 1 out encoder block, 2 decoder blocks, 1 side block.
  add("tiny/2", 4, 64, 4, 2, "ours: CPU tests");
  add("small/2", 4, 128, 4, 2, "ours: CPU benchmarks");
  c.param_count = mdt_param_count;
  c.gflops = mdt_gflops;
  c.latent_grid = patch_latent_grid;
  c.size_text = transformer_size_text;
  c.defaults = mdt_defaults();
  return c;
}

}  // namespace ldm::recipes
