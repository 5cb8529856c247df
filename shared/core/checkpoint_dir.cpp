#include "shared/core/checkpoint_dir.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/spec_json.h"

namespace ldm {

std::optional<std::int64_t> parse_step_dir_name(const std::string& name) {
  const std::string prefix = "step-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::int64_t step = 0;
  for (std::size_t i = prefix.size(); i < name.size(); ++i) {
    const char c = name[i];
    if (!std::isdigit(static_cast<unsigned char>(c)) || step > (INT64_MAX - 9) / 10) return std::nullopt;
    step = step * 10 + (c - '0');
  }
  if (step_dir_name(step) != name) return std::nullopt;  // only the canonical spelling
  return step;
}

std::vector<BundleRef> list_bundles(const std::string& checkpoints_dir) {
  std::vector<BundleRef> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(checkpoints_dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto step = parse_step_dir_name(name);
    if (!step) continue;
    const std::string dir = checkpoints_dir + "/" + name;
    std::error_code exists_ec;
    if (std::filesystem::is_regular_file(dir + "/manifest.json", exists_ec)) out.push_back({*step, dir});
  }
  std::sort(out.begin(), out.end(), [](const BundleRef& a, const BundleRef& b) { return a.step < b.step; });
  return out;
}

std::optional<BundleRef> newest_bundle(const std::string& checkpoints_dir) {
  auto all = list_bundles(checkpoints_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::string resolve_bundle_dir(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path + "/manifest.json", ec)) return path;
  for (const std::string& dir : {path, path + "/checkpoints"})
    if (const auto newest = newest_bundle(dir)) return newest->dir;
  return "";
}

namespace {

[[noreturn]] void bad_field(const std::string& source, const std::string& key, const std::string& what) {
  throw DataError(source + ": " + key + ": " + what);
}

// The integer at `key` when present (in [min, max]), else nullopt.
std::optional<std::int64_t> manifest_int(const nlohmann::json& m, const std::string& key, std::int64_t min,
                                         const std::string& source, std::int64_t max = INT64_MAX) {
  const auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  if (!it->is_number_integer()) bad_field(source, key, std::string("expected an integer, got ") + it->type_name());
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
    bad_field(source, key, "out of range");
  const std::int64_t v = it->get<std::int64_t>();
  if (v < min || v > max)
    bad_field(source, key,
              "expected " + std::to_string(min) + " to " + std::to_string(max) + ", got " + std::to_string(v));
  return v;
}

}  // namespace

nlohmann::json parse_bundle_manifest(const std::string& text, const std::string& source) {
  nlohmann::json m = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded()) throw DataError(source + ": not valid JSON");
  if (!m.is_object()) throw DataError(source + ": not a JSON object");
  if (!m.contains("step")) bad_field(source, "step", "missing");
  manifest_int(m, "step", 0, source);
  // Read as int by their readers: capped well inside that.
  for (const char* key : {"world_size", "threads_per_rank", "reference_resolution"})
    manifest_int(m, key, 1, source, 1 << 24);
  manifest_int(m, "attempt", 0, source, 1 << 24);
  for (const char* key : {"data_cursor", "nonfinite_rollbacks"}) manifest_int(m, key, 0, source);
  for (const char* key : {"spec_hash", "experiment", "stage", "libtorch", "recipe"})
    if (m.contains(key) && !m[key].is_string())
      bad_field(source, key, std::string("expected a string, got ") + m[key].type_name());
  for (const char* key : {"init", "dataset"})
    if (m.contains(key) && !m[key].is_object())
      bad_field(source, key, std::string("expected an object, got ") + m[key].type_name());
  if (m.contains("dataset") && m["dataset"].contains("dir") && !m["dataset"]["dir"].is_string())
    bad_field(source, "dataset.dir", "expected a string");
  const std::optional<std::int64_t> stage_index = manifest_int(m, "stage_index", 0, source, 1 << 24);
  if (m.contains("spec")) {
    try {
      const ExperimentSpec spec = spec_from_json(m["spec"]);
      if (stage_index && *stage_index >= static_cast<std::int64_t>(spec.stages.size()))
        bad_field(
            source, "stage_index",
            std::to_string(*stage_index) + " but the spec has " + std::to_string(spec.stages.size()) + " stage(s)");
    } catch (const SpecError& e) {
      bad_field(source, "spec", e.what());
    }
  } else if (stage_index && *stage_index > 0) {
    bad_field(source, "stage_index", "given without a spec");
  }
  if (m.contains("skipped_batches")) {
    const nlohmann::json& skipped = m["skipped_batches"];
    if (!skipped.is_array()) bad_field(source, "skipped_batches", "expected an array");
    for (std::size_t i = 0; i < skipped.size(); ++i) {
      const std::string key = "skipped_batches[" + std::to_string(i) + "]";
      if (!skipped[i].is_object()) bad_field(source, key, "expected an object {index, step}");
      for (const char* field : {"index", "step"}) {
        if (!skipped[i].contains(field)) bad_field(source, key + "." + field, "missing");
        manifest_int(skipped[i], field, 0, source + ": " + key);
      }
    }
  }
  return m;
}

}  // namespace ldm
