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
// the bundle's directory. Errors (full disk...) name the file and leave earlier bundles intact.
std::string write_checkpoint(const std::string& checkpoints_dir, const CheckpointBundle& bundle);

// Reads a bundle directory (or, given a checkpoints dir, the one `latest` names).
CheckpointBundle read_checkpoint(const std::string& path);

using ldm::step_dir_name;  // "step-0000042" (shared/core/ids.h)

}  // namespace ldm::worker
