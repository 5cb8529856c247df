#include "shared/core/checkpoint_dir.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "shared/core/ids.h"

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

}  // namespace ldm
