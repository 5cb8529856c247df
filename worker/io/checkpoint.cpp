#include "worker/io/checkpoint.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdio>
#include <filesystem>

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
  write_file_atomic(tmp_dir + "/ema.safetensors", safetensors_encode(b.ema));
  write_file_atomic(tmp_dir + "/optimizer.safetensors", safetensors_encode(b.optimizer));
  write_file_atomic(tmp_dir + "/generators.safetensors", safetensors_encode(b.generators));
  write_file_atomic(tmp_dir + "/manifest.json", manifest);  // last: marks completeness
  fsync_path(tmp_dir);
  if (path_exists(final_dir)) std::filesystem::remove_all(final_dir);  // re-written after a resume
  rename_durable(tmp_dir, final_dir);
  write_file_atomic(checkpoints_dir + "/latest", name + "\n");
  return final_dir;
}

CheckpointBundle read_checkpoint(const std::string& path) {
  std::string dir = path;
  if (path_exists(path + "/latest")) {
    std::string name = read_file(path + "/latest");
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    dir = path + "/" + name;
  }
  if (!path_exists(dir + "/manifest.json")) throw DataError(dir + ": not a checkpoint bundle (no manifest.json)");
  CheckpointBundle b;
  auto manifest = nlohmann::json::parse(read_file(dir + "/manifest.json"), nullptr, false);
  if (manifest.is_discarded()) throw DataError(dir + "/manifest.json: not valid JSON");
  b.manifest = manifest;
  b.model = safetensors_decode(read_file(dir + "/model.safetensors"), dir + "/model.safetensors");
  b.ema = safetensors_decode(read_file(dir + "/ema.safetensors"), dir + "/ema.safetensors");
  b.optimizer = safetensors_decode(read_file(dir + "/optimizer.safetensors"), dir + "/optimizer.safetensors");
  b.generators = safetensors_decode(read_file(dir + "/generators.safetensors"), dir + "/generators.safetensors");
  return b;
}

}  // namespace ldm::worker
