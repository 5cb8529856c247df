#include "datasets/format/dataset_tools.h"

#include "datasets/format/byte_order.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>
#include <utility>

#include "datasets/import/synthetic.h"
#include "shared/core/error.h"
#include "shared/core/text.h"

namespace ldm::data {
namespace {

using shard_layout::kFooterSize;
using shard_layout::kRecordPrefixSize;

using le::get_u32;
using le::get_u64;

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// The reader's messages start with the shard's path (and "record N: "): drop what we print anyway.
std::string strip_prefix(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0 ? text.substr(prefix.size()) : text;
}

// What is wrong with record `index` of a shard whose header, footer and index were valid when
// ShardReader opened it, read straight from the file so that the id is known even when the
// checksum is not right. `text` is "" when the framing and checksum look right (then the body
// itself is malformed and the reader's message says how).
struct RawDiagnosis {
  std::optional<std::uint64_t> id;
  std::string text;
};

class RawShard {
 public:
  explicit RawShard(const std::string& path) : in_(path, std::ios::binary) {
    if (!in_) return;
    in_.seekg(0, std::ios::end);
    const auto size = static_cast<std::uint64_t>(in_.tellg());
    if (size < kFooterSize) return;
    unsigned char foot[kFooterSize];
    if (!read_at(size - kFooterSize, foot, kFooterSize)) return;
    records_end_ = get_u64(foot);
    const std::uint64_t count = get_u64(foot + 8);
    if (records_end_ > size || count > (size - records_end_) / 8) return;
    std::vector<unsigned char> index(count * 8);
    if (!read_at(records_end_, index.data(), index.size())) return;
    for (std::uint64_t i = 0; i < count; ++i) offsets_.push_back(get_u64(index.data() + 8 * i));
    ok_ = true;
  }

  RawDiagnosis diagnose(std::size_t index) {
    RawDiagnosis d;
    if (!ok_ || index >= offsets_.size()) return d;
    const std::uint64_t begin = offsets_[index];
    const std::uint64_t end = index + 1 < offsets_.size() ? offsets_[index + 1] : records_end_;
    if (end < begin + kRecordPrefixSize || end - begin > (std::uint64_t{1} << 33)) return d;
    std::vector<unsigned char> buf(end - begin);
    if (!read_at(begin, buf.data(), buf.size())) return d;
    const std::uint64_t available = buf.size() - kRecordPrefixSize;
    const unsigned char* body = buf.data() + kRecordPrefixSize;
    if (available >= 8) d.id = get_u64(body);
    const std::uint64_t body_len = get_u32(buf.data());
    if (body_len != available) {
      d.text = "length " + std::to_string(body_len) + " disagrees with the index (" + std::to_string(available) +
               " bytes until the next record)";
      return d;
    }
    const std::uint32_t stored = get_u32(buf.data() + 4);
    const std::uint32_t computed = crc32(body, body_len);
    if (stored != computed)
      d.text = "checksum mismatch (stored 0x" + hex32(stored) + ", computed 0x" + hex32(computed) + ")";
    return d;
  }

 private:
  bool read_at(std::uint64_t offset, unsigned char* out, std::size_t n) {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n));
    return static_cast<std::size_t>(in_.gcount()) == n;
  }

  std::ifstream in_;
  bool ok_ = false;
  std::vector<std::uint64_t> offsets_;
  std::uint64_t records_end_ = 0;
};

std::int64_t channel_count(PayloadKind kind, const Record& r) {
  if (r.shape.size() != 3) return -1;
  return kind == PayloadKind::ImageU8 ? r.shape[2] : r.shape[0];
}

std::string shape_key(const std::vector<std::int64_t>& shape) {
  std::string key;
  for (std::size_t i = 0; i < shape.size(); ++i) key += (i ? "x" : "") + std::to_string(shape[i]);
  return key;
}

std::string record_where(std::size_t index, const std::optional<std::uint64_t>& id) {
  std::string s = "record " + std::to_string(index);
  if (id) s += " (id " + std::to_string(*id) + ")";
  return s;
}

std::uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

class ProblemSink {
 public:
  ProblemSink(VerifyReport& report, std::size_t limit) : report_(report), limit_(limit) {}
  void add(const std::string& shard, std::int64_t record, std::optional<std::uint64_t> id, const std::string& detail) {
    ++report_.problem_count;
    if (report_.problems.size() >= limit_) return;
    std::string text = shard.empty() ? detail : shard + ": ";
    if (!shard.empty()) {
      if (record >= 0) text += record_where(static_cast<std::size_t>(record), id) + ": ";
      text += detail;
    }
    report_.problems.push_back({shard, record, id, std::move(text)});
  }

