#include "datasets/tensor/npy.h"

#include <zip.h>

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

// The data of .npy files is read and written as little-endian bytes in memory order.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy.cpp assumes a little-endian host");

namespace ldm::data {

namespace {

constexpr char kNpyMagic[] = "\x93NUMPY";  // 6 bytes, then major and minor version bytes
constexpr std::size_t kNpyMagicSize = 6;

struct NpyDtype {
  const char* descr;
  at::ScalarType type;
};
// Writing uses the first descr of a type; reading also accepts the other spellings of the
// one-byte types ('|', '<', '>' and '=' mean the same for them).
constexpr NpyDtype kNpyDtypes[] = {
    {"<f4", at::kFloat}, {"<f8", at::kDouble}, {"<f2", at::kHalf}, {"<i8", at::kLong}, {"<i4", at::kInt},
    {"<i2", at::kShort}, {"|i1", at::kChar},   {"|u1", at::kByte}, {"|b1", at::kBool},
};

std::string npy_descr_of(at::ScalarType type, const std::string& what) {
  for (const auto& d : kNpyDtypes)
    if (d.type == type) return d.descr;
  throw Error(what + ": dtype " + std::string(c10::toString(type)) +
              " has no .npy equivalent here (supported: float32/64/16, int64/32/16/8, uint8, bool)");
}

at::ScalarType npy_type_of(std::string descr, const std::string& source) {
  if (descr.size() == 3 && (descr[1] == 'b' || descr[1] == 'u' || descr[1] == 'i') && descr[2] == '1')
    descr[0] = '|';                                          // one-byte types have no byte order
  if (descr.size() == 3 && descr[0] == '=') descr[0] = '<';  // native order of a little-endian host
  for (const auto& d : kNpyDtypes)
    if (descr == d.descr) return d.type;
  if (!descr.empty() && descr[0] == '>')
    throw DataError(source + ": big-endian dtype '" + descr +
                    "' is not supported (save with '<' byte order, "
                    "e.g. a.astype(a.dtype.newbyteorder('<')))");
  throw DataError(source + ": dtype '" + descr + "' is not supported (supported: <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1)");
}

// The header's Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& text, const std::string& source) : s_(text), source_(source) {}

  NpyHeader parse() {
    NpyHeader h;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = string_literal();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes (a descr list) are not supported");
        h.descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        has_order = true;
      } else if (key == "shape") {
        h.shape = tuple_of_ints();
        has_shape = true;
      } else {
        fail("unexpected header key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') ++i_;
      else if (peek() != '}') fail("expected ',' or '}'");
    }
    if (!has_descr || !has_order || !has_shape)
      fail("the header must have the keys 'descr', 'fortran_order' and 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(source_ + ": bad .npy header (" + what + " at character " + std::to_string(i_) + "): " + s_);
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string string_literal() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a string");
    const std::size_t end = s_.find(quote, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return out;
  }
  bool boolean() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::vector<int64_t> tuple_of_ints() {
    expect('(');
    std::vector<int64_t> out;
    while (true) {
      skip_space();
      if (peek() == ')') {
        ++i_;
        return out;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a non-negative integer in the shape");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int digit = peek() - '0';
        if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) fail("shape entry too large");
        v = v * 10 + digit;
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long literal
      out.push_back(v);
      skip_space();
      if (peek() == ',') ++i_;
      else if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
  }

  const std::string& s_;
  const std::string& source_;
  std::size_t i_ = 0;
};

std::string npy_shape_literal(at::IntArrayRef sizes) {
  if (sizes.empty()) return "()";
  std::string out = "(";
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(sizes[i]);
  }
  return out + (sizes.size() == 1 ? ",)" : ")");
}

// libzip's message for an error code (zip_open reports codes, not a zip_error_t).
std::string zip_code_message(int code) {
  zip_error_t e;
  zip_error_init_with_code(&e, code);
  std::string msg = zip_error_strerror(&e);
  zip_error_fini(&e);
  return msg;
}

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};
using ZipArchive = std::unique_ptr<zip_t, ZipDiscard>;

// A parsed .npy file: its header and where its data starts.
struct NpyLayout {
  NpyHeader header;
  std::size_t data_pos = 0;
};

// Checks the magic and version and parses the header (any descr; the callers check it).
NpyLayout npy_parse(const std::string& bytes, const std::string& source) {
  if (bytes.size() < kNpyMagicSize + 2 || std::memcmp(bytes.data(), kNpyMagic, kNpyMagicSize) != 0)
    throw DataError(source + ": not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(bytes[6]), minor = static_cast<unsigned char>(bytes[7]);
  std::size_t pos = kNpyMagicSize + 2, header_len = 0;
  auto byte = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i])); };
  if (major == 1) {
    if (bytes.size() < pos + 2) throw DataError(source + ": truncated .npy header");
    header_len = byte(pos) | byte(pos + 1) << 8;
    pos += 2;
  } else if (major == 2 || major == 3) {  // 3.0: the header is UTF-8 (same syntax for our keys)
    if (bytes.size() < pos + 4) throw DataError(source + ": truncated .npy header");
    header_len = byte(pos) | byte(pos + 1) << 8 | byte(pos + 2) << 16 | byte(pos + 3) << 24;
    pos += 4;
  } else {
    throw DataError(source + ": .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    " is not supported (1.0, 2.0 and 3.0 are)");
  }
  if (bytes.size() - pos < header_len)
    throw DataError(source + ": truncated .npy header (" + std::to_string(header_len) + " bytes announced, " +
                    std::to_string(bytes.size() - pos) + " present)");
  const std::string header_text = bytes.substr(pos, header_len);
  NpyLayout out;
  out.header = NpyHeaderParser(header_text, source).parse();
  out.data_pos = pos + header_len;
  return out;
}

