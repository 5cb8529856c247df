#include "worker/io/checkpoint.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <filesystem>

#include "shared/core/checkpoint_dir.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"

namespace ldm::worker {

void check_free_space(const std::string& dir, std::uint64_t bytes, const std::string& what) {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) throw_errno("cannot query the free space of", dir);
  const std::uint64_t available = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  const std::uint64_t needed = bytes + bytes / 100 + (std::uint64_t{16} << 20);
  if (available >= needed) return;
  auto mib = [](std::uint64_t b) { return std::to_string(b >> 20) + " MiB"; };
  throw DataError(dir + ": not enough free space for " + what + ": it needs " + mib(needed) + " (with margin), " +
                  mib(available) +
                  " are available; nothing was written (free space, or set checkpoint_every less often)");
}

namespace {

// LDM_CHECKPOINT_PAUSE_MS (tests only): widens each window of a bundle's write.
void test_pause() {
  static const long ms = [] {
    const char* env = std::getenv("LDM_CHECKPOINT_PAUSE_MS");
    return env ? std::strtol(env, nullptr, 10) : 0L;
  }();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Renames `dir` aside (".del-<name>") and removes it: a kill mid-removal leaves a leftover that
// no reader takes for a bundle.
void remove_bundle_dir(const std::string& checkpoints_dir, const std::string& name) {
  const std::string doomed = checkpoints_dir + "/.del-" + name;
  std::filesystem::remove_all(doomed);
  rename_durable(checkpoints_dir + "/" + name, doomed);
  std::filesystem::remove_all(doomed);
}

}  // namespace

std::string write_checkpoint(const std::string& checkpoints_dir, const CheckpointBundle& b) {
  const int64_t step = b.manifest.at("step").get<int64_t>();
  const std::string name = step_dir_name(step);
  const std::string final_dir = checkpoints_dir + "/" + name;
  const std::string tmp_dir = checkpoints_dir + "/.tmp-" + name;
  make_dirs(checkpoints_dir);
  std::filesystem::remove_all(tmp_dir);  // a leftover from a crash mid-write
  // The tensors' bytes plus their headers (keys, dtypes, shapes: generously 256 bytes a tensor).
  const std::string manifest = b.manifest.dump(2) + "\n";
  std::uint64_t bytes = manifest.size();
  for (const TensorMap* m : {&b.model, &b.ema, &b.optimizer, &b.generators})
    for (const auto& [key, t] : *m) bytes += static_cast<std::uint64_t>(t.numel() * t.element_size()) + 256;
  check_free_space(checkpoints_dir, bytes, "checkpoint bundle " + name);
  make_dirs(tmp_dir);
  write_file_atomic(tmp_dir + "/model.safetensors", safetensors_encode(b.model));
  test_pause();
  write_file_atomic(tmp_dir + "/ema.safetensors", safetensors_encode(b.ema));
  write_file_atomic(tmp_dir + "/optimizer.safetensors", safetensors_encode(b.optimizer));
  write_file_atomic(tmp_dir + "/generators.safetensors", safetensors_encode(b.generators));
  write_file_atomic(tmp_dir + "/manifest.json", manifest);  // last: marks completeness
  fsync_path(tmp_dir);
  test_pause();
  // Re-written after a resume (the same step's state again): the old one goes aside first, so a
  // kill between the renames leaves the previous bundles and a ".del-" leftover, never a torn one.
  if (path_exists(final_dir)) {
    const std::string old_dir = checkpoints_dir + "/.del-" + name;
    std::filesystem::remove_all(old_dir);
    rename_durable(final_dir, old_dir);
    rename_durable(tmp_dir, final_dir);
    std::filesystem::remove_all(old_dir);
  } else {
    rename_durable(tmp_dir, final_dir);
  }
  test_pause();
  write_file_atomic(checkpoints_dir + "/latest", name + "\n");
  return final_dir;
}

std::vector<std::int64_t> prune_checkpoints(const std::string& checkpoints_dir, std::int64_t keep,
                                            const std::vector<std::int64_t>& protected_steps) {
  std::vector<std::int64_t> removed;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(checkpoints_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(".del-", 0) == 0) std::filesystem::remove_all(it->path());
  }
  if (keep <= 0) return removed;
  const std::vector<BundleRef> all = list_bundles(checkpoints_dir);
  const std::size_t kept = static_cast<std::size_t>(keep);
  if (all.size() <= kept) return removed;
  for (std::size_t i = 0; i + kept < all.size(); ++i) {
    const std::int64_t step = all[i].step;
    if (std::find(protected_steps.begin(), protected_steps.end(), step) != protected_steps.end()) continue;
    remove_bundle_dir(checkpoints_dir, step_dir_name(step));
    removed.push_back(step);
  }
  return removed;
}

std::vector<std::int64_t> remove_checkpoints_after(const std::string& checkpoints_dir, std::int64_t step) {
  std::vector<std::int64_t> removed;
  for (const BundleRef& b : list_bundles(checkpoints_dir))
    if (b.step > step) {
      remove_bundle_dir(checkpoints_dir, step_dir_name(b.step));
      removed.push_back(b.step);
    }
  return removed;
}

CheckpointBundle read_checkpoint(const std::string& path) {
  std::string dir = path;
  if (!path_exists(path + "/manifest.json")) {
    const std::string newest = resolve_bundle_dir(path);
    if (!newest.empty()) dir = newest;
  }
  if (!path_exists(dir + "/manifest.json")) throw DataError(dir + ": not a checkpoint bundle (no manifest.json)");
  CheckpointBundle b;
  b.manifest = parse_bundle_manifest(read_file(dir + "/manifest.json"), dir + "/manifest.json");
  b.model = safetensors_decode(read_file(dir + "/model.safetensors"), dir + "/model.safetensors");
  b.ema = safetensors_decode(read_file(dir + "/ema.safetensors"), dir + "/ema.safetensors");
  b.optimizer = safetensors_decode(read_file(dir + "/optimizer.safetensors"), dir + "/optimizer.safetensors");
  b.generators = safetensors_decode(read_file(dir + "/generators.safetensors"), dir + "/generators.safetensors");
  return b;
}

}  // namespace ldm::worker
