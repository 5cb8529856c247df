#include "worker/io/checkpoint.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include "shared/core/error.h"
#include "shared/core/safe_file.h"

namespace ldm::worker {

std::string write_checkpoint(const std::string& checkpoints_dir, const CheckpointBundle& b) {
  const int64_t step = b.manifest.at("step").get<int64_t>();
  const std::string name = step_dir_name(step);
  const std::string final_dir = checkpoints_dir + "/" + name;
  const std::string tmp_dir = checkpoints_dir + "/.tmp-" + name;
  make_dirs(checkpoints_dir);
  std::filesystem::remove_all(tmp_dir);  // a leftover from a crash mid-write
  make_dirs(tmp_dir);
  write_file_atomic(tmp_dir + "/model.safetensors", safetensors_encode(b.model));
  write_file_atomic(tmp_dir + "/ema.safetensors", safetensors_encode(b.ema));
  write_file_atomic(tmp_dir + "/optimizer.safetensors", safetensors_encode(b.optimizer));
  write_file_atomic(tmp_dir + "/generators.safetensors", safetensors_encode(b.generators));
  write_file_atomic(tmp_dir + "/manifest.json", b.manifest.dump(2) + "\n");  // last: marks completeness
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
