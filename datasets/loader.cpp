#include "datasets/loader.h"

#include <torch/torch.h>

#include "datasets/autoencoder.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"

namespace ldm::data {

ShardDataset::ShardDataset(const std::string& dir) : dir_(dir) {
  for (const auto& path : list_shards(dir)) {
    auto reader = std::make_unique<ShardReader>(path);
    const auto shard = static_cast<std::uint32_t>(shards_.size());
    for (std::size_t i = 0; i < reader->size(); ++i)
      locations_.emplace_back(shard, static_cast<std::uint32_t>(i));
    if (!shards_.empty() && reader->header().kind != shards_.front()->header().kind)
      throw DataError(path + ": payload kind differs from " + shards_.front()->path());
    shards_.push_back(std::move(reader));
  }
  if (locations_.empty()) throw DataError(dir + ": no records (no *.ldms shard with records)");
}

Record ShardDataset::read(std::size_t index) const {
  const auto& loc = locations_.at(index);
  return shards_[loc.first]->read(loc.second);
}

const ShardHeader& ShardDataset::header() const { return shards_.front()->header(); }

std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[i] = i;
  std::uint64_t state = derive_seed(seed, "data-order", static_cast<std::uint64_t>(epoch));
  // Fisher-Yates with a counter-based SplitMix64 stream: a pure function of (seed, epoch).
  for (std::int64_t i = n - 1; i > 0; --i) {
    state += 0x9e3779b97f4a7c15ULL;
    std::uint64_t r = mix64(state);
    auto j = static_cast<std::int64_t>(r % static_cast<std::uint64_t>(i + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

RankLoader::RankLoader(std::shared_ptr<const ShardDataset> data, std::shared_ptr<const Autoencoder> ae,
                       std::uint64_t seed, std::int64_t global_batch, int rank, int world_size)
    : data_(std::move(data)), ae_(std::move(ae)), seed_(seed), global_batch_(global_batch),
      rank_(rank), world_(world_size) {
  if (global_batch % world_size != 0)
    throw Error("global batch " + std::to_string(global_batch) + " is not divisible by " +
                std::to_string(world_size) + " ranks");
}

const std::vector<std::int64_t>& RankLoader::permutation(std::int64_t epoch) {
  // A batch spans at most two epochs when B <= n; keep the two most recent permutations.
  for (int k = 0; k < 2; ++k)
    if (cached_epoch_[k] == epoch) return cached_perm_[k];
  int slot = cached_epoch_[0] < cached_epoch_[1] ? 0 : 1;
  cached_epoch_[slot] = epoch;
  cached_perm_[slot] = epoch_permutation(static_cast<std::int64_t>(data_->size()), seed_, epoch);
  return cached_perm_[slot];
}

Batch RankLoader::batch_for_step(std::int64_t step) {
  const std::int64_t n = static_cast<std::int64_t>(data_->size());
  const std::int64_t b = local_batch();
  const std::int64_t start = step * global_batch_ + rank_ * b;
  Batch batch;
  std::vector<at::Tensor> images;
  std::vector<std::int64_t> labels;
  images.reserve(b);
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t pos = start + i;
    const std::int64_t epoch = pos / n;
    const std::int64_t index = permutation(epoch)[static_cast<std::size_t>(pos % n)];
    Record r = data_->read(static_cast<std::size_t>(index));
    if (r.shape.size() != 3 || r.shape[2] != 3)
      throw DataError(data_->dir() + ": record " + std::to_string(r.id) +
                      ": expected an HxWx3 image payload");
    images.push_back(image_u8_to_tensor(r.payload.data(), r.shape[0], r.shape[1]));
    labels.push_back(r.label);
    batch.ids.push_back(r.id);
    batch.epochs.push_back(epoch);
    batch.controls.push_back(r.control);
    batch.captions.push_back(std::move(r.caption));
  }
  // [b,3,H,W] images in [-1,1] -> latents [b,C,H/f,W/f]
  torch::NoGradGuard no_grad;
  batch.latents = ae_->encode(torch::stack(images));
  batch.labels = torch::tensor(labels, torch::kInt64);
  return batch;
}

}  // namespace ldm::data
