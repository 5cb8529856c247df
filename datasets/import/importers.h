// Importers from the formats researchers arrive with into image shards (DESIGN.md "Shards"),
// behind `ldm-data import-imagenet` and `ldm-data import-wds`. Torch-free.
//
// ImageNet (torchvision ImageFolder conventions):
//  - train: ROOT/train/<wnid>/<file>, files with an image extension (.jpeg .jpg .png .webp, any
//    case). The class index is the position of the wnid in the SORTED list of the directory names
//    of ROOT/train (byte order, as ImageFolder's sorted(os.scandir)), which for the 1000 ILSVRC-2012
//    wnids is the standard 0..999 index.
//  - val: either ROOT/val/<wnid>/<file> (the layout made by the usual "valprep" script; labels from
//    the folder name, indexed by ROOT/train's class list if it exists, else by the val folders), or
//    ROOT/val/<file> flat with a labels file (--val-labels). The labels file is either
//      * "<file name> <wnid-or-index>" per line (e.g. "ILSVRC2012_val_00000001.JPEG n01751748"),
//        matched by file name (extension optional), or
//      * one "<wnid-or-index>" per line, the i-th line labelling the i-th image in sorted file-name
//        order (as ILSVRC2012_validation_ground_truth.txt, though that devkit file uses the 1-based
//        ILSVRC2012_ID order, NOT the sorted-wnid index: convert it first).
//    Wnids are indexed through ROOT/train's sorted class list; plain integers are taken as-is.
//    LOC_val_solution.csv is not read (convert it to the first form). Lines starting with '#' and
//    blank lines are ignored.
//  Input list: all images sorted by their path relative to the split directory. Image i gets
//  record ids i*views + v (v = 0..views-1); output shard k holds images [k*N, (k+1)*N) of the list
//  (N = shard_records), so shard k always holds the same records.
//
// WebDataset: tar files from a brace pattern ("cc12m-{00000..00099}.tar": zero-padded numeric
//  ranges keep the width of the first bound; "{a,b}" lists too). Members are grouped by key = the
//  member path up to the first '.' of its last path component (WebDataset's rule), in order of first
//  appearance. A sample needs an image (.jpg .jpeg .png .webp) and a caption (.txt, UTF-8, leading
//  and trailing whitespace stripped); samples without either are skipped and counted. An optional
//  .json may give the size the image had before the downloader resized it ("original_width" /
//  "original_height", else "width" / "height"): then the record's orig_h/orig_w are that size and
//  the crop box is scaled from decoded to those coordinates (rounded, clamped). Label is -1.
//  Output shard k holds tar k of the expanded list; sample s of tar k gets record ids
//  (k << 32) | (s*views + v).
//
// Encoding (ImportOptions::encoder): the records of a shard, all views of its images, go through
//  the encoder in record order before the shard is written; the shard then holds latents and/or
//  caption features, and its header names the encoders, so training can refuse shards made with
//  another encoder. Text-only encoding (no VAE) keeps image payloads.
//
// Both: images are decoded (image_decode.h) and cropped (crop.h) with AugmentKey{seed, 0,
// image id (= i for ImageNet, (k << 32) | s for WebDataset), view}. Work runs on a fixed pool of
// `threads` std::threads (ImageNet: the images of one shard in parallel, then written in list
// order; WebDataset: whole tars in parallel, one output shard each), so the output bytes do not
// depend on the thread count. Unreadable or truncated images are skipped, counted and named, never
// fatal. Each shard is written to "<name>.tmp" and renamed when complete, after its per-shard
// summary DIR/.import/<name>.json; a rerun keeps every shard that opens (header, index, footer) with
// this import's dataset identity and redoes the others, so an import killed midway resumes with no
// record written twice. An existing shard of a different import (other source or options) is an
// error. DIR/dataset.json (source, options, classes, counts) is written last.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/images/buckets.h"
#include "datasets/images/crop.h"

