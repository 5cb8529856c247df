#include "datasets/format/dataset_tools.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "datasets/import/synthetic.h"
#include "shared/core/error.h"
#include "tests/support/file_bytes.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace ldm::data;
using ldm::testing::TempDir;

namespace {

using ldm::testing::read_bytes;
using ldm::testing::write_bytes;

// A small image record whose caption is unique, so a test can find its bytes in the file.
Record image_record(std::uint64_t id) {
  Record r;
  r.id = id;
  r.label = static_cast<std::int32_t>(id % 3);
  r.caption = "record number " + std::to_string(id) + " end";
  r.control = {100 + static_cast<int>(id), 80, 1, 2, 64, 64, id % 4 == 0};
  r.shape = {4, 5, 3};
  for (std::size_t i = 0; i < 4 * 5 * 3; ++i) r.payload.push_back(static_cast<std::uint8_t>(i * 7 + id * 13));
  return r;
}

void write_image_shard(const std::string& path, std::uint64_t first_id, std::size_t n,
                       const std::string& encoder = "none") {
  ShardWriter w(path, {kShardFormatVersion, PayloadKind::ImageU8, encoder, "test-images", "", 1});
  for (std::size_t i = 0; i < n; ++i) w.append(image_record(first_id + i));
  w.finish();
}

void append_f32(std::vector<std::uint8_t>& out, float v) {
  unsigned char b[4];
  std::memcpy(b, &v, 4);
  out.insert(out.end(), b, b + 4);
}

// Latent {3, 2, 4}: channel 0 is 2.0 everywhere, channel 1 is +1 or -1 by record parity,
// channel 2 varies within the record.
Record latent_record(std::uint64_t id) {
  Record r;
  r.id = id;
  r.label = static_cast<std::int32_t>(id % 2);
  r.shape = {3, 2, 4};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 8; ++i) {
      float v = 0;
      if (c == 0) v = 2.0f;
      if (c == 1) v = id % 2 == 0 ? 1.0f : -1.0f;
      if (c == 2) v = 0.25f * static_cast<float>(i) - 0.1f * static_cast<float>(id);
      append_f32(r.payload, v);
    }
  return r;
}

// The byte offset of `needle` in the file; fails the test if it is not there exactly once.
std::size_t find_once(const std::string& bytes, const std::string& needle) {
  const std::size_t at = bytes.find(needle);
  REQUIRE(at != std::string::npos);
  REQUIRE(bytes.find(needle, at + 1) == std::string::npos);
  return at;
}

}  // namespace

TEST_CASE("verify passes a clean synthetic dataset and names its size") {
  TempDir tmp("ldm-tools");
  SyntheticParams p;
  p.records = 40;
  p.shard_records = 16;
  p.resolution = 8;
  const std::string dir = tmp.file("synth");
  ensure_synthetic_dataset(p, dir);
  std::size_t progress_calls = 0;
  VerifyOptions options;
  options.progress = [&](const VerifyProgress& pr) {
    ++progress_calls;
    CHECK(pr.shards_total == 3);
  };
  const VerifyReport report = verify_directory(dir, options);
  CHECK(report.clean());
  CHECK(report.shards == 3);
  CHECK(report.records == 40);
  CHECK(progress_calls == 3);
  CHECK(verify_summary(report) == "3 shards, 40 records, all checksums match");
}

TEST_CASE("a flipped bit in a record's payload names the shard, the record number and its id") {
  TempDir tmp("ldm-tools");
  write_image_shard(tmp.file("a-00000.ldms"), 0, 10);
  write_image_shard(tmp.file("a-00001.ldms"), 10, 10);
  const std::string path = tmp.file("a-00001.ldms");
  std::string bytes = read_bytes(path);
  // Record 7 of the second shard is id 17; its payload follows caption, ndim and 3 dims.
  const std::string caption = image_record(17).caption;
  const std::size_t payload = find_once(bytes, caption) + caption.size() + 1 + 3 * 8;
  bytes[payload + 5] ^= 0x10;
  write_bytes(path, bytes);

  const VerifyReport report = verify_directory(tmp.path());
  CHECK_FALSE(report.clean());
  CHECK(report.records == 20);
  CHECK(report.problem_count == 1);
  CHECK(report.corrupt_records == 1);
  REQUIRE(report.problems.size() == 1);
  const VerifyProblem& problem = report.problems[0];
  CHECK(problem.shard == "a-00001.ldms");
  CHECK(problem.record == 7);
  REQUIRE(problem.id.has_value());
  CHECK(*problem.id == 17);
  CHECK(problem.text.rfind("a-00001.ldms: record 7 (id 17): checksum mismatch (stored 0x", 0) == 0);
  CHECK(problem.text.find(", computed 0x") != std::string::npos);
  CHECK(verify_summary(report) == "2 shards, 20 records: 1 problem (1 corrupt record)");
}

