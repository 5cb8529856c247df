#include "worker/eval/image_folder.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include "datasets/format/shard.h"
#include "datasets/images/image_decode.h"
#include "datasets/tensor/loader.h"
#include "datasets/tensor/npy.h"
#include "shared/core/error.h"

namespace ldm::eval {

namespace image_folder_detail {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

void require_folder(const std::string& dir) {
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (!fs::exists(st)) throw DataError(dir + ": no such folder");
  if (!fs::is_directory(st)) throw DataError(dir + ": not a folder");
}

// Prints "<name>: <done>/<total> images" to stderr at most every two seconds, and at the end.
class Progress {
 public:
  Progress(bool enabled, std::string name, std::size_t total)
      : enabled_(enabled), name_(std::move(name)), total_(total), last_(std::chrono::steady_clock::now()) {}
  void update(std::size_t done) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_ < std::chrono::seconds(2)) return;
    last_ = now;
    std::fprintf(stderr, "%s: %zu/%zu images\n", name_.c_str(), done, total_);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  std::string name_;
  std::size_t total_;
  std::chrono::steady_clock::time_point last_;
};

// Runs `count` images, fetched one at a time by `get(i)`, through the extractor in batches and
// accumulates their statistics.
FeatureStats stream_stats(std::size_t count, const std::function<data::RgbImage(std::size_t)>& get,
                          const FeatureExtractor& extractor, const CollectionStatsOptions& options,
                          const std::string& name) {
  if (options.batch_size < 1)
    throw Error(name + ": batch size must be >= 1, got " + std::to_string(options.batch_size));
  if (count < 2)
    throw DataError(name + ": " + std::to_string(count) +
                    " image(s); FID statistics need at least two (the covariance is undefined for one)");
  FeatureStatsAccumulator acc;
  Progress progress(options.progress, options.name.empty() ? name : options.name, count);
  std::vector<at::Tensor> prepared;
  for (std::size_t start = 0; start < count; start += static_cast<std::size_t>(options.batch_size)) {
    const std::size_t end = std::min(count, start + static_cast<std::size_t>(options.batch_size));
    prepared.clear();
    for (std::size_t i = start; i < end; ++i) prepared.push_back(extractor.prepare(image_to_tensor(get(i))));
    acc.add(extractor.features_of_prepared(torch::cat(prepared, 0)));
    progress.update(end);
  }
  return acc.finalize();
}

}  // namespace image_folder_detail

bool is_image_file_name(const std::string& name) {
  const std::string n = image_folder_detail::lower(name);
  for (const char* ext : {".png", ".jpg", ".jpeg", ".webp"}) {
    const std::size_t len = std::strlen(ext);
    if (n.size() > len && n.compare(n.size() - len, len, ext) == 0) return true;
  }
  return false;
}

std::vector<std::string> list_image_files(const std::string& dir) {
  namespace fs = std::filesystem;
  image_folder_detail::require_folder(dir);
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw DataError("cannot list " + dir + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) throw DataError("cannot list " + dir + ": " + ec.message());
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || !is_image_file_name(name)) continue;
    std::error_code fec;
    if (!fs::is_regular_file(it->path(), fec)) continue;  // follows symlinks; folders named x.png are skipped
    out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

CollectionKind collection_kind(const std::string& dir) {
  image_folder_detail::require_folder(dir);
  return data::list_shards(dir).empty() ? CollectionKind::ImageFolder : CollectionKind::ImageShards;
}

FeatureStats folder_feature_stats(const std::string& dir, const FeatureExtractor& extractor,
                                  const CollectionStatsOptions& options) {
  const std::vector<std::string> files = list_image_files(dir);
  if (files.size() < 2)
    throw DataError(dir + ": " + std::to_string(files.size()) +
                    " image file(s) (.png .jpg .jpeg .webp); FID statistics need at least two");
  return image_folder_detail::stream_stats(
      files.size(), [&](std::size_t i) { return data::decode_image_file(files[i]); }, extractor, options, dir);
}

