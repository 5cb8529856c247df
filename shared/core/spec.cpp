#include "shared/core/spec.h"

#include <cmath>
#include <set>
#include <sstream>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/presets.h"
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
    throw SpecError(path, "value " + fmt_num(value) + " is out of range [" + fmt_num(meta.lo) +
                              ", " + fmt_num(meta.hi) + "]");
  }
}
}  // namespace

void check_field(const std::string& path, std::int64_t value, const FieldMeta& meta) {
  check_range(path, static_cast<double>(value), meta);
}
void check_field(const std::string& path, double value, const FieldMeta& meta) {
  check_range(path, value, meta);
}
void check_field(const std::string& path, const std::string& value, const FieldMeta& meta) {
  if (meta.choices.empty()) return;
  for (const auto& c : meta.choices)
    if (c == value) return;
  throw SpecError(path, "'" + value + "' is not one of: " + join(meta.choices, ", ") +
                            did_you_mean(value, meta.choices));
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

int latent_channels(const AutoencoderSpec& ae) {
  return static_cast<int>(3 * ae.factor * ae.factor);
}

int latent_side(const ExperimentSpec& spec, const StageSpec& stage) {
  return static_cast<int>(stage.resolution / spec.autoencoder.factor);
}

void validate(const ExperimentSpec& spec) {
  if (spec.name.empty()) throw SpecError("name", "is required");
  if (!valid_name(spec.name))
    throw SpecError("name", "'" + spec.name + "' must be 1-64 characters of [A-Za-z0-9_-]");

  const auto families = recipe_families();
  if (!is_known_family(spec.recipe.family))
    throw SpecError("recipe.family", "unknown recipe family '" + spec.recipe.family +
                                         "'; known: " + join(families, ", ") +
                                         did_you_mean(spec.recipe.family, families));
  const PresetInfo* preset = find_preset(spec.recipe.family, spec.recipe.preset);
  if (!preset) {
    auto names = preset_names(spec.recipe.family);
    throw SpecError("recipe.preset", "unknown preset '" + spec.recipe.preset + "' for family '" +
                                         spec.recipe.family + "'; known: " + join(names, ", ") +
                                         did_you_mean(spec.recipe.preset, names));
  }
  if (!family_supports_task(spec.recipe.family, spec.task))
    throw SpecError("task", "recipe family '" + spec.recipe.family + "' does not support task '" +
                                spec.task + "' (supported: " +
                                join(family_tasks(spec.recipe.family), ", ") + ")");
  if (spec.task == "text")
    throw SpecError("task", "text-to-image training is not supported yet (no text recipe is built)");
  if (spec.dataset.kind == "shards" && spec.dataset.path.empty())
    throw SpecError("dataset.path", "is required when dataset.kind = 'shards'");
  if (spec.recipe.diffusion.beta_end <= spec.recipe.diffusion.beta_start)
    throw SpecError("recipe.diffusion.beta_end", "must be greater than beta_start");

  if (spec.stages.empty()) throw SpecError("stage", "at least one [[stage]] is required");
  if (spec.stages.size() > 1)
    throw SpecError("stage.1", "multi-stage experiments (resolution transfer) are not supported yet");
  std::set<std::string> names;
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const StageSpec& st = spec.stages[i];
    const std::string p = "stage." + std::to_string(i) + ".";
    if (!valid_name(st.name))
      throw SpecError(p + "name", "'" + st.name + "' must be 1-64 characters of [A-Za-z0-9_-]");
    if (!names.insert(st.name).second)
      throw SpecError(p + "name", "stage name '" + st.name + "' is used twice");
    std::int64_t unit = spec.autoencoder.factor * preset->patch;
    if (st.resolution % unit != 0)
      throw SpecError(p + "resolution", std::to_string(st.resolution) +
                                            " is not divisible by autoencoder.factor * patch = " +
                                            std::to_string(unit));
    if (st.batch_size % st.ranks != 0)
      throw SpecError(p + "batch_size", "global batch " + std::to_string(st.batch_size) +
                                            " is not divisible by ranks = " +
                                            std::to_string(st.ranks));
  }
}

std::string spec_hash(const ExperimentSpec& spec) {
  return hex64(fnv1a64(spec_to_json(spec).dump()));
}

}  // namespace ldm
