#include "datasets/format/shard.h"

#include "datasets/format/byte_order.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

namespace ldm::data {
namespace {

constexpr char kMagic[] = "LDMSHRD1";
constexpr char kEndMagic[] = "LDMSHEND";
using namespace shard_layout;

// Explicit little-endian encoding, so shards read the same on any host.
using le::get_u32;
using le::get_u64;
using le::put_u32;
using le::put_u64;

std::string record_context(const std::string& path, std::size_t index) {
  return path + ": record " + std::to_string(index) + ": ";
}

PayloadKind payload_kind_from_string(const std::string& s, const std::string& path) {
  for (PayloadKind k : {PayloadKind::ImageU8, PayloadKind::LatentF32})
    if (s == to_string(k)) return k;
  throw DataError(path + ": unknown payload kind '" + s + "' in header");
}

// "" when `shape` describes `payload_bytes` of `kind`, else what is wrong.
std::string shape_problem(PayloadKind kind, const std::vector<std::int64_t>& shape, std::size_t payload_bytes) {
  if (shape.size() != 3) return "payload shape must have 3 dimensions, has " + std::to_string(shape.size());
  if (kind == PayloadKind::ImageU8 && shape[2] != 3)
    return "image payload must be {H, W, 3}, last dimension is " + std::to_string(shape[2]);
  std::uint64_t elements = 1;
  bool overflow = false;  // three dimensions below 2^31 can pass 2^64 (2^21 x 2^21 x 2^22 wraps to 0)
  for (std::int64_t d : shape) {
    if (d < 0 || d > std::numeric_limits<std::int32_t>::max())
      return "payload dimension " + std::to_string(d) + " is out of range";
    overflow = __builtin_mul_overflow(elements, static_cast<std::uint64_t>(d), &elements) || overflow;
  }
  std::uint64_t expected = 0;
  overflow =
      __builtin_mul_overflow(elements, std::uint64_t{kind == PayloadKind::ImageU8 ? 1u : 4u}, &expected) || overflow;
  if (overflow)
    return "payload shape {" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", " +
           std::to_string(shape[2]) + "} needs more than 2^64 bytes";
  if (expected != payload_bytes)
    return "payload has " + std::to_string(payload_bytes) + " bytes, shape needs " + std::to_string(expected);
  return "";
}

// Reads fields of one record body; running past its end is a malformed record.
class BodyCursor {
 public:
  BodyCursor(const unsigned char* data, std::size_t size, const std::string& context)
      : p_(data), end_(data + size), context_(context) {}
  const unsigned char* take(std::size_t n, const char* field) {
    if (static_cast<std::size_t>(end_ - p_) < n)
      throw DataError(context_ + "malformed body: " + field + " runs past the record's end");
    const unsigned char* at = p_;
    p_ += n;
    return at;
  }
  std::uint32_t u32(const char* field) { return get_u32(take(4, field)); }
  std::int32_t i32(const char* field) { return static_cast<std::int32_t>(u32(field)); }
  std::uint64_t u64(const char* field) { return get_u64(take(8, field)); }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
  const std::string& context_;
};

static_assert(sizeof(float) == 4, "the shard format stores IEEE-754 binary32 floats");

void put_f32s(std::string& out, const std::vector<float>& values) {
  for (float f : values) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    put_u32(out, bits);
  }
}

std::vector<float> get_f32s(const unsigned char* p, std::size_t n) {
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t bits = get_u32(p + 4 * i);
    std::memcpy(&out[i], &bits, 4);
  }
  return out;
}

// "" when the caption features are consistent, else what is wrong.
std::string text_problem(const Record& r) {
  if (r.text_len < 0 || r.text_dim < 0) return "negative caption feature size";
  if (r.text_len > 0 && r.text_dim == 0) return "caption features with 0 dimensions";
  const auto tokens = static_cast<std::uint64_t>(r.text_len) * static_cast<std::uint64_t>(r.text_dim);
  if (r.text_tokens.size() != tokens)
    return "caption features hold " + std::to_string(r.text_tokens.size()) + " values, " + std::to_string(r.text_len) +
           " tokens x " + std::to_string(r.text_dim) + " need " + std::to_string(tokens);
  if (r.text_pooled.size() != static_cast<std::size_t>(r.text_dim))
    return "pooled caption feature has " + std::to_string(r.text_pooled.size()) + " values, text_dim is " +
           std::to_string(r.text_dim);
  return "";
}