 private:
  VerifyReport& report_;
  std::size_t limit_;
};

}  // namespace

// ---- verify ----------------------------------------------------------------------------

namespace {

// A good record's id and place, 16 bytes: sorted at the end to find duplicates (a hash map would
// take three times the memory on a CC12M-sized directory).
struct SeenId {
  std::uint64_t id;
  std::uint32_t shard;
  std::uint32_t record;
};

void report_duplicate_ids(std::vector<SeenId>& ids, const std::vector<std::string>& names, VerifyReport& report,
                          ProblemSink& problems) {
  std::sort(ids.begin(), ids.end(), [](const SeenId& a, const SeenId& b) {
    return std::tie(a.id, a.shard, a.record) < std::tie(b.id, b.shard, b.record);
  });
  for (std::size_t k = 1; k < ids.size(); ++k) {
    if (ids[k].id != ids[k - 1].id) continue;
    std::size_t first = k - 1;  // the run of equal ids starts at its earliest place
    while (first > 0 && ids[first - 1].id == ids[k].id) --first;
    ++report.duplicate_ids;
    problems.add(
        names[ids[k].shard], ids[k].record, ids[k].id,
        "duplicate id, first seen in " + names[ids[first].shard] + " record " + std::to_string(ids[first].record));
  }
}

}  // namespace

VerifyReport verify_directory(const std::string& dir, const VerifyOptions& options) {
  VerifyReport report;
  report.dir = dir;
  ProblemSink problems(report, options.max_problems);
  const std::vector<std::string> paths = list_shards(dir);
  report.shards = paths.size();
  if (paths.empty()) problems.add("", -1, std::nullopt, dir + ": no *.ldms shard files");

  std::vector<SeenId> ids;  // every good record's id and place
  std::vector<std::string> names;
  std::optional<std::size_t> reference;  // the first shard that opened
  ShardHeader reference_header;
  std::string channels_from;  // "synth-00000.ldms record 0" for the message
  std::int64_t reference_channels = -1;

  for (std::size_t s = 0; s < paths.size(); ++s) {
    const std::string& path = paths[s];
    const std::string name = file_name(path);
    names.push_back(name);
    report.bytes += file_size_or_zero(path);
    std::optional<ShardReader> reader;
    try {
      reader.emplace(path);
    } catch (const Error& e) {
      ++report.unreadable_shards;
      problems.add(name, -1, std::nullopt, strip_prefix(e.what(), path + ": "));
    }
    if (reader) {
      const ShardHeader& h = reader->header();
      if (!reference) {
        reference = s;
        reference_header = h;
      } else {
        std::vector<std::string> diffs;
        if (h.kind != reference_header.kind)
          diffs.push_back(std::string("payload kind ") + to_string(h.kind) + " vs " + to_string(reference_header.kind));
        if (h.encoder != reference_header.encoder)
          diffs.push_back("encoder '" + h.encoder + "' vs '" + reference_header.encoder + "'");
        if (!diffs.empty()) {
          ++report.disagreements;
          problems.add(name, -1, std::nullopt, "header disagrees with " + names[*reference] + ": " + join(diffs, "; "));
        }
      }
      report.records += reader->size();
      std::optional<RawShard> raw;  // opened at the first bad record only
      for (std::size_t i = 0; i < reader->size(); ++i) {
        Record r;
        try {
          r = reader->read(i);
        } catch (const Error& e) {
          ++report.corrupt_records;
          if (!raw) raw.emplace(path);
          RawDiagnosis d = raw->diagnose(i);
          std::string detail = d.text;
          if (detail.empty()) {
            detail = strip_prefix(e.what(), path + ": ");
            detail = strip_prefix(detail, "record " + std::to_string(i) + ": ");
          }
          problems.add(name, static_cast<std::int64_t>(i), d.id, detail);
          continue;
        }
        ids.push_back({r.id, static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(i)});
        const std::int64_t channels = channel_count(h.kind, r);
        if (reference_channels < 0) {
          reference_channels = channels;
          channels_from = name + " record " + std::to_string(i);
        } else if (channels != reference_channels) {
          ++report.disagreements;
          problems.add(name, static_cast<std::int64_t>(i), r.id,
                       "payload has " + std::to_string(channels) + " channels (shape " + shape_key(r.shape) + "), " +
                           channels_from + " has " + std::to_string(reference_channels));
        }
      }
    }
    if (options.progress) {
      VerifyProgress p;
      p.shards_done = s + 1;
      p.shards_total = paths.size();
      p.shard = name;
      p.records_done = report.records;
      p.bytes_done = report.bytes;
      options.progress(p);
    }
  }
  report_duplicate_ids(ids, names, report, problems);
  return report;
}