TEST_CASE("verify goes on past bad records and keeps at most max_problems of them") {
  TempDir tmp("ldm-tools");
  const std::string path = tmp.file("s.ldms");
  write_image_shard(path, 0, 12);
  std::string bytes = read_bytes(path);
  for (std::uint64_t id : {2, 5, 9, 11}) {
    const std::string caption = image_record(id).caption;
    bytes[find_once(bytes, caption) + caption.size() + 1 + 3 * 8] ^= 0x01;
  }
  write_bytes(path, bytes);
  VerifyOptions options;
  options.max_problems = 3;
  const VerifyReport report = verify_directory(tmp.path(), options);
  CHECK(report.problem_count == 4);
  CHECK(report.corrupt_records == 4);
  REQUIRE(report.problems.size() == 3);
  CHECK(report.problems[0].record == 2);
  CHECK(report.problems[1].record == 5);
  CHECK(report.problems[2].record == 9);
}

TEST_CASE("a truncated shard is reported naming the file, the other shards are still checked") {
  TempDir tmp("ldm-tools");
  write_image_shard(tmp.file("t-00000.ldms"), 0, 8);
  write_image_shard(tmp.file("t-00001.ldms"), 8, 8);
  const std::string path = tmp.file("t-00000.ldms");
  for (std::uintmax_t cut : {fs::file_size(path) / 2, fs::file_size(path) - 3, std::uintmax_t{5}}) {
    CAPTURE(cut);
    std::string bytes = read_bytes(tmp.file("t-00001.ldms"));  // keep a pristine copy around
    write_image_shard(path, 0, 8);
    fs::resize_file(path, cut);
    const VerifyReport report = verify_directory(tmp.path());
    CHECK_FALSE(report.clean());
    CHECK(report.unreadable_shards == 1);
    CHECK(report.records == 8);  // the intact shard's
    REQUIRE(report.problems.size() == 1);
    CHECK(report.problems[0].shard == "t-00000.ldms");
    CHECK(report.problems[0].record == -1);
    CHECK(report.problems[0].text.rfind("t-00000.ldms: ", 0) == 0);
    CHECK(report.problems[0].text.find("truncat") != std::string::npos);
  }
}

TEST_CASE("duplicate ids across shards are reported with where each id was first seen") {
  TempDir tmp("ldm-tools");
  write_image_shard(tmp.file("d-00000.ldms"), 0, 10);
  write_image_shard(tmp.file("d-00001.ldms"), 7, 5);  // ids 7..11: 7, 8, 9 repeat
  const VerifyReport report = verify_directory(tmp.path());
  CHECK(report.duplicate_ids == 3);
  CHECK(report.problem_count == 3);
  REQUIRE(report.problems.size() == 3);
  CHECK(report.problems[0].text == "d-00001.ldms: record 0 (id 7): duplicate id, first seen in d-00000.ldms record 7");
  CHECK(report.problems[2].record == 2);
}

TEST_CASE("shards that disagree on encoder, payload kind or channels are reported naming both") {
  TempDir tmp("ldm-tools");
  write_image_shard(tmp.file("h-00000.ldms"), 0, 3, "none");
  write_image_shard(tmp.file("h-00001.ldms"), 3, 3, "vae-abc");
  {
    ShardWriter w(tmp.file("h-00002.ldms"),
                  {kShardFormatVersion, PayloadKind::LatentF32, "none", "test-images", "", 1});
    w.append(latent_record(100));
    w.finish();
  }
  const VerifyReport report = verify_directory(tmp.path());
  CHECK_FALSE(report.clean());
  CHECK(report.disagreements == 2);
  REQUIRE(report.problems.size() == 2);  // the latent's 3 channels match the images' 3
  CHECK(report.problems[0].text == "h-00001.ldms: header disagrees with h-00000.ldms: encoder 'vae-abc' vs 'none'");
  CHECK(report.problems[1].text ==
        "h-00002.ldms: header disagrees with h-00000.ldms: payload kind latent_f32 vs image_u8");
}