std::string encode_body(const Record& r) {
  std::string b;
  b.reserve(64 + r.caption.size() + r.payload.size());
  put_u64(b, r.id);
  const ControlMeta& c = r.control;
  for (std::int32_t v : {r.label, c.orig_h, c.orig_w, c.crop_top, c.crop_left, c.crop_h, c.crop_w})
    put_u32(b, static_cast<std::uint32_t>(v));
  b += static_cast<char>(c.flip ? 1 : 0);
  put_u32(b, static_cast<std::uint32_t>(r.caption.size()));
  b += r.caption;
  b += static_cast<char>(r.view & 0xff);
  b += static_cast<char>(r.view >> 8);
  put_u32(b, static_cast<std::uint32_t>(r.text_len));
  put_u32(b, static_cast<std::uint32_t>(r.text_dim));
  put_f32s(b, r.text_tokens);
  put_f32s(b, r.text_pooled);
  b += static_cast<char>(r.shape.size());
  for (std::int64_t d : r.shape) put_u64(b, static_cast<std::uint64_t>(d));
  b.append(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
  return b;
}

Record decode_body(const unsigned char* data, std::size_t size, PayloadKind kind, std::uint32_t version,
                   const std::string& context) {
  BodyCursor in(data, size, context);
  Record r;
  r.id = in.u64("id");
  r.label = in.i32("label");
  ControlMeta& c = r.control;
  for (std::int32_t* v : {&c.orig_h, &c.orig_w, &c.crop_top, &c.crop_left, &c.crop_h, &c.crop_w})
    *v = in.i32("control metadata");
  c.flip = *in.take(1, "flip") != 0;
  const std::uint32_t caption_len = in.u32("caption length");
  const unsigned char* caption = in.take(caption_len, "caption");
  r.caption.assign(reinterpret_cast<const char*>(caption), caption_len);
  if (version >= 2) {
    const unsigned char* view = in.take(2, "view");
    r.view = static_cast<std::uint16_t>(view[0] | (view[1] << 8));
    const std::uint32_t text_len = in.u32("text_len"), text_dim = in.u32("text_dim");
    if (text_len > (1u << 20) || text_dim > (1u << 20))
      throw DataError(context + "malformed body: caption features of " + std::to_string(text_len) + " x " +
                      std::to_string(text_dim) + " are out of range");
    r.text_len = static_cast<std::int32_t>(text_len);
    r.text_dim = static_cast<std::int32_t>(text_dim);
    const std::size_t n = static_cast<std::size_t>(text_len) * text_dim;
    r.text_tokens = get_f32s(in.take(4 * n, "caption features"), n);
    r.text_pooled = get_f32s(in.take(4 * std::size_t(text_dim), "pooled caption feature"), text_dim);
  }
  const std::size_t ndim = *in.take(1, "ndim");
  for (std::size_t i = 0; i < ndim; ++i) r.shape.push_back(static_cast<std::int64_t>(in.u64("dims")));
  const std::size_t payload_bytes = in.remaining();
  if (std::string problem = shape_problem(kind, r.shape, payload_bytes); !problem.empty())
    throw DataError(context + "malformed body: " + problem);
  const unsigned char* payload = in.take(payload_bytes, "payload");
  r.payload.assign(payload, payload + payload_bytes);
  return r;
}

// Writes to a writer's descriptor; on failure closes it, so a writer that failed once can never
// append a record or footer after a torn write (its destructor then removes the file).
void write_or_disable(int& fd, const std::string& bytes, const std::string& path) {
  try {
    write_all(fd, bytes.data(), bytes.size(), path);
  } catch (...) {
    ::close(fd);
    fd = -1;
    throw;
  }
}

void pread_exact(int fd, void* buf, std::size_t size, std::uint64_t offset, const std::string& path,
                 const std::string& what) {
  auto p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw DataError(path + ": cannot read " + what + ": " + std::strerror(errno));
    if (n == 0) throw DataError(path + ": truncated: " + what + " runs past the end of the file");
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

// Reads and checks magic, format version and header; returns the offset just past the header.
std::uint64_t read_header(int fd, const std::string& path, std::uint64_t file_size, ShardHeader& header) {
  const std::string size_text = std::to_string(file_size) + "-byte file";
  // Magic first, so a file that is not a shard at all says so.
  unsigned char pre[kPreambleSize];
  if (file_size < kMagicSize) throw DataError(path + ": truncated: " + size_text + " is too short to be a shard");
  pread_exact(fd, pre, kMagicSize, 0, path, "magic");
  if (std::memcmp(pre, kMagic, kMagicSize) != 0)
    throw DataError(path + ": not a shard file (bad magic; expected \"LDMSHRD1\")");
  if (file_size < kPreambleSize + 4 + kFooterSize)
    throw DataError(path + ": truncated: " + size_text + " is smaller than an empty shard");
  pread_exact(fd, pre + kMagicSize, kPreambleSize - kMagicSize, kMagicSize, path, "preamble");
  header.format_version = get_u32(pre + kMagicSize);
  if (header.format_version < kOldestReadableShardVersion || header.format_version > kShardFormatVersion)
    throw DataError(path + ": shard format version " + std::to_string(header.format_version) +
                    ", but this build reads versions " + std::to_string(kOldestReadableShardVersion) + " to " +
                    std::to_string(kShardFormatVersion));

  const std::uint64_t header_len = get_u32(pre + kMagicSize + 4);
  const std::uint64_t header_end = kPreambleSize + header_len + 4;
  if (header_end + kFooterSize > file_size)
    throw DataError(path + ": truncated: header of " + std::to_string(header_len) + " bytes does not fit in the " +
                    size_text);
  std::vector<unsigned char> bytes(header_len + 4);  // JSON, then its u32 crc
  pread_exact(fd, bytes.data(), bytes.size(), kPreambleSize, path, "header");
  const std::uint32_t stored = get_u32(bytes.data() + header_len);
  const std::uint32_t computed = crc32(bytes.data(), header_len);
  if (stored != computed)
    throw DataError(path + ": header checksum mismatch (stored " + hex32(stored) + ", computed " + hex32(computed) +
                    ")");
  try {
    const auto j = nlohmann::json::parse(bytes.begin(), bytes.begin() + header_len);
    header.kind = payload_kind_from_string(j.at("kind").get<std::string>(), path);
    header.encoder = j.at("encoder").get<std::string>();
    header.dataset = j.at("dataset").get<std::string>();
    header.text_encoder = j.value("text_encoder", std::string());
    header.views = j.value("views", 1);
    if (header.views < 1) throw DataError(path + ": malformed header: views = " + std::to_string(header.views));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": malformed header: " + e.what());
  }
  return header_end;
}

// Reads and checks footer and index; returns each record's offset and sets `records_end` to
// where the records stop (the index's offset).
std::vector<std::uint64_t> read_index(int fd, const std::string& path, std::uint64_t file_size,
                                      std::uint64_t header_end, std::uint32_t version, std::uint64_t& records_end,
                                      std::vector<RecordShape>& shapes) {
  const std::uint64_t entry = version >= 2 ? 16 : 8;  // offset, then (v2) height and width
  unsigned char foot[kFooterSize];
  pread_exact(fd, foot, kFooterSize, file_size - kFooterSize, path, "footer");
  if (std::memcmp(foot + kFooterSize - kMagicSize, kEndMagic, kMagicSize) != 0)
    throw DataError(path +
                    ": bad footer: no end marker (file truncated, or its writer did not "
                    "finish)");
  const std::uint64_t index_offset = get_u64(foot);
  const std::uint64_t count = get_u64(foot + 8);
  const std::uint32_t stored = get_u32(foot + 16);
  const std::uint64_t index_end = file_size - kFooterSize;
  if (index_offset < header_end || index_offset > index_end || count > (index_end - index_offset) / entry)
    throw DataError(path + ": index points outside the file (offset " + std::to_string(index_offset) + ", " +
                    std::to_string(count) + " entries, " + std::to_string(file_size) + "-byte file)");
  if (index_offset + count * entry != index_end)
    throw DataError(path + ": bad footer: index of " + std::to_string(count) + " entries at offset " +
                    std::to_string(index_offset) + " does not end where the footer starts");
  std::vector<unsigned char> index(count * entry);
  pread_exact(fd, index.data(), index.size(), index_offset, path, "index");
  const std::uint32_t computed = crc32(index.data(), index.size());
  if (stored != computed)
    throw DataError(path + ": index checksum mismatch (stored " + hex32(stored) + ", computed " + hex32(computed) +
                    ")");

  std::vector<std::uint64_t> offsets(count);
  std::uint64_t min_offset = header_end;  // records follow the header, in order
  for (std::size_t i = 0; i < count; ++i) {
    offsets[i] = get_u64(index.data() + 8 * i);
    if (offsets[i] < min_offset || offsets[i] + kRecordPrefixSize > index_offset)
      throw DataError(record_context(path, i) + "index points outside the records section " + "(offset " +
                      std::to_string(offsets[i]) + ")");
    min_offset = offsets[i] + kRecordPrefixSize;
  }
  shapes.assign(count, RecordShape{});
  if (version >= 2)
    for (std::size_t i = 0; i < count; ++i) {
      shapes[i].height = get_u32(index.data() + 8 * count + 8 * i);
      shapes[i].width = get_u32(index.data() + 8 * count + 8 * i + 4);
    }
  records_end = index_offset;
  return offsets;
}

}  // namespace