// Checks that the data after the header is exactly shape x item bytes (with overflow checks: a
// corrupt header must not make us allocate garbage) and returns the element count.
std::size_t npy_check_data_size(const std::string& bytes, const NpyLayout& layout, std::size_t item,
                                const std::string& source) {
  const NpyHeader& h = layout.header;
  std::size_t count = 1;
  for (int64_t d : h.shape) {
    if (d != 0 && count > std::numeric_limits<std::size_t>::max() / item / static_cast<std::size_t>(d))
      throw DataError(source + ": shape " + npy_shape_literal(h.shape) + " is too large");
    count *= static_cast<std::size_t>(d);
  }
  const std::size_t expected = count * item, present = bytes.size() - layout.data_pos;
  if (present != expected)
    throw DataError(source + ": " + (present < expected ? "truncated data: " : "trailing bytes: ") + "shape " +
                    npy_shape_literal(h.shape) + " of " + h.descr + " needs " + std::to_string(expected) +
                    " bytes, the file has " + std::to_string(present));
  return count;
}

ZipArchive open_npz(const std::string& path) {
  int code = 0;
  ZipArchive za(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
  if (!za) {
    if (code == ZIP_ER_NOENT) throw DataError(path + ": cannot open the .npz file (no such file)");
    throw DataError(path + ": not a readable .npz (zip) archive: " + zip_code_message(code));
  }
  return za;
}

zip_stat_t stat_member(zip_t* za, zip_uint64_t index, const std::string& path) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(za, index, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
    throw DataError(path + ": cannot read the directory entry of member " + std::to_string(index) + ": " +
                    zip_strerror(za));
  return st;
}

// The key read_npz gives a member: its name without a ".npy" suffix.
std::string npz_key(const std::string& name) {
  std::string key = name;
  if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
  return key;
}

// Reads (inflates) one member completely; `member` names it in errors.
std::string read_member_bytes(zip_t* za, zip_uint64_t index, const zip_stat_t& st, const std::string& member) {
  std::unique_ptr<zip_file_t, ZipFileClose> f(zip_fopen_index(za, index, 0));
  if (!f) throw DataError(member + ": cannot open: " + zip_strerror(za));
  // Grown as the bytes inflate: the directory's size is only a claim until they do.
  std::string bytes;
  bytes.reserve(static_cast<std::size_t>(std::min<zip_uint64_t>(st.size, zip_uint64_t{1} << 24)));
  char chunk[1 << 16];
  while (bytes.size() < st.size) {
    const zip_int64_t n = zip_fread(f.get(), chunk, std::min<zip_uint64_t>(sizeof chunk, st.size - bytes.size()));
    if (n < 0) throw DataError(member + ": cannot read: " + zip_file_strerror(f.get()));
    if (n == 0) break;
    bytes.append(chunk, static_cast<std::size_t>(n));
  }
  const zip_uint64_t done = bytes.size();
  if (done != st.size)
    throw DataError(member + ": truncated (" + std::to_string(done) + " of " + std::to_string(st.size) + " bytes)");
  // Reading to the end makes libzip compare the CRC-32 of what it inflated with the stored one.
  char extra;
  const zip_int64_t tail = zip_fread(f.get(), &extra, 1);
  if (tail < 0) throw DataError(member + ": cannot read: " + zip_file_strerror(f.get()));
  if (tail > 0) throw DataError(member + ": holds more bytes than its directory entry says");
  return bytes;
}

// The index of the member with key `key` ("<key>.npy", or a member named exactly `key` that has
// no ".npy" suffix, as read_npz keys them), found through the central directory alone.
zip_uint64_t locate_member(zip_t* za, const std::string& path, const std::string& key) {
  const zip_int64_t with_suffix = zip_name_locate(za, (key + ".npy").c_str(), 0);
  const bool bare_is_key = !key.empty() && npz_key(key) == key;  // "x.npy" is the key "x", not "x.npy"
  const zip_int64_t bare = bare_is_key ? zip_name_locate(za, key.c_str(), 0) : -1;
  if (with_suffix >= 0 && bare >= 0)
    throw DataError(path + ": member '" + key + "': a second member with the key '" + key + "'");
  if (with_suffix >= 0) return static_cast<zip_uint64_t>(with_suffix);
  if (bare >= 0) return static_cast<zip_uint64_t>(bare);
  std::string present;
  const zip_int64_t entries = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < entries && i < 32; ++i) {
    const char* name = zip_get_name(za, static_cast<zip_uint64_t>(i), 0);
    if (!name) continue;
    present += (present.empty() ? "" : ", ") + npz_key(name);
  }
  if (entries > 32) present += ", ...";
  throw DataError(path + ": no member '" + key + "' (members: " + (present.empty() ? "none" : present) + ")");
}

}  // namespace

