// Finding checkpoint bundles in a run's checkpoints/ directory, without trusting `latest`.
//
// A bundle is written under a temporary name (".tmp-step-…"), fsynced and renamed to
// "step-NNNNNNN" (worker/io/checkpoint.h), so every directory with that name and a manifest.json is
// complete, whenever the writer was killed. `latest` is updated after the rename and is a
// convenience for people; a kill between the rename and its update leaves it one bundle behind, and a
// kill while a bundle of the same step is replaced can leave it naming nothing. Programs therefore
// take the newest complete bundle by its directory name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ldm {

struct BundleRef {
  std::int64_t step = 0;
  std::string dir;  // <checkpoints_dir>/step-NNNNNNN
};

// 42 for "step-0000042"; nullopt for any other name (".tmp-step-…", "latest", …).
std::optional<std::int64_t> parse_step_dir_name(const std::string& name);

// The complete bundles under `checkpoints_dir` (those with a manifest.json), oldest first; empty
// when the directory does not exist.
std::vector<BundleRef> list_bundles(const std::string& checkpoints_dir);

// The newest complete bundle under `checkpoints_dir`; nullopt when there is none.
std::optional<BundleRef> newest_bundle(const std::string& checkpoints_dir);

// `path` itself when it is a bundle (has manifest.json); else the newest complete bundle of `path`
// or of `path`/checkpoints (a checkpoints directory or a run directory); "" when there is none.
std::string resolve_bundle_dir(const std::string& path);

// A bundle's manifest.json, parsed and checked once where it is read, so its readers (resume,
// transfer, generation, the coordinator's lineage and outcome) can take each field as its type:
//   step (required): integer >= 0;    spec: an object spec_from_json accepts;
//   spec_hash, experiment, stage, libtorch, recipe: strings;   init, dataset: objects (dataset.dir a string);
//   stage_index: integer >= 0, below the spec's stage count;   world_size, threads_per_rank: integers >= 1;
//   data_cursor, attempt, nonfinite_rollbacks: integers >= 0;  reference_resolution: integer >= 1;
//   skipped_batches: array of {index, step}, integers >= 0.
// Other keys and absent optional ones are left alone (bundles of older versions lack some).
// Throws DataError "<source>: <key>: <what is wrong>".
nlohmann::json parse_bundle_manifest(const std::string& text, const std::string& source);

}  // namespace ldm
