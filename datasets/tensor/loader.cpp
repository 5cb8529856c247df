#include "datasets/tensor/loader.h"

#include <torch/torch.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "datasets/tensor/autoencoder.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/seeds.h"

namespace ldm::data {

// ---- dataset ---------------------------------------------------------------------------

ShardDataset::ShardDataset(const std::string& dir) : dir_(dir) {
  for (const auto& path : list_shards(dir)) {
    auto reader = std::make_unique<ShardReader>(path);
    const auto shard = static_cast<std::uint32_t>(shards_.size());
    for (std::size_t i = 0; i < reader->size(); ++i) locations_.emplace_back(shard, static_cast<std::uint32_t>(i));
    if (!shards_.empty()) {
      const ShardHeader& a = shards_.front()->header();
      const ShardHeader& b = reader->header();
      auto differs = [&](const char* what, const std::string& x, const std::string& y) {
        if (x != y)
          throw DataError(path + ": " + what + " '" + y + "' differs from " + shards_.front()->path() + "'s '" + x +
                          "' (one directory must hold one encoding of one dataset)");
      };
      differs("payload kind", to_string(a.kind), to_string(b.kind));
      differs("encoder", a.encoder, b.encoder);
      differs("text encoder", a.text_encoder, b.text_encoder);
      differs("views", std::to_string(a.views), std::to_string(b.views));
    }
    if (reader->size() % static_cast<std::size_t>(reader->header().views) != 0)
      throw DataError(path + ": " + std::to_string(reader->size()) +
                      " records is not a multiple of views = " + std::to_string(reader->header().views));
    shards_.push_back(std::move(reader));
  }
  if (locations_.empty()) throw DataError(dir + ": no records (no *.ldms shard with records)");
}

Record ShardDataset::read(std::size_t index) const {
  const auto& loc = locations_.at(index);
  return shards_[loc.first]->read(loc.second);
}

RecordShape ShardDataset::shape(std::size_t index) const {
  const auto& loc = locations_.at(index);
  return shards_[loc.first]->shapes()[loc.second];
}

const ShardHeader& ShardDataset::header() const { return shards_.front()->header(); }

std::map<RecordShape, std::size_t> ShardDataset::buckets() const {
  std::map<RecordShape, std::size_t> out;
  const auto views = static_cast<std::size_t>(header().views);
  for (std::size_t u = 0; u < units(); ++u) ++out[shape(u * views)];
  return out;
}

// ---- order -----------------------------------------------------------------------------

std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[i] = i;
  std::uint64_t state = derive_seed(seed, Purpose::DataOrder, static_cast<std::uint64_t>(epoch));
  // Fisher-Yates with a counter-based SplitMix64 stream: a pure function of (seed, epoch).
  for (std::int64_t i = n - 1; i > 0; --i) {
    state += 0x9e3779b97f4a7c15ULL;
    std::uint64_t r = mix64(state);
    auto j = static_cast<std::int64_t>(r % static_cast<std::uint64_t>(i + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

int view_for_epoch(std::uint64_t seed, std::int64_t epoch, std::uint64_t unit, int views) {
  if (views <= 1) return 0;
  const std::uint64_t h = mix64(derive_seed(seed, Purpose::View, static_cast<std::uint64_t>(epoch)) ^ mix64(unit + 1));
  return static_cast<int>(h % static_cast<std::uint64_t>(views));
}

BatchPlan::BatchPlan(const ShardDataset& data, std::uint64_t seed, std::int64_t global_batch)
    : seed_(seed),
      global_batch_(global_batch),
      units_(static_cast<std::int64_t>(data.units())),
      views_(data.header().views) {
  if (global_batch < 1) throw Error("global batch must be >= 1, is " + std::to_string(global_batch));
  const auto views = static_cast<std::size_t>(views_);
  // Views of one image share its shape: a batch of one bucket stays one shape whichever view.
  for (std::size_t u = 0; u < data.units(); ++u)
    for (std::size_t v = 1; v < views; ++v)
      if (!(data.shape(u * views + v) == data.shape(u * views)))
        throw DataError(data.dir() + ": record " + std::to_string(u * views + v) + " (view " + std::to_string(v) +
                        ") has another shape than view 0 of its image");
  const auto buckets = data.buckets();
  if (buckets.size() <= 1) return;
  bucketed_ = true;
  buckets_ = buckets.size();
  std::map<RecordShape, std::uint32_t> index;
  std::string sizes;
  for (const auto& [shape, count] : buckets) {
    index.emplace(shape, static_cast<std::uint32_t>(index.size()));
    batches_per_epoch_ += static_cast<std::int64_t>(count) / global_batch;
    sizes += (sizes.empty() ? "" : ", ") + std::to_string(shape.height) + "x" + std::to_string(shape.width) + ": " +
             std::to_string(count);
  }
  if (batches_per_epoch_ == 0)
    throw DataError(data.dir() + ": no aspect-ratio bucket holds a full global batch of " +
                    std::to_string(global_batch) + " (buckets " + sizes + ")");
  unit_bucket_.resize(data.units());
  for (std::size_t u = 0; u < data.units(); ++u) unit_bucket_[u] = index.at(data.shape(u * views));
}

std::int64_t BatchPlan::record_of(std::int64_t unit, std::int64_t epoch) const {
  return unit * views_ + view_for_epoch(seed_, epoch, static_cast<std::uint64_t>(unit), views_);
}

namespace {
// Keeps the two newest epochs of a cache (a batch spans at most two epochs).
template <class Map, class Make>
typename Map::mapped_type cached(std::mutex& mu, Map& cache, std::int64_t epoch, Make make) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(epoch); it != cache.end()) return it->second;
  }
  auto value = make();  // outside the lock: other threads keep reading cached epochs
  std::lock_guard<std::mutex> lock(mu);
  cache.emplace(epoch, value);
  while (cache.size() > 2) {  // drop the epoch farthest from this one (never this one)
    auto far = cache.begin();
    for (auto it = cache.begin(); it != cache.end(); ++it)
      if (std::llabs(it->first - epoch) > std::llabs(far->first - epoch)) far = it;
    cache.erase(far);
  }
  return value;
}
}  // namespace

std::shared_ptr<const std::vector<std::int64_t>> BatchPlan::permutation(std::int64_t epoch) const {
  return cached(cache_mu_, perm_cache_, epoch, [&] {
    return std::make_shared<const std::vector<std::int64_t>>(epoch_permutation(units_, seed_, epoch));
  });
}

std::shared_ptr<const std::vector<std::vector<std::int64_t>>> BatchPlan::batches(std::int64_t epoch) const {
  return cached(cache_mu_, batch_cache_, epoch,
                [&] { return std::make_shared<const std::vector<std::vector<std::int64_t>>>(epoch_batches(epoch)); });
}

std::vector<std::vector<std::int64_t>> BatchPlan::epoch_batches(std::int64_t epoch) const {
  const auto perm_owner = permutation(epoch);  // keeps it alive whatever the cache evicts
  const auto& perm = *perm_owner;
  std::vector<std::vector<std::int64_t>> per_bucket(buckets_);
  for (std::int64_t u : perm) per_bucket[unit_bucket_[static_cast<std::size_t>(u)]].push_back(u);
  std::vector<std::vector<std::int64_t>> batches;
  for (const auto& units : per_bucket)
    for (std::size_t b = 0; b + static_cast<std::size_t>(global_batch_) <= units.size();
         b += static_cast<std::size_t>(global_batch_))
      batches.emplace_back(units.begin() + static_cast<std::ptrdiff_t>(b),
                           units.begin() + static_cast<std::ptrdiff_t>(b) + global_batch_);
  const auto order = epoch_permutation(static_cast<std::int64_t>(batches.size()),
                                       derive_seed(seed_, Purpose::BucketBatchOrder), epoch);
  std::vector<std::vector<std::int64_t>> shuffled;
  shuffled.reserve(batches.size());
  for (std::int64_t i : order) shuffled.push_back(std::move(batches[static_cast<std::size_t>(i)]));
  return shuffled;
}

std::vector<BatchPlan::Entry> BatchPlan::step(std::int64_t s) const {
  std::vector<Entry> out;
  out.reserve(static_cast<std::size_t>(global_batch_));
  if (bucketed_) {
    const std::int64_t epoch = s / batches_per_epoch_;
    const auto list = batches(epoch);
    for (std::int64_t u : (*list)[static_cast<std::size_t>(s % batches_per_epoch_)])
      out.push_back({record_of(u, epoch), epoch});
    return out;
  }
  std::int64_t cached_epoch = -1;
  std::shared_ptr<const std::vector<std::int64_t>> perm;
  for (std::int64_t i = 0; i < global_batch_; ++i) {
    const std::int64_t pos = s * global_batch_ + i;
    const std::int64_t epoch = pos / units_;
    if (epoch != cached_epoch) {
      perm = permutation(epoch);
      cached_epoch = epoch;
    }
    out.push_back({record_of((*perm)[static_cast<std::size_t>(pos % units_)], epoch), epoch});
  }
  return out;
}

// ---- loader ----------------------------------------------------------------------------

struct RankLoader::Prepared {
  std::int64_t step = -1;
  std::vector<Record> records;
  std::vector<std::int64_t> epochs;
};

// Background readers: steps are queued in order, each prepared by one thread; the trainer takes
// them by step number. Everything a batch holds is a function of its step, so prefetching changes
// timing only.
struct RankLoader::Prefetcher {
  const RankLoader* loader;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::int64_t> queue;
  struct Slot {
    bool done = false;
    Prepared value;
    std::exception_ptr error;
  };
  std::map<std::int64_t, Slot> slots;
  bool stop = false;
  std::vector<std::thread> threads;

