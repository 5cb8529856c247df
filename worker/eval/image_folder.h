// FID statistics of image collections: a folder of image files, or a directory of image shards.
//
// Folders: the files directly inside (not recursive) whose names end in .png, .jpg, .jpeg or .webp
// (case-insensitive), sorted by name (byte order), each decoded with datasets/images/image_decode.h into
// 8-bit RGB (EXIF orientation applied, alpha dropped, grayscale replicated; PIL's
// exif_transpose(...).convert("RGB")). Hidden files (".name") are skipped. A file that does not
// decode is an error naming it (no silent skipping: FID over a different set is a different FID).
//
// Shard directories (any "*.ldms" file inside): image shards (payload u8 HWC RGB) through
// data::ShardDataset; with several augmented views per source image only view 0 of each image is
// used. Latent shards are refused: decode the latents to images first.
//
// Both stream: batch_size images are decoded, run through the extractor and folded into a
// FeatureStatsAccumulator, so memory does not grow with the collection. Progress goes to stderr
// (when enabled) at most about every two seconds and at the end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/eval/features.h"
#include "worker/eval/frechet.h"

namespace ldm::eval {

// True for names ending in .png .jpg .jpeg .webp (any case).
bool is_image_file_name(const std::string& name);

// The image files of `dir` (full paths), sorted. Throws ldm::DataError when `dir` is not a readable
// folder; an empty result is not an error here.
std::vector<std::string> list_image_files(const std::string& dir);

enum class CollectionKind { ImageFolder, ImageShards };
// ImageShards when `dir` holds "*.ldms" files, ImageFolder otherwise. Throws ldm::DataError when
// `dir` is not a folder.
CollectionKind collection_kind(const std::string& dir);

struct CollectionStatsOptions {
  int batch_size = 50;    // images decoded and run through the network at once
  bool progress = false;  // report progress on stderr
  std::string name;       // what progress lines call the collection (default: the path)
};

struct CollectionStats {
  FeatureStats stats;  // count = images used
  CollectionKind kind = CollectionKind::ImageFolder;
};

// Statistics of the features of every image in a folder. Throws ldm::DataError for a folder with
// fewer than two images (the covariance needs two) or a file that does not decode.
FeatureStats folder_feature_stats(const std::string& dir, const FeatureExtractor& extractor,
                                  const CollectionStatsOptions& options = {});

// Statistics over the images of a shard directory (view 0 of each source image). Throws
// ldm::DataError for latent shards ("not supported: decode latents first"), corrupt records, or
// fewer than two images.
FeatureStats shard_feature_stats(const std::string& dir, const FeatureExtractor& extractor,
                                 const CollectionStatsOptions& options = {});

// Dispatches on collection_kind().
CollectionStats collection_feature_stats(const std::string& dir, const FeatureExtractor& extractor,
                                         const CollectionStatsOptions& options = {});

// Statistics files as `ldm-eval stats` writes them: pytorch-fid's members mu [D] and sigma [D, D]
// (float64; what every FID tool reads), plus
//   feature_extractor  uint8 [L]: the UTF-8 bytes of FeatureExtractor::identity()
//                      (numpy: bytes(np.load(f)["feature_extractor"]).decode())
//   count              int64 [1]: the number of images
// which other tools ignore. Deflated when `compress` (np.savez_compressed), stored otherwise.
void write_stats_file(const std::string& path, const FeatureStats& stats, const std::string& extractor_identity,
                      bool compress = false);
// The feature_extractor member of a statistics file, "" when it has none (written by another tool).
std::string read_stats_extractor(const std::string& path);
// The count member, 0 when absent.
int64_t read_stats_count(const std::string& path);

}  // namespace ldm::eval