const char* to_string(PayloadKind k) {
  switch (k) {
    case PayloadKind::ImageU8:
      return "image_u8";
    case PayloadKind::LatentF32:
      return "latent_f32";
  }
  return "unknown";
}

std::uint32_t crc32(const void* data, std::size_t size) {
  auto p = static_cast<const Bytef*>(data);
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (size > 0) {  // zlib takes uInt lengths: feed large buffers in chunks
    const uInt n = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
    crc = ::crc32(crc, p, n);
    p += n;
    size -= n;
  }
  return static_cast<std::uint32_t>(crc);
}

std::string encode_record(const Record& r) {
  if (std::string problem = text_problem(r); !problem.empty())
    throw DataError("record " + std::to_string(r.id) + ": " + problem);
  return encode_body(r);
}

Record decode_record(const void* body, std::size_t size, PayloadKind kind, const std::string& context) {
  return decode_body(static_cast<const unsigned char*>(body), size, kind, kShardFormatVersion, context);
}

RecordShape payload_shape(PayloadKind kind, const std::vector<std::int64_t>& shape) {
  if (shape.size() != 3) return {};
  const std::size_t h = kind == PayloadKind::ImageU8 ? 0 : 1;
  return {static_cast<std::uint32_t>(shape[h]), static_cast<std::uint32_t>(shape[h + 1])};
}

