// Rank-aware loading of shard records into latent batches.
//
// The data stream is the concatenation of epochs; epoch e visits every record exactly once in the
// order epoch_permutation(n, seed, e). Global step s consumes stream positions
// [s·B, (s+1)·B) (B = global batch); rank r of W takes the contiguous slice
// [s·B + r·B/W, s·B + (r+1)·B/W). So the union of records per global step is the same for any
// number of ranks, ranks never read the same position, and the cursor (s·B) fully determines
// what comes next — it is what checkpoints save.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/shard.h"

namespace ldm::data {

class Autoencoder;

// All records of the shards in a directory, addressed by a global index (shard order, then record).
class ShardDataset {
 public:
  explicit ShardDataset(const std::string& dir);  // throws DataError naming the dir if empty
  std::size_t size() const { return locations_.size(); }
  Record read(std::size_t index) const;           // errors name the shard file and record
  const ShardHeader& header() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<ShardReader>> shards_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> locations_;  // (shard, record)
};

// A permutation of [0, n) that depends only on (seed, epoch).
std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

struct Batch {
  at::Tensor latents;                  // [b, C, h, w] float32
  at::Tensor labels;                   // [b] int64
  std::vector<std::uint64_t> ids;      // record ids, in batch order
  std::vector<std::int64_t> epochs;    // the epoch each sample came from
  std::vector<ControlMeta> controls;
  std::vector<std::string> captions;   // "" where the record has none
};

class RankLoader {
 public:
  RankLoader(std::shared_ptr<const ShardDataset> data, std::shared_ptr<const Autoencoder> ae,
             std::uint64_t seed, std::int64_t global_batch, int rank, int world_size);
  std::int64_t local_batch() const { return global_batch_ / world_; }
  // The batch this rank trains on at global step `step` (0-based).
  Batch batch_for_step(std::int64_t step);

 private:
  const std::vector<std::int64_t>& permutation(std::int64_t epoch);
  std::shared_ptr<const ShardDataset> data_;
  std::shared_ptr<const Autoencoder> ae_;
  std::uint64_t seed_;
  std::int64_t global_batch_;
  int rank_, world_;
  std::int64_t cached_epoch_[2] = {-1, -1};
  std::vector<std::int64_t> cached_perm_[2];
};

}  // namespace ldm::data