at::Tensor npy_decode(const std::string& bytes, const std::string& source) {
  const NpyLayout layout = npy_parse(bytes, source);
  const NpyHeader& h = layout.header;
  if (h.descr.size() >= 2 && (h.descr[1] == 'U' || h.descr[1] == 'S'))
    throw DataError(source + ": dtype '" + h.descr +
                    "' is not supported as a tensor (it is a string array: "
                    "read it with npy_decode_strings or read_npz_strings)");
  const at::ScalarType type = npy_type_of(h.descr, source);
  if (h.fortran_order)
    throw DataError(source +
                    ": fortran_order is True (column-major data) and only C order is supported; "
                    "save np.ascontiguousarray(a) instead");
  const std::size_t item = c10::elementSize(type);
  const std::size_t expected = npy_check_data_size(bytes, layout, item, source) * item;
  at::Tensor t = torch::empty(h.shape, torch::TensorOptions().dtype(type));
  if (expected) std::memcpy(t.data_ptr(), bytes.data() + layout.data_pos, expected);
  return t;
}

std::vector<std::string> npy_decode_strings(const std::string& bytes, const std::string& source) {
  const NpyLayout layout = npy_parse(bytes, source);
  const NpyHeader& h = layout.header;
  const std::string& d = h.descr;
  const bool unicode = d.size() >= 3 && d[1] == 'U', raw = d.size() >= 3 && d[1] == 'S';
  const bool digits = d.size() >= 3 && d.find_first_not_of("0123456789", 2) == std::string::npos;
  if (!(unicode || raw) || !digits || std::string("<>|=").find(d[0]) == std::string::npos)
    throw DataError(source + ": dtype '" + d + "' is not a string array (expected '<U<n>' or '|S<n>')");
  if (unicode && d[0] == '>')
    throw DataError(source + ": big-endian dtype '" + d + "' is not supported (save with '<' byte order)");
  if (d.size() > 12) throw DataError(source + ": dtype '" + d + "': element size too large");
  const std::size_t chars = static_cast<std::size_t>(std::stoull(d.substr(2)));
  if (h.shape.size() != 1)
    throw DataError(source + ": string arrays must be 1-D, this one has shape " + npy_shape_literal(h.shape));
  // (For one dimension C and Fortran order are the same layout, so fortran_order does not matter.)
  const std::size_t unit = unicode ? 4 : 1, item = chars * unit;
  const std::size_t count =
      item ? npy_check_data_size(bytes, layout, item, source) : static_cast<std::size_t>(h.shape[0]);
  if (!item && bytes.size() != layout.data_pos)
    throw DataError(source + ": trailing bytes after the header of a zero-width string array");
  // A zero-width array has no data to bound its length: numpy writes one only for an empty array.
  if (!item && count > (std::size_t{1} << 20))
    throw DataError(source + ": a zero-width string array declaring " + std::to_string(count) + " elements");
  std::vector<std::string> out;
  out.reserve(count);
  const unsigned char* data = reinterpret_cast<const unsigned char*>(bytes.data()) + layout.data_pos;
  for (std::size_t i = 0; i < count; ++i) {
    const unsigned char* e = data + i * item;
    std::size_t n = chars;  // drop the trailing NULs (the padding), as numpy does
    if (unicode) {
      auto code = [&](std::size_t k) {
        const unsigned char* p = e + 4 * k;
        return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
               static_cast<uint32_t>(p[3]) << 24;
      };
      while (n > 0 && code(n - 1) == 0) --n;
      std::string s;
      s.reserve(n);
      for (std::size_t k = 0; k < n; ++k) {
        const uint32_t c = code(k);
        if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
          char hex[16];
          std::snprintf(hex, sizeof hex, "0x%X", c);
          throw DataError(source + ": element " + std::to_string(i) + " holds " + hex +
                          ", which is not a Unicode scalar value (not valid UTF-32)");
        }
        ldm::append_utf8(s, static_cast<char32_t>(c));
      }
      out.push_back(std::move(s));
    } else {
      while (n > 0 && e[n - 1] == 0) --n;
      out.emplace_back(reinterpret_cast<const char*>(e), n);
    }
  }
  return out;
}

