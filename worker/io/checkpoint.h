// Checkpoint bundles (DESIGN.md "Checkpoint bundle"): a directory
//   checkpoints/step-NNNNNNN/{model,ema,optimizer,generators}.safetensors + manifest.json
// written under a temporary name, every file fsynced, then renamed; `checkpoints/latest` names
// the newest complete bundle. A crash at any point leaves either the old or the new bundle.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "shared/core/ids.h"
#include "worker/io/safetensors.h"

namespace ldm::worker {

struct CheckpointBundle {
  nlohmann::json
      manifest;          // step, data_cursor, spec (resolved), spec_hash, world_size, threads_per_rank, libtorch, ...
  TensorMap model;       // state dict, reference key names (incl. fixed buffers such as pos_embed)
  TensorMap ema;         // the EMA weights as a full state dict (same keys as `model`)
  TensorMap optimizer;   // flat moments + step
  TensorMap generators;  // "rank<r>.<purpose>" -> generator state bytes
};

// Writes the bundle for manifest["step"] under `checkpoints_dir`, updates `latest`, and returns
// the bundle's directory. Before writing anything it checks that the filesystem has room for the
// whole bundle (plus a margin), so a full disk fails the run with a clear error instead of a torn
// bundle. Errors name the file and leave earlier bundles intact.
std::string write_checkpoint(const std::string& checkpoints_dir, const CheckpointBundle& bundle);

// Throws DataError naming `dir`, the bytes needed and the bytes available when the filesystem
// holding `dir` has fewer than `bytes` + 1% + 16 MiB free for an unprivileged writer.
void check_free_space(const std::string& dir, std::uint64_t bytes, const std::string& what);

// Reads a bundle directory (or, given a checkpoints dir, the one `latest` names).
CheckpointBundle read_checkpoint(const std::string& path);

using ldm::step_dir_name;  // "step-0000042" (shared/core/ids.h)

}  // namespace ldm::worker
