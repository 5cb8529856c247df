// Loader properties beyond the basic order: views, aspect-ratio buckets, background prefetch,
// stored caption features, latent shards and restarting from a cursor.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>

#include "datasets/format/shard.h"
#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/loader.h"
#include "shared/core/error.h"

using namespace ldm::data;
namespace fs = std::filesystem;

namespace loader_buckets_test {

struct Spec {
  int height, width, count;
};

// Image shards: for each Spec, `count` source images of height x width (each with `views`
// consecutive records), spread over two shards. Record id = unit * views + view; the pixel value
// encodes (unit, view) so a batch can be checked against its ids.
struct Shards {
  std::string dir;
  int units = 0;
  Shards(const std::vector<Spec>& specs, int views, bool text = false, PayloadKind kind = PayloadKind::ImageU8,
         const std::string& encoder = "none") {
    char tmpl[] = "/tmp/ldm-loader-buckets-XXXXXX";
    dir = mkdtemp(tmpl);
    std::vector<Record> all;
    for (const Spec& s : specs)
      for (int i = 0; i < s.count; ++i, ++units)
        for (int v = 0; v < views; ++v) {
          Record r;
          r.id = static_cast<uint64_t>(units * views + v);
          r.label = units % 5;
          r.view = static_cast<uint16_t>(v);
          r.caption = "unit " + std::to_string(units);
          if (kind == PayloadKind::ImageU8) {
            r.shape = {s.height, s.width, 3};
            r.payload.assign(static_cast<size_t>(s.height * s.width * 3),
                             static_cast<uint8_t>((units * views + v) % 251));
          } else {
            r.shape = {4, s.height, s.width};
            std::vector<float> z(static_cast<size_t>(4 * s.height * s.width), static_cast<float>(r.id));
            r.payload.resize(z.size() * 4);
            std::memcpy(r.payload.data(), z.data(), r.payload.size());
          }
          if (text) {
            r.text_len = 1 + units % 3;
            r.text_dim = 2;
            for (int k = 0; k < r.text_len * 2; ++k) r.text_tokens.push_back(static_cast<float>(units) + 0.5f * k);
            r.text_pooled = {static_cast<float>(units), -1.0f};
          }
          all.push_back(std::move(r));
        }
    ShardHeader h{kShardFormatVersion, kind, encoder, "test", text ? "test-text" : "", views};
    const size_t half = (all.size() / 2) / static_cast<size_t>(views) * static_cast<size_t>(views);
    for (int s = 0; s < 2; ++s) {
      ShardWriter w(dir + "/part-" + std::to_string(s) + ".ldms", h);
      for (size_t i = s == 0 ? 0 : half; i < (s == 0 ? half : all.size()); ++i) w.append(all[i]);
      w.finish();
    }
  }
  ~Shards() { fs::remove_all(dir); }
};

std::shared_ptr<const PatchAutoencoder> patch() { return std::make_shared<const PatchAutoencoder>(2); }

// Ids of a global step gathered over `world` ranks.
std::vector<uint64_t> global_ids(const std::shared_ptr<const ShardDataset>& data, int64_t step, int64_t batch,
                                 int world, uint64_t seed = 5, LoaderOptions options = {}) {
  std::vector<uint64_t> all;
  for (int r = 0; r < world; ++r) {
    RankLoader loader(data, patch(), seed, batch, r, world, options);
    auto b = loader.batch_for_step(step);
    all.insert(all.end(), b.ids.begin(), b.ids.end());
  }
  return all;
}

}  // namespace loader_buckets_test

using namespace loader_buckets_test;

