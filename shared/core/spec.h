// The experiment specification: what one experiment trains and how.
//
// Every field is declared exactly once, in the describe() functions below, with its key, default
// (the member initialiser), documentation and allowed range/choices (an enum field's choices are
// its name table in shared/core/choices.h). The JSON codec here, the TOML
// front end (shared/spec_toml) and `ldm-coord show` all walk these declarations, so a new knob is
// one line and can never be parsed in one place and forgotten in another.
//
// A visitor V provides:
//   void field(const char* key, T& value, const FieldMeta& meta)   T in {int64_t, double, std::string, bool,
//                                                                  std::vector<int64_t>, std::vector<std::string>}
//                                                                  or an enum with a Choices table
//   template <class S> void table(const char* key, S& sub, const char* doc)
//   template <class S> void array(const char* key, std::vector<S>& items, const char* doc)
//   template <class S> void optional_table(const char* key, S& sub, const char* doc)   a table
//        added after files existed: left out of the JSON while it equals S{} (spec_hash stays)
//   void overrides(nlohmann::json& patch, const char* doc)   a stage's sparse overrides of the
//        experiment tables named by stage_override_tables(), each under its own key
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/core/choices.h"

namespace ldm {

struct FieldMeta {
  const char* doc = "";
  double lo = -std::numeric_limits<double>::infinity();  // inclusive bounds for numbers
  double hi = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices = {};  // allowed values of a string (empty: any; enums: their Choices table)
  // A key added after experiment files existed: the JSON form (and so spec_hash) leaves it out
  // while it has its default, so the hash of a file that does not use it does not change.
  bool omit_when_default = false;
};

struct DatasetSpec {
  std::string kind = "synthetic";    // synthetic | shards
  std::string path;                  // shards: the shard directory; synthetic: cache dir ("" = <runs>/data/...)
  std::int64_t records = 1024;       // synthetic only
  std::int64_t classes = 10;         // number of class labels
  std::int64_t shard_records = 256;  // synthetic only: records per shard file
};

struct AutoencoderSpec {
  std::string kind = "patch";  // patch: built-in, exactly invertible; NOT comparable with the paper's VAE
                               // torchscript: an exported VAE (tools/export/export_vae.py) at `path`
  std::string path;            // torchscript: the exported file
  std::int64_t factor = 2;     // spatial down-sampling factor f; latent channels = 3·f² for patch
  double scale = 1.0;          // patch: latent = (encode(x) - shift) * scale (torchscript: the file's)
  double shift = 0.0;
};

struct DiffusionSpec {
  ProcessKind process = ProcessKind::VpLinear;  // vp-linear (DDPM/DiT) | vp-scaled-linear (LDM) | vp-cosine | flow
  std::int64_t timesteps = 1000;                // discrete VP training timesteps
  double beta_start = 1e-4;                     // the linear schedules' first and last beta
  double beta_end = 0.02;
  Objective objective = Objective::Eps;             // eps | v | flow (velocity ε − x0)
  TimeSampling t_sampling = TimeSampling::Uniform;  // uniform | logit-normal (SD3)
  double logit_mean = 0.0;
  double logit_std = 1.0;
  double min_snr_gamma = 0.0;             // min-SNR-γ loss weighting; 0 = off
  double vlb_weight = 1.0;                // weight of the VLB term of the learned-variance hybrid loss
  double shift = 0.0;                     // resolution shift s; 0 = auto: resolution / reference_resolution
  std::int64_t reference_resolution = 0;  // 0 = the resolution its init_from chain starts at (pre-training: s = 1)
};

struct SamplerSpec {
  Sampler name = Sampler::Ddpm;  // ddpm | ddim | euler | heun | dpm++2m
  std::int64_t steps = 250;      // DiT samples with 250 DDPM steps [lit]
  Spacing spacing = Spacing::Uniform;
  double eta = 0.0;          // DDIM stochasticity
  double cfg = 1.5;          // semantic guidance scale s_sem (DiT's FID setting [lit])
  double cfg_control = 1.0;  // control guidance scale s_ctrl (used when controls are conditioned)
  GuidanceSchedule cfg_schedule = GuidanceSchedule::Constant;  // constant | power-cosine (MDT's ramp over time)
  double cfg_power = 4.0;                                      // power-cosine: the exponent (MDT's scale_pow)
};

struct EmaSpec {
  double decay = 0.9999;  // DiT [lit]
  bool warmup = false;    // decay_t = min(decay, (1 + t) / (10 + t))
};

struct OptimizerSpec {
  OptimizerKind name = OptimizerKind::AdamW;  // adamw | adan (MDTv2's recipe)
  double beta1 = 0.9;                         // DiT recipe: AdamW defaults (0.9, 0.999), no weight decay [lit]
  double beta2 = 0.999;  // the paper reportedly uses (0.9, 0.95) [paper appendix via a third party]
  double beta3 = 0.99;   // Adan only (its betas: beta1 0.98, beta2 0.92, beta3 0.99 [lit: Adan])
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decay_norms_and_biases = false;  // false: 1-D tensors (biases, norms) are not decayed
  double grad_clip = 0.0;               // max global L2 norm of the gradient; 0 = off
};

// How semantic conditions (label, caption) and control metadata reach the network. Every [recon]
// default here is ours (PAPER.md), not the paper's value.
struct ConditioningSpec {
  double semantic_dropout = 0.1;             // P(label/caption dropped) in training, for guidance [recon: 10%]
  ControlMode controls = ControlMode::None;  // none | sdxl (constant weight 1) | proposed (w_alpha(t) per group)
  double control_dropout = 0.1;              // P(controls dropped), independent of the semantic drop [recon]
  double alpha = 1.0;                        // w_alpha(t) = cos(pi t / 2)^alpha, shared default [recon]
  double alpha_size = -1, alpha_crop = -1, alpha_flip = -1, alpha_aspect = -1;  // < 0: use alpha
  bool use_size = true, use_crop = true, use_flip = true, use_aspect = true;
  std::int64_t frequency_size = 256;             // Fourier features per control scalar [lit: SDXL]
  std::string dropped_controls = "zero";         // zero | learned: what a dropped control embeds to [recon]
  std::string control_time = "raw";              // raw | shifted: the noise level w_alpha sees [recon]
  TextPadding text_padding = TextPadding::Zero;  // zero | replicate | noisy_replicate
  double text_pad_noise = 0.1;                   // sigma_pad of noisy_replicate in training [recon]
  double text_pad_noise_inference = 0.0;         // sigma_pad when sampling [recon: off]
  bool mask_padding = false;                     // exclude padding slots as attention keys
};

struct TextEncoderSpec {
  std::string kind = "builtin";  // builtin: seeded hashed-vocabulary encoder, NOT comparable with the paper's
                                 // torchscript: an exported encoder at `path` with the SentencePiece `tokenizer`
                                 // precomputed: caption features stored in the shards (no encoder at hand)
  std::string path;              // torchscript: the exported file
  std::string tokenizer;         // torchscript: the SentencePiece model
  std::int64_t dim = 64;         // token feature width
  std::int64_t max_tokens = 16;  // token slots per caption
};

struct RecipeSpec {
  std::string family = "dit";
  std::string preset = "tiny/2";
  bool learn_sigma = false;  // DiT's learned-variance output channels (doubles out channels); on in the
                             // DiT, mDT-v2 and PixArt-α recipes (their cards)
  double mask_ratio = 0.3;   // mDT-v2: fraction of image tokens masked in the masked branch [lit: MDTv2]
  PosEmbedResampling pos_embed_resampling =
      PosEmbedResampling::Interpolate;                     // extrapolate | interpolate | rectified_grid
  GridConvention pos_embed_grid = GridConvention::Center;  // rectified_grid's coordinate convention [recon]
  ConditioningSpec conditioning;
  DiffusionSpec diffusion;
  SamplerSpec sampler;
  OptimizerSpec optimizer;
  EmaSpec ema;
};

// What an evaluation stage measures and how it samples (StageSpec::eval, [stage.eval]). Defaults
// that say "the recipe's" take recipe.sampler; every metric goes to the store as a metric point
// of the evaluation stage at the evaluated checkpoint's step.
struct EvalSpec {
  // fid | clip_score | disentanglement | control_adherence | caption_adherence
  std::vector<std::string> metrics = {"fid"};
  std::vector<std::int64_t> at_steps;  // the parent's checkpoints to evaluate; [] = its final one
  std::int64_t samples = 1000;         // generated images per checkpoint (sample i seeded by i)
  std::int64_t seed = 0;
  std::string sampler;               // "" = the recipe's
  std::int64_t steps = 0;            // 0 = the recipe's
  double cfg = -1;                   // < 0 = the recipe's
  double cfg_control = -1;           // < 0 = the recipe's
  std::string captions;              // text task: a file of captions, one per line, cycled over the samples
  std::string controls;              // control metadata to generate with, "orig_h=..,orig_w=..,.." ("" = uncropped)
  std::string features = "builtin";  // FID network: builtin, or a TorchScript Inception file
  std::string reference;             // FID reference: an .npz, an image folder or image shards; "" = the parent's data
  std::string clip_image, clip_text,
      clip_bpe;       // clip_score: CLIP's towers (tools/export/export_clip.py) and BPE merges
  std::string lpips;  // disentanglement: an LPIPS TorchScript export ("" = distance of `features`, NOT LPIPS)
  // disentanglement, control_adherence: the size conditions [paper] and the (noise, condition) draws [recon]
  std::vector<std::int64_t> sizes = {64, 128, 256, 512, 1024};
  std::int64_t draws = 8;
  std::int64_t batch = 8;  // samples per network batch
};

struct StageSpec {
  std::string name = "train";
  std::int64_t resolution = 32;          // image side in pixels; latent side = resolution / factor
  std::int64_t steps = 100;              // optimiser steps
  std::int64_t batch_size = 16;          // global batch, split evenly over ranks
  double lr = 1e-4;                      // peak learning rate (the paper: constant 1e-4 [paper])
  std::string lr_schedule = "constant";  // constant | warmup (linear, then constant) | cosine (warmup, then to min_lr)
  std::int64_t warmup_steps = 0;
  double min_lr = 0.0;
  std::int64_t grad_accumulation = 1;  // micro-batches per optimiser step (per rank)
  std::int64_t ranks = 1;              // MPI ranks (data parallel)
  std::int64_t threads_per_rank = 1;   // intra-op threads per rank
  double comm_bucket_mb = 25;          // gradient all-reduce bucket cap in MiB; 0 = one per flat buffer [ours]
  double watchdog_s = 600;             // a rank silent this long tears the job down (retried); 0 = off [ours]
  std::int64_t log_every = 1;          // steps between metric points
  std::int64_t checkpoint_every = 0;   // steps between checkpoints; 0 = only the final one
  std::int64_t max_attempts = 3;       // attempts before the stage fails for good [ours]
  std::int64_t keep_checkpoints = 0;   // newest bundles kept (besides the final and evaluated ones); 0 = all [ours]
  // Numerical faults: how many skipped non-finite steps in a row roll the run back to its
  // checkpoint, and rollbacks before it ends diverged [ours].
  std::int64_t nonfinite_skip_limit = 3;
  std::int64_t nonfinite_rollback_limit = 2;

