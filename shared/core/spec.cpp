#include "shared/core/spec.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/recipes/card.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"

namespace ldm {

namespace {
std::string fmt_num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
void check_range(const std::string& path, double value, const FieldMeta& meta) {
  if (std::isnan(value) || value < meta.lo || value > meta.hi) {
    throw SpecError(
        path, "value " + fmt_num(value) + " is out of range [" + fmt_num(meta.lo) + ", " + fmt_num(meta.hi) + "]");
  }
}
}  // namespace

void check_field(const std::string& path, std::int64_t value, const FieldMeta& meta) {
  check_range(path, static_cast<double>(value), meta);
}
void check_field(const std::string& path, double value, const FieldMeta& meta) { check_range(path, value, meta); }
void check_field(const std::string& path, const std::string& value, const FieldMeta& meta) {
  if (meta.choices.empty()) return;
  for (const auto& c : meta.choices)
    if (c == value) return;
  throw SpecError(path, not_one_of(value, meta.choices));
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

int latent_channels(const AutoencoderSpec& ae) { return static_cast<int>(3 * ae.factor * ae.factor); }

int latent_side(const ExperimentSpec& spec, const StageSpec& stage) {
  return static_cast<int>(stage.resolution / spec.autoencoder.factor);
}

void validate(const ExperimentSpec& spec) {
  if (spec.name.empty()) throw SpecError("name", "is required");
  if (!valid_name(spec.name)) throw SpecError("name", "'" + spec.name + "' must be 1-64 characters of [A-Za-z0-9_-]");

  if (spec.autoencoder.kind == "torchscript" && spec.autoencoder.path.empty())
    throw SpecError("autoencoder.path", "is required with autoencoder.kind = \"torchscript\" (the exported VAE file)");
  if (spec.text_encoder.kind == "torchscript" &&
      (spec.text_encoder.path.empty() || spec.text_encoder.tokenizer.empty()))
    throw SpecError(
        spec.text_encoder.path.empty() ? "text_encoder.path" : "text_encoder.tokenizer",
        "is required with text_encoder.kind = \"torchscript\" (the exported encoder and its SentencePiece model)");
  if (spec.text_encoder.kind == "precomputed" && spec.dataset.kind != "shards")
    throw SpecError("text_encoder.kind",
                    "\"precomputed\" reads caption features from shards: set dataset.kind = \"shards\"");

  const RecipeCard& card = recipe_card(spec.recipe.family);
  const PresetInfo& preset = recipe_preset(spec.recipe.family, spec.recipe.preset);
  if (std::find(card.tasks.begin(), card.tasks.end(), spec.task) == card.tasks.end())
    throw SpecError("task", "recipe family '" + spec.recipe.family + "' does not support task '" + spec.task +
                                "' (supported: " + join(card.tasks, ", ") + ")");
  if (spec.recipe.learn_sigma && !card.capabilities.learned_sigma)
    throw SpecError("recipe.learn_sigma", "recipe family '" + spec.recipe.family + "' has no learned-variance output");
  const ConditioningSpec& k = spec.recipe.conditioning;
  if (k.mask_padding && k.text_padding != TextPadding::Zero)
    throw SpecError("recipe.conditioning.mask_padding", "masking the padding slots makes text_padding = '" +
                                                            std::string(choice_name(k.text_padding)) +
                                                            "' identical to 'zero'; turn one of them off");
  if (card.validate) card.validate(spec);
  if (k.controls != ControlMode::None && !(k.use_size || k.use_crop || k.use_flip || k.use_aspect))
    throw SpecError(
        "recipe.conditioning.controls",
        "'" + std::string(choice_name(k.controls)) +
            "' with every control group off (use_size/use_crop/use_flip/use_aspect); set controls = \"none\" instead");
  if (spec.dataset.kind == "shards" && spec.dataset.path.empty())
    throw SpecError("dataset.path", "is required when dataset.kind = 'shards'");
  const DiffusionSpec& d = spec.recipe.diffusion;
  if (d.beta_end <= d.beta_start) throw SpecError("recipe.diffusion.beta_end", "must be greater than beta_start");
  if (d.objective == Objective::Flow && d.process != ProcessKind::Flow)
    throw SpecError("recipe.diffusion.objective", "the flow-velocity objective needs process = 'flow' (got '" +
                                                      std::string(choice_name(d.process)) + "')");
  if (d.t_sampling == TimeSampling::LogitNormal && d.process != ProcessKind::Flow)
    throw SpecError("recipe.diffusion.t_sampling",
                    "logit-normal timestep sampling needs process = 'flow' (discrete VP draws integer timesteps)");
  if (spec.recipe.learn_sigma && d.process == ProcessKind::Flow)
    throw SpecError("recipe.learn_sigma",
                    "learned variance (DiT's hybrid loss) needs a discrete VP process, not 'flow'");
  if (spec.recipe.learn_sigma && d.objective != Objective::Eps)
    throw SpecError("recipe.learn_sigma", "learned variance (DiT's hybrid loss) is defined for objective = 'eps'");

  if (spec.stages.empty()) throw SpecError("stage", "at least one [[stage]] is required");
  if (spec.stages.size() > 1)
    throw SpecError("stage.1", "multi-stage experiments (resolution transfer) are not supported yet");
  std::set<std::string> names;
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const StageSpec& st = spec.stages[i];
    const std::string p = "stage." + std::to_string(i) + ".";
    if (!valid_name(st.name)) throw SpecError(p + "name", "'" + st.name + "' must be 1-64 characters of [A-Za-z0-9_-]");
    if (!names.insert(st.name).second) throw SpecError(p + "name", "stage name '" + st.name + "' is used twice");
    // Patch transformers need whole patches; the UNet halves the latent (levels - 1) times.
    const LatentGrid grid = card.latent_grid(preset);
    const std::int64_t unit = spec.autoencoder.factor * grid.multiple;
    if (st.resolution % unit != 0)
      throw SpecError(p + "resolution", std::to_string(st.resolution) + " is not divisible by autoencoder.factor * " +
                                            grid.why + " = " + std::to_string(unit));
    if (st.lr_schedule != "constant" && st.warmup_steps > st.steps)
      throw SpecError(p + "warmup_steps", std::to_string(st.warmup_steps) + " warm-up steps exceed the stage's " +
                                              std::to_string(st.steps) + " steps");
    if (st.lr_schedule == "cosine" && st.min_lr > st.lr)
      throw SpecError(p + "min_lr", "the cosine schedule's min_lr exceeds lr");
    if (st.batch_size % st.ranks != 0)
      throw SpecError(p + "batch_size", "global batch " + std::to_string(st.batch_size) +
                                            " is not divisible by ranks = " + std::to_string(st.ranks));
    if (st.batch_size % (st.ranks * st.grad_accumulation) != 0)
      throw SpecError(p + "grad_accumulation", "global batch " + std::to_string(st.batch_size) +
                                                   " does not split into ranks x grad_accumulation = " +
                                                   std::to_string(st.ranks * st.grad_accumulation) + " micro-batches");
  }
}

RecipeSpec recipe_defaults(const std::string& family, const std::string& optimizer) {
  RecipeSpec r;
  r.family = family;
  if (const RecipeCard* card = find_recipe_card(family); card && card->defaults) card->defaults(r);
  const std::optional<OptimizerKind> kind = choice_from_name<OptimizerKind>(optimizer);
  if (kind && *kind != r.optimizer.name) {
    const OptimizerSpec plain;  // AdamW's defaults
    r.optimizer.name = *kind;
    r.optimizer.beta1 = *kind == OptimizerKind::Adan ? 0.98 : plain.beta1;
    r.optimizer.beta2 = *kind == OptimizerKind::Adan ? 0.92 : plain.beta2;
    r.optimizer.beta3 = plain.beta3;
  }
  return r;
}

double resolution_shift(const ExperimentSpec& spec, const StageSpec& stage) {
  const DiffusionSpec& d = spec.recipe.diffusion;
  if (d.shift > 0) return d.shift;
  const std::int64_t ref = d.reference_resolution > 0
                               ? d.reference_resolution
                               : (spec.stages.empty() ? stage.resolution : spec.stages.front().resolution);
  return double(stage.resolution) / double(ref);
}

double learning_rate(const StageSpec& stage, std::int64_t step) {
  if (stage.lr_schedule == "constant") return stage.lr;
  if (step <= stage.warmup_steps && stage.warmup_steps > 0) return stage.lr * double(step) / double(stage.warmup_steps);
  if (stage.lr_schedule == "warmup") return stage.lr;
  // cosine from lr (end of warm-up) to min_lr (last step)
  const double span = double(std::max<std::int64_t>(1, stage.steps - stage.warmup_steps));
  const double progress = std::min(1.0, double(step - stage.warmup_steps) / span);
  return stage.min_lr + 0.5 * (stage.lr - stage.min_lr) * (1.0 + std::cos(M_PI * progress));
}

std::string spec_hash(const ExperimentSpec& spec) { return hex64(fnv1a64(spec_to_json(spec).dump())); }

}  // namespace ldm