std::string verify_summary(const VerifyReport& report) {
  std::string s = std::to_string(report.shards) + (report.shards == 1 ? " shard, " : " shards, ") +
                  std::to_string(report.records) + (report.records == 1 ? " record" : " records");
  if (report.clean()) return s + ", all checksums match";
  std::vector<std::string> kinds;
  auto part = [&](std::uint64_t n, const char* one, const char* many) {
    if (n > 0) kinds.push_back(std::to_string(n) + " " + (n == 1 ? one : many));
  };
  part(report.unreadable_shards, "unreadable shard", "unreadable shards");
  part(report.corrupt_records, "corrupt record", "corrupt records");
  part(report.duplicate_ids, "duplicate id", "duplicate ids");
  part(report.disagreements, "disagreement with the first shard", "disagreements with the first shard");
  s += ": " + std::to_string(report.problem_count) + (report.problem_count == 1 ? " problem" : " problems");
  if (!kinds.empty()) s += " (" + join(kinds, ", ") + ")";
  return s;
}

// ---- stats -----------------------------------------------------------------------------

void Moments::add(double x) {
  ++count;
  const double delta = x - mean;
  mean += delta / static_cast<double>(count);
  m2 += delta * (x - mean);
}

void Moments::merge(const Moments& o) {
  if (o.count == 0) return;
  if (count == 0) {
    *this = o;
    return;
  }
  const double n = static_cast<double>(count) + static_cast<double>(o.count);
  const double delta = o.mean - mean;
  mean += delta * static_cast<double>(o.count) / n;
  m2 += o.m2 + delta * delta * static_cast<double>(count) * static_cast<double>(o.count) / n;
  count += o.count;
}

double Moments::std() const { return std::sqrt(std::max(0.0, variance())); }

void MinMeanMax::add(double x) {
  min = count == 0 ? x : std::min(min, x);
  max = count == 0 ? x : std::max(max, x);
  sum += x;
  ++count;
}

