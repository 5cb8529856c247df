// An evaluation stage (StageSpec kind = "eval"): for each checkpoint of its parent the coordinator
// resolved (init.bundles: step, bundle, manifest SHA-256), generate the stage's samples over the
// job's ranks exactly as `ldm-worker generate` does (sample i seeded by i), then rank 0 measures
// the stage's metrics and reports each as a metric point at the checkpoint's step:
//   fid              FID of the samples against the reference statistics (eval.reference: an .npz,
//                    or an image folder / image shards whose statistics are computed once per
//                    (content, feature network) and cached in <data_dir>/fid-stats/; "" = the
//                    parent's training data, from its checkpoint manifest)
//   clip_score       CLIP score of each sample with its caption
//   disentanglement  the size-condition metric (ldm-worker disentanglement's all-pairs mean)
// Samples, their grid and metrics.json go to <run_dir>/step-NNNNNNN/.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "worker/comm/comm.h"
#include "worker/eval/features.h"
#include "worker/eval/frechet.h"
#include "worker/train/trainer.h"

namespace ldm::worker {
class Reporter;
}

namespace ldm::eval {

// Every rank calls it (generation is a collective); `reporter` is non-null on rank 0 only.
// Returns (rank 0) one object per checkpoint: {step, bundle, samples, grid, metrics: {name: value}}.
nlohmann::json run_eval_stage(const worker::StageContext& ctx, worker::Communicator& comm, worker::Reporter* reporter);

// FID reference statistics: read from an .npz (its recorded network must be `extractor`'s), or
// computed from an image folder / image shards and cached in `cache_dir` under the collection's
// content hash and the network's identity, so every experiment that names the same data shares one
// computation. `cached` (optional) says whether the cache answered.
FeatureStats reference_stats(const std::string& reference, const FeatureExtractor& extractor,
                             const std::string& cache_dir, bool* cached = nullptr);

// A hash of a collection's content: every regular, non-hidden file directly inside `dir` (name and
// SHA-256 of its bytes), in name order.
std::string collection_content_hash(const std::string& dir);

}  // namespace ldm::eval