TEST_CASE("latent shards with different channel counts are reported per record") {
  TempDir tmp("ldm-tools");
  for (int s = 0; s < 2; ++s) {
    ShardWriter w(tmp.file("c-0000" + std::to_string(s) + ".ldms"),
                  {kShardFormatVersion, PayloadKind::LatentF32, "vae", "x", "", 1});
    Record r = latent_record(static_cast<std::uint64_t>(s));
    if (s == 1) {  // 2 channels instead of 3
      r.shape = {2, 2, 4};
      r.payload.resize(2 * 8 * 4);
    }
    w.append(r);
    w.finish();
  }
  const VerifyReport report = verify_directory(tmp.path());
  CHECK(report.disagreements == 1);
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].text ==
        "c-00001.ldms: record 0 (id 1): payload has 2 channels (shape 2x2x4), c-00000.ldms "
        "record 0 has 3");
}

TEST_CASE("a directory without shards does not verify clean") {
  TempDir tmp("ldm-tools");
  const VerifyReport report = verify_directory(tmp.path());
  CHECK_FALSE(report.clean());
  CHECK(report.shards == 0);
  CHECK_THROWS_AS(verify_directory(tmp.file("missing")), ldm::DataError);
  CHECK_THROWS_AS(compute_stats(tmp.path()), ldm::DataError);
}

TEST_CASE("stats counts per class, captions, shapes and flips equal what was written") {
  TempDir tmp("ldm-tools");
  SyntheticParams p;
  p.records = 50;
  p.classes = 4;
  p.shard_records = 20;
  p.resolution = 8;
  const std::string dir = tmp.file("synth");
  ensure_synthetic_dataset(p, dir);

  std::map<std::int32_t, std::uint64_t> labels;
  std::uint64_t flipped = 0;
  double words_total = 0;
  std::vector<double> sum(3, 0.0), sumsq(3, 0.0);
  double pixels = 0;
  for (std::int64_t i = 0; i < p.records; ++i) {
    const Record r = render_synthetic_record(p, i);
    ++labels[r.label];
    flipped += r.control.flip ? 1 : 0;
    std::size_t words = 0;
    bool in = false;
    for (char c : r.caption) {
      if (c != ' ' && !in) ++words;
      in = c != ' ';
    }
    words_total += static_cast<double>(words);
    for (std::size_t k = 0; k < r.payload.size(); ++k) {
      const double v = r.payload[k] / 255.0;
      sum[k % 3] += v;
      sumsq[k % 3] += v * v;
    }
    pixels += static_cast<double>(r.payload.size() / 3);
  }

  const DatasetStats st = compute_stats(dir);
  CHECK(st.shards == 3);
  CHECK(st.records == 50);
  CHECK(st.kind == PayloadKind::ImageU8);
  CHECK(st.labels == labels);
  CHECK(st.captioned == 50);
  CHECK(st.caption_words.mean() == doctest::Approx(words_total / 50));
  CHECK(st.shapes.size() == 1);
  CHECK(st.shapes.at("8x8x3") == 50);
  CHECK(st.flipped == flipped);
  CHECK(st.with_control == 50);
  REQUIRE(st.channels.size() == 3);
  for (int k = 0; k < 3; ++k) {
    const double mean = sum[k] / pixels;
    const double var = sumsq[k] / pixels - mean * mean;
    CHECK(st.channels[k].mean == doctest::Approx(mean).epsilon(1e-9));
    CHECK(st.channels[k].std() == doctest::Approx(std::sqrt(var)).epsilon(1e-6));
  }
  CHECK_FALSE(st.suggested_scale_factor.has_value());  // images have none

  const auto j = nlohmann::json::parse(stats_json(st));
  CHECK(j.at("records") == 50);
  for (const auto& [label, n] : labels) CHECK(j.at("labels").at(std::to_string(label)) == n);
  CHECK(j.at("suggested_scale_factor").is_null());
  const std::string table = format_stats(st);
  CHECK(table.find("8x8x3") != std::string::npos);
  CHECK(table.find("records:    50") != std::string::npos);
}