// ---- writer ----------------------------------------------------------------------------

ShardWriter::ShardWriter(std::string path, ShardHeader header)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), kind_(header.kind) {
  if (header.views < 1) throw Error(path_ + ": views must be >= 1");
  const nlohmann::json fields = {{"kind", to_string(header.kind)},
                                 {"encoder", header.encoder},
                                 {"dataset", header.dataset},
                                 {"text_encoder", header.text_encoder},
                                 {"views", header.views}};
  const std::string json = fields.dump();
  std::string preamble(kMagic, kMagicSize);
  put_u32(preamble, kShardFormatVersion);
  put_u32(preamble, static_cast<std::uint32_t>(json.size()));
  preamble += json;
  put_u32(preamble, crc32(json.data(), json.size()));

  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_errno("cannot create shard", tmp_);
  try {
    write_or_disable(fd_, preamble, tmp_);
  } catch (...) {
    ::unlink(tmp_.c_str());  // no destructor runs after a throwing constructor
    throw;
  }
  pos_ = preamble.size();
}

ShardWriter::~ShardWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(tmp_.c_str());
}

void ShardWriter::append(const Record& r) {
  if (fd_ < 0) throw Error(path_ + ": cannot append: the writer has finished or failed");
  const std::string context = record_context(path_, offsets_.size());
  if (std::string problem = shape_problem(kind_, r.shape, r.payload.size()); !problem.empty())
    throw DataError(context + problem);
  if (std::string problem = text_problem(r); !problem.empty()) throw DataError(context + problem);

  const std::string body = encode_body(r);
  if (body.size() > std::numeric_limits<std::uint32_t>::max())
    throw DataError(context + "record body of " + std::to_string(body.size()) +
                    " bytes exceeds the format's 4 GiB limit");
  std::string framed;
  framed.reserve(kRecordPrefixSize + body.size());
  put_u32(framed, static_cast<std::uint32_t>(body.size()));
  put_u32(framed, crc32(body.data(), body.size()));
  framed += body;
  write_or_disable(fd_, framed, tmp_);
  offsets_.push_back(pos_);
  shapes_.push_back(payload_shape(kind_, r.shape));
  pos_ += framed.size();
}