  // Transfer: where the stage's weights come from (DESIGN.md "Stages form a DAG").
  std::string init_from;                 // "" = from scratch; STAGE | EXPERIMENT:STAGE | a bundle path
  std::string init_weights = "ema";      // ema | raw: which of the parent's weights
  std::string init_optimizer = "reset";  // reset | keep (moments and step count, when shapes allow)
  std::string classes = "keep";          // keep | reinit | remap: the label table across datasets
  std::string classes_map;               // remap: text file of "old new" class-id pairs
  // Experiment-level settings this stage changes: `task`, and the keys of the `dataset`,
  // `text_encoder` and `recipe` tables it sets, as a sparse JSON object
  // {"dataset": {...}, "text_encoder": {...}, "recipe": {...}} (empty = none). stage_view()
  // applies them; the readers check them like the experiment's own keys.
  std::string task;  // "" = the experiment's
  nlohmann::json overrides = nlohmann::json::object();

  // Evaluation stages: kind = "eval" samples from the checkpoints of the training stage `after`
  // and stores the metrics of `eval`; the training keys above do nothing there.
  std::string kind = "train";  // train | eval
  std::string after;
  EvalSpec eval;
};

// The experiment-level tables a stage may override, in declaration order.
inline const std::vector<std::string>& stage_override_tables() {
  static const std::vector<std::string> tables = {"dataset", "text_encoder", "recipe"};
  return tables;
}

// Where the experiment's attempts run (`[executor]`), and the SLURM job's knobs. Empty and zero
// values are the coordinator's own (`serve --executor`, `--slurm-*`); the table is left out of the
// spec JSON while it holds only those, so files without it keep their spec_hash.
struct ExecutorSpec {
  std::string kind;  // "" = the coordinator's | local | slurm
  std::string partition, account, qos;
  std::string time;  // sbatch --time, e.g. "04:00:00"
  std::int64_t nodes = 0, tasks_per_node = 0, gpus_per_node = 0, signal_before_s = 0;
  std::vector<std::string> sbatch;  // more #SBATCH options, e.g. "--mem=64G"
  std::vector<std::string> setup;   // shell lines before srun, e.g. "module load openmpi"
};

// Which device the worker's tensors live on and in which precision it computes (`[hardware]`).
// Left out of the spec JSON while it holds the defaults, so files without it keep their spec_hash.
struct HardwareSpec {
  std::string device = "auto";  // auto (a CUDA GPU when the worker's LibTorch sees one, else the CPU) | cpu | cuda
  std::string precision =
      "auto";                  // auto (bf16 on a GPU, fp32 on the CPU) | fp32 | bf16 (autocast, fp32 master weights)
  bool tf32 = true;            // CUDA: fp32 matrix products and convolutions in TF32
  bool deterministic = false;  // the math attention kernel and deterministic algorithms (slower)
};

struct ExperimentSpec {
  std::string name;
  std::string description;
  std::int64_t seed = 0;
  std::string task = "class";  // class (class-conditional) | text (text-to-image)
  DatasetSpec dataset;
  AutoencoderSpec autoencoder;
  TextEncoderSpec text_encoder;
  RecipeSpec recipe;
  std::vector<StageSpec> stages;  // TOML: [[stage]]
  ExecutorSpec executor;
  HardwareSpec hardware;
};

// ---- declarations --------------------------------------------------------------------------

constexpr double kMaxInt = 9007199254740992.0;  // 2^53: integers survive a JSON double

template <class V>
void describe(V& v, DatasetSpec& s) {
  v.field("kind", s.kind, {"where records come from", 0, 0, {"synthetic", "shards"}});
  v.field("path", s.path,
          {"shards: the shard directory; synthetic: cache directory (\"\" = <runs>/data/synthetic-<hash>)"});
  v.field("records", s.records, {"synthetic: number of records to render", 1, 1e8});
  v.field("classes", s.classes, {"number of class labels", 1, 100000});
  v.field("shard_records", s.shard_records, {"synthetic: records per shard file", 1, 1e7});
}

template <class V>
void describe(V& v, AutoencoderSpec& s) {
  v.field("kind", s.kind,
          {"patch: built-in exactly invertible patch autoencoder (not comparable with the paper's VAE); torchscript: "
           "an exported VAE (tools/export/export_vae.py)",
           0,
           0,
           {"patch", "torchscript"}});
  v.field("path", s.path,
          {"torchscript: the exported VAE file (its scaling/shift factors are used; `factor` must equal its "
           "down-sampling factor)"});
  v.field("factor", s.factor, {"spatial down-sampling factor f (latent channels 3*f*f for patch)", 1, 64});
  v.field("scale", s.scale, {"patch: latent = (encode(x) - shift) * scale", 1e-6, 1e6});
  v.field("shift", s.shift, {"see scale", -1e6, 1e6});
}

template <class V>
void describe(V& v, DiffusionSpec& s) {
  v.field("process", s.process,
          {"noise process: vp-linear (betas linear, DDPM/DiT), vp-scaled-linear (sqrt(beta) linear, LDM), vp-cosine, "
           "flow (rectified flow, SD3)"});
  v.field("timesteps", s.timesteps, {"discrete VP training timesteps", 2, 100000});
  v.field("beta_start", s.beta_start, {"first beta of the vp-linear and vp-scaled-linear schedules", 1e-8, 0.5});
  v.field("beta_end", s.beta_end, {"last beta of the vp-linear and vp-scaled-linear schedules", 1e-8, 0.999});
  v.field("objective", s.objective, {"what the network predicts: eps, v, or flow velocity (eps - x0)"});
  v.field("t_sampling", s.t_sampling, {"training timestep distribution"});
  v.field("logit_mean", s.logit_mean, {"logit-normal timestep sampling: mean", -10, 10});
  v.field("logit_std", s.logit_std, {"logit-normal timestep sampling: std", 1e-3, 10});
  v.field("min_snr_gamma", s.min_snr_gamma, {"min-SNR-gamma loss weighting; 0 = off", 0, 1e6});
  v.field("vlb_weight", s.vlb_weight, {"weight of the VLB term when recipe.learn_sigma (DiT hybrid loss)", 0, 1e6});
  v.field("shift", s.shift,
          {"resolution shift s of the noise schedule (SNR/s^2, flow t' = s t/(1+(s-1)t)) [recon]; 0 = auto: resolution "
           "/ reference_resolution",
           0, 1e3});
  v.field("reference_resolution", s.reference_resolution,
          {"resolution at which s = 1; 0 = the resolution of the first stage of the init_from chain", 0, 65536});
}

template <class V>
void describe(V& v, SamplerSpec& s) {
  v.field("name", s.name, {"default sampler"});
  v.field("steps", s.steps, {"sampling steps", 1, 100000});
  v.field("spacing", s.spacing, {"timestep spacing"});
  v.field("eta", s.eta, {"DDIM stochasticity (0 = deterministic)", 0, 1});
  v.field("cfg", s.cfg, {"semantic classifier-free guidance scale (1 = none)", 0, 100});
  v.field("cfg_control", s.cfg_control, {"control guidance scale", 0, 100});
  FieldMeta since_schedules;  // added after files existed (issue 18): left out of the JSON at their defaults
  since_schedules.omit_when_default = true;
  FieldMeta schedule = since_schedules, power = since_schedules;
  schedule.doc =
      "how the semantic scale varies over sampling: constant, or power-cosine (MDT: 1 at pure noise rising to cfg "
      "at the data, 1 + (cfg-1)(1 - cos(pi (1-t)^cfg_power))/2)";
  power.doc = "power-cosine guidance: the exponent (MDT's scale_pow)";
  power.lo = 1e-3;
  power.hi = 100;
  v.field("cfg_schedule", s.cfg_schedule, schedule);
  v.field("cfg_power", s.cfg_power, power);
}

template <class V>
void describe(V& v, EmaSpec& s) {
  v.field("decay", s.decay, {"EMA decay of the weights (sampling uses the EMA by default)", 0, 1});
  v.field("warmup", s.warmup, {"ramp the decay as min(decay, (1+t)/(10+t))"});
}

template <class V>
void describe(V& v, OptimizerSpec& s) {
  v.field("name", s.name, {"optimiser"});
  v.field("beta1", s.beta1, {"Adam beta1 (Adan: gradient average)", 0, 0.999999});
  v.field("beta2", s.beta2, {"Adam beta2 (Adan: gradient-difference average)", 0, 0.999999999});
  v.field("beta3", s.beta3, {"Adan only: squared-update average", 0, 0.999999999});
  v.field("eps", s.eps, {"Adam epsilon", 0, 1});
  v.field("weight_decay", s.weight_decay, {"decoupled weight decay (DiT recipe: 0)", 0, 10});
  v.field("decay_norms_and_biases", s.decay_norms_and_biases, {"also decay 1-D tensors (biases, norm scales)"});
  v.field("grad_clip", s.grad_clip, {"clip the global gradient L2 norm to this; 0 = off", 0, 1e9});
}

template <class V>
void describe(V& v, ConditioningSpec& s) {
  v.field("semantic_dropout", s.semantic_dropout,
          {"probability of dropping the label/caption in training (guidance) [recon]", 0, 1});
  v.field(
      "controls", s.controls,
      {"control metadata: none | sdxl (summed into adaLN, weight 1) | proposed (weighted by w_alpha(t) per group)"});
  v.field("control_dropout", s.control_dropout,
          {"probability of dropping the controls in training, independent of the semantic drop [recon]", 0, 1});
  v.field("alpha", s.alpha, {"w_alpha(t) = cos(pi t/2)^alpha: shared steepness [recon]", 0, 100});
  v.field("alpha_size", s.alpha_size, {"alpha of the size group; < 0 = alpha", -1, 100});
  v.field("alpha_crop", s.alpha_crop, {"alpha of the crop group; < 0 = alpha", -1, 100});
  v.field("alpha_flip", s.alpha_flip, {"alpha of the flip group; < 0 = alpha", -1, 100});
  v.field("alpha_aspect", s.alpha_aspect, {"alpha of the aspect-ratio group; < 0 = alpha", -1, 100});
  v.field("use_size", s.use_size, {"condition on the original height/width"});
  v.field("use_crop", s.use_crop, {"condition on the crop box"});
  v.field("use_flip", s.use_flip, {"condition on the flip flag"});
  v.field("use_aspect", s.use_aspect, {"condition on the aspect ratio"});
  v.field("frequency_size", s.frequency_size, {"Fourier features per control scalar", 2, 4096});
  v.field("dropped_controls", s.dropped_controls,
          {"embedding of dropped controls: zero | learned null vector per group [recon]", 0, 0, {"zero", "learned"}});
  v.field("control_time", s.control_time,
          {"noise level w_alpha is evaluated at: raw or resolution-shifted [recon]", 0, 0, {"raw", "shifted"}});
  v.field("text_padding", s.text_padding, {"padding of the caption token buffer"});
  v.field("text_pad_noise", s.text_pad_noise, {"noise scale of noisy_replicate padding in training [recon]", 0, 100});
  v.field("text_pad_noise_inference", s.text_pad_noise_inference,
          {"noise scale of noisy_replicate padding when sampling [recon: 0]", 0, 100});
  v.field("mask_padding", s.mask_padding, {"exclude caption padding slots as attention keys"});
}

template <class V>
void describe(V& v, TextEncoderSpec& s) {
  v.field("kind", s.kind,
          {"builtin: seeded hashed-vocabulary encoder (not comparable with the paper's); torchscript: an exported "
           "encoder (tools/export/export_text_encoder.py) with a SentencePiece tokenizer; precomputed: caption "
           "features stored in the shards",
           0,
           0,
           {"builtin", "torchscript", "precomputed"}});
  v.field("path", s.path, {"torchscript: the exported text encoder file"});
  v.field("tokenizer", s.tokenizer, {"torchscript: the SentencePiece model file"});
  v.field("dim", s.dim, {"token feature width", 1, 65536});
  v.field("max_tokens", s.max_tokens, {"token slots per caption", 1, 4096});
}

template <class V>
void describe(V& v, RecipeSpec& s) {
  v.field("family", s.family, {"model family (see `ldm-coord presets`)"});
  v.field("preset", s.preset, {"size preset of the family, e.g. XL/2 or tiny/2"});
  v.field("learn_sigma", s.learn_sigma, {"DiT learned-variance output (doubles the output channels; hybrid loss)"});
  v.field("mask_ratio", s.mask_ratio,
          {"mDT-v2: fraction of image tokens masked in the masked training branch", 0, 0.95});
  v.field("pos_embed_resampling", s.pos_embed_resampling,
          {"positional embeddings of weights loaded at another resolution: extrapolate (sin-cos on the larger grid), "
           "interpolate (bicubic of the old map), rectified_grid (sin-cos on the new grid rescaled to the old range)"});
  v.field("pos_embed_grid", s.pos_embed_grid,
          {"rectified_grid's mapping of new to old positions: center (token centres, align_corners=false), corners, "
           "origin (PixArt-alpha) [recon]"});
  v.table("conditioning", s.conditioning, "semantic and control conditioning");
  v.table("diffusion", s.diffusion, "noise process and training objective");
  v.table("sampler", s.sampler, "default sampling settings");
  v.table("optimizer", s.optimizer, "optimiser settings");
  v.table("ema", s.ema, "exponential moving average of the weights");
}

template <class V>
void describe(V& v, EvalSpec& s) {
  v.field("metrics", s.metrics,
          {"what to measure: fid, clip_score (text task), disentanglement and control_adherence (the size "
           "condition's effect: 0 by construction without controls), caption_adherence (text task on synthetic "
           "captions: a classifier trained on the parent's data reads colour, shape and side)",
           0,
           0,
           {"fid", "clip_score", "disentanglement", "control_adherence", "caption_adherence"}});
  v.field("at_steps", s.at_steps,
          {"the parent's checkpoint steps to evaluate (its checkpoint_every must write them; 0 = its initial weights, "
           "saved before training); [] = its final one",
           0, 1e9});
  v.field("samples", s.samples, {"images generated per checkpoint; sample i is seeded by i", 2, 1e7});
  v.field("seed", s.seed, {"seed of the sample noise", 0, kMaxInt});
  v.field("sampler", s.sampler, {"sampler; \"\" = recipe.sampler.name", 0, 0, [] {
                                   std::vector<std::string> c = {""};
                                   for (const auto& n : choice_names<Sampler>()) c.push_back(n);
                                   return c;
                                 }()});
  v.field("steps", s.steps, {"sampling steps; 0 = recipe.sampler.steps", 0, 100000});
  v.field("cfg", s.cfg, {"semantic guidance scale; < 0 = recipe.sampler.cfg", -1, 100});
  v.field("cfg_control", s.cfg_control, {"control guidance scale; < 0 = recipe.sampler.cfg_control", -1, 100});
  v.field("captions", s.captions, {"text task: a file of captions, one per line, cycled over the samples"});
  v.field("controls", s.controls,
          {"control metadata to generate with, e.g. \"orig_h=512,orig_w=512\" (\"\" = an uncropped, unflipped image "
           "of the parent's resolution)"});
  v.field("features", s.features,
          {"FID network: builtin (NOT comparable with published FIDs) or a TorchScript Inception file "
           "(tools/export/export_inception.py)"});
  v.field("reference", s.reference,
          {"FID reference: statistics (.npz), an image folder or image shards, whose statistics are computed once "
           "and cached by content; \"\" = the parent stage's training data"});
  v.field("clip_image", s.clip_image, {"clip_score: CLIP's image tower (tools/export/export_clip.py)"});
  v.field("clip_text", s.clip_text, {"clip_score: CLIP's text tower (tools/export/export_clip.py)"});
  v.field("clip_bpe", s.clip_bpe, {"clip_score: CLIP's BPE merges file (bpe_simple_vocab_16e6.txt.gz)"});
  v.field("lpips", s.lpips,
          {"disentanglement: an LPIPS export (tools/export/export_lpips.py); \"\" = mean squared distance of the "
           "`features` network's features (NOT the paper's LPIPS), as `ldm-worker disentanglement`"});
  v.field("sizes", s.sizes, {"disentanglement, control_adherence: the size conditions compared [paper]", 1, 65536});
  v.field("draws", s.draws, {"disentanglement, control_adherence: (noise, condition) draws [recon]", 1, 100000});
  v.field("batch", s.batch, {"samples per network batch", 1, 4096});
}

template <class V>
void describe(V& v, StageSpec& s) {
  v.field("name", s.name, {"stage name, unique within the experiment ([A-Za-z0-9_-]+)"});
  v.field("resolution", s.resolution, {"image side in pixels", 8, 8192});
  v.field("steps", s.steps, {"optimiser steps", 1, 1e9});
  v.field("batch_size", s.batch_size, {"global batch size, split evenly over ranks", 1, 1e7});
  v.field("lr", s.lr, {"peak learning rate", 0, 10});
  v.field("lr_schedule", s.lr_schedule,
          {"constant | warmup (linear ramp, then constant) | cosine (ramp, then cosine to min_lr)",
           0,
           0,
           {"constant", "warmup", "cosine"}});
  v.field("warmup_steps", s.warmup_steps, {"linear warm-up steps of the warmup and cosine schedules", 0, 1e9});
  v.field("min_lr", s.min_lr, {"final learning rate of the cosine schedule", 0, 10});
  v.field("grad_accumulation", s.grad_accumulation, {"micro-batches per optimiser step on each rank", 1, 65536});
  v.field("ranks", s.ranks, {"MPI ranks (data parallel)", 1, 65536});
  v.field("threads_per_rank", s.threads_per_rank, {"intra-op CPU threads per rank", 1, 1024});
  v.field("log_every", s.log_every, {"steps between metric points", 1, 1e9});
  v.field("checkpoint_every", s.checkpoint_every, {"steps between checkpoints; 0 = only the final one", 0, 1e9});
  v.field("max_attempts", s.max_attempts,
          {"attempts before the stage fails for good: a crashed, killed or preempted "
           "attempt is retried from the newest checkpoint (an error the worker "
           "reports, e.g. bad data, is not retried)",
           1, 100});
  FieldMeta bucket_meta{
      "size cap in MiB of a gradient all-reduce bucket: buckets start while backward still runs, "
      "as soon as their gradients are ready; 0 = one bucket per flat buffer (no overlap)",
      0, 1e6};
  bucket_meta.omit_when_default = true;
  v.field("comm_bucket_mb", s.comm_bucket_mb, bucket_meta);
  FieldMeta watchdog_meta{
      "seconds without progress (a training step, a checkpoint, an evaluation batch) after which "
      "a rank's watchdog ends the job with a note naming the rank and phase; the attempt is "
      "retried from its checkpoint; 0 = no watchdog",
      0, 1e7};
  watchdog_meta.omit_when_default = true;
  v.field("watchdog_s", s.watchdog_s, watchdog_meta);
  FieldMeta keep_meta{
      "checkpoint bundles kept in the run directory: the newest K, plus the final one and those an "
      "evaluation stage reads (eval.at_steps); older ones are removed as new ones are written; 0 = keep all",
      0, 1e9};
  keep_meta.omit_when_default = true;
  v.field("keep_checkpoints", s.keep_checkpoints, keep_meta);
  FieldMeta skip_meta{
      "a step whose loss or gradient norm is NaN/Inf is skipped (weights, optimiser and EMA untouched); "
      "this many such steps in a row roll the run back to its newest checkpoint before them, and the "
      "run then steps past their batches; 0 = the first such step ends the run diverged",
      0, 1e6};
  skip_meta.omit_when_default = true;
  v.field("nonfinite_skip_limit", s.nonfinite_skip_limit, skip_meta);
  FieldMeta rollback_meta{
      "rollbacks after non-finite steps before the run ends diverged (0 = the first run of "
      "nonfinite_skip_limit bad steps ends it)",
      0, 1e6};
  rollback_meta.omit_when_default = true;
  v.field("nonfinite_rollback_limit", s.nonfinite_rollback_limit, rollback_meta);
  FieldMeta since_transfer;
  since_transfer.omit_when_default = true;
  auto meta = [&](const char* doc, std::vector<std::string> choices = {}) {
    FieldMeta m = since_transfer;
    m.doc = doc;
    m.choices = std::move(choices);
    return m;
  };
  v.field("init_from", s.init_from,
          meta("start from a parent's final checkpoint: a stage of this experiment (STAGE), of another "
               "(EXPERIMENT:STAGE), or a bundle path (anything with a '/'); \"\" = from scratch"));
  v.field("init_weights", s.init_weights, meta("which of the parent's weights: ema or raw", {"ema", "raw"}));
  v.field("init_optimizer", s.init_optimizer,
          meta("reset: a fresh optimiser; keep: the parent's moments and step count (only when no trainable "
               "tensor changes shape)",
               {"reset", "keep"}));
  v.field("classes", s.classes,
          meta("the label table when the class set changes: keep; reinit (new class rows, the null class and "
               "everything else kept); remap (rows moved by classes_map, unmapped classes new)",
               {"keep", "reinit", "remap"}));
  v.field("classes_map", s.classes_map, meta("classes = \"remap\": a text file of \"old new\" class-id pairs"));
  v.field("task", s.task,
          meta("this stage's task when it differs from the experiment's (class <-> text swaps the conditioning "
               "input; the rest of the network is kept)",
               {"", "class", "text"}));
  v.overrides(s.overrides,
              "experiment settings this stage changes: [stage.dataset], [stage.text_encoder], [stage.recipe] "
              "(e.g. recipe.pos_embed_resampling, recipe.diffusion.shift); unset keys are the experiment's");
  v.field("kind", s.kind,
          meta("train, or eval: sample from the checkpoints of the training stage `after` and store the "
               "[stage.eval] metrics",
               {"train", "eval"}));
  v.field("after", s.after, meta("kind = \"eval\": the training stage whose checkpoints are evaluated"));
  v.optional_table("eval", s.eval, "kind = \"eval\": what to measure and how to sample");
}

template <class V>
void describe(V& v, ExecutorSpec& s) {
  v.field("kind", s.kind,
          {"where attempts run: local (mpirun on the coordinator's machine) or slurm (a batch job each); "
           "\"\" = the coordinator's `serve --executor`",
           0,
           0,
           {"", "local", "slurm"}});
  v.field("partition", s.partition, {"slurm: sbatch --partition (\"\" = the coordinator's, else the cluster's)"});
  v.field("account", s.account, {"slurm: sbatch --account"});
  v.field("qos", s.qos, {"slurm: sbatch --qos"});
  v.field("time", s.time, {"slurm: sbatch --time, e.g. \"04:00:00\" (\"\" = the partition's limit)"});
  v.field("nodes", s.nodes, {"slurm: sbatch --nodes (0 = as SLURM places the ranks)", 0, 1e6});
  v.field("tasks_per_node", s.tasks_per_node, {"slurm: sbatch --ntasks-per-node (0 = unset)", 0, 1e6});
  v.field("gpus_per_node", s.gpus_per_node, {"slurm: sbatch --gpus-per-node (0 = none asked)", 0, 1024});
  v.field("signal_before_s", s.signal_before_s,
          {"slurm: SIGUSR1 this long before the time limit, so the ranks checkpoint and the next attempt "
           "resumes (0 = the coordinator's, default 120)",
           0, 86400});
  v.field("sbatch", s.sbatch, {"slurm: more #SBATCH options, e.g. [\"--mem=64G\", \"--exclusive\"]"});
  v.field("setup", s.setup, {"slurm: shell lines run before srun, e.g. [\"module load openmpi\"]"});
}

template <class V>
void describe(V& v, HardwareSpec& s) {
  v.field("device", s.device,
          {"where the worker computes: auto (a CUDA GPU when its LibTorch sees one, else the CPU), cpu or cuda "
           "(an error where there is none)",
           0,
           0,
           {"auto", "cpu", "cuda"}});
  v.field("precision", s.precision,
          {"auto (bf16 on a GPU, fp32 on the CPU), fp32, or bf16: autocast with fp32 master weights and "
           "optimiser state",
           0,
           0,
           {"auto", "fp32", "bf16"}});
  v.field("tf32", s.tf32, {"CUDA: fp32 matrix products and convolutions in TF32 (no effect on the CPU)"});
  v.field("deterministic", s.deterministic,
          {"the math attention kernel and deterministic algorithms: runs repeat bit for bit, slower"});
}

template <class V>
void describe(V& v, ExperimentSpec& s) {
  v.field("name", s.name, {"experiment name, unique in the store ([A-Za-z0-9_-]+)"});
  v.field("description", s.description, {"free text"});
  v.field("seed", s.seed, {"master seed; every random stream derives from (seed, purpose, rank)", 0, kMaxInt});
  v.field("task", s.task, {"class: class-conditional; text: text-to-image", 0, 0, {"class", "text"}});
  v.table("dataset", s.dataset, "training data");
  v.table("autoencoder", s.autoencoder, "image <-> latent autoencoder");
  v.table("text_encoder", s.text_encoder, "caption -> token features (task = \"text\")");
  v.table("recipe", s.recipe, "model family, size, diffusion and optimiser");
  v.array("stage", s.stages,
          "training stages; a stage with init_from starts after its parent, the others start at once");
  v.optional_table("executor", s.executor, "where the attempts run, and the SLURM job's knobs");
  v.optional_table("hardware", s.hardware, "the device the worker computes on, and its precision");
}

// ---- operations ------------------------------------------------------------------------------

// The recipe a family brings "with its corresponding recipe" (PAPER.md): optimiser, diffusion,
// sampler and EMA defaults from the family's original paper, each with its source in the family's
// recipe card (shared/core/recipes/<family>.cpp). Readers start from these before applying the file's keys. Unknown
// families get the struct defaults (validation reports the unknown family). `optimizer`, when set and not the family's
// own, replaces the family's optimiser name and betas by that optimiser's own defaults (AdamW (0.9, 0.999); Adan (0.98,
// 0.92, 0.99)), so a file that switches an mdt recipe to "adamw" does not silently inherit Adan's betas.
RecipeSpec recipe_defaults(const std::string& family, const std::string& optimizer = "");

// Range/choice check of one scalar; throws SpecError(path, ...).
void check_field(const std::string& path, std::int64_t value, const FieldMeta& meta);
void check_field(const std::string& path, double value, const FieldMeta& meta);
void check_field(const std::string& path, const std::string& value, const FieldMeta& meta);
inline void check_field(const std::string&, bool, const FieldMeta&) {}
// Lists: every element is checked as a scalar ("<path>.<i>").
void check_field(const std::string& path, const std::vector<std::int64_t>& value, const FieldMeta& meta);
void check_field(const std::string& path, const std::vector<std::string>& value, const FieldMeta& meta);
// An enum's value is checked when its name is read (parse_choice).
template <class E, class = std::enable_if_t<is_choice_v<E>>>
void check_field(const std::string&, E, const FieldMeta&) {}

// Cross-field validation (recipe × task, divisibility, names, ...). Throws SpecError naming the
// offending key path, e.g. "stage.0.batch_size".
void validate(const ExperimentSpec& spec);

// The experiment as stage `index` trains it: `task`, `dataset`, `text_encoder` and `recipe` with
// the stage's overrides applied (everything else, stages included, as in `spec`). Throws
// SpecError naming "stage.<index>.<key path>" for an unknown key or a bad value in an override.
ExperimentSpec stage_view(const ExperimentSpec& spec, std::size_t index);

// How a stage's init_from reads (see StageSpec::init_from).
struct InitSource {
  enum class Kind { None, Stage, OtherExperiment, Bundle } kind = Kind::None;
  std::string experiment;  // OtherExperiment
  std::string stage;       // Stage, OtherExperiment
  std::string path;        // Bundle
};
InitSource parse_init_source(const std::string& init_from);
// The stage a stage waits for, as an init_from string: `after` for an evaluation stage, else init_from.
const std::string& stage_parent(const StageSpec& stage);
// The stage of `spec` named `name`, or nullptr.
const StageSpec* find_stage(const ExperimentSpec& spec, const std::string& name);
// The first stage of the init_from chain inside the experiment (the stage itself when it has no
// parent in the experiment): its resolution is where the resolution shift is 1.
const StageSpec& chain_root(const ExperimentSpec& spec, const StageSpec& stage);

// A stable hash of the resolved spec (hex), recorded in checkpoints.
std::string spec_hash(const ExperimentSpec& spec);

// The resolution shift s a stage trains and samples with: DiffusionSpec::shift, or auto =
// resolution / reference_resolution, where reference_resolution 0 means chain_root()'s resolution
// (a stage whose chain starts from another experiment or a bundle is given its parent's reference
// by the coordinator, written into the stage view's recipe.diffusion.reference_resolution).
double resolution_shift(const ExperimentSpec& spec, const StageSpec& stage);

// Learning rate at optimiser step `step` (1-based) of a stage's schedule.
double learning_rate(const StageSpec& stage, std::int64_t step);

// Latent geometry implied by the spec for a stage.
int latent_channels(const AutoencoderSpec& ae);
int latent_side(const ExperimentSpec& spec, const StageSpec& stage);

// Is `name` a valid experiment/stage name ([A-Za-z0-9_-]+, at most 64 characters)?
bool valid_name(const std::string& name);

}  // namespace ldm
