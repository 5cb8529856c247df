// Rank-aware loading of shard records into latent batches.
//
// Units. A dataset's records are grouped into source images ("units"): with `views` K in the shard
// headers, the K consecutive records of an image are its augmented views, and epoch e trains on
// view view_for_epoch(seed, e, unit) of each unit — a different view each epoch, chosen as a pure
// function of (seed, epoch, unit). With K = 1 a unit is a record.
//
// Order (no buckets: every record has the same payload height and width). The data stream is the
// concatenation of epochs; epoch e visits every unit exactly once in the order
// epoch_permutation(n, seed, e). Global step s consumes stream positions [s·B, (s+1)·B)
// (B = global batch); rank r of W takes the contiguous slice [s·B + r·B/W, s·B + (r+1)·B/W). So the
// union of records per global step is the same for any number of ranks, ranks never read the same
// position, and the step alone determines what comes next.
//
// Order (aspect-ratio buckets: records of several payload shapes, from the v2 shard index). Epoch e
// takes the same permutation, splits it stably by bucket, cuts each bucket's list into full global
// batches of B and shuffles the batches (seed, epoch); a bucket's last n_b mod B units sit out that
// epoch (a different subset each epoch). Every batch shares one shape; each unit is visited at most
// once per epoch, and exactly once where n_b is a multiple of B. Steps map to (epoch, batch) as
// s / batches_per_epoch, s mod batches_per_epoch; ranks slice each global batch as above.
//
// Cursor. Everything above is a function of the step, so the trainer's cursor — the number of
// global steps it has consumed, s·B records — is what checkpoints save; a resumed run asks for step
// s and gets exactly the batch it would have had. Prefetching does not move the cursor.
//
// Prefetch. With `prefetch` > 0, background std::threads read and check records of the next steps
// into plain byte/float buffers (no ATen calls, so they never touch the trainer's intra-op thread
// pool); batch_for_step() turns a prepared batch into tensors on the caller's thread (and runs the
// autoencoder for image shards there). Errors in a background read surface from batch_for_step()
// of the step that needed the record, naming the shard and record.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "datasets/format/shard.h"
#include "datasets/tensor/text_encoder.h"

namespace ldm::data {

class Autoencoder;

// All records of the shards in a directory, addressed by a global index (shard order, then record).
// Every shard must agree on payload kind, encoder, text encoder and views.
class ShardDataset {
 public:
  explicit ShardDataset(const std::string& dir);  // throws DataError naming the dir if empty
  std::size_t size() const { return locations_.size(); }
  Record read(std::size_t index) const;  // errors name the shard file and record
  const ShardHeader& header() const;
  const std::string& dir() const { return dir_; }
  RecordShape shape(std::size_t index) const;  // from the index (0 x 0 for v1 shards)
  std::size_t units() const { return size() / static_cast<std::size_t>(header().views); }
  // The distinct payload shapes and how many units each has (a single entry: no buckets).
  std::map<RecordShape, std::size_t> buckets() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<ShardReader>> shards_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> locations_;  // (shard, record)
};

// A permutation of [0, n) that depends only on (seed, epoch).
std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);
// The view of `unit` trained on in `epoch` (0 when views == 1).
int view_for_epoch(std::uint64_t seed, std::int64_t epoch, std::uint64_t unit, int views);

struct Batch {
  at::Tensor latents;                // [b, C, h, w] float32
  at::Tensor labels;                 // [b] int64
  std::vector<std::uint64_t> ids;    // record ids, in batch order
  std::vector<std::int64_t> epochs;  // the epoch each sample came from
  std::vector<ControlMeta> controls;
  std::vector<std::string> captions;  // "" where the record has none
  // The records' stored caption features (when the shards hold them), padded to the dataset's
  // longest feature sequence; empty otherwise.
  std::vector<TextEmbedding> text;
};

struct LoaderOptions {
  int prefetch = 0;          // global steps prepared ahead by background threads (0 = synchronous)
  int prefetch_threads = 1;  // background reader threads (used when prefetch > 0)
  // Caption features are padded to this many token slots (0 = the longest stored sequence of the
  // batch); a record with more is an error naming it.
  int text_tokens = 0;
};

// Which records global step `step` consumes, in global-batch order (before the rank split), and
// the epoch of each. A pure function of (dataset shapes and views, seed, global batch, step).
class BatchPlan {
 public:
  BatchPlan(const ShardDataset& data, std::uint64_t seed, std::int64_t global_batch);
  struct Entry {
    std::int64_t record, epoch;
  };
  std::vector<Entry> step(std::int64_t s) const;
  bool bucketed() const { return bucketed_; }
  std::int64_t batches_per_epoch() const { return batches_per_epoch_; }  // bucketed only

 private:
  std::vector<std::vector<std::int64_t>> epoch_batches(std::int64_t epoch) const;  // units per batch
  std::int64_t record_of(std::int64_t unit, std::int64_t epoch) const;
  // The two most recent epochs' permutations (or bucketed batch lists): a step needs at most two,
  // and the prefetch threads share them.
  std::shared_ptr<const std::vector<std::int64_t>> permutation(std::int64_t epoch) const;
  std::shared_ptr<const std::vector<std::vector<std::int64_t>>> batches(std::int64_t epoch) const;
  mutable std::mutex cache_mu_;
  mutable std::map<std::int64_t, std::shared_ptr<const std::vector<std::int64_t>>> perm_cache_;
  mutable std::map<std::int64_t, std::shared_ptr<const std::vector<std::vector<std::int64_t>>>> batch_cache_;
  std::uint64_t seed_;
  std::int64_t global_batch_, units_;
  int views_;
  bool bucketed_ = false;
  std::vector<std::uint32_t> unit_bucket_;  // bucketed: bucket index of each unit
  std::size_t buckets_ = 1;
  std::int64_t batches_per_epoch_ = 0;
};

class RankLoader {
 public:
  RankLoader(std::shared_ptr<const ShardDataset> data, std::shared_ptr<const Autoencoder> ae, std::uint64_t seed,
             std::int64_t global_batch, int rank, int world_size, LoaderOptions options = {});
  ~RankLoader();
  RankLoader(const RankLoader&) = delete;
  RankLoader& operator=(const RankLoader&) = delete;
  std::int64_t local_batch() const { return global_batch_ / world_; }
  const BatchPlan& plan() const { return plan_; }
  // The batch this rank trains on at global step `step` (0-based).
  Batch batch_for_step(std::int64_t step);

  struct Prepared;  // a batch read into plain buffers (defined in loader.cpp)

 private:
  Prepared prepare(std::int64_t step) const;
  Batch finish(Prepared&& p) const;
  std::shared_ptr<const ShardDataset> data_;
  std::shared_ptr<const Autoencoder> ae_;
  std::int64_t global_batch_;
  int rank_, world_;
  LoaderOptions options_;
  BatchPlan plan_;
  struct Prefetcher;
  std::unique_ptr<Prefetcher> prefetcher_;
};

}  // namespace ldm::data