namespace {

std::size_t count_words(const std::string& s) {
  std::size_t words = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    const bool space = std::isspace(c) != 0;
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

float get_f32(const unsigned char* p) {
  const std::uint32_t bits = get_u32(p);  // the format is little-endian whatever the host
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

// Per-channel moments of one record, exact partial results for Moments::merge: pixels by integer
// sums, latents by two passes over each channel's values (in cache) in double precision.
void add_payload(DatasetStats& st, PayloadKind kind, const Record& r) {
  if (r.shape.size() != 3) return;
  if (kind == PayloadKind::ImageU8) {
    const std::size_t c = static_cast<std::size_t>(r.shape[2]);
    if (st.channels.size() < c) st.channels.resize(c);
    std::vector<std::uint64_t> sum(c, 0), sumsq(c, 0);
    for (std::size_t i = 0; i < r.payload.size(); ++i) {
      const std::uint64_t v = r.payload[i];
      sum[i % c] += v;
      sumsq[i % c] += v * v;
    }
    const std::uint64_t n = r.payload.size() / c;
    if (n == 0) return;
    for (std::size_t k = 0; k < c; ++k) {
      Moments m;
      m.count = n;
      m.mean = static_cast<double>(sum[k]) / static_cast<double>(n) / 255.0;
      // m2 = sum((v/255 - mean)^2) = (sumsq - sum^2/n) / 255^2
      const long double s = sum[k], q = sumsq[k];
      m.m2 = static_cast<double>((q - s * s / n) / (255.0L * 255.0L));
      st.channels[k].merge(m);
      st.all.merge(m);
    }
    return;
  }
  const std::size_t c = static_cast<std::size_t>(r.shape[0]);
  const std::size_t plane = static_cast<std::size_t>(r.shape[1] * r.shape[2]);
  if (st.channels.size() < c) st.channels.resize(c);
  std::vector<double> values;
  values.reserve(plane);
  for (std::size_t k = 0; k < c; ++k) {
    values.clear();
    const unsigned char* p = r.payload.data() + 4 * k * plane;
    for (std::size_t i = 0; i < plane; ++i) {
      const float v = get_f32(p + 4 * i);
      if (std::isfinite(v)) values.push_back(v);
      else ++st.non_finite;
    }
    if (values.empty()) continue;
    Moments m;
    m.count = values.size();
    double sum = 0;
    for (double v : values) sum += v;
    m.mean = sum / static_cast<double>(values.size());
    for (double v : values) m.m2 += (v - m.mean) * (v - m.mean);
    st.channels[k].merge(m);
    st.all.merge(m);
  }
}

}  // namespace

DatasetStats compute_stats(const std::string& dir, const std::function<void(const StatsProgress&)>& progress,
                           const std::function<void(const std::string&)>& on_error) {
  DatasetStats st;
  st.dir = dir;
  const std::vector<std::string> paths = list_shards(dir);
  if (paths.empty()) throw DataError(dir + ": no *.ldms shard files");
  st.shards = paths.size();
  std::string first_name, channels_from;
  std::int64_t reference_channels = -1;
  std::uint64_t bytes = 0;
  for (std::size_t s = 0; s < paths.size(); ++s) {
    const std::string name = file_name(paths[s]);
    const ShardReader reader(paths[s]);
    const ShardHeader& h = reader.header();
    if (s == 0) {
      st.kind = h.kind;
      st.encoder = h.encoder;
      st.dataset = h.dataset;
      first_name = name;
    } else if (h.kind != st.kind) {
      throw DataError(name + " holds " + to_string(h.kind) + " payloads but " + first_name + " holds " +
                      to_string(st.kind) + " (run 'ldm-data verify')");
    }
    bytes += file_size_or_zero(paths[s]);
    for (std::size_t i = 0; i < reader.size(); ++i) {
      Record r;
      try {
        r = reader.read(i);
      } catch (const Error& e) {
        ++st.unreadable_records;
        if (on_error) on_error(e.what());
        continue;
      }
      const std::int64_t channels = channel_count(st.kind, r);
      if (reference_channels < 0) {
        reference_channels = channels;
        channels_from = name + " record " + std::to_string(i);
      } else if (channels != reference_channels) {
        throw DataError(name + ": record " + std::to_string(i) + " has " + std::to_string(channels) + " channels, " +
                        channels_from + " has " + std::to_string(reference_channels) + " (run 'ldm-data verify')");
      }
      ++st.records;
      ++st.labels[r.label];
      if (!r.caption.empty()) {
        ++st.captioned;
        st.caption_words.add(static_cast<double>(count_words(r.caption)));
        st.caption_chars.add(static_cast<double>(r.caption.size()));
      }
      ++st.shapes[shape_key(r.shape)];
      const ControlMeta& c = r.control;
      if (c.orig_h > 0 && c.orig_w > 0) {
        ++st.with_control;
        st.orig_h.add(c.orig_h);
        st.orig_w.add(c.orig_w);
        st.crop_h.add(c.crop_h);
        st.crop_w.add(c.crop_w);
      }
      if (c.flip) ++st.flipped;
      add_payload(st, st.kind, r);
    }
    if (progress) {
      StatsProgress p;
      p.shards_done = s + 1;
      p.shards_total = paths.size();
      p.shard = name;
      p.records_done = st.records + st.unreadable_records;
      p.bytes_done = bytes;
      progress(p);
    }
  }
  if (st.kind == PayloadKind::LatentF32 && st.all.count > 0 && st.all.std() > 0)
    st.suggested_scale_factor = 1.0 / st.all.std();
  return st;
}

namespace {

std::string label_name(std::int32_t label, const DatasetStats& st) {
  if (label < 0) return "(none)";
  if (st.dataset.rfind("synthetic-", 0) == 0) {
    try {
      return synthetic_class_name(label);
    } catch (const Error&) {  // beyond the synthetic palette: no name
    }
  }
  return "";
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string range_text(const MinMeanMax& m) { return fmt("%.0f", m.min) + ".." + fmt("%.0f", m.max); }

}  // namespace

std::string format_stats(const DatasetStats& st) {
  std::ostringstream o;
  const double n = static_cast<double>(std::max<std::uint64_t>(st.records, 1));
  o << "directory:  " << st.dir << "\n";
  o << "shards:     " << st.shards << "\n";
  o << "records:    " << st.records;
  if (st.unreadable_records > 0)
    o << " (" << st.unreadable_records << " unreadable records skipped; run 'ldm-data verify')";
  o << "\n";
  o << "kind:       " << to_string(st.kind) << "\n";
  o << "encoder:    " << st.encoder << "\n";
  o << "dataset:    " << st.dataset << "\n";

  o << "labels:     " << st.labels.size() << " distinct\n";
  o << "  label      records  share   name\n";
  for (const auto& [label, count] : st.labels) {
    char line[160];
    const std::string label_text = label_name(label, st);
    std::snprintf(line, sizeof line, "  %-9s %8llu  %5.1f%%%s%s\n", label < 0 ? "none" : std::to_string(label).c_str(),
                  static_cast<unsigned long long>(count), 100.0 * count / n, label_text.empty() ? "" : "  ",
                  label_text.c_str());
    o << line;
  }

  o << "captions:   " << st.captioned << " of " << st.records << " records";
  if (st.captioned > 0)
    o << "; words min " << fmt("%.0f", st.caption_words.min) << ", mean " << fmt("%.2f", st.caption_words.mean())
      << ", max " << fmt("%.0f", st.caption_words.max) << "; chars min " << fmt("%.0f", st.caption_chars.min)
      << ", mean " << fmt("%.1f", st.caption_chars.mean()) << ", max " << fmt("%.0f", st.caption_chars.max);
  o << "\n";

  o << "shapes:     " << st.shapes.size() << " distinct ("
    << (st.kind == PayloadKind::ImageU8 ? "H x W x 3" : "C x H x W") << ")\n";
  for (const auto& [shape, count] : st.shapes) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-18s %8llu\n", shape.c_str(), static_cast<unsigned long long>(count));
    o << line;
  }

  o << "control:    " << st.with_control << " of " << st.records << " records with metadata";
  if (st.with_control > 0)
    o << "; original h " << range_text(st.orig_h) << " w " << range_text(st.orig_w) << "; crop h "
      << range_text(st.crop_h) << " w " << range_text(st.crop_w);
  o << "\n";
  o << "flipped:    " << st.flipped << " of " << st.records << " (" << fmt("%.1f", 100.0 * st.flipped / n) << "%)\n";

  o << "channels:   " << (st.kind == PayloadKind::ImageU8 ? "pixel values in [0,1]" : "latent values") << "\n";
  o << "  channel       mean          std\n";
  for (std::size_t k = 0; k < st.channels.size(); ++k) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-7zu %12.6g %12.6g\n", k, st.channels[k].mean, st.channels[k].std());
    o << line;
  }
  {
    char line[160];
    std::snprintf(line, sizeof line, "  %-7s %12.6g %12.6g\n", "all", st.all.mean, st.all.std());
    o << line;
  }
  if (st.non_finite > 0) o << "non-finite: " << st.non_finite << " latent values left out\n";
  if (st.suggested_scale_factor)
    o << "suggested scale factor: " << fmt("%.6g", *st.suggested_scale_factor)
      << " (= 1/std over all latent values, LDM's scale_factor convention; a suggestion, "
         "not applied)\n";
  return o.str();
}

std::string stats_json(const DatasetStats& st) {
  using json = nlohmann::ordered_json;
  auto mmm = [](const MinMeanMax& m) -> json {
    if (m.count == 0) return nullptr;
    return {{"min", m.min}, {"mean", m.mean()}, {"max", m.max}};
  };
  json labels = json::object();
  for (const auto& [label, count] : st.labels) labels[std::to_string(label)] = count;
  json shapes = json::object();
  for (const auto& [shape, count] : st.shapes) shapes[shape] = count;
  json channels = json::array();
  for (const Moments& m : st.channels) channels.push_back({{"mean", m.mean}, {"std", m.std()}});
  json j = {
      {"directory", st.dir},
      {"shards", st.shards},
      {"records", st.records},
      {"unreadable_records", st.unreadable_records},
      {"kind", to_string(st.kind)},
      {"encoder", st.encoder},
      {"dataset", st.dataset},
      {"labels", labels},
      {"captions", {{"count", st.captioned}, {"words", mmm(st.caption_words)}, {"chars", mmm(st.caption_chars)}}},
      {"shapes", shapes},
      {"shape_order", st.kind == PayloadKind::ImageU8 ? "HxWx3" : "CxHxW"},
      {"control",
       {{"records_with_metadata", st.with_control},
        {"orig_h", mmm(st.orig_h)},
        {"orig_w", mmm(st.orig_w)},
        {"crop_h", mmm(st.crop_h)},
        {"crop_w", mmm(st.crop_w)},
        {"flipped", st.flipped},
        {"flip_fraction", st.records > 0 ? static_cast<double>(st.flipped) / st.records : 0.0}}},
      {"channel_values", st.kind == PayloadKind::ImageU8 ? "pixels in [0,1]" : "latent"},
      {"channels", channels},
      {"all_channels", {{"mean", st.all.mean}, {"std", st.all.std()}, {"count", st.all.count}}},
      {"non_finite_values", st.non_finite},
      {"suggested_scale_factor", st.suggested_scale_factor ? json(*st.suggested_scale_factor) : json(nullptr)},
  };
  return j.dump(2);
}

}  // namespace ldm::data
