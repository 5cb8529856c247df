#include <torch/torch.h>
#include <doctest/doctest.h>

#include <filesystem>
#include <set>

#include "datasets/format/shard.h"
#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/loader.h"

using namespace ldm::data;
namespace fs = std::filesystem;

namespace {
// A dataset of `n` 4x4 images in two shards; record id i has label i % 3.
struct TinyShards {
  std::string dir;
  explicit TinyShards(int n) {
    char tmpl[] = "/tmp/ldm-loader-XXXXXX";
    dir = mkdtemp(tmpl);
    for (int s = 0; s < 2; ++s) {
      ShardWriter w(dir + "/part-" + std::to_string(s) + ".ldms", ShardHeader{});
      for (int i = s * n / 2; i < (s + 1) * n / 2; ++i) {
        Record r;
        r.id = static_cast<uint64_t>(i);
        r.label = i % 3;
        r.shape = {4, 4, 3};
        r.payload.assign(48, static_cast<uint8_t>(i));
        w.append(r);
      }
      w.finish();
    }
  }
  ~TinyShards() { fs::remove_all(dir); }
};

std::vector<uint64_t> ids_for(const std::shared_ptr<const ShardDataset>& data, int64_t step, int64_t batch, int world) {
  auto ae = std::make_shared<const PatchAutoencoder>(2);
  std::vector<uint64_t> all;
  for (int r = 0; r < world; ++r) {
    RankLoader loader(data, ae, 9, batch, r, world);
    auto b = loader.batch_for_step(step);
    all.insert(all.end(), b.ids.begin(), b.ids.end());
  }
  return all;
}
}  // namespace

TEST_CASE("epoch permutation visits every record once, differs between epochs and from file order") {
  auto p0 = epoch_permutation(100, 1, 0), p1 = epoch_permutation(100, 1, 1);
  std::vector<int64_t> sorted = p0, identity(100);
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 100; ++i) identity[i] = i;
  CHECK(sorted == identity);
  CHECK(p0 != p1);
  CHECK(p0 != identity);
  CHECK(p0 == epoch_permutation(100, 1, 0));  // a pure function of (seed, epoch)
  CHECK(p0 != epoch_permutation(100, 2, 0));
}

TEST_CASE("ranks read disjoint records whose union per step does not depend on the world size") {
  TinyShards shards(24);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  REQUIRE(data->size() == 24);
  for (int64_t step = 0; step < 7; ++step) {  // 7 steps of 8 cross an epoch boundary
    auto one = ids_for(data, step, 8, 1);
    auto two = ids_for(data, step, 8, 2);
    auto four = ids_for(data, step, 8, 4);
    CHECK(one == two);  // same global batch, same order
    CHECK(one == four);
  }
  // the first epoch (3 steps of 8) covers every record exactly once, split between 2 ranks
  std::multiset<uint64_t> seen;
  for (int64_t step = 0; step < 3; ++step)
    for (auto id : ids_for(data, step, 8, 2)) seen.insert(id);
  CHECK(seen.size() == 24);
  CHECK(std::set<uint64_t>(seen.begin(), seen.end()).size() == 24);
}

TEST_CASE("a batch carries latents, labels, epochs and control metadata of its records") {
  TinyShards shards(8);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  RankLoader loader(data, std::make_shared<const PatchAutoencoder>(2), 3, 4, 1, 2);
  CHECK(loader.local_batch() == 2);
  auto b = loader.batch_for_step(0);
  CHECK(b.latents.sizes() == torch::IntArrayRef({2, 12, 2, 2}));
  for (size_t i = 0; i < b.ids.size(); ++i) {
    CHECK(b.labels[i].item<int64_t>() == static_cast<int64_t>(b.ids[i] % 3));
    // pixel value i maps to i/127.5 - 1 in every latent channel
    CHECK(b.latents[i].mean().item<double>() == doctest::Approx(b.ids[i] / 127.5 - 1.0).epsilon(1e-5));
  }
  CHECK(b.epochs == std::vector<int64_t>{0, 0});
  // a fresh loader (e.g. after a restart) gives exactly the same batch for the same step
  RankLoader again(data, std::make_shared<const PatchAutoencoder>(2), 3, 4, 1, 2);
  CHECK(again.batch_for_step(0).ids == b.ids);
}

TEST_CASE("a global batch that does not split evenly over ranks is refused") {
  TinyShards shards(8);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  CHECK_THROWS(RankLoader(data, std::make_shared<const PatchAutoencoder>(2), 0, 5, 0, 2));
}