TEST_CASE("views: each epoch trains on one view of every image, chosen by (seed, epoch, image)") {
  Shards shards({{4, 4, 12}}, 3);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  REQUIRE(data->size() == 36);
  REQUIRE(data->units() == 12);
  RankLoader loader(data, patch(), 5, 4, 0, 1);
  std::map<int64_t, std::vector<uint64_t>> by_epoch;
  for (int64_t step = 0; step < 9; ++step) {  // 3 epochs of 3 steps
    auto b = loader.batch_for_step(step);
    for (size_t i = 0; i < b.ids.size(); ++i) {
      by_epoch[b.epochs[i]].push_back(b.ids[i]);
      const uint64_t unit = b.ids[i] / 3;
      CHECK(b.ids[i] % 3 == static_cast<uint64_t>(view_for_epoch(5, b.epochs[i], unit, 3)));
    }
  }
  std::set<int> views_seen;
  for (auto& [epoch, ids] : by_epoch) {
    std::set<uint64_t> units;
    for (auto id : ids) {
      units.insert(id / 3);
      views_seen.insert(static_cast<int>(id % 3));
    }
    CHECK(ids.size() == 12);
    CHECK(units.size() == 12);  // every image exactly once per epoch
  }
  CHECK(views_seen.size() == 3);  // and not always the same view
  // unit 0's views over 30 epochs are not constant
  std::set<int> unit0;
  for (int e = 0; e < 30; ++e) unit0.insert(view_for_epoch(5, e, 0, 3));
  CHECK(unit0.size() > 1);
}

TEST_CASE("aspect-ratio buckets: a batch shares one shape and each image is seen at most once per epoch") {
  // 10 square, 7 landscape, 4 portrait images; global batch 4 -> 2 + 1 + 1 = 4 batches per epoch
  Shards shards({{4, 4, 10}, {4, 8, 7}, {8, 4, 4}}, 1);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  CHECK(data->buckets().size() == 3);
  RankLoader loader(data, patch(), 11, 4, 0, 1);
  REQUIRE(loader.plan().bucketed());
  CHECK(loader.plan().batches_per_epoch() == 4);
  std::map<int64_t, std::multiset<uint64_t>> seen;
  std::set<std::vector<int64_t>> shapes;
  for (int64_t step = 0; step < 12; ++step) {
    auto b = loader.batch_for_step(step);
    CHECK(b.latents.size(0) == 4);
    shapes.insert(b.latents.sizes().vec());
    for (size_t i = 0; i < b.ids.size(); ++i) seen[b.epochs[i]].insert(b.ids[i]);
    for (size_t i = 1; i < b.ids.size(); ++i) CHECK(data->shape(b.ids[i]) == data->shape(b.ids[0]));
  }
  CHECK(shapes.size() == 3);
  REQUIRE(seen.size() == 3);
  std::set<std::multiset<uint64_t>> distinct;
  for (auto& [epoch, ids] : seen) {
    CHECK(ids.size() == 16);
    CHECK(std::set<uint64_t>(ids.begin(), ids.end()).size() == 16);  // at most once
    // the portrait bucket (4 images = one full batch) is visited exactly once per epoch
    for (uint64_t id = 17; id < 21; ++id) CHECK(ids.count(id) == 1);
    distinct.insert(ids);
  }
  CHECK(distinct.size() > 1);  // the left-out images change between epochs
  // same union per global step for 1, 2 and 4 ranks
  for (int64_t step = 0; step < 6; ++step) {
    CHECK(global_ids(data, step, 4, 1, 11) == global_ids(data, step, 4, 2, 11));
    CHECK(global_ids(data, step, 4, 1, 11) == global_ids(data, step, 4, 4, 11));
  }
}

TEST_CASE("buckets too small for one global batch are refused with the bucket sizes") {
  Shards shards({{4, 4, 3}, {4, 8, 3}}, 1);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  try {
    RankLoader loader(data, patch(), 0, 4, 0, 1);
    FAIL("expected an error");
  } catch (const ldm::DataError& e) {
    CHECK(std::string(e.what()).find("4x8: 3") != std::string::npos);
  }
}

TEST_CASE("background prefetch gives exactly the synchronous batches, in any request order") {
  Shards shards({{4, 4, 10}, {4, 8, 8}}, 2);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  RankLoader sync(data, patch(), 3, 4, 1, 2);
  LoaderOptions o;
  o.prefetch = 3;
  o.prefetch_threads = 2;
  RankLoader ahead(data, patch(), 3, 4, 1, 2, o);
  for (int64_t step : {0, 1, 2, 3, 4, 5, 9, 10, 2, 11}) {
    auto a = sync.batch_for_step(step);
    auto b = ahead.batch_for_step(step);
    CHECK(a.ids == b.ids);
    CHECK(a.epochs == b.epochs);
    CHECK(torch::equal(a.latents, b.latents));
  }
}

