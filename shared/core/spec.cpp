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

void check_field(const std::string& path, const std::vector<std::int64_t>& value, const FieldMeta& meta) {
  for (std::size_t i = 0; i < value.size(); ++i) check_field(path + "." + std::to_string(i), value[i], meta);
}
void check_field(const std::string& path, const std::vector<std::string>& value, const FieldMeta& meta) {
  for (std::size_t i = 0; i < value.size(); ++i) check_field(path + "." + std::to_string(i), value[i], meta);
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

namespace {

// The checks of the experiment-level settings (task, encoders, recipe), for the experiment itself
// and for every stage view that overrides some of them.
void validate_settings(const ExperimentSpec& spec) {
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
  recipe_preset(spec.recipe.family, spec.recipe.preset);
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
  // Learned sigma is on by default in the DiT, mDT-v2 and PixArt-α recipes: say how to turn it off
  // (looked up only for the message: validate() runs on every read of a stored spec).
  const auto sigma_default = [&] {
    return recipe_defaults(spec.recipe.family).learn_sigma
               ? " (the " + spec.recipe.family + " recipe learns sigma by default)"
               : std::string();
  };
  if (spec.recipe.learn_sigma && d.process == ProcessKind::Flow)
    throw SpecError("recipe.learn_sigma",
                    "learned variance (DiT's hybrid loss) needs a discrete VP process, not "
                    "'flow'" +
                        sigma_default() + "; set learn_sigma = false in [recipe]");
  if (spec.recipe.learn_sigma && d.objective != Objective::Eps)
    throw SpecError("recipe.learn_sigma",
                    "learned variance (DiT's hybrid loss) is defined for objective = 'eps', "
                    "not '" +
                        std::string(choice_name(d.objective)) + "'" + sigma_default() +
                        "; set learn_sigma = false in [recipe]");
}

// Does the sparse override object hold the dotted key path ("recipe.diffusion.shift")?
bool overrides_key(const nlohmann::json& overrides, const std::string& path) {
  const nlohmann::json* node = &overrides;
  for (const std::string& part : split(path, '.')) {
    if (!node->is_object() || !node->contains(part)) return false;
    node = &(*node)[part];
  }
  return true;
}

// validate_settings() of a stage view: an error about a key the stage overrides names the stage's
// key; any other is the combination of the stage's keys with the experiment's, said so.
void validate_stage_settings(const ExperimentSpec& view, const StageSpec& stage, const std::string& prefix) {
  try {
    validate_settings(view);
  } catch (const SpecError& e) {
    if (overrides_key(stage.overrides, e.key_path()) || (e.key_path() == "task" && !stage.task.empty()))
      throw SpecError(prefix + e.key_path(), e.detail());
    throw SpecError(e.key_path(), "in stage '" + stage.name + "' (with its overrides): " + e.detail());
  }
}

// Keys a stage may not change: they define the network's shape, so no weights could carry over.
void check_fixed_recipe_keys(const StageSpec& stage, const std::string& prefix) {
  for (const char* key : {"family", "preset", "learn_sigma"})
    if (overrides_key(stage.overrides, std::string("recipe.") + key))
      throw SpecError(prefix + "recipe." + key,
                      std::string("a stage cannot change recipe.") + key +
                          ": every stage of an experiment trains one network (compare recipes with separate "
                          "experiments or a sweep)");
}

// The init_from graph inside the experiment: unknown parents and cycles.
void check_stage_graph(const ExperimentSpec& spec) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    names.push_back(spec.stages[i].name);
    try {  // every source is well-formed before any chain is followed through it
      parse_init_source(spec.stages[i].init_from);
    } catch (const Error& e) {
      throw SpecError("stage." + std::to_string(i) + ".init_from", e.what());
    }
  }
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const StageSpec& st = spec.stages[i];
    const std::string key = "stage." + std::to_string(i) + ".init_from";
    const InitSource src = parse_init_source(st.init_from);
    if (src.kind != InitSource::Kind::Stage) continue;
    if (src.stage == st.name) throw SpecError(key, "stage '" + st.name + "' cannot start from itself");
    if (!find_stage(spec, src.stage))
      throw SpecError(key, "no stage named '" + src.stage + "' in this experiment" + did_you_mean(src.stage, names) +
                               " (another experiment's stage is EXPERIMENT:STAGE; a bundle path contains a '/')");
    if (find_stage(spec, src.stage)->kind == "eval")
      throw SpecError(key, "'" + src.stage + "' is an evaluation stage: it has no weights to start from");
    // Follow the chain; coming back to this stage is a cycle.
    std::vector<std::string> chain = {st.name};
    for (const StageSpec* cur = find_stage(spec, src.stage); cur;) {
      chain.push_back(cur->name);
      if (cur->name == st.name)
        throw SpecError(key, "init_from forms a cycle: " + join(chain, " -> ") + " (stages must form a DAG)");
      const InitSource next = parse_init_source(cur->init_from);
      cur = next.kind == InitSource::Kind::Stage ? find_stage(spec, next.stage) : nullptr;
      if (chain.size() > spec.stages.size() + 1) break;  // a cycle not through this stage: found from its own stages
    }
  }
}

