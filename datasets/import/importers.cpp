// ImageNet-folder and WebDataset importers (contracts in importers.h).
#include "datasets/import/importers.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "datasets/format/shard.h"
#include "datasets/images/image_decode.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"

namespace ldm::data {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxSkippedNames = 1000;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_image_extension(const std::string& ext_with_dot) {
  const std::string e = lower(ext_with_dot);
  return e == ".jpeg" || e == ".jpg" || e == ".png" || e == ".webp";
}

std::string strip(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(path + ": read error");
  return bytes;
}

// decode_image's messages say "truncated" for cut-off files; everything else is "unreadable".
std::string classify(const std::string& message) {
  return message.find("truncated") != std::string::npos ? "truncated" : "unreadable";
}

// A fixed pool of std::threads; run(n, fn) calls fn(i) for i in [0, n) across the pool and the
// caller, and returns when all are done. The first exception thrown by fn is rethrown by run().
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    const int extra = std::max(0, threads - 1);  // the calling thread works too
    for (int t = 0; t < extra; ++t) threads_.emplace_back([this] { loop(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void run(std::size_t n, const std::function<void(std::size_t)>& fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      next_ = 0;
      active_ = threads_.size();
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return active_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work() {
    for (;;) {
      const std::size_t i = next_.fetch_add(1);
      if (i >= n_) return;
      try {
        (*fn_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        next_ = n_;  // stop handing out work
      }
    }
  }
  void loop() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work();
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) done_cv_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(std::size_t)>* fn_ = nullptr;
  std::size_t n_ = 0, active_ = 0;
  std::atomic<std::size_t> next_{0};
  std::exception_ptr error_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

// What one output shard holds, also kept in DIR/.import/<shard>.json so a resumed run can report
// the counts of the shards it reuses.
struct ShardStats {
  std::uint64_t inputs = 0, kept = 0, bytes = 0;
  std::map<std::string, std::uint64_t> skipped;
  std::vector<std::string> names;
};

nlohmann::json to_json(const ShardStats& s) {
  return {{"inputs", s.inputs}, {"kept", s.kept}, {"bytes", s.bytes}, {"skipped", s.skipped}, {"names", s.names}};
}

ShardStats stats_from_json(const nlohmann::json& j) {
  ShardStats s;
  s.inputs = j.value("inputs", std::uint64_t{0});
  s.kept = j.value("kept", std::uint64_t{0});
  s.bytes = j.value("bytes", std::uint64_t{0});
  if (j.contains("skipped")) s.skipped = j.at("skipped").get<std::map<std::string, std::uint64_t>>();
  if (j.contains("names")) s.names = j.at("names").get<std::vector<std::string>>();
  return s;
}

std::string sidecar_path(const std::string& dir, const std::string& shard_name) {
  return dir + "/.import/" + shard_name + ".json";
}

// True when `path` is a complete shard of this import. A shard that does not open is removed
// (redone); one of another import is an error.
bool reusable_shard(const std::string& path, const std::string& identity) {
  if (!path_exists(path)) return false;
  std::string found;
  try {
    const ShardReader reader(path);
    found = reader.header().dataset;
  } catch (const Error& e) {
    log::warn("redoing incomplete shard: " + std::string(e.what()));
    std::error_code ec;
    fs::remove(path, ec);
    return false;
  }
  if (found != identity)
    throw DataError(path + ": holds dataset '" + found + "', not this import's '" + identity +
                    "' (other source or options); use another --out directory");
  return true;
}

// Tests: LDM_IMPORT_KILL_AFTER=N SIGKILLs the import right after its N-th newly written shard, so
// that a test stops it at a known point rather than racing it.
void after_shard_written() {
  static const long kill_after = [] {
    const char* v = std::getenv("LDM_IMPORT_KILL_AFTER");
    return v ? std::atol(v) : 0L;
  }();
  static std::atomic<long> written{0};
  if (kill_after > 0 && ++written == kill_after) ::raise(SIGKILL);
}

// Counts of a reused shard: its sidecar, else its record count (skips unknown).
ShardStats reused_stats(const std::string& dir, const std::string& name, int views, std::uint64_t inputs_if_known) {
  const std::string side = sidecar_path(dir, name);
  if (path_exists(side)) {
    try {
      return stats_from_json(nlohmann::json::parse(read_file(side)));
    } catch (const std::exception& e) {
      log::warn(side + ": unreadable (" + e.what() + "); counting records instead");
    }
  }
  ShardStats s;
  const ShardReader reader(dir + "/" + name);
  s.kept = reader.size() / static_cast<std::uint64_t>(std::max(1, views));
  s.inputs = inputs_if_known ? inputs_if_known : s.kept;
  return s;
}

// Shared progress state; report() is called after each image / tar.
class Progress {
 public:
  Progress(const ImportOptions& o, const char* unit, std::uint64_t total) : options_(o), start_(Clock::now()) {
    p_.unit = unit;
    p_.total = total;
  }
  void add(std::uint64_t done, std::uint64_t kept, std::uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    p_.done += done;
    p_.images_kept += kept;
    p_.bytes_read += bytes;
    p_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    if (options_.progress) options_.progress(p_);
  }
  void skip(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    if (options_.on_skip) options_.on_skip(text);
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  const ImportOptions& options_;
  Clock::time_point start_;
  std::mutex mu_;
  ImportProgress p_;
};

// The records of one input image (views of it), or why it was skipped.
struct ImageResult {
  std::vector<Record> records;
  std::string reason, text;  // set when skipped
};

// Decodes and crops one image. `orig_h/orig_w` > 0 replace the decoded size as the recorded
// original size (WebDataset's json), with the crop box scaled to match.
ImageResult make_records(const std::uint8_t* data, std::size_t size, const std::string& source, std::uint64_t image_id,
                         std::int32_t label, const std::string& caption, const ImportOptions& o, int orig_h = 0,
                         int orig_w = 0) {
  ImageResult out;
  RgbImage image;
  try {
    image = decode_image(data, size, source);
  } catch (const DataError& e) {
    out.reason = classify(e.what());
    out.text = e.what();
    return out;
  }
  if (image.height < 1 || image.width < 1) {
    out.reason = "unreadable";
    out.text = source + ": empty image";
    return out;
  }
  CropOptions crop_options = o.crop;
  if (!o.buckets.empty()) {
    const Bucket& b = o.buckets[nearest_bucket(o.buckets, image.height, image.width)];
    crop_options.height = b.height;
    crop_options.width = b.width;
  }
  for (int v = 0; v < o.views; ++v) {
    const AugmentKey key{o.seed, 0, image_id, static_cast<std::uint32_t>(v)};
    CropResult crop = crop_image(image, crop_options, key);
    Record r;
    r.id = image_id * static_cast<std::uint64_t>(o.views) + static_cast<std::uint64_t>(v);
    r.label = label;
    r.caption = caption;
    r.control = crop.control;
    if (orig_h > 0 && orig_w > 0 && (orig_h != image.height || orig_w != image.width)) {
      const double sy = static_cast<double>(orig_h) / image.height;
      const double sx = static_cast<double>(orig_w) / image.width;
      ControlMeta& c = r.control;
      c.crop_top = std::min(orig_h - 1, static_cast<int>(std::lround(c.crop_top * sy)));
      c.crop_left = std::min(orig_w - 1, static_cast<int>(std::lround(c.crop_left * sx)));
      c.crop_h = std::clamp(static_cast<int>(std::lround(c.crop_h * sy)), 1, orig_h - c.crop_top);
      c.crop_w = std::clamp(static_cast<int>(std::lround(c.crop_w * sx)), 1, orig_w - c.crop_left);
      c.orig_h = orig_h;
      c.orig_w = orig_w;
    }
    r.shape = {crop.image.height, crop.image.width, 3};
    r.payload = std::move(crop.image.pixels);
    out.records.push_back(std::move(r));
  }
  return out;
}

void note_skip(ShardStats& s, const ImageResult& r) {
  ++s.skipped[r.reason];
  if (s.names.size() < kMaxSkippedNames) s.names.push_back(r.text);
}

void check_options(const ImportOptions& o) {
  if (o.crop.size < 1 || o.crop.size > 8192) throw Error("resolution must be in 1..8192");
  if (o.views < 1 || o.views > 1024) throw Error("views must be in 1..1024");
  if (o.shard_records < 1) throw Error("shard records must be >= 1");
  if (!(o.crop.flip_prob >= 0.0 && o.crop.flip_prob <= 1.0)) throw Error("flip probability must be in [0, 1]");
}

int thread_count(const ImportOptions& o) {
  if (o.threads > 0) return o.threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

nlohmann::json options_json(const ImportOptions& o) {
  nlohmann::json j = {{"resolution", o.crop.size},
                      {"crop", crop_strategy_name(o.crop.strategy)},
                      {"flip", o.crop.flip_prob},
                      {"views", o.views},
                      {"seed", o.seed}};
  if (!o.buckets.empty()) {
    nlohmann::json b = nlohmann::json::array();
    for (const Bucket& x : o.buckets) b.push_back({x.height, x.width});
    j["buckets"] = b;
  }
  if (o.encoder) {  // absent for image shards, so image imports keep their identities
    j["encoder"] = o.encoder->identity();
    j["text_encoder"] = o.encoder->text_identity();
  }
  return j;
}

ShardHeader import_header(const ImportOptions& o, const std::string& identity) {
  ShardHeader h{kShardFormatVersion, PayloadKind::ImageU8, "none", identity};
  if (o.encoder) {
    h.kind = o.encoder->kind();
    h.encoder = o.encoder->identity();
    h.text_encoder = o.encoder->text_identity();
  }
  h.views = o.views;
  return h;
}

// Runs the shard's kept records through the encoder (if any); returns them in order.
std::vector<Record> encoded(const ImportOptions& o, std::vector<Record> records, const std::vector<std::string>& keys,
                            const std::string& shard) {
  if (o.encoder && !records.empty()) o.encoder->encode(records, keys, shard);
  return records;
}

// Refuses a directory whose dataset.json names another import.
void check_manifest(const std::string& dir, const std::string& identity) {
  const std::string path = dir + "/dataset.json";
  if (!path_exists(path)) return;
  std::string found;
  try {
    found = nlohmann::json::parse(read_file(path)).value("identity", std::string());
  } catch (const std::exception& e) {
    throw DataError(path + ": unreadable (" + e.what() + ")");
  }
  if (found != identity)
    throw DataError(dir + " holds dataset '" + found + "', not this import's '" + identity +
                    "' (other source or options); use another --out directory");
}

void add_stats(ImportSummary& sum, const ShardStats& s) {
  sum.inputs += s.inputs;
  sum.images_kept += s.kept;
  sum.bytes_read += s.bytes;
  for (const auto& [reason, n] : s.skipped) sum.skipped[reason] += n;
  for (const auto& name : s.names)
    if (sum.skipped_names.size() < kMaxSkippedNames) sum.skipped_names.push_back(name);
}

void write_manifest(const std::string& dir, const ImportSummary& sum, nlohmann::json extra) {
  nlohmann::json j = std::move(extra);
  j["identity"] = sum.identity;
  j["source"] = sum.source;
  j["counts"] = {{"inputs", sum.inputs},
                 {"images_kept", sum.images_kept},
                 {"records", sum.records},
                 {"skipped", sum.skipped},
                 {"shards", sum.shards}};
  j["skipped_names"] = sum.skipped_names;
  write_file_atomic(dir + "/dataset.json", j.dump(2) + "\n");
}

std::string shard_name(const std::string& prefix, std::size_t k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05zu.ldms", k);
  return prefix + buf;
}

// ---- ImageNet ---------------------------------------------------------------------------

struct ImageNetItem {
  std::string rel;  // path relative to the split directory
  std::int32_t label = -1;
};

std::vector<std::string> image_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_image_extension(e.path().extension().string()))
      out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool has_subdirectories(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) return true;
  return false;
}

std::int32_t parse_label(const std::string& token, const std::map<std::string, std::int32_t>& index,
                         const std::string& where) {
  if (!token.empty() && std::all_of(token.begin(), token.end(), ::isdigit)) {
    const long long v = std::stoll(token);
    if (v > INT32_MAX) throw DataError(where + ": label " + token + " out of range");
    return static_cast<std::int32_t>(v);
  }
  const auto it = index.find(token);
  if (it == index.end())
    throw DataError(where + ": '" + token + "' is neither a class index nor a wnid of ROOT/train" +
                    (index.empty() ? " (ROOT/train not found: use class indices)" : ""));
  return it->second;
}

std::string stem(const std::string& file) {
  const auto dot = file.rfind('.');
  return dot == std::string::npos ? file : file.substr(0, dot);
}

std::vector<ImageNetItem> imagenet_items(const fs::path& root, const ImageNetOptions& in,
                                         std::vector<std::string>& classes) {
  const fs::path split = root / in.split;
  if (!fs::is_directory(split)) throw Error(split.string() + ": no such directory");
  const fs::path train = root / "train";
  if (fs::is_directory(train)) classes = imagenet_classes(train.string());
  std::map<std::string, std::int32_t> index;
  for (std::size_t i = 0; i < classes.size(); ++i) index[classes[i]] = static_cast<std::int32_t>(i);

  std::vector<ImageNetItem> items;
  if (in.split == "train" || has_subdirectories(split)) {
    if (classes.empty()) {  // val/<wnid>/ without train/: index the val folders
      classes = imagenet_classes(split.string());
      for (std::size_t i = 0; i < classes.size(); ++i) index[classes[i]] = static_cast<std::int32_t>(i);
    }
    for (const auto& e : fs::directory_iterator(split)) {
      if (!e.is_directory()) continue;
      const std::string wnid = e.path().filename().string();
      const auto it = index.find(wnid);
      if (it == index.end()) throw DataError(e.path().string() + ": class folder not among ROOT/train's classes");
      for (const auto& f : image_files(e.path())) items.push_back({wnid + "/" + f, it->second});
    }
  } else {
    if (in.val_labels.empty()) throw Error(split.string() + " is flat: give its labels with --val-labels FILE");
    for (const auto& f : image_files(split)) items.push_back({f, -1});
    std::sort(items.begin(), items.end(), [](const ImageNetItem& a, const ImageNetItem& b) { return a.rel < b.rel; });
    std::ifstream file(in.val_labels);
    if (!file) throw Error(in.val_labels + ": cannot open labels file");
    std::map<std::string, std::size_t> by_stem;
    for (std::size_t i = 0; i < items.size(); ++i) {
      by_stem[items[i].rel] = i;
      by_stem[stem(items[i].rel)] = i;
    }
    std::string line;
    std::size_t line_no = 0, sequential = 0, named = 0;
    while (std::getline(file, line)) {
      ++line_no;
      line = strip(line);
      if (line.empty() || line[0] == '#') continue;
      const std::string where = in.val_labels + ":" + std::to_string(line_no);
      std::istringstream s(line);
      std::string a, b, extra;
      s >> a >> b >> extra;
      if (!extra.empty()) throw DataError(where + ": expected '<file> <label>' or '<label>'");
      if (b.empty()) {
        if (sequential >= items.size())
          throw DataError(where + ": more labels than the " + std::to_string(items.size()) + " images in " +
                          split.string());
        items[sequential++].label = parse_label(a, index, where);
      } else {
        const std::string name = fs::path(a).filename().string();
        auto it = by_stem.find(name);
        if (it == by_stem.end()) it = by_stem.find(stem(name));
        if (it == by_stem.end()) continue;  // a label for an image not present: ignore
        items[it->second].label = parse_label(b, index, where);
        ++named;
      }
    }
    if (sequential > 0 && named > 0) throw DataError(in.val_labels + ": mixes '<file> <label>' and '<label>' lines");
    for (const auto& item : items)
      if (item.label < 0) throw DataError(in.val_labels + ": no label for " + (split / item.rel).string());
  }
  std::sort(items.begin(), items.end(), [](const ImageNetItem& a, const ImageNetItem& b) { return a.rel < b.rel; });
  return items;
}

// ---- WebDataset -------------------------------------------------------------------------

// The pre-resize size from a downloader's json, {0, 0} when absent.
std::pair<int, int> json_original_size(const std::string& text) {
  if (text.empty()) return {0, 0};
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return {0, 0};
  const auto get = [&](const char* h, const char* w) -> std::pair<int, int> {
    if (j.contains(h) && j.contains(w) && j[h].is_number() && j[w].is_number()) {
      const double hv = j[h].get<double>(), wv = j[w].get<double>();
      if (hv >= 1 && wv >= 1 && hv < 1e9 && wv < 1e9) return {static_cast<int>(hv), static_cast<int>(wv)};
    }
    return {0, 0};
  };
  auto hw = get("original_height", "original_width");
  if (hw.first == 0) hw = get("height", "width");
  return hw;
}

}  // namespace

std::uint64_t ImportSummary::skipped_total() const {
  std::uint64_t n = 0;
  for (const auto& [reason, count] : skipped) n += count;
  return n;
}

std::vector<std::string> imagenet_classes(const std::string& train_dir) {
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(train_dir))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  return classes;
}

std::vector<std::string> expand_braces(const std::string& pattern) {
  const auto open = pattern.find('{');
  if (open == std::string::npos) {
    if (pattern.find('}') != std::string::npos) throw Error("unbalanced '}' in '" + pattern + "'");
    return {pattern};
  }
  const auto close = pattern.find('}', open);
  if (close == std::string::npos) throw Error("unbalanced '{' in '" + pattern + "'");
  const std::string body = pattern.substr(open + 1, close - open - 1);
  const std::string prefix = pattern.substr(0, open);
  std::vector<std::string> choices;
  const auto dots = body.find("..");
  if (dots != std::string::npos) {
    const std::string a = body.substr(0, dots), b = body.substr(dots + 2);
    const auto digits = [](const std::string& s) {
      return !s.empty() && s.size() < 19 && std::all_of(s.begin(), s.end(), ::isdigit);
    };
    if (!digits(a) || !digits(b)) throw Error("bad range '{" + body + "}' in '" + pattern + "'");
    const long long lo = std::stoll(a), hi = std::stoll(b);
    if (hi < lo) throw Error("empty range '{" + body + "}' in '" + pattern + "'");
    if (hi - lo > 10000000) throw Error("range '{" + body + "}' too large");
    const std::size_t width = (a.size() > 1 && a[0] == '0') || a.size() == b.size() ? a.size() : 0;
    for (long long v = lo; v <= hi; ++v) {
      std::string s = std::to_string(v);
      if (s.size() < width) s.insert(0, width - s.size(), '0');
      choices.push_back(s);
    }
  } else {
    std::size_t start = 0;
    for (;;) {
      const auto comma = body.find(',', start);
      choices.push_back(body.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  const std::vector<std::string> rests = expand_braces(pattern.substr(close + 1));
  std::vector<std::string> out;
  for (const auto& c : choices)
    for (const auto& r : rests) out.push_back(prefix + c + r);
  return out;
}

ImportSummary import_imagenet(const std::string& root, const std::string& out_dir, const ImageNetOptions& in,
                              const ImportOptions& o) {
  check_options(o);
  if (in.split != "train" && in.split != "val") throw Error("split must be 'train' or 'val', got '" + in.split + "'");
  if (!fs::is_directory(root)) throw Error(root + ": no such directory");
  std::vector<std::string> classes;
  const std::vector<ImageNetItem> items = imagenet_items(root, in, classes);
  if (items.empty()) throw Error(root + "/" + in.split + ": no images found");
  const fs::path split = fs::path(root) / in.split;

  // The identity covers the options that change the bytes and the input list itself.
  std::string list;
  for (const auto& it : items) list += it.rel + "\t" + std::to_string(it.label) + "\n";
  nlohmann::json canon = options_json(o);
  canon["split"] = in.split;
  canon["shard_records"] = o.shard_records;
  canon["inputs"] = hex64(fnv1a64(list));
  ImportSummary sum;
  sum.source = "imagenet";
  sum.identity = "imagenet-" + in.split + "-" + hex64(fnv1a64(canon.dump()));
  sum.out_dir = out_dir;
  make_dirs(out_dir + "/.import");
  check_manifest(out_dir, sum.identity);

  const std::size_t per = static_cast<std::size_t>(o.shard_records);
  const std::size_t shards = (items.size() + per - 1) / per;
  sum.shards = shards;
  Progress progress(o, "images", items.size());
  WorkerPool pool(thread_count(o));
  const ShardHeader header = import_header(o, sum.identity);
  for (std::size_t k = 0; k < shards; ++k) {
    const std::size_t begin = k * per, end = std::min(items.size(), begin + per);
    const std::string name = shard_name("imagenet-" + in.split, k);
    const std::string path = out_dir + "/" + name;
    if (reusable_shard(path, sum.identity)) {
      const ShardStats s = reused_stats(out_dir, name, o.views, end - begin);
      add_stats(sum, ShardStats{s.inputs, s.kept, 0, s.skipped, s.names});
      ++sum.shards_reused;
      progress.add(end - begin, s.kept, 0);
      continue;
    }
    std::vector<ImageResult> results(end - begin);
    std::vector<std::uint64_t> bytes(end - begin, 0);
    pool.run(end - begin, [&](std::size_t j) {
      const std::size_t i = begin + j;
      const std::string file = (split / items[i].rel).string();
      const std::string source = in.split + "/" + items[i].rel;
      std::vector<std::uint8_t> data;
      try {
        data = read_bytes(file);
      } catch (const DataError& e) {
        results[j].reason = "unreadable";
        results[j].text = e.what();
      }
      if (results[j].reason.empty())
        results[j] = make_records(data.data(), data.size(), source, i, items[i].label, "", o);
      bytes[j] = data.size();
      if (!results[j].reason.empty()) progress.skip(results[j].reason + ": " + results[j].text);
      progress.add(1, results[j].reason.empty() ? 1 : 0, data.size());
    });
    ShardStats s;
    std::vector<Record> kept;
    std::vector<std::string> keys;
    for (std::size_t j = 0; j < results.size(); ++j) {
      ++s.inputs;
      s.bytes += bytes[j];
      if (!results[j].reason.empty()) {
        note_skip(s, results[j]);
        continue;
      }
      ++s.kept;
      for (Record& r : results[j].records) {
        kept.push_back(std::move(r));
        keys.push_back(items[begin + j].rel);
      }
    }
    ShardWriter writer(path, header);
    for (const Record& r : encoded(o, std::move(kept), keys, name)) writer.append(r);
    // The sidecar goes first: a shard that exists always has its counts.
    write_file_atomic(sidecar_path(out_dir, name), to_json(s).dump() + "\n");
    writer.finish();
    after_shard_written();
    add_stats(sum, s);
    ++sum.shards_written;
  }
  sum.records = sum.images_kept * static_cast<std::uint64_t>(o.views);
  sum.seconds = progress.seconds();
  nlohmann::json extra = {
      {"root", fs::absolute(root).string()}, {"split", in.split}, {"options", options_json(o)}, {"classes", classes}};
  extra["options"]["shard_records"] = o.shard_records;
  if (!in.val_labels.empty()) extra["val_labels"] = in.val_labels;
  write_manifest(out_dir, sum, extra);
  return sum;
}

namespace {

// The records of one tar's samples (an image and a caption each): the others are counted in `s`
// and reported; record i of sample j gets id (k << 32) | j.
void wds_records(const std::vector<WdsSample>& samples, std::size_t k, const std::string& tar_name,
                 const ImportOptions& o, ShardStats& s, Progress& progress, std::vector<Record>& kept,
                 std::vector<std::string>& keys) {
  for (std::size_t j = 0; j < samples.size(); ++j) {
    const WdsSample& smp = samples[j];
    ++s.inputs;
    const std::string source = tar_name + ":" + smp.key;
    ImageResult r;
    if (!smp.has_image) {
      r.reason = "missing image";
      r.text = source + ": no .jpg/.jpeg/.png/.webp member";
    } else if (!smp.has_caption) {
      r.reason = "missing caption";
      r.text = source + ": no .txt member";
    } else {
      const auto [oh, ow] = json_original_size(smp.json);
      const std::uint64_t image_id = (static_cast<std::uint64_t>(k) << 32) | j;
      r = make_records(smp.image.data(), smp.image.size(), tar_name + ":" + smp.image_member, image_id, -1, smp.caption,
                       o, oh, ow);
    }
    if (!r.reason.empty()) {
      note_skip(s, r);
      progress.skip(r.reason + ": " + r.text);
      continue;
    }
    ++s.kept;
    for (Record& rec : r.records) {
      kept.push_back(std::move(rec));
      keys.push_back(smp.key);
    }
  }
}

}  // namespace

std::vector<WdsSample> read_webdataset_tar(const std::string& path, std::string& error) {
  std::vector<WdsSample> samples;
  std::unordered_map<std::string, std::size_t> by_key;
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  // The compressions libarchive decodes itself; never a filter that would run an external program.
  for (auto* support : {archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                        archive_read_support_filter_xz, archive_read_support_filter_zstd})
    if (support(a.get()) != ARCHIVE_OK) archive_clear_error(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    error = path + ": " + archive_error_string(a.get());
    return samples;
  }
  archive_entry* entry = nullptr;
  int r;
  std::vector<std::uint8_t> data;
  while ((r = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    const std::string name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    data.clear();
    const la_int64_t size = archive_entry_size(entry);
    if (size > kMaxTarMemberBytes) {
      error = path + ": member '" + name + "' declares " + std::to_string(size) + " bytes, more than the " +
              std::to_string(kMaxTarMemberBytes >> 20) + " MiB an image, caption or JSON may have";
      return samples;
    }
    // Grown as the bytes arrive: the header's size is only a claim until they do.
    if (size > 0) data.reserve(static_cast<std::size_t>(std::min<la_int64_t>(size, la_int64_t{1} << 24)));
    std::uint8_t buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf, sizeof buf)) > 0) data.insert(data.end(), buf, buf + n);
    if (n < 0) {
      error = path + ": " + name + ": " + archive_error_string(a.get());
      return samples;
    }
    const auto slash = name.rfind('/');
    const auto dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
    if (dot == std::string::npos) continue;  // no extension: not part of a sample
    const std::string key = name.substr(0, dot);
    const std::string ext = lower(name.substr(dot));
    auto [it, fresh] = by_key.emplace(key, samples.size());
    if (fresh) samples.push_back(WdsSample{key, {}, {}, false, false, {}, {}});
    WdsSample& s = samples[it->second];
    if (!s.has_image && is_image_extension(ext)) {
      s.has_image = true;
      s.image = data;
      s.image_member = name;
    } else if (ext == ".txt") {
      s.has_caption = true;
      s.caption = strip(std::string(data.begin(), data.end()));
    } else if (ext == ".json") {
      s.json.assign(data.begin(), data.end());
    }
  }
  if (r != ARCHIVE_EOF) error = path + ": " + archive_error_string(a.get());
  return samples;
}

ImportSummary import_webdataset(const std::string& pattern, const std::string& out_dir, const ImportOptions& o) {
  check_options(o);
  const std::vector<std::string> tars = expand_braces(pattern);
  if (tars.size() > 0xffffffffull) throw Error("too many tar files");
  std::string list;
  for (const auto& t : tars) list += fs::path(t).filename().string() + "\n";
  nlohmann::json canon = options_json(o);
  canon["inputs"] = hex64(fnv1a64(list));
  ImportSummary sum;
  sum.source = "webdataset";
  sum.identity = "webdataset-" + hex64(fnv1a64(canon.dump()));
  sum.out_dir = out_dir;
  sum.shards = tars.size();
  make_dirs(out_dir + "/.import");
  check_manifest(out_dir, sum.identity);

  const ShardHeader header = import_header(o, sum.identity);
  Progress progress(o, "tars", tars.size());
  std::vector<ShardStats> per_tar(tars.size());
  std::vector<char> reused(tars.size(), 0);
  WorkerPool pool(std::min<int>(thread_count(o), static_cast<int>(std::max<std::size_t>(1, tars.size()))));
  pool.run(tars.size(), [&](std::size_t k) {
    const std::string name = shard_name("wds", k);
    const std::string path = out_dir + "/" + name;
    if (reusable_shard(path, sum.identity)) {
      per_tar[k] = reused_stats(out_dir, name, o.views, 0);
      per_tar[k].bytes = 0;
      reused[k] = 1;
      progress.add(1, per_tar[k].kept, 0);
      return;
    }
    ShardStats s;
    if (!path_exists(tars[k])) {
      ImageResult missing{{}, "missing tar", tars[k] + ": no such file"};
      note_skip(s, missing);
      progress.skip(missing.reason + ": " + missing.text);
      // No shard is written, so a later run with the tar present imports it.
      per_tar[k] = s;
      progress.add(1, 0, 0);
      return;
    }
    std::error_code ec;
    s.bytes = fs::file_size(tars[k], ec);
    std::string tar_error;
    const std::vector<WdsSample> samples = read_webdataset_tar(tars[k], tar_error);
    if (!tar_error.empty()) {
      ImageResult bad{{}, "unreadable tar", tar_error};
      note_skip(s, bad);
      progress.skip(bad.reason + ": " + bad.text);
    }
    std::vector<Record> kept;
    std::vector<std::string> keys;
    wds_records(samples, k, fs::path(tars[k]).filename().string(), o, s, progress, kept, keys);
    ShardWriter writer(path, header);
    for (const Record& rec : encoded(o, std::move(kept), keys, name)) writer.append(rec);
    write_file_atomic(sidecar_path(out_dir, name), to_json(s).dump() + "\n");
    writer.finish();
    after_shard_written();
    per_tar[k] = s;
    progress.add(1, s.kept, s.bytes);
  });
  for (std::size_t k = 0; k < tars.size(); ++k) {
    add_stats(sum, per_tar[k]);
    if (reused[k]) {
      ++sum.shards_reused;
    } else if (path_exists(out_dir + "/" + shard_name("wds", k))) {
      ++sum.shards_written;
    }
  }
  sum.records = sum.images_kept * static_cast<std::uint64_t>(o.views);
  sum.seconds = progress.seconds();
  nlohmann::json extra = {{"pattern", pattern}, {"tars", tars.size()}, {"options", options_json(o)}};
  write_manifest(out_dir, sum, extra);
  return sum;
}

std::string format_import_summary(const ImportSummary& s, std::size_t max_names) {
  std::ostringstream out;
  out << "source:      " << s.source << " (" << s.identity << ")\n";
  out << "directory:   " << s.out_dir << "\n";
  out << "inputs:      " << s.inputs << "\n";
  out << "kept:        " << s.images_kept << " images, " << s.records << " records\n";
  out << "skipped:     " << s.skipped_total() << "\n";
  for (const auto& [reason, n] : s.skipped) out << "  " << reason << ": " << n << "\n";
  for (std::size_t i = 0; i < s.skipped_names.size() && i < max_names; ++i) out << "  - " << s.skipped_names[i] << "\n";
  if (s.skipped_names.size() > max_names)
    out << "  ... and " << (s.skipped_names.size() - max_names) << " more (dataset.json)\n";
  out << "shards:      " << s.shards << " (" << s.shards_written << " written, " << s.shards_reused << " reused)\n";
  char buf[128];
  std::snprintf(buf, sizeof buf, "bytes read:  %llu (%.1f MB)\n", static_cast<unsigned long long>(s.bytes_read),
                s.bytes_read / 1e6);
  out << buf;
  std::snprintf(buf, sizeof buf, "seconds:     %.3f", s.seconds);
  out << buf;
  if (s.seconds > 0 && s.shards_written > 0) {
    std::snprintf(buf, sizeof buf, " (%.1f images/s)", s.images_kept / s.seconds);
    out << buf;
  }
  out << "\n";
  return out.str();
}

}  // namespace ldm::data
