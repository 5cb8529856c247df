// Checkpoint bundles (DESIGN.md "Checkpoint bundle"): a directory
//   checkpoints/step-NNNNNNN/{model,ema,optimizer,generators}.safetensors + manifest.json
// written under a temporary name, every file fsynced, then renamed; `checkpoints/latest` names
// the newest complete bundle for people. A crash at any point leaves either the old or the new
// bundle; readers take the newest complete one by name (shared/core/checkpoint_dir.h), since
// `latest` may lag behind after a kill.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

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

// Reads a bundle directory (or, given a checkpoints or run directory, its newest complete bundle).
CheckpointBundle read_checkpoint(const std::string& path);

// Keeps the newest `keep` complete bundles under `checkpoints_dir` and those whose step is in
// `protected_steps`; removes the others (renamed to ".del-…" first, so a kill mid-removal never
// leaves a partial "step-…" directory) and any ".del-…" leftovers. keep <= 0 keeps everything.
// Returns the steps removed.
std::vector<std::int64_t> prune_checkpoints(const std::string& checkpoints_dir, std::int64_t keep,
                                            const std::vector<std::int64_t>& protected_steps);

// Removes the complete bundles with a step after `step` (as prune_checkpoints does); returns their
// steps. A rollback abandons them.
std::vector<std::int64_t> remove_checkpoints_after(const std::string& checkpoints_dir, std::int64_t step);

// Test hook: LDM_CHECKPOINT_PAUSE_MS=N makes write_checkpoint sleep N ms after each file, before
// the rename and before `latest` moves, so that kill tests can land inside a bundle's write.

using ldm::step_dir_name;  // "step-0000042" (shared/core/ids.h)

}  // namespace ldm::worker