// Settings that shape the network besides the recipe's family, preset and learned variance: a
// stage started from another's weights must keep them (a class <-> text swap replaces the
// conditioning input, so the caption width may change with it).
void check_same_shape(const ExperimentSpec& parent, const ExperimentSpec& view, const std::string& parent_name,
                      const std::string& prefix) {
  const ConditioningSpec &a = parent.recipe.conditioning, &b = view.recipe.conditioning;
  const bool controls = a.controls != ControlMode::None && b.controls != ControlMode::None;  // both embed them
  const std::pair<const char*, bool> changed[] = {
      {"recipe.conditioning.controls", (a.controls == ControlMode::None) != (b.controls == ControlMode::None)},
      {"recipe.conditioning.use_size", controls && a.use_size != b.use_size},
      {"recipe.conditioning.use_crop", controls && a.use_crop != b.use_crop},
      {"recipe.conditioning.use_flip", controls && a.use_flip != b.use_flip},
      {"recipe.conditioning.use_aspect", controls && a.use_aspect != b.use_aspect},
      {"recipe.conditioning.frequency_size", controls && a.frequency_size != b.frequency_size},
      {"recipe.conditioning.dropped_controls", controls && a.dropped_controls != b.dropped_controls},
      {"text_encoder.dim",
       parent.task == "text" && view.task == "text" && parent.text_encoder.dim != view.text_encoder.dim}};
  for (const auto& [key, differs] : changed)
    if (differs)
      throw SpecError(prefix + key, std::string("differs from parent '") + parent_name +
                                        "', and it shapes the network: a stage started from another's weights "
                                        "keeps it");
}

// Transfer keys that mean something only with a parent, and class-table rules across datasets.
void check_transfer(const ExperimentSpec& spec, std::size_t i, const ExperimentSpec& view) {
  const StageSpec& st = spec.stages[i];
  const std::string p = "stage." + std::to_string(i) + ".";
  const StageSpec defaults;
  const InitSource src = parse_init_source(st.init_from);
  if (src.kind == InitSource::Kind::None) {
    const std::pair<const char*, bool> keys[] = {{"init_weights", st.init_weights != defaults.init_weights},
                                                 {"init_optimizer", st.init_optimizer != defaults.init_optimizer},
                                                 {"classes", st.classes != defaults.classes},
                                                 {"classes_map", !st.classes_map.empty()}};
    for (const auto& [key, set] : keys)
      if (set)
        throw SpecError(p + key, "does nothing in stage '" + st.name +
                                     "', which starts from scratch (set init_from to a parent stage or bundle)");
  }
  if (!st.classes_map.empty() && st.classes != "remap")
    throw SpecError(p + "classes_map",
                    "is read only with classes = \"remap\" (this stage has classes = \"" + st.classes + "\")");
  if (st.classes == "remap" && st.classes_map.empty())
    throw SpecError(p + "classes", "\"remap\" needs classes_map, a file of \"old new\" class-id pairs");
  if (st.classes != "keep" && view.task != "class")
    throw SpecError(p + "classes", "does nothing in a text-to-image stage (no label table)");
  if (src.kind != InitSource::Kind::Stage) return;  // other parents are checked when the stage starts
  const StageSpec& parent = *find_stage(spec, src.stage);
  std::size_t parent_index = 0;
  while (spec.stages[parent_index].name != parent.name) ++parent_index;
  const ExperimentSpec parent_view = stage_view(spec, parent_index);
  const RecipeCard& card = recipe_card(view.recipe.family);
  if (parent.resolution != st.resolution && !card.capabilities.resolution_change)
    throw SpecError(p + "resolution", card.title + " weights cannot move to another resolution (" +
                                          std::to_string(parent.resolution) + " in '" + parent.name + "', " +
                                          std::to_string(st.resolution) + " here)");
  if (st.classes == "keep" && view.task == "class" && parent_view.task == "class" &&
      view.dataset.classes != parent_view.dataset.classes)
    throw SpecError(p + "classes",
                    "stage '" + st.name + "' has " + std::to_string(view.dataset.classes) +
                        " classes and its parent '" + parent.name + "' " + std::to_string(parent_view.dataset.classes) +
                        ": set classes = \"reinit\" (a new label table) or \"remap\" (with classes_map)");
  if (st.classes != "keep" && parent_view.task != "class")
    throw SpecError(p + "classes", "does nothing: parent '" + parent.name + "' is text-to-image (no label table to " +
                                       st.classes + ")");
  check_same_shape(parent_view, view, parent.name, p);
  if (st.init_optimizer == "keep" && view.recipe.optimizer.name != parent_view.recipe.optimizer.name)
    throw SpecError(p + "init_optimizer", std::string("cannot keep the ") +
                                              choice_name(parent_view.recipe.optimizer.name) +
                                              " optimiser state of parent '" + parent.name + "' in " +
                                              choice_name(view.recipe.optimizer.name) + "; use \"reset\"");
}

