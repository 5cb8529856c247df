// Whole-directory checks and statistics over shard datasets, behind `ldm-data verify` and
// `ldm-data stats`. Torch-free; both stream records one at a time (memory does not grow with
// the payload bytes; `verify` keeps 16 bytes per record id to find duplicates).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "datasets/format/shard.h"

namespace ldm::data {

// ---- verify ----------------------------------------------------------------------------

// One thing wrong with a directory. `text` is the full message, e.g.
// "synth-00001.ldms: record 17 (id 273): checksum mismatch (stored 0x1a2b3c4d, computed 0x...)".
struct VerifyProblem {
  std::string shard;                // file name within the directory ("" = the directory itself)
  std::int64_t record = -1;         // index within the shard; -1 = the shard as a whole
  std::optional<std::uint64_t> id;  // the record's id where its bytes could be read
  std::string text;
};

// Progress after each shard (for a progress line with rate; called on the caller's thread).
struct VerifyProgress {
  std::size_t shards_done = 0, shards_total = 0;
  std::string shard;               // file name of the shard just finished
  std::uint64_t records_done = 0;  // over all shards so far
  std::uint64_t bytes_done = 0;    // file bytes of the shards so far
};

struct VerifyOptions {
  std::size_t max_problems = 100;  // problems kept in the report; all are counted
  std::function<void(const VerifyProgress&)> progress;
};

struct VerifyReport {
  std::string dir;
  std::size_t shards = 0;     // "*.ldms" files found
  std::uint64_t records = 0;  // records listed by the indexes of the shards that opened
  std::uint64_t bytes = 0;
  std::size_t unreadable_shards = 0;    // header, index or footer broken (or cannot open)
  std::uint64_t corrupt_records = 0;    // checksum, length or body errors
  std::uint64_t duplicate_ids = 0;      // records whose id an earlier record already had
  std::uint64_t disagreements = 0;      // shard headers (kind, encoder) or record channel counts
                                        // that differ from the first readable shard's
  std::uint64_t problem_count = 0;      // all problems, including those beyond max_problems
  std::vector<VerifyProblem> problems;  // the first max_problems, in file order;
                                        // duplicate ids last, in id order
  bool clean() const { return problem_count == 0; }
};

// Checks every "*.ldms" shard in `dir` (sorted by name): magic, version, header checksum,
// footer and index (via ShardReader), every record's length and checksum and body, record ids
// unique across the directory, and that every shard agrees with the first readable one on
// payload kind, encoder identity and payload channel count (latent C; images are always 3).
// Continues past every problem. A directory without shards is one problem. Throws DataError
// only when `dir` cannot be listed.
VerifyReport verify_directory(const std::string& dir, const VerifyOptions& options = {});

// "4 shards, 1024 records, all checksums match" or "4 shards, 1024 records: 3 problems (...)".
std::string verify_summary(const VerifyReport& report);

// ---- stats -----------------------------------------------------------------------------

// Mean and population standard deviation of a stream of values, merged exactly (Chan et al.)
// from per-record partial results, in double precision.
struct Moments {
  std::uint64_t count = 0;
  double mean = 0.0;
  double m2 = 0.0;  // sum of squared deviations from the mean
  void add(double x);
  void merge(const Moments& other);
  double variance() const { return count > 0 ? m2 / static_cast<double>(count) : 0.0; }
  double std() const;
};

struct MinMeanMax {
  std::uint64_t count = 0;
  double min = 0.0, max = 0.0, sum = 0.0;
  void add(double x);
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
};

struct DatasetStats {
  std::string dir;
  std::size_t shards = 0;
  std::uint64_t records = 0;             // records read successfully (the ones counted below)
  std::uint64_t unreadable_records = 0;  // skipped: checksum or body errors (run `verify`)
  PayloadKind kind = PayloadKind::ImageU8;
  std::string encoder, dataset;                  // from the first shard's header
  std::map<std::int32_t, std::uint64_t> labels;  // label (-1 = none) -> records
  std::uint64_t captioned = 0;                   // records with a non-empty caption
  MinMeanMax caption_words, caption_chars;       // over captioned records
  std::map<std::string, std::uint64_t> shapes;   // "4x32x32" (dims as stored) -> records
  std::uint64_t with_control = 0;                // records with control metadata (orig_h, orig_w > 0)
  MinMeanMax orig_h, orig_w, crop_h, crop_w;     // over records with control metadata
  std::uint64_t flipped = 0;                     // over all records
  // Per-channel statistics: ImageU8 pixels scaled to [0,1] (channel = R, G, B); LatentF32
  // values (channel = C index). `all` pools every channel's values.
  std::vector<Moments> channels;
  Moments all;
  std::uint64_t non_finite = 0;  // latent values that are NaN or infinite (left out above)
  // LatentF32 only: 1 / all.std(), LDM's scale_factor convention. A suggestion, not applied.
  std::optional<double> suggested_scale_factor;
};

struct StatsProgress {
  std::size_t shards_done = 0, shards_total = 0;
  std::string shard;
  std::uint64_t records_done = 0;
  std::uint64_t bytes_done = 0;
};

// Streams every record of every "*.ldms" shard in `dir`. Records that fail to read are counted
// in `unreadable_records` and reported through `on_error` (if given) with the reader's message.
// Throws DataError if there are no shards, a shard cannot be opened, or shards disagree on
// payload kind or on the latent channel count (statistics across them would mean nothing).
DatasetStats compute_stats(const std::string& dir, const std::function<void(const StatsProgress&)>& progress = {},
                           const std::function<void(const std::string&)>& on_error = {});

// A human-readable table.
std::string format_stats(const DatasetStats& stats);

// The same as JSON (pretty-printed): {"directory", "shards", "records", "kind", "labels": {...},
// "captions": {...}, "shapes": {...}, "control": {...}, "channels": [{"mean","std"}], ...}.
std::string stats_json(const DatasetStats& stats);

}  // namespace ldm::data
