#include "coordinator/lineage.h"

#include <filesystem>

#include "coordinator/run_outcome.h"
#include "shared/core/checkpoint_dir.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/safe_file.h"
#include "shared/core/sha256.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

// `path` as the experiment file means it: relative paths are relative to the file's directory.
std::string from_source_dir(const std::string& path, const std::string& source) {
  if (path.empty() || path.front() == '/' || source.empty()) return path;
  const auto slash = source.rfind('/');
  const std::string dir = slash == std::string::npos ? std::string(".") : source.substr(0, slash);
  return std::filesystem::path(dir + "/" + path).lexically_normal().string();
}

// A bundle directory, or the newest complete bundle of a checkpoints directory / run directory; ""
// when `path` is neither.
std::string bundle_dir(const std::string& path) { return resolve_bundle_dir(path); }

std::string stage_label(const std::string& experiment, const StageSpec& stage) {
  return "stage '" + stage.name + "' of experiment " + experiment;
}

// The experiment and stage whose run directory holds the parent's checkpoints.
std::pair<std::string, std::string> parent_stage(const std::string& experiment, const InitSource& src) {
  return {src.kind == InitSource::Kind::OtherExperiment ? src.experiment : experiment, src.stage};
}

}  // namespace

ParentStatus parent_status(const ExperimentStore& store, const std::string& experiment, const StageSpec& stage,
                           const std::string& source) {
  const InitSource src = parse_init_source(stage_parent(stage));
  const std::string key = (stage.kind == "eval" ? "after '" : "init_from '") + stage_parent(stage) + "'";
  if (src.kind == InitSource::Kind::None) return {};
  if (src.kind == InitSource::Kind::Bundle) {
    const std::string path = from_source_dir(src.path, source);
    if (bundle_dir(path).empty())
      return {ParentState::Failed, key + ": " + path +
                                       " is not a checkpoint bundle (no manifest.json) nor a directory that holds one "
                                       "(step-NNNNNNN/manifest.json)"};
    return {ParentState::Ready, ""};
  }
  const auto [exp, name] = parent_stage(experiment, src);
  const auto record = store.get_stage(exp, name);
  const auto parent_experiment = store.get_experiment(exp);
  if (!record || !parent_experiment)
    return {ParentState::Failed, key + ": experiment " + exp + " has no stage '" + name + "'" +
                                     (parent_experiment ? "" : " (no such experiment)")};
  if (record->state == RunState::Done) return {ParentState::Ready, ""};
  const bool experiment_active =
      parent_experiment->state == RunState::Pending || parent_experiment->state == RunState::Running;
  if ((record->state == RunState::Pending || record->state == RunState::Running) &&
      (experiment_active || exp == experiment))
    return {ParentState::Waiting, "waits for stage '" + name + "' of experiment " + exp};
  return {ParentState::Failed,
          key + ": stage '" + name + "' of experiment " + exp + " is " + to_string(record->state) +
              (experiment_active ? "" : " and experiment " + exp + " is " + to_string(parent_experiment->state)) +
              " (resume it, then this stage)"};
}

ParentCheckpoint resolve_parent(const ExperimentStore& store, const std::string& runs_root,
                                const std::string& experiment, const StageSpec& stage, const std::string& source) {
  const InitSource src = parse_init_source(stage_parent(stage));
  ParentCheckpoint p;
  p.from = stage.init_from;
  if (src.kind == InitSource::Kind::Bundle) {
    const std::string path = from_source_dir(src.path, source);
    p.bundle = bundle_dir(path);
    if (p.bundle.empty())
      throw Error(stage_label(experiment, stage) + ": init_from '" + src.path + "' (" + path +
                  ") is not a checkpoint bundle");
  } else {
    const auto [exp, name] = parent_stage(experiment, src);
    const auto record = store.get_stage(exp, name);
    if (record) p.run = record->current_run;
    const auto newest = newest_checkpoint(runs_root + "/" + exp + "/" + name);
    if (!newest)
      throw Error(stage_label(experiment, stage) + ": its parent, stage '" + name + "' of experiment " + exp +
                  ", is done but left no checkpoint in " + runs_root + "/" + exp + "/" + name + "/checkpoints");
    p.bundle = newest->bundle;
  }
  const std::string manifest_path = p.bundle + "/manifest.json";
  try {
    p.manifest = parse_bundle_manifest(read_file(manifest_path), manifest_path);
  } catch (const DataError& e) {
    throw Error(stage_label(experiment, stage) + ": " + e.what());
  }
  if (!p.manifest.contains("spec"))
    throw Error(stage_label(experiment, stage) + ": " + manifest_path + " is not a checkpoint manifest (no spec)");
  p.step = p.manifest["step"].get<std::int64_t>();
  p.manifest_sha256 = sha256_file_hex(manifest_path);
  return p;
}

std::int64_t reference_resolution(const ExperimentSpec& spec, std::size_t index, const ParentCheckpoint* parent) {
  const ExperimentSpec view = stage_view(spec, index);
  const StageSpec& stage = spec.stages.at(index);
  if (view.recipe.diffusion.reference_resolution > 0) return view.recipe.diffusion.reference_resolution;
  if (!parent) return chain_root(spec, stage).resolution;
  const nlohmann::json& m = parent->manifest;
  if (m.contains("reference_resolution") && m["reference_resolution"].is_number_integer())
    return m["reference_resolution"].get<std::int64_t>();
  // A bundle written before manifests recorded it: the parent's own rule.
  const ExperimentSpec parent_spec = spec_from_json(m.at("spec"));
  const std::size_t pi = m.value("stage_index", std::size_t{0});
  const ExperimentSpec parent_view = stage_view(parent_spec, pi);
  if (parent_view.recipe.diffusion.reference_resolution > 0) return parent_view.recipe.diffusion.reference_resolution;
  return chain_root(parent_spec, parent_spec.stages.at(pi)).resolution;
}