  Prefetcher(const RankLoader* l, int n) : loader(l) {
    for (int i = 0; i < n; ++i) threads.emplace_back([this] { run(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();
  }
  void request(std::int64_t step) {  // under mu
    if (slots.count(step)) return;
    slots[step];
    queue.push_back(step);
    cv.notify_all();
  }
  void run() {
    for (;;) {
      std::int64_t step;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !queue.empty(); });
        if (stop) return;
        step = queue.front();
        queue.pop_front();
      }
      Prepared p;
      std::exception_ptr error;
      try {
        p = loader->prepare(step);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        auto it = slots.find(step);
        if (it != slots.end()) {
          it->second.value = std::move(p);
          it->second.error = error;
          it->second.done = true;
        }
      }
      cv.notify_all();
    }
  }
  Prepared take(std::int64_t step, int ahead) {
    std::unique_lock<std::mutex> lock(mu);
    // Steps before this one will not be asked for again (the trainer moves forward).
    for (auto it = slots.begin(); it != slots.end() && it->first < step;) {
      if (!it->second.done) break;  // a reader is still on it; it is dropped on a later call
      it = slots.erase(it);
    }
    request(step);
    for (int k = 1; k <= ahead; ++k) request(step + k);
    cv.wait(lock, [&] { return slots[step].done; });
    Slot slot = std::move(slots[step]);
    slots.erase(step);
    if (slot.error) std::rethrow_exception(slot.error);
    return std::move(slot.value);
  }
};

RankLoader::RankLoader(std::shared_ptr<const ShardDataset> data, std::shared_ptr<const Autoencoder> ae,
                       std::uint64_t seed, std::int64_t global_batch, int rank, int world_size, LoaderOptions options)
    : data_(std::move(data)),
      ae_(std::move(ae)),
      global_batch_(global_batch),
      rank_(rank),
      world_(world_size),
      options_(options),
      plan_(*data_, seed, global_batch) {
  if (global_batch % world_size != 0)
    throw Error("global batch " + std::to_string(global_batch) + " is not divisible by " + std::to_string(world_size) +
                " ranks");
  if (data_->header().kind == PayloadKind::ImageU8 && !ae_)
    throw Error(data_->dir() + ": image shards need an autoencoder to make latents");
  if (options_.prefetch > 0) prefetcher_ = std::make_unique<Prefetcher>(this, std::max(1, options_.prefetch_threads));
}

RankLoader::~RankLoader() = default;

RankLoader::Prepared RankLoader::prepare(std::int64_t step) const {
  const auto entries = plan_.step(step);
  const std::int64_t b = local_batch();
  Prepared p;
  p.step = step;
  p.records.reserve(static_cast<std::size_t>(b));
  for (std::int64_t i = rank_ * b; i < (rank_ + 1) * b; ++i) {
    const auto& e = entries[static_cast<std::size_t>(i)];
    p.records.push_back(data_->read(static_cast<std::size_t>(e.record)));
    p.epochs.push_back(e.epoch);
  }
  return p;
}

Batch RankLoader::finish(Prepared&& p) const {
  Batch batch;
  const auto b = static_cast<std::int64_t>(p.records.size());
  std::vector<std::int64_t> labels;
  const bool images = data_->header().kind == PayloadKind::ImageU8;
  const Record& first = p.records.front();
  // Payload bytes are copied straight into one batch tensor; the conversion is one ATen call.
  at::Tensor pixels;  // images: [b, H, W, 3] uint8
  if (images) pixels = torch::empty({b, first.shape[0], first.shape[1], first.shape[2]}, torch::kUInt8);
  else batch.latents = torch::empty({b, first.shape[0], first.shape[1], first.shape[2]}, torch::kFloat32);
  int text_tokens = options_.text_tokens;
  if (text_tokens == 0)
    for (const Record& r : p.records) text_tokens = std::max(text_tokens, r.text_len);
  for (std::int64_t i = 0; i < b; ++i) {
    Record& r = p.records[static_cast<std::size_t>(i)];
    if (r.shape != first.shape)
      throw DataError(data_->dir() + ": record " + std::to_string(r.id) + " has another shape than record " +
                      std::to_string(first.id) + " of the same batch (step " + std::to_string(p.step) + ")");
    if (images) {
      if (r.shape[2] != 3)
        throw DataError(data_->dir() + ": record " + std::to_string(r.id) + ": expected an HxWx3 image payload");
      std::memcpy(pixels[i].data_ptr<std::uint8_t>(), r.payload.data(), r.payload.size());
    } else {
      // Latent payloads are little-endian f32, as this (little-endian) host stores floats.
      std::memcpy(batch.latents[i].data_ptr<float>(), r.payload.data(), r.payload.size());
    }
    if (r.text_len > 0) {
      if (r.text_len > text_tokens)
        throw DataError(data_->dir() + ": record " + std::to_string(r.id) + " has " + std::to_string(r.text_len) +
                        " caption feature tokens, more than the " + std::to_string(text_tokens) +
                        " token slots of the experiment (text_encoder.max_tokens)");
      TextEmbedding e;
      e.length = r.text_len;
      e.tokens = torch::zeros({text_tokens, r.text_dim}, torch::kFloat32);
      std::memcpy(e.tokens.data_ptr<float>(), r.text_tokens.data(), r.text_tokens.size() * sizeof(float));
      e.mask = torch::arange(text_tokens) < r.text_len;
      e.pooled = torch::from_blob(r.text_pooled.data(), {r.text_dim}, torch::kFloat32).clone();
      batch.text.push_back(std::move(e));
    }
    labels.push_back(r.label);
    batch.ids.push_back(r.id);
    batch.controls.push_back(r.control);
    batch.captions.push_back(std::move(r.caption));
  }
  if (!batch.text.empty() && static_cast<std::int64_t>(batch.text.size()) != b)
    throw DataError(data_->dir() + ": some records of step " + std::to_string(p.step) +
                    " carry caption features and some do not");
  batch.epochs = std::move(p.epochs);
  if (images) {
    // [b,3,H,W] images in [-1,1] -> latents [b,C,H/f,W/f]
    torch::NoGradGuard no_grad;
    // uint8 HWC -> float [b,3,H,W] in [-1, 1], as image_u8_to_tensor
    const auto x = pixels.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(127.5).sub_(1.0).contiguous();
    batch.latents = ae_->encode(x);
  }
  batch.labels = torch::tensor(labels, torch::kInt64);
  return batch;
}

Batch RankLoader::batch_for_step(std::int64_t step) {
  if (prefetcher_) return finish(prefetcher_->take(step, options_.prefetch));
  return finish(prepare(step));
}

}  // namespace ldm::data