FeatureStats shard_feature_stats(const std::string& dir, const FeatureExtractor& extractor,
                                 const CollectionStatsOptions& options) {
  image_folder_detail::require_folder(dir);
  const data::ShardDataset shards(dir);
  const data::ShardHeader& header = shards.header();
  if (header.kind != data::PayloadKind::ImageU8)
    throw DataError(dir + ": the shards hold " + data::to_string(header.kind) + " payloads (encoder '" +
                    header.encoder + "'): not supported: decode latents first (FID needs images)");
  const std::size_t views = static_cast<std::size_t>(std::max(1, header.views));
  const std::size_t units = shards.size() / views;
  return image_folder_detail::stream_stats(
      units,
      [&](std::size_t unit) {
        const data::Record r = shards.read(unit * views);
        const std::string where =
            dir + ": record " + std::to_string(unit * views) + " (id " + std::to_string(r.id) + ")";
        if (r.view != 0)
          throw DataError(where + ": expected view 0 of its source image, got view " + std::to_string(r.view));
        if (r.shape.size() != 3 || r.shape[2] != 3 || r.shape[0] < 1 || r.shape[1] < 1 ||
            r.payload.size() != static_cast<std::size_t>(r.shape[0] * r.shape[1] * 3))
          throw DataError(where + ": not an RGB image payload");
        data::RgbImage image;
        image.height = static_cast<int>(r.shape[0]);
        image.width = static_cast<int>(r.shape[1]);
        image.pixels = r.payload;
        return image;
      },
      extractor, options, dir);
}

CollectionStats collection_feature_stats(const std::string& dir, const FeatureExtractor& extractor,
                                         const CollectionStatsOptions& options) {
  CollectionStats out;
  out.kind = collection_kind(dir);
  out.stats = out.kind == CollectionKind::ImageShards ? shard_feature_stats(dir, extractor, options)
                                                      : folder_feature_stats(dir, extractor, options);
  return out;
}

void write_stats_file(const std::string& path, const FeatureStats& stats, const std::string& extractor_identity,
                      bool compress) {
  check_feature_stats(stats, path + ": cannot write FID statistics");
  data::NpzMap members;
  members["mu"] = stats.mu.to(torch::kCPU, torch::kDouble).contiguous();
  members["sigma"] = stats.sigma.to(torch::kCPU, torch::kDouble).contiguous();
  auto id = torch::empty({static_cast<int64_t>(extractor_identity.size())}, torch::kByte);
  if (!extractor_identity.empty())
    std::memcpy(id.data_ptr<std::uint8_t>(), extractor_identity.data(), extractor_identity.size());
  members["feature_extractor"] = id;
  members["count"] = torch::full({1}, stats.count, torch::kLong);
  data::write_npz(path, members, compress);
}

namespace image_folder_detail {
bool has_member(const std::string& path, const std::string& key) {
  const auto keys = data::npz_keys(path);
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}
}  // namespace image_folder_detail

std::string read_stats_extractor(const std::string& path) {
  if (!image_folder_detail::has_member(path, "feature_extractor")) return "";
  const at::Tensor t = data::read_npz_members(path, {"feature_extractor"}).at("feature_extractor");
  if (t.scalar_type() != torch::kByte || t.dim() != 1)
    throw DataError(path + ": member feature_extractor must be a 1-D uint8 array (UTF-8 bytes)");
  const auto c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<std::uint8_t>()), static_cast<std::size_t>(c.numel()));
}

int64_t read_stats_count(const std::string& path) {
  if (!image_folder_detail::has_member(path, "count")) return 0;
  const at::Tensor t = data::read_npz_members(path, {"count"}).at("count");
  if (t.numel() != 1 || at::isFloatingType(t.scalar_type())) return 0;
  return t.reshape({}).to(torch::kLong).item<int64_t>();
}

}  // namespace ldm::eval
