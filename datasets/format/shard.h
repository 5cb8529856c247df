// The shard format: a file of records with a versioned header, a per-record checksum and an
// index for random access (DESIGN.md "Shards"). Torch-free.
//
// Layout (all integers and floats little-endian):
//   "LDMSHRD1"  u32 format_version  u32 header_len  header_json[header_len]  u32 crc32(header_json)
//   records:    u32 body_len  u32 crc32(body)  body[body_len]          (repeated)
//   index:      u64 offset of each record's u32 body_len               (count entries)
//               v2: then u32 height, u32 width of each record's payload (count entries), so a
//               loader knows every record's shape (its aspect-ratio bucket) without reading it
//   footer:     u64 index_offset  u64 count  u32 crc32(index, both parts)  "LDMSHEND"
// Record body:
//   u64 id  i32 label  i32 orig_h orig_w crop_top crop_left crop_h crop_w  u8 flip
//   u32 caption_len caption[...]
//   v2: u16 view  u32 text_len  u32 text_dim  f32 text_tokens[text_len*text_dim]  f32 text_pooled[text_dim]
//   u8 ndim  i64 dims[ndim]  payload bytes
// Payload: images are u8 HWC RGB; latents are f32 CHW (little-endian).
// Header JSON: kind, encoder (payload encoder identity), dataset; v2 adds text_encoder (identity of
// the caption features, "" = none stored) and views (augmented views per source image; the views of
// one image are consecutive records, view 0 first). Readers accept versions 1 and 2; writers write 2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shared/core/controls.h"

namespace ldm::data {

constexpr std::uint32_t kShardFormatVersion = 2;
constexpr std::uint32_t kOldestReadableShardVersion = 1;

// Sizes of the fixed parts of the layout above (the reader, and the tools that diagnose a record
// the reader rejected).
namespace shard_layout {
constexpr std::size_t kMagicSize = 8;
constexpr std::size_t kPreambleSize = kMagicSize + 4 + 4;    // magic, format_version, header_len
constexpr std::size_t kFooterSize = 8 + 8 + 4 + kMagicSize;  // index_offset, count, crc32, end magic
constexpr std::size_t kRecordPrefixSize = 4 + 4;             // body_len, crc32(body)
}  // namespace shard_layout

enum class PayloadKind : std::uint8_t { ImageU8 = 1, LatentF32 = 2 };
const char* to_string(PayloadKind k);

struct Record {
  std::uint64_t id = 0;     // unique within the dataset
  std::int32_t label = -1;  // class label; -1 = none
  std::string caption;      // "" = none
  ControlMeta control;
  std::vector<std::int64_t> shape;  // ImageU8: {H, W, 3}; LatentF32: {C, H, W}
  std::vector<std::uint8_t> payload;
  std::uint16_t view = 0;  // which augmented view of its source image
  // Precomputed caption features (text encoder output), or empty: text_len real tokens of
  // text_dim features each, row-major, and the pooled vector [text_dim].
  std::int32_t text_len = 0, text_dim = 0;
  std::vector<float> text_tokens;
  std::vector<float> text_pooled;
};

struct ShardHeader {
  std::uint32_t format_version = kShardFormatVersion;
  PayloadKind kind = PayloadKind::ImageU8;
  std::string encoder;       // identity of the encoder that made the payload ("none" for images)
  std::string dataset;       // free-form dataset identity (e.g. "synthetic-<hash>")
  std::string text_encoder;  // identity of the stored caption features ("" = none stored)
  std::int32_t views = 1;    // augmented views per source image (consecutive records)
};

// Height and width of a record's payload as the v2 index stores them (0 x 0 in v1 shards).
struct RecordShape {
  std::uint32_t height = 0, width = 0;
  bool operator==(const RecordShape& o) const { return height == o.height && width == o.width; }
  bool operator<(const RecordShape& o) const { return height != o.height ? height < o.height : width < o.width; }
};

// Height and width of a payload of `kind` (images {H, W, 3}: H, W; latents {C, H, W}: H, W).
RecordShape payload_shape(PayloadKind kind, const std::vector<std::int64_t>& shape);

// A record body in the current format (as stored in shards, without the length/CRC prefix), and
// back; for passing records between processes (`ldm-encode --serve`). decode_record checks the
// payload against `kind` and throws DataError prefixed with `context`.
std::string encode_record(const Record& r);
Record decode_record(const void* body, std::size_t size, PayloadKind kind, const std::string& context);

// Writes a shard to "<path>.tmp" and, on finish(), appends index and footer, fsyncs and renames
// it to `path`. A writer destroyed without finish() removes its temporary file.
class ShardWriter {
 public:
  ShardWriter(std::string path, ShardHeader header);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;
  void append(const Record& r);  // throws DataError / Error (full disk names the file)
  void finish();
  std::size_t count() const { return offsets_.size(); }

 private:
  std::string path_, tmp_;
  PayloadKind kind_;  // every appended payload is checked against it
  int fd_ = -1;
  std::uint64_t pos_ = 0;
  std::vector<std::uint64_t> offsets_;
  std::vector<RecordShape> shapes_;
  bool finished_ = false;
};

// Opens a shard, validates magic, version, header checksum, footer and index. Thread-safe reads
// (pread). Errors are DataError naming the file, and the record number where one is at fault.
class ShardReader {
 public:
  explicit ShardReader(std::string path);
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;
  const std::string& path() const { return path_; }
  const ShardHeader& header() const { return header_; }
  std::size_t size() const { return offsets_.size(); }
  Record read(std::size_t index) const;  // verifies the record's checksum
  // The payload height/width of every record, from the index (all 0 x 0 for version-1 shards).
  const std::vector<RecordShape>& shapes() const { return shapes_; }

 private:
  std::string path_;
  int fd_ = -1;
  ShardHeader header_;
  std::vector<std::uint64_t> offsets_;
  std::vector<RecordShape> shapes_;
  std::uint64_t records_end_ = 0;  // where the index starts: the last record ends exactly here
};

// The shard files of a directory ("*.ldms"), sorted by name.
std::vector<std::string> list_shards(const std::string& dir);

std::uint32_t crc32(const void* data, std::size_t size);

}  // namespace ldm::data