// One training stage: its overrides, its transfer, and the shape of its batches and schedule.
void check_training_stage(const ExperimentSpec& spec, std::size_t i) {
  const StageSpec& st = spec.stages[i];
  const std::string p = "stage." + std::to_string(i) + ".";
  const StageSpec defaults;
  if (!st.after.empty())
    throw SpecError(p + "after",
                    "is read only by evaluation stages (kind = \"eval\"); a training stage starts "
                    "from another with init_from");
  if (spec_to_json(spec)["stage"][i].contains("eval"))
    throw SpecError(p + "eval", "is read only by evaluation stages (kind = \"eval\")");
  check_fixed_recipe_keys(st, p);
  const ExperimentSpec view = stage_view(spec, i);
  if (!st.overrides.empty() || !st.task.empty()) validate_stage_settings(view, st, p);
  check_transfer(spec, i, view);
  // Patch transformers need whole patches; the UNet halves the latent (levels - 1) times.
  const RecipeCard& card = recipe_card(view.recipe.family);
  const LatentGrid grid = card.latent_grid(recipe_preset(view.recipe.family, view.recipe.preset));
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

// One evaluation stage: a training parent, metrics the recipe and task can give, checkpoints the
// parent writes, and no training keys.
void check_eval_stage(const ExperimentSpec& spec, std::size_t i) {
  const StageSpec& st = spec.stages[i];
  const EvalSpec& ev = st.eval;
  const std::string p = "stage." + std::to_string(i) + ".";
  // Training keys (those not at their defaults) do nothing here.
  const nlohmann::json mine = spec_to_json(spec)["stage"][i], plain = spec_to_json([] {
                                                                ExperimentSpec one;
                                                                one.stages.emplace_back();
                                                                return one;
                                                              }())["stage"][0];
  for (const auto& [key, value] : plain.items())
    if (key != "name" && key != "ranks" && key != "threads_per_rank" && key != "max_attempts" && mine.contains(key) &&
        mine[key] != value)
      throw SpecError(p + key, "does nothing in evaluation stage '" + st.name +
                                   "' (it samples from the checkpoints "
                                   "of `after` at their resolution)");
  for (const char* key : {"init_from", "task", "dataset", "text_encoder", "recipe"})
    if (mine.contains(key))
      throw SpecError(p + key, "does nothing in evaluation stage '" + st.name + "' (its settings are [stage.eval])");
  if (st.after.empty())
    throw SpecError(p + "after", "an evaluation stage needs `after`, the training stage it evaluates");
  std::vector<std::string> names;
  for (const StageSpec& other : spec.stages) names.push_back(other.name);
  const StageSpec* parent = find_stage(spec, st.after);
  if (!parent) throw SpecError(p + "after", "no stage named '" + st.after + "'" + did_you_mean(st.after, names));
  if (parent->kind == "eval")
    throw SpecError(p + "after", "'" + st.after + "' is an evaluation stage: it has no checkpoints to evaluate");
  if (ev.metrics.empty()) throw SpecError(p + "eval.metrics", "is empty: name at least one metric");
  std::size_t parent_index = 0;
  while (spec.stages[parent_index].name != parent->name) ++parent_index;
  const ExperimentSpec view = stage_view(spec, parent_index);
  for (const std::string& metric : ev.metrics) {
    if (metric == "clip_score" && view.task != "text")
      throw SpecError(p + "eval.metrics",
                      "clip_score needs a text-to-image parent ('" + st.after + "' is class-conditional)");
    if (metric == "clip_score")
      for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"clip_image", &ev.clip_image},
                                       {"clip_text", &ev.clip_text},
                                       {"clip_bpe", &ev.clip_bpe}})
        if (value->empty())
          throw SpecError(p + "eval." + key,
                          "is required for clip_score (tools/export/export_clip.py writes the towers)");
    if (metric == "caption_adherence" && view.task != "text")
      throw SpecError(p + "eval.metrics",
                      "caption_adherence needs a text-to-image parent ('" + st.after + "' is class-conditional)");
    if (metric == "caption_adherence" && ev.captions.empty())
      throw SpecError(p + "eval.captions",
                      "is required for caption_adherence (the captions the samples are scored "
                      "against, e.g. experiments/tiny/paper/captions.txt)");
  }
  if (view.task != "text" && !ev.captions.empty())
    throw SpecError(p + "eval.captions", "does nothing: '" + st.after +
                                             "' is class-conditional (samples use classes i % " +
                                             std::to_string(view.dataset.classes) + ")");
  for (std::size_t k = 1; k < ev.at_steps.size(); ++k)
    if (std::find(ev.at_steps.begin(), ev.at_steps.begin() + static_cast<long>(k), ev.at_steps[k]) !=
        ev.at_steps.begin() + static_cast<long>(k))
      throw SpecError(p + "eval.at_steps." + std::to_string(k),
                      "step " + std::to_string(ev.at_steps[k]) + " is listed twice");
  if (view.task == "text" && ev.captions.empty())
    throw SpecError(p + "eval.captions",
                    "is required: '" + st.after + "' is text-to-image (a file, one caption per line)");
  for (std::size_t k = 0; k < ev.at_steps.size(); ++k) {
    const std::int64_t step = ev.at_steps[k];
    const bool written =
        step == 0 || step == parent->steps || (parent->checkpoint_every > 0 && step % parent->checkpoint_every == 0);
    if (step > parent->steps || !written)
      throw SpecError(p + "eval.at_steps." + std::to_string(k),
                      "'" + st.after + "' writes no checkpoint at step " + std::to_string(step) + " (it trains " +
                          std::to_string(parent->steps) +
                          " steps, checkpoint_every = " + std::to_string(parent->checkpoint_every) + ")");
  }
}

}  // namespace