void ShardWriter::finish() {
  if (finished_) return;
  if (fd_ < 0) throw Error(path_ + ": cannot finish: an earlier write failed");
  std::string index;
  for (std::uint64_t off : offsets_) put_u64(index, off);
  for (const RecordShape& shape : shapes_) {
    put_u32(index, shape.height);
    put_u32(index, shape.width);
  }
  std::string tail = index;
  put_u64(tail, pos_);
  put_u64(tail, offsets_.size());
  put_u32(tail, crc32(index.data(), index.size()));
  tail.append(kEndMagic, kMagicSize);
  write_or_disable(fd_, tail, tmp_);
  const int fd = fd_;
  fd_ = -1;  // from here on a failure leaves the writer disabled, and its destructor cleans up
  if (::fsync(fd) != 0) {
    ::close(fd);
    throw_errno("fsync failed", tmp_);
  }
  if (::close(fd) != 0) throw_errno("close failed", tmp_);
  rename_durable(tmp_, path_);
  finished_ = true;
}

// ---- reader ----------------------------------------------------------------------------

ShardReader::ShardReader(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw DataError("cannot open shard " + path_ + ": " + std::strerror(errno));
  try {
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw DataError(path_ + ": cannot stat: " + std::strerror(errno));
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t header_end = read_header(fd_, path_, file_size, header_);
    offsets_ = read_index(fd_, path_, file_size, header_end, header_.format_version, records_end_, shapes_);
  } catch (...) {
    ::close(fd_);  // no destructor runs after a throwing constructor
    throw;
  }
}

ShardReader::~ShardReader() {
  if (fd_ >= 0) ::close(fd_);
}

Record ShardReader::read(std::size_t index) const {
  if (index >= offsets_.size())
    throw DataError(path_ + ": record " + std::to_string(index) + " does not exist (shard has " +
                    std::to_string(offsets_.size()) + " records)");
  const std::string context = record_context(path_, index);
  const std::uint64_t begin = offsets_[index];
  const std::uint64_t end = index + 1 < offsets_.size() ? offsets_[index + 1] : records_end_;
  std::vector<unsigned char> buf(end - begin);  // prefix + body, one pread
  pread_exact(fd_, buf.data(), buf.size(), begin, path_, "record " + std::to_string(index));
  const std::uint64_t body_len = get_u32(buf.data());
  if (body_len != buf.size() - kRecordPrefixSize)
    throw DataError(context + "length " + std::to_string(body_len) + " disagrees with the index (" +
                    std::to_string(buf.size() - kRecordPrefixSize) + " bytes until the next record)");
  const unsigned char* body = buf.data() + kRecordPrefixSize;
  const std::uint32_t stored = get_u32(buf.data() + 4);
  const std::uint32_t computed = crc32(body, body_len);
  if (stored != computed)
    throw DataError(context + "checksum mismatch (stored " + hex32(stored) + ", computed " + hex32(computed) + ")");
  return decode_body(body, body_len, header_.kind, header_.format_version, context);
}

// ---- directory listing -----------------------------------------------------------------

std::vector<std::string> list_shards(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw DataError("cannot list shard directory " + dir + ": " + std::strerror(errno));
  std::vector<std::string> names;
  const std::string suffix = ".ldms";
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  const std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  for (std::string& name : names) name = prefix + name;
  return names;
}

}  // namespace ldm::data