std::string npy_encode(const at::Tensor& tensor) {
  if (!tensor.defined()) throw Error("npy_encode: undefined tensor");
  const at::Tensor t = tensor.to(torch::kCPU).contiguous();
  const std::string descr = npy_descr_of(t.scalar_type(), "npy_encode");
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + npy_shape_literal(t.sizes()) + ", }";
  // Pad with spaces and end with '\n' so the data starts at a multiple of 64 bytes.
  std::size_t prefix = kNpyMagicSize + 2 + 2;
  bool v2 = false;
  if (((header.size() + 1 + prefix + 63) / 64) * 64 - prefix > 65535) {  // only absurd ranks need 2.0
    v2 = true;
    prefix += 2;
  }
  const std::size_t total = ((header.size() + 1 + prefix + 63) / 64) * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header.push_back('\n');
  std::string out(kNpyMagic, kNpyMagicSize);
  out.push_back(static_cast<char>(v2 ? 2 : 1));
  out.push_back(0);
  const std::size_t n = header.size();
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  if (v2) {
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    out.push_back(static_cast<char>((n >> 24) & 0xff));
  }
  out += header;
  const std::size_t data_bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
  if (data_bytes) out.append(static_cast<const char*>(t.data_ptr()), data_bytes);
  return out;
}

at::Tensor read_npy(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  return npy_decode(bytes, path);
}