InitSource parse_init_source(const std::string& init_from) {
  InitSource src;
  if (init_from.empty()) return src;
  if (init_from.find('/') != std::string::npos) {
    src.kind = InitSource::Kind::Bundle;
    src.path = init_from;
    return src;
  }
  const auto colon = init_from.find(':');
  if (colon == std::string::npos) {
    if (!valid_name(init_from))
      throw Error("'" + init_from +
                  "' is neither a stage name ([A-Za-z0-9_-]+), EXPERIMENT:STAGE, nor a bundle path (with a '/')");
    src.kind = InitSource::Kind::Stage;
    src.stage = init_from;
    return src;
  }
  src.kind = InitSource::Kind::OtherExperiment;
  src.experiment = init_from.substr(0, colon);
  src.stage = init_from.substr(colon + 1);
  if (!valid_name(src.experiment) || !valid_name(src.stage))
    throw Error("'" + init_from + "': EXPERIMENT:STAGE needs two names of [A-Za-z0-9_-]+");
  return src;
}

const std::string& stage_parent(const StageSpec& stage) { return stage.kind == "eval" ? stage.after : stage.init_from; }

const StageSpec* find_stage(const ExperimentSpec& spec, const std::string& name) {
  for (const StageSpec& st : spec.stages)
    if (st.name == name) return &st;
  return nullptr;
}

const StageSpec& chain_root(const ExperimentSpec& spec, const StageSpec& stage) {
  const StageSpec* cur = &stage;
  for (std::size_t hops = 0; hops <= spec.stages.size(); ++hops) {
    const InitSource src = parse_init_source(cur->init_from);
    const StageSpec* parent = src.kind == InitSource::Kind::Stage ? find_stage(spec, src.stage) : nullptr;
    if (!parent) return *cur;
    cur = parent;
  }
  return *cur;  // a cycle (validate() rejects it)
}

void validate(const ExperimentSpec& spec) {
  if (spec.name.empty()) throw SpecError("name", "is required");
  if (!valid_name(spec.name)) throw SpecError("name", "'" + spec.name + "' must be 1-64 characters of [A-Za-z0-9_-]");
  validate_settings(spec);

  if (spec.stages.empty()) throw SpecError("stage", "at least one [[stage]] is required");
  std::set<std::string> names;
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const StageSpec& st = spec.stages[i];
    const std::string p = "stage." + std::to_string(i) + ".";
    if (!valid_name(st.name)) throw SpecError(p + "name", "'" + st.name + "' must be 1-64 characters of [A-Za-z0-9_-]");
    if (!names.insert(st.name).second) throw SpecError(p + "name", "stage name '" + st.name + "' is used twice");
  }
  check_stage_graph(spec);
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    if (spec.stages[i].kind == "eval") check_eval_stage(spec, i);
    else check_training_stage(spec, i);
  }
}

RecipeSpec recipe_defaults(const std::string& family, const std::string& optimizer) {
  RecipeSpec r;
  r.family = family;
  if (const RecipeCard* card = find_recipe_card(family)) {
    const nlohmann::json patch = recipe_defaults_table(*card, "recipe");
    if (!patch.empty()) read_recipe_table(patch, "recipe", r);
  }
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
  const std::int64_t ref = d.reference_resolution > 0 ? d.reference_resolution : chain_root(spec, stage).resolution;
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