TEST_CASE("latent stats: per-channel mean and std as computed directly, scale factor is 1/std") {
  TempDir tmp("ldm-tools");
  std::vector<Record> written;
  for (int s = 0; s < 2; ++s) {
    ShardWriter w(tmp.file("l-0000" + std::to_string(s) + ".ldms"),
                  {kShardFormatVersion, PayloadKind::LatentF32, "test-vae", "latents", "", 1});
    for (int i = 0; i < 5; ++i) {
      written.push_back(latent_record(static_cast<std::uint64_t>(s * 5 + i)));
      w.append(written.back());
    }
    w.finish();
  }
  // Direct computation over every float written.
  std::vector<std::vector<double>> values(3);
  std::vector<double> all;
  for (const Record& r : written)
    for (std::size_t i = 0; i < r.payload.size() / 4; ++i) {
      float v;
      std::memcpy(&v, r.payload.data() + 4 * i, 4);
      values[i / 8].push_back(v);
      all.push_back(v);
    }
  auto mean_std = [](const std::vector<double>& xs) {
    double m = 0, q = 0;
    for (double x : xs) m += x;
    m /= static_cast<double>(xs.size());
    for (double x : xs) q += (x - m) * (x - m);
    return std::pair<double, double>(m, std::sqrt(q / static_cast<double>(xs.size())));
  };

  const DatasetStats st = compute_stats(tmp.path());
  CHECK(st.records == 10);
  CHECK(st.kind == PayloadKind::LatentF32);
  CHECK(st.encoder == "test-vae");
  REQUIRE(st.channels.size() == 3);
  CHECK(st.channels[0].mean == doctest::Approx(2.0));  // constant channel
  CHECK(st.channels[0].std() == doctest::Approx(0.0));
  CHECK(st.channels[1].mean == doctest::Approx(0.0));  // +1 / -1 in equal numbers
  CHECK(st.channels[1].std() == doctest::Approx(1.0));
  for (int c = 0; c < 3; ++c) {
    const auto [m, s] = mean_std(values[c]);
    CHECK(st.channels[c].mean == doctest::Approx(m).epsilon(1e-12));
    CHECK(st.channels[c].std() == doctest::Approx(s).epsilon(1e-12));
  }
  const auto [m, s] = mean_std(all);
  CHECK(st.all.count == all.size());
  CHECK(st.all.mean == doctest::Approx(m).epsilon(1e-12));
  CHECK(st.all.std() == doctest::Approx(s).epsilon(1e-12));
  REQUIRE(st.suggested_scale_factor.has_value());
  CHECK(*st.suggested_scale_factor == doctest::Approx(1.0 / s).epsilon(1e-12));
  CHECK(st.labels.at(0) == 5);
  CHECK(st.labels.at(1) == 5);
  CHECK(st.captioned == 0);
  CHECK(st.shapes.at("3x2x4") == 10);

  const auto j = nlohmann::json::parse(stats_json(st));
  CHECK(j.at("suggested_scale_factor").get<double>() == doctest::Approx(1.0 / s));
  CHECK(j.at("channels").size() == 3);
  CHECK(format_stats(st).find("suggested scale factor") != std::string::npos);
}

TEST_CASE("stats skips and counts a corrupt record, and names it through on_error") {
  TempDir tmp("ldm-tools");
  const std::string path = tmp.file("s.ldms");
  write_image_shard(path, 0, 6);
  std::string bytes = read_bytes(path);
  const std::string caption = image_record(4).caption;
  bytes[find_once(bytes, caption) + caption.size() + 1 + 3 * 8] ^= 0x80;
  write_bytes(path, bytes);
  std::vector<std::string> errors;
  const DatasetStats st = compute_stats(tmp.path(), {}, [&](const std::string& e) { errors.push_back(e); });
  CHECK(st.records == 5);
  CHECK(st.unreadable_records == 1);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("record 4") != std::string::npos);
}

TEST_CASE("Moments merged from parts equal Moments of the whole stream") {
  Moments whole, a, b;
  for (int i = 0; i < 100; ++i) {
    const double x = std::sin(i) * 3 + 1e6;  // a large offset: naive sum-of-squares would lose it
    whole.add(x);
    (i < 37 ? a : b).add(x);
  }
  a.merge(b);
  CHECK(a.count == whole.count);
  CHECK(a.mean == doctest::Approx(whole.mean).epsilon(1e-14));
  CHECK(a.std() == doctest::Approx(whole.std()).epsilon(1e-9));
}