namespace ldm::data {

struct ImportProgress {
  std::uint64_t done = 0, total = 0;  // images (ImageNet) or tars (WebDataset), reused included
  const char* unit = "images";        // "images" | "tars"
  std::uint64_t images_kept = 0;      // records' source images written or reused so far
  std::uint64_t bytes_read = 0;       // input bytes read by this run
  double seconds = 0.0;               // since the import started
};

// Turns an importer's image records into what the shards store: latents through an autoencoder
// and/or caption features through a text encoder. The importers call it with all records of one
// shard (in record order) and the source key of each (ImageNet: the path under the split
// directory; WebDataset: the sample key), from any thread. `ldm-data` implements it with a child
// `ldm-encode --serve` process, which keeps LibTorch out of `ldm-data` (encoder_process.h).
class RecordEncoder {
 public:
  virtual ~RecordEncoder() = default;
  virtual PayloadKind kind() const = 0;           // what the encoded payloads are
  virtual std::string identity() const = 0;       // the shard header's `encoder`
  virtual std::string text_identity() const = 0;  // the shard header's `text_encoder` ("" = none)
  virtual void encode(std::vector<Record>& records, const std::vector<std::string>& keys,
                      const std::string& shard) const = 0;
};

struct ImportOptions {
  CropOptions crop;  // strategy, size (= --resolution), flip probability
  // Aspect-ratio buckets (buckets.h): when non-empty, each image is cropped to the bucket nearest
  // its aspect ratio (all its views too) instead of size x size; shards then mix shapes and the
  // loader batches by bucket.
  std::vector<Bucket> buckets;
  int views = 1;                      // augmented views per image (>= 1)
  std::uint64_t seed = 0;             // augmentation seed
  std::int64_t shard_records = 1024;  // ImageNet: images (input files) per shard
  int threads = 0;                    // 0 = std::thread::hardware_concurrency()
  // Called under a lock from any thread, after each image / tar (keep it cheap).
  std::function<void(const ImportProgress&)> progress;
  // Called for each skipped input with "<source>: <reason>: <detail>" (under the same lock).
  std::function<void(const std::string&)> on_skip;
  // Null: image shards. Otherwise each shard's records go through it before they are written, and
  // its identities become part of the import's identity and the shard headers.
  std::shared_ptr<const RecordEncoder> encoder;
};

struct ImportSummary {
  std::string source;    // "imagenet" | "webdataset"
  std::string identity;  // the shard headers' dataset field
  std::string out_dir;
  std::uint64_t inputs = 0;                      // images (ImageNet) or samples found (WebDataset; reused too)
  std::uint64_t images_kept = 0;                 // images that became records
  std::uint64_t records = 0;                     // images_kept * views
  std::map<std::string, std::uint64_t> skipped;  // reason -> count: "unreadable", "truncated",
                                                 // "missing image", "missing caption"
  std::vector<std::string> skipped_names;        // "<source>: <reason>" (first 1000)
  std::uint64_t bytes_read = 0;                  // input bytes read by this run
  std::size_t shards = 0, shards_written = 0, shards_reused = 0;
  double seconds = 0.0;
  std::uint64_t skipped_total() const;
};

struct ImageNetOptions {
  std::string split = "train";  // "train" | "val"
  std::string val_labels;       // labels file for a flat ROOT/val (see above)
};

// The sorted wnid directory names of `train_dir` (ImageFolder's class list).
std::vector<std::string> imagenet_classes(const std::string& train_dir);

// Expands "{00000..00099}" ranges (zero-padded to the first bound's width) and "{a,b,c}" lists,
// left to right; a pattern without braces is returned as is. Throws Error on a malformed brace.
std::vector<std::string> expand_braces(const std::string& pattern);

// Throws Error / DataError for a missing ROOT, an empty input list, a bad labels file or a
// directory holding another import; never for a bad image.
ImportSummary import_imagenet(const std::string& root, const std::string& out_dir, const ImageNetOptions& imagenet,
                              const ImportOptions& options);
ImportSummary import_webdataset(const std::string& pattern, const std::string& out_dir, const ImportOptions& options);

// One WebDataset sample: the members of a tar sharing a key (the member's path up to the first dot
// of its file name). Member names are only keys: nothing is written to a path made from them.
struct WdsSample {
  std::string key;
  std::string image_member;  // member name of the image
  std::vector<std::uint8_t> image;
  bool has_image = false, has_caption = false;
  std::string caption, json;
};
inline constexpr std::int64_t kMaxTarMemberBytes = std::int64_t{1} << 30;

// Every regular member of a tar (plain, or gzip, bzip2, xz or zstd compressed), grouped into
// samples in member order. A read error, or a member above kMaxTarMemberBytes, ends the walk:
// what was read is returned and `error` names the file (and the member).
std::vector<WdsSample> read_webdataset_tar(const std::string& path, std::string& error);

// Human-readable multi-line summary (kept, skipped by reason with names, bytes, time).
std::string format_import_summary(const ImportSummary& summary, std::size_t max_names = 20);

}  // namespace ldm::data
