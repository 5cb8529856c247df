#include "datasets/format/shard.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "shared/core/error.h"
#include "tests/support/file_bytes.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace ldm::data;
using ldm::testing::TempDir;

namespace {

using ldm::testing::read_bytes;
using ldm::testing::write_bytes;

// Distinct values in every field, so a field read from the wrong place shows.
Record image_record(std::uint64_t id) {
  Record r;
  r.id = 1000 + id;
  r.label = static_cast<std::int32_t>(id % 7);
  r.caption = "a red square on the left, number " + std::to_string(id);
  r.control = {120 + static_cast<int>(id), 90, 7, 11, 64, 64, id % 2 == 1};
  r.shape = {4, 5, 3};
  for (std::size_t i = 0; i < 4 * 5 * 3; ++i) r.payload.push_back(static_cast<std::uint8_t>(i * 3 + id));
  return r;
}

Record latent_record(std::uint64_t id) {
  Record r;
  r.id = id;
  r.label = -1;
  r.caption = "";
  r.control = {512, 384, 0, 64, 384, 384, false};
  r.shape = {4, 2, 3};
  const float values[] = {0.0f, -1.5f, 3.25f, 1e-20f, -0.0f, 7e30f};
  for (int i = 0; i < 24; ++i) {
    const float v = values[i % 6] + static_cast<float>(id);
    unsigned char bytes[4];
    std::memcpy(bytes, &v, 4);
    r.payload.insert(r.payload.end(), bytes, bytes + 4);
  }
  return r;
}

void check_same(const Record& a, const Record& b) {
  CHECK(a.id == b.id);
  CHECK(a.label == b.label);
  CHECK(a.caption == b.caption);
  CHECK(a.control.orig_h == b.control.orig_h);
  CHECK(a.control.orig_w == b.control.orig_w);
  CHECK(a.control.crop_top == b.control.crop_top);
  CHECK(a.control.crop_left == b.control.crop_left);
  CHECK(a.control.crop_h == b.control.crop_h);
  CHECK(a.control.crop_w == b.control.crop_w);
  CHECK(a.control.flip == b.control.flip);
  CHECK(a.shape == b.shape);
  CHECK(a.payload == b.payload);
  CHECK(a.view == b.view);
  CHECK(a.text_len == b.text_len);
  CHECK(a.text_dim == b.text_dim);
  CHECK(a.text_tokens == b.text_tokens);
  CHECK(a.text_pooled == b.text_pooled);
}

// Writes image_record(0) ... image_record(n - 1) to `path`.
void write_image_shard(const std::string& path, std::size_t n) {
  ShardWriter w(path, {kShardFormatVersion, PayloadKind::ImageU8, "none", "test-images", "", 1});
  for (std::size_t i = 0; i < n; ++i) w.append(image_record(i));
  w.finish();
}

std::uint64_t u64_at(const std::string& bytes, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// The offset of record k's u32 body_len, read from the file's own index.
std::uint64_t record_offset(const std::string& bytes, std::size_t k) {
  const std::uint64_t index_offset = u64_at(bytes, bytes.size() - 28);
  return u64_at(bytes, index_offset + 8 * k);
}

}  // namespace

TEST_CASE("shard round trip keeps every field of image records and the header") {
  TempDir dir;
  const std::string path = dir.file("images.ldms");
  write_image_shard(path, 5);
  ShardReader r(path);
  CHECK(r.header().format_version == kShardFormatVersion);
  CHECK(r.header().kind == PayloadKind::ImageU8);
  CHECK(r.header().encoder == "none");
  CHECK(r.header().dataset == "test-images");
  REQUIRE(r.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) check_same(r.read(i), image_record(i));
}

TEST_CASE("shard round trip keeps every field of latent records, floats bit for bit") {
  TempDir dir;
  const std::string path = dir.file("latents.ldms");
  {
    ShardWriter w(path, {kShardFormatVersion, PayloadKind::LatentF32, "sd-vae-ft-mse@abc", "imagenet", "", 1});
    for (std::uint64_t i = 0; i < 3; ++i) w.append(latent_record(i));
    CHECK(w.count() == 3);
    w.finish();
  }
  ShardReader r(path);
  CHECK(r.header().kind == PayloadKind::LatentF32);
  CHECK(r.header().encoder == "sd-vae-ft-mse@abc");
  REQUIRE(r.size() == 3);
  for (std::uint64_t i = 0; i < 3; ++i) check_same(r.read(i), latent_record(i));
}

TEST_CASE("a shard with no records round-trips") {
  TempDir dir;
  write_image_shard(dir.file("empty.ldms"), 0);
  CHECK(ShardReader(dir.file("empty.ldms")).size() == 0);
}

TEST_CASE("the index gives random access in any order, from several threads at once") {
  TempDir dir;
  const std::string path = dir.file("many.ldms");
  write_image_shard(path, 40);
  const ShardReader r(path);
  for (std::size_t i : {39, 0, 17, 38, 1, 17}) CHECK(r.read(i).id == 1000 + i);
  bool ok[2] = {true, true};
  auto reader = [&](int t) {
    for (int pass = 0; pass < 20; ++pass)
      for (std::size_t i = t; i < 40; i += 2) ok[t] = ok[t] && r.read(39 - i).id == 1000 + 39 - i;
  };
  std::thread a(reader, 0), b(reader, 1);
  a.join();
  b.join();
  CHECK(ok[0]);
  CHECK(ok[1]);
  CHECK_THROWS_WITH_AS(r.read(40), doctest::Contains("record 40 does not exist"), ldm::DataError);
}

TEST_CASE("a flipped byte in record k's body names the file and record k; other records still read") {
  TempDir dir;
  const std::string path = dir.file("corrupt.ldms");
  write_image_shard(path, 6);
  std::string bytes = read_bytes(path);
  const std::size_t k = 3;
  bytes[record_offset(bytes, k) + 8 + 20] ^= 0x40;  // inside the body, past the prefix
  write_bytes(path, bytes);

  ShardReader r(path);
  CHECK_THROWS_WITH_AS(r.read(k), doctest::Contains((path + ": record 3: checksum mismatch").c_str()), ldm::DataError);
  for (std::size_t i : {0, 1, 2, 4, 5}) check_same(r.read(i), image_record(i));
}

TEST_CASE("a truncated shard is a DataError naming the file, wherever it is cut") {
  TempDir dir;
  const std::string path = dir.file("full.ldms");
  write_image_shard(path, 4);
  const std::string bytes = read_bytes(path);
  const std::string cut = dir.file("cut.ldms");
  for (std::size_t keep :
       {std::size_t{0}, std::size_t{5}, std::size_t{20}, bytes.size() / 2, bytes.size() - 29, bytes.size() - 1}) {
    CAPTURE(keep);
    write_bytes(cut, bytes.substr(0, keep));
    CHECK_THROWS_WITH_AS(ShardReader{cut}, doctest::Contains(cut.c_str()), ldm::DataError);
  }
  write_bytes(cut, bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH_AS(ShardReader{cut}, doctest::Contains("writer did not finish"), ldm::DataError);
}

TEST_CASE("a file that is not a shard is rejected for its magic") {
  TempDir dir;
  const std::string path = dir.file("not-a-shard.ldms");
  write_bytes(path, std::string(200, 'x'));
  CHECK_THROWS_WITH_AS(ShardReader{path}, doctest::Contains("bad magic"), ldm::DataError);
}

TEST_CASE("a shard of another format version says which version it has and which this build reads") {
  TempDir dir;
  const std::string path = dir.file("v7.ldms");
  write_image_shard(path, 1);
  std::string bytes = read_bytes(path);
  bytes[8] = 7;  // u32 format_version follows the 8-byte magic
  write_bytes(path, bytes);
  CHECK_THROWS_WITH_AS(ShardReader{path}, doctest::Contains("format version 7, but this build reads versions 1 to 2"),
                       ldm::DataError);
}

TEST_CASE("a corrupt header, footer or index is a DataError naming the file") {
  TempDir dir;
  const std::string path = dir.file("s.ldms");
  write_image_shard(path, 3);
  const std::string good = read_bytes(path);
  const std::size_t footer = good.size() - 28;
  auto check_corruption = [&](std::size_t at, char value, const char* message) {
    CAPTURE(message);
    std::string bytes = good;
    bytes[at] = value;
    write_bytes(path, bytes);
    CHECK_THROWS_WITH_AS(ShardReader{path}, doctest::Contains((path + ": " + message).c_str()), ldm::DataError);
  };
  check_corruption(20, '#', "header checksum mismatch");
  check_corruption(good.size() - 1, 'X', "bad footer");
  check_corruption(footer + 7, 0x7f, "index points outside the file");  // index_offset
  check_corruption(footer + 8, 2, "bad footer: index of 2 entries");    // count
  check_corruption(footer - 3, 0x55, "index checksum mismatch");        // an index entry
}

TEST_CASE("a writer destroyed without finish() leaves neither the shard nor its temporary file") {
  TempDir dir;
  const std::string path = dir.file("abandoned.ldms");
  {
    ShardWriter w(path, {});
    w.append(image_record(0));
    CHECK(fs::exists(path + ".tmp"));
  }
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("a failing write (as on a full disk) names the file, disables the writer and leaves no file") {
  TempDir dir;
  const std::string path = dir.file("full-disk.ldms");
  // A file-size limit makes write() fail with EFBIG the way a full disk fails with ENOSPC.
  struct rlimit old_limit;
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  {
    ShardWriter w(path, {});
    struct rlimit small = old_limit;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    Record big = image_record(0);
    big.shape = {64, 64, 3};
    big.payload.assign(64 * 64 * 3, 7);
    CHECK_THROWS_WITH_AS(w.append(big), doctest::Contains((path + ".tmp").c_str()), ldm::Error);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    CHECK_THROWS_WITH_AS(w.append(image_record(1)), doctest::Contains("failed"), ldm::Error);
    CHECK_THROWS_AS(w.finish(), ldm::Error);
  }
  std::signal(SIGXFSZ, old_handler);
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("the writer rejects a payload that does not match its shape, naming file and record") {
  TempDir dir;
  const std::string path = dir.file("bad.ldms");
  ShardWriter w(path, {});
  w.append(image_record(0));
  Record r = image_record(1);
  r.payload.pop_back();
  CHECK_THROWS_WITH_AS(w.append(r), doctest::Contains((path + ": record 1: payload has 59 bytes").c_str()),
                       ldm::DataError);
  r = image_record(1);
  r.shape = {4, 15, 1};
  CHECK_THROWS_WITH_AS(w.append(r), doctest::Contains("{H, W, 3}"), ldm::DataError);
}

TEST_CASE("a shape whose size passes 2^64 bytes is refused, not wrapped to an empty payload") {
  // 2^21 x 2^21 x 2^22 elements is exactly 2^64: in 64 bits it wraps to 0, which an empty payload
  // would have matched.
  Record r = latent_record(3);
  r.shape = {std::int64_t{1} << 21, std::int64_t{1} << 21, std::int64_t{1} << 22};
  r.payload.clear();
  const std::string body = ldm::data::encode_record(r);
  CHECK_THROWS_WITH_AS(ldm::data::decode_record(body.data(), body.size(), PayloadKind::LatentF32, "in.ldms: "),
                       doctest::Contains("in.ldms: malformed body: payload shape {2097152, 2097152, 4194304} needs "
                                         "more than 2^64 bytes"),
                       ldm::DataError);
  TempDir dir;
  ShardHeader header;
  header.kind = PayloadKind::LatentF32;
  ShardWriter w(dir.file("huge.ldms"), header);
  CHECK_THROWS_WITH_AS(w.append(r), doctest::Contains("needs more than 2^64 bytes"), ldm::DataError);
}

TEST_CASE("list_shards returns the directory's .ldms files sorted, and names a missing directory") {
  TempDir dir;
  for (const char* name : {"b.ldms", "a.ldms", "c.ldms.tmp", "notes.txt"}) write_bytes(dir.file(name), "");
  CHECK(list_shards(dir.path()) == std::vector<std::string>{dir.file("a.ldms"), dir.file("b.ldms")});
  const std::string missing = dir.file("missing");
  CHECK_THROWS_WITH_AS(list_shards(missing), doctest::Contains(missing.c_str()), ldm::DataError);
}

TEST_CASE("crc32 is the standard (zlib) CRC-32") { CHECK(crc32("123456789", 9) == 0xcbf43926u); }

TEST_CASE("format 2: views, caption features and per-record shapes in the index round-trip") {
  TempDir dir("ldm-shard-v2");
  const std::string path = dir.file("v2.ldms");
  std::vector<Record> written;
  {
    ShardWriter w(path, {kShardFormatVersion, PayloadKind::LatentF32, "vae-x", "latents", "t5-y", 2});
    for (std::uint64_t i = 0; i < 6; ++i) {
      Record r = latent_record(i);
      r.view = static_cast<std::uint16_t>(i % 2);
      if (i >= 4) r.shape = {4, 3, 2};  // another bucket
      if (i != 3) {                     // record 3 has no caption features
        r.text_len = static_cast<std::int32_t>(1 + i);
        r.text_dim = 3;
        for (std::int32_t k = 0; k < r.text_len * 3; ++k) r.text_tokens.push_back(0.25f * k - static_cast<float>(i));
        r.text_pooled = {1.0f, -2.0f, static_cast<float>(i)};
      }
      w.append(r);
      written.push_back(r);
    }
    w.finish();
  }
  ShardReader reader(path);
  CHECK(reader.header().format_version == 2);
  CHECK(reader.header().text_encoder == "t5-y");
  CHECK(reader.header().views == 2);
  REQUIRE(reader.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) check_same(reader.read(i), written[i]);
  CHECK(reader.shapes()[0] == RecordShape{2, 3});
  CHECK(reader.shapes()[5] == RecordShape{3, 2});
}

TEST_CASE("records with inconsistent caption features are refused before they are written") {
  TempDir dir("ldm-shard-v2-bad");
  ShardWriter w(dir.file("bad.ldms"), {kShardFormatVersion, PayloadKind::ImageU8, "none", "x", "", 1});
  Record r = image_record(0);
  r.text_len = 2;
  r.text_dim = 3;
  r.text_tokens.assign(5, 0.0f);  // needs 6
  r.text_pooled.assign(3, 0.0f);
  CHECK_THROWS_WITH_AS(w.append(r), doctest::Contains("caption features hold 5 values"), ldm::DataError);
}

TEST_CASE("format-1 shards written by earlier builds are still read") {
  // A version-1 file built by hand: v1 record bodies (no view, no caption features) and an index
  // of offsets only.
  TempDir dir("ldm-shard-v1");
  const Record rec = image_record(3);
  std::string body;
  auto u32 = [](std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>(v >> (8 * i));
  };
  auto u64 = [](std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>(v >> (8 * i));
  };
  u64(body, rec.id);
  for (std::int32_t v : {rec.label, rec.control.orig_h, rec.control.orig_w, rec.control.crop_top, rec.control.crop_left,
                         rec.control.crop_h, rec.control.crop_w})
    u32(body, static_cast<std::uint32_t>(v));
  body += static_cast<char>(rec.control.flip ? 1 : 0);
  u32(body, static_cast<std::uint32_t>(rec.caption.size()));
  body += rec.caption;
  body += static_cast<char>(3);
  for (auto d : rec.shape) u64(body, static_cast<std::uint64_t>(d));
  body.append(rec.payload.begin(), rec.payload.end());
  const std::string header = R"({"kind":"image_u8","encoder":"none","dataset":"old"})";
  std::string file = "LDMSHRD1";
  u32(file, 1);
  u32(file, static_cast<std::uint32_t>(header.size()));
  file += header;
  u32(file, crc32(header.data(), header.size()));
  const std::uint64_t offset = file.size();
  u32(file, static_cast<std::uint32_t>(body.size()));
  u32(file, crc32(body.data(), body.size()));
  file += body;
  const std::uint64_t index_offset = file.size();
  std::string index;
  u64(index, offset);
  file += index;
  u64(file, index_offset);
  u64(file, 1);
  u32(file, crc32(index.data(), index.size()));
  file += "LDMSHEND";
  write_bytes(dir.file("old.ldms"), file);
  ShardReader reader(dir.file("old.ldms"));
  CHECK(reader.header().format_version == 1);
  CHECK(reader.header().views == 1);
  CHECK(reader.header().text_encoder.empty());
  REQUIRE(reader.size() == 1);
  check_same(reader.read(0), rec);
  CHECK(reader.shapes()[0] == RecordShape{});  // v1 stores no shapes in its index
}