TEST_CASE("a loader restarted at a saved cursor continues with exactly the next batches, for 1 and 2 ranks") {
  Shards shards({{4, 4, 13}}, 1);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  for (int world : {1, 2}) {
    std::vector<std::vector<uint64_t>> straight;
    {
      LoaderOptions o;
      o.prefetch = 2;  // the prefetcher runs ahead; the cursor is the trainer's step, not its position
      std::vector<std::unique_ptr<RankLoader>> ranks;
      for (int r = 0; r < world; ++r) ranks.push_back(std::make_unique<RankLoader>(data, patch(), 7, 6, r, world, o));
      for (int64_t step = 0; step < 8; ++step) {
        std::vector<uint64_t> ids;
        for (auto& l : ranks) {
          auto b = l->batch_for_step(step);
          ids.insert(ids.end(), b.ids.begin(), b.ids.end());
        }
        straight.push_back(ids);
      }
    }
    const int64_t cursor_step = 5;  // checkpoint after 5 steps: cursor = 5 * 6 records
    for (int64_t step = cursor_step; step < 8; ++step)
      CHECK(global_ids(data, step, 6, world, 7) == straight[static_cast<size_t>(step)]);
  }
}

TEST_CASE("stored caption features arrive padded to the experiment's token slots, with mask and pooled") {
  Shards shards({{4, 4, 6}}, 1, true);
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  CHECK(data->header().text_encoder == "test-text");
  LoaderOptions o;
  o.text_tokens = 5;
  RankLoader loader(data, patch(), 1, 6, 0, 1, o);
  auto b = loader.batch_for_step(0);
  REQUIRE(b.text.size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    const auto unit = static_cast<int64_t>(b.ids[i]);
    const auto& e = b.text[i];
    CHECK(e.length == 1 + unit % 3);
    CHECK(e.tokens.sizes() == torch::IntArrayRef({5, 2}));
    CHECK(e.mask.sum().item<int64_t>() == e.length);
    CHECK(e.tokens[0][0].item<float>() == static_cast<float>(unit));
    CHECK(e.tokens.narrow(0, e.length, 5 - e.length).abs().sum().item<float>() == 0.0f);
    CHECK(e.pooled[0].item<float>() == static_cast<float>(unit));
  }
  o.text_tokens = 2;  // fewer slots than a stored caption has tokens: an error naming the record
  RankLoader narrow(data, patch(), 1, 6, 0, 1, o);
  CHECK_THROWS_WITH_AS(narrow.batch_for_step(0), doctest::Contains("caption feature tokens"), ldm::DataError);
}

TEST_CASE("latent shards are loaded as stored, without an autoencoder pass") {
  Shards shards({{2, 2, 8}}, 1, false, PayloadKind::LatentF32, "some-vae");
  auto data = std::make_shared<const ShardDataset>(shards.dir);
  RankLoader loader(data, nullptr, 1, 4, 0, 1);
  auto b = loader.batch_for_step(0);
  CHECK(b.latents.sizes() == torch::IntArrayRef({4, 4, 2, 2}));
  for (size_t i = 0; i < 4; ++i)
    CHECK(b.latents[static_cast<int64_t>(i)].mean().item<float>() == static_cast<float>(b.ids[i]));
}

TEST_CASE("shards of one directory must agree on encoder, text encoder and views") {
  Shards a({{4, 4, 4}}, 1);
  {
    ShardWriter w(a.dir + "/part-9.ldms",
                  ShardHeader{kShardFormatVersion, PayloadKind::ImageU8, "other-vae", "test", "", 1});
    Record r;
    r.shape = {4, 4, 3};
    r.payload.assign(48, 0);
    r.id = 99;
    w.append(r);
    w.finish();
  }
  CHECK_THROWS_WITH_AS(ShardDataset(a.dir), doctest::Contains("encoder 'other-vae' differs"), ldm::DataError);
}