nlohmann::json lineage_json(const ExperimentSpec& spec, std::size_t index, const ParentCheckpoint& parent,
                            const std::string& source) {
  const StageSpec& stage = spec.stages.at(index);
  const ExperimentSpec view = stage_view(spec, index);
  const ExperimentSpec parent_spec = spec_from_json(parent.manifest.at("spec"));
  const std::size_t pi = parent.manifest.value("stage_index", std::size_t{0});
  const ExperimentSpec parent_view = stage_view(parent_spec, pi);
  const StageSpec& parent_stage = parent_spec.stages.at(pi);
  if (parent_view.recipe.family != view.recipe.family || parent_view.recipe.preset != view.recipe.preset)
    throw Error(stage_label(spec.name, stage) + ": init_from '" + stage.init_from + "' holds a " +
                parent_view.recipe.family + " " + parent_view.recipe.preset + " network, this stage trains " +
                view.recipe.family + " " + view.recipe.preset + " (weights only carry over within one recipe)");
  const std::int64_t reference = reference_resolution(spec, index, &parent);
  ExperimentSpec shift_view = view;
  shift_view.recipe.diffusion.reference_resolution = reference;
  nlohmann::json transfer = {{"weights", stage.init_weights},
                             {"optimizer", stage.init_optimizer},
                             {"classes", stage.classes},
                             {"resolution", {{"from", parent_stage.resolution}, {"to", stage.resolution}}},
                             {"task", {{"from", parent_view.task}, {"to", view.task}}},
                             {"classes_count", {{"from", parent_view.dataset.classes}, {"to", view.dataset.classes}}},
                             {"dataset_changed", spec_to_json(parent_view)["dataset"] != spec_to_json(view)["dataset"]},
                             {"pos_embed_resampling", choice_name(view.recipe.pos_embed_resampling)},
                             {"pos_embed_grid", choice_name(view.recipe.pos_embed_grid)},
                             {"reference_resolution", reference},
                             {"shift", resolution_shift(shift_view, stage)}};
  if (!stage.classes_map.empty()) transfer["classes_map"] = from_source_dir(stage.classes_map, source);
  return {{"from", parent.from},
          {"run", parent.run},
          {"bundle", parent.bundle},
          {"step", parent.step},
          {"manifest_sha256", parent.manifest_sha256},
          {"transfer", transfer}};
}

nlohmann::json eval_paths(const StageSpec& stage, const std::string& source) {
  const EvalSpec& ev = stage.eval;
  nlohmann::json out = nlohmann::json::object();
  const std::pair<const char*, const std::string*> keys[] = {
      {"captions", &ev.captions},   {"reference", &ev.reference},
      {"features", &ev.features},   {"clip_image", &ev.clip_image},
      {"clip_text", &ev.clip_text}, {"clip_bpe", &ev.clip_bpe},
      {"lpips", &ev.lpips}};
  for (const auto& [key, value] : keys)
    if (!value->empty() && !(std::string(key) == "features" && *value == "builtin"))
      out[key] = from_source_dir(*value, source);
  return out;
}

nlohmann::json eval_lineage_json(const ExperimentStore& store, const std::string& runs_root,
                                 const std::string& experiment, const StageSpec& stage, const std::string& source) {
  const std::string run_dir = runs_root + "/" + experiment + "/" + stage.after;
  const auto record = store.get_stage(experiment, stage.after);
  nlohmann::json bundles = nlohmann::json::array();
  auto add = [&](const std::string& bundle, std::int64_t step) {
    if (!path_exists(bundle + "/manifest.json"))
      throw Error(stage_label(experiment, stage) + ": stage '" + stage.after + "' left no checkpoint at step " +
                  std::to_string(step) + " (" + bundle + ")");
    bundles.push_back(
        {{"step", step}, {"bundle", bundle}, {"manifest_sha256", sha256_file_hex(bundle + "/manifest.json")}});
  };
  if (stage.eval.at_steps.empty()) {
    const auto newest = newest_checkpoint(run_dir);
    if (!newest) throw Error(stage_label(experiment, stage) + ": stage '" + stage.after + "' left no checkpoint");
    add(newest->bundle, newest->step);
  }
  for (std::int64_t step : stage.eval.at_steps) {
    add(run_dir + "/checkpoints/" + step_dir_name(step), step);
  }
  return {{"from", stage.after},
          {"run", record ? record->current_run : ""},
          {"bundles", bundles},
          {"paths", eval_paths(stage, source)}};
}

nlohmann::json worker_init_json(const nlohmann::json& lineage) {
  if (lineage.empty()) return nlohmann::json::object();
  if (lineage.contains("bundles"))
    return {{"bundles", lineage["bundles"]}, {"paths", lineage.value("paths", nlohmann::json::object())}};
  const nlohmann::json& t = lineage.at("transfer");
  nlohmann::json out = {{"bundle", lineage.at("bundle")},
                        {"manifest_sha256", lineage.at("manifest_sha256")},
                        {"weights", t.at("weights")},
                        {"optimizer", t.at("optimizer")},
                        {"classes", t.at("classes")}};
  if (t.contains("classes_map")) out["classes_map"] = t["classes_map"];
  return out;
}

}  // namespace ldm::coord
