// Where a stage's first weights come from (StageSpec::init_from), as the scheduler sees it: is the
// parent ready, which checkpoint is its final one, and what the transfer at the boundary resolves
// to. The worker is told the bundle and its manifest's SHA-256 and checks both before loading.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/core/records.h"
#include "shared/core/spec.h"
#include "shared/store/experiment_store.h"

namespace ldm::coord {

enum class ParentState {
  None,     // the stage starts from scratch
  Ready,    // the parent's final checkpoint exists
  Waiting,  // the parent stage has not finished yet
  Failed,   // the parent can never provide weights (it stopped unfinished, or does not exist)
};

struct ParentStatus {
  ParentState state = ParentState::None;
  std::string why;  // Waiting / Failed: what the stage waits for or why it cannot start
};

// Readiness of stage `stage` of experiment `experiment`. A bundle path is
// ready when it holds a manifest. `source` is the file the experiment was submitted from:
// relative bundle paths are relative to its directory.
ParentStatus parent_status(const ExperimentStore& store, const std::string& experiment, const StageSpec& stage,
                           const std::string& source);

// The parent's final checkpoint, resolved for a stage whose parent is Ready.
struct ParentCheckpoint {
  std::string from;    // init_from as written
  std::string run;     // the parent's latest run ("" for a bundle path)
  std::string bundle;  // absolute bundle directory
  std::int64_t step = 0;
  std::string manifest_sha256;
  nlohmann::json manifest;  // its manifest.json
};

// Throws Error naming the stage and the path when the checkpoint cannot be read.
ParentCheckpoint resolve_parent(const ExperimentStore& store, const std::string& runs_root,
                                const std::string& experiment, const StageSpec& stage, const std::string& source);

// The resolution at which stage `index` has shift 1 (DiffusionSpec::reference_resolution when set,
// else the reference its parent trained with, else its own resolution): what the worker is told.
std::int64_t reference_resolution(const ExperimentSpec& spec, std::size_t index, const ParentCheckpoint* parent);

// RunRecord::init for stage `index` started from `parent`: the checkpoint and the resolved transfer.
nlohmann::json lineage_json(const ExperimentSpec& spec, std::size_t index, const ParentCheckpoint& parent,
                            const std::string& source);

// RunRecord::init of an evaluation stage: {"from": after, "run", "bundles": [{step, bundle,
// manifest_sha256}...], "paths": eval_paths()}, the parent's checkpoints at eval.at_steps (its newest when empty).
// Throws Error naming a missing step.
nlohmann::json eval_lineage_json(const ExperimentStore& store, const std::string& runs_root,
                                 const std::string& experiment, const StageSpec& stage, const std::string& source);

// The files an evaluation stage reads ([stage.eval] captions, reference, features, clip_*, lpips),
// resolved against the experiment file's directory: {key: absolute path} for those set.
nlohmann::json eval_paths(const StageSpec& stage, const std::string& source);

// What the worker is sent with the spec ("init"): the bundle, its manifest's SHA-256 and how to
// load it.
nlohmann::json worker_init_json(const nlohmann::json& lineage);

}  // namespace ldm::coord