void write_npy(const std::string& path, const at::Tensor& t) {
  std::string bytes;
  try {
    bytes = npy_encode(t);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

NpzMap read_npz(const std::string& path) {
  const ZipArchive za = open_npz(path);
  NpzMap out;
  const zip_int64_t entries = zip_get_num_entries(za.get(), 0);
  for (zip_int64_t i = 0; i < entries; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    const zip_stat_t st = stat_member(za.get(), index, path);
    const std::string name = st.name;
    if (!name.empty() && name.back() == '/') continue;  // a directory entry
    const std::string member = path + ": member '" + name + "'";
    const std::string bytes = read_member_bytes(za.get(), index, st, member);
    const std::string key = npz_key(name);
    if (out.count(key)) throw DataError(member + ": a second member with the key '" + key + "'");
    out[key] = npy_decode(bytes, member);
  }
  return out;
}

NpzMap read_npz_members(const std::string& path, const std::vector<std::string>& names) {
  const ZipArchive za = open_npz(path);
  NpzMap out;
  for (const std::string& key : names) {
    if (out.count(key)) continue;
    const zip_uint64_t index = locate_member(za.get(), path, key);
    const zip_stat_t st = stat_member(za.get(), index, path);
    const std::string member = path + ": member '" + st.name + "'";
    out[key] = npy_decode(read_member_bytes(za.get(), index, st, member), member);
  }
  return out;
}

std::vector<std::string> npz_keys(const std::string& path) {
  const ZipArchive za = open_npz(path);
  std::vector<std::string> keys;
  const zip_int64_t entries = zip_get_num_entries(za.get(), 0);
  for (zip_int64_t i = 0; i < entries; ++i) {
    const char* name = zip_get_name(za.get(), static_cast<zip_uint64_t>(i), 0);
    if (name && *name && name[std::strlen(name) - 1] != '/') keys.push_back(npz_key(name));
  }
  return keys;
}

std::vector<std::string> read_npz_strings(const std::string& path, const std::string& key) {
  const ZipArchive za = open_npz(path);
  const zip_uint64_t index = locate_member(za.get(), path, key);
  const zip_stat_t st = stat_member(za.get(), index, path);
  const std::string member = path + ": member '" + st.name + "'";
  return npy_decode_strings(read_member_bytes(za.get(), index, st, member), member);
}

void write_npz(const std::string& path, const NpzMap& tensors, bool compress) {
  // libzip deletes an archive left with no members at zip_close: refuse rather than write nothing.
  if (tensors.empty()) throw Error(path + ": write_npz needs at least one tensor");
  std::vector<std::string> buffers;  // must outlive zip_close, which reads them
  buffers.reserve(tensors.size());
  for (const auto& [key, t] : tensors) {
    if (key.empty() || key.find('/') != std::string::npos)
      throw Error(path + ": bad .npz key '" + key + "' (must be non-empty, without '/')");
    try {
      buffers.push_back(npy_encode(t));
    } catch (const Error& e) {
      throw Error(path + ": member '" + key + ".npy': " + e.what());
    }
  }
  int code = 0;
  std::unique_ptr<zip_t, ZipDiscard> za(zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code));
  if (!za) throw Error(path + ": cannot create the .npz file: " + zip_code_message(code));
  std::size_t i = 0;
  for (const auto& kv : tensors) {
    const std::string name = kv.first + ".npy";
    const std::string& data = buffers[i++];
    zip_source_t* src = zip_source_buffer(za.get(), data.data(), data.size(), 0);
    if (!src) throw Error(path + ": member '" + name + "': " + zip_strerror(za.get()));
    const zip_int64_t index = zip_file_add(za.get(), name.c_str(), src, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(src);
      throw Error(path + ": member '" + name + "': " + zip_strerror(za.get()));
    }
    if (zip_set_file_compression(za.get(), static_cast<zip_uint64_t>(index), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                 0) != 0)
      throw Error(path + ": member '" + name + "': " + zip_strerror(za.get()));
  }
  if (zip_close(za.get()) != 0) throw Error(path + ": cannot write the .npz file: " + zip_strerror(za.get()));
  za.release();  // zip_close freed it
}

}  // namespace ldm::data
