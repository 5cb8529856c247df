#include "datasets/import/synthetic.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/safe_file.h"
#include "shared/core/seeds.h"

namespace ldm::data {
namespace {

// Part of the identity: bump it whenever the rendered bytes change, so cached datasets made by
// an older renderer are not mistaken for the new ones.
constexpr int kRendererVersion = 1;

constexpr double kPi = 3.14159265358979323846;

enum Shape { Circle, Square, Triangle, Diamond, Cross, Ring, Star, Hexagon, kShapeCount };
constexpr const char* kShapeNames[kShapeCount] = {"circle", "square", "triangle", "diamond",
                                                  "cross",  "ring",   "star",     "hexagon"};

// Saturated colours only: the background is nearly grey, so an object is always told apart from
// it by colour, even when darkened (see tests/datasets/import/synthetic_test.cpp).
struct NamedColour {
  const char* name;
  float rgb[3];
};
constexpr NamedColour kColours[] = {
    {"red", {220, 35, 35}},    {"green", {40, 170, 50}},    {"blue", {40, 80, 225}},    {"yellow", {235, 210, 40}},
    {"cyan", {40, 200, 220}},  {"magenta", {210, 50, 200}}, {"orange", {245, 140, 30}}, {"purple", {130, 50, 200}},
    {"pink", {245, 110, 170}}, {"lime", {160, 230, 40}},
};
constexpr int kColourCount = sizeof kColours / sizeof kColours[0];
constexpr std::int64_t kMaxClasses = std::int64_t{kShapeCount} * kColourCount;

// Class k -> (shape, colour). Consecutive classes differ in both; classes sharing a shape
// (k = a + 8b) differ in colour because (a + b) mod 10 is distinct for b in [0, 10).
int class_shape(std::int64_t k) { return static_cast<int>(k % kShapeCount); }
const NamedColour& class_colour(std::int64_t k) { return kColours[(k % kShapeCount + k / kShapeCount) % kColourCount]; }

// SplitMix64 stream; one per (seed, purpose, record), per DESIGN.md "Randomness".
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    const std::uint64_t s = state_;
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(s);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(n)); }
  bool chance(double p) { return uniform() < p; }
  template <typename T, std::size_t N>
  const T& pick(const T (&items)[N]) {
    return items[below(N)];
  }

 private:
  std::uint64_t state_;
};

Rng stream(const SyntheticParams& p, Purpose purpose, std::int64_t counter) {
  return Rng(derive_seed(static_cast<std::uint64_t>(p.seed), purpose, static_cast<std::uint64_t>(counter)));
}

void check_param(const char* name, std::int64_t value, std::int64_t lo,
                 std::int64_t hi = std::numeric_limits<std::int64_t>::max()) {
  if (value >= lo && value <= hi) return;
  const std::string range = hi == std::numeric_limits<std::int64_t>::max()
                                ? ">= " + std::to_string(lo)
                                : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  throw DataError(std::string("synthetic dataset: ") + name + " must be " + range + " (got " + std::to_string(value) +
                  ")");
}

void check_params(const SyntheticParams& p) {
  check_param("records", p.records, 1);
  check_param("classes", p.classes, 1, kMaxClasses);
  check_param("resolution", p.resolution, 8, 1024);
  check_param("shard_records", p.shard_records, 1);
}

// Every record block of `classes` records holds each class once, in a seed-dependent order.
std::int32_t record_label(const SyntheticParams& p, std::int64_t index) {
  Rng rng = stream(p, Purpose::SyntheticLabel, index / p.classes);
  const std::int64_t position = index % p.classes;
  std::vector<std::int32_t> order(static_cast<std::size_t>(p.classes));
  std::iota(order.begin(), order.end(), 0);
  for (std::int64_t i = 0; i <= position; ++i)  // Fisher-Yates: order[i] is final after step i
    std::swap(order[i], order[i + rng.below(p.classes - i)]);
  return order[position];
}

// Everything random about one record, in original-canvas pixel coordinates.
struct Scene {
  int shape = Circle;
  float object_rgb[3] = {};
  double brightness = 1;
  int height = 0, width = 0;  // original canvas
  float bg_from[3] = {}, bg_to[3] = {};
  double grad_x = 1, grad_y = 0, grad_min = 0, grad_span = 1;
  std::uint64_t noise_seed = 0;
  double cx = 0, cy = 0, radius = 0;  // object
  int crop_top = 0, crop_left = 0, crop_side = 0;
  bool flip = false;
};

// Offset of a crop of `side` along an axis of `extent` that keeps at least 3/4 of the object's
// radius on both sides of its centre, i.e. "most of the object".
int crop_offset(Rng& rng, double centre, double radius, int side, int extent) {
  const int lo = std::max(0, static_cast<int>(std::ceil(centre + 0.75 * radius - side)));
  const int hi = std::min(extent - side, static_cast<int>(std::floor(centre - 0.75 * radius)));
  if (hi < lo)  // tiny canvases: centre the object instead
    return std::clamp(static_cast<int>(std::lround(centre - side / 2.0)), 0, extent - side);
  return lo + static_cast<int>(rng.below(hi - lo + 1));
}

Scene plan_scene(const SyntheticParams& p, std::int64_t index, std::int32_t label) {
  Scene s;
  const double res = static_cast<double>(p.resolution);

  Rng canvas = stream(p, Purpose::SyntheticCanvas, index);
  const double min_side = std::max(res / 2, 4.0), max_side = 3 * res;
  s.height = static_cast<int>(std::lround(canvas.uniform(min_side, max_side)));
  const double aspect = std::exp(canvas.uniform(std::log(0.5), std::log(2.0)));  // width/height
  s.width = static_cast<int>(std::lround(std::clamp(s.height * aspect, min_side, max_side)));
  const double lum_from = canvas.uniform(40, 210), lum_to = canvas.uniform(40, 210);
  for (int c = 0; c < 3; ++c) {  // near-grey ends with a slight tint
    s.bg_from[c] = static_cast<float>(lum_from + canvas.uniform(-12, 12));
    s.bg_to[c] = static_cast<float>(lum_to + canvas.uniform(-12, 12));
  }
  const double angle = canvas.uniform(0, 2 * kPi);
  s.grad_x = std::cos(angle);
  s.grad_y = std::sin(angle);
  // Project the canvas corners on the gradient direction so the gradient spans the canvas.
  const double proj[4] = {0, s.grad_x * s.width, s.grad_y * s.height, s.grad_x * s.width + s.grad_y * s.height};
  s.grad_min = *std::min_element(proj, proj + 4);
  s.grad_span = std::max(1e-9, *std::max_element(proj, proj + 4) - s.grad_min);
  s.noise_seed = canvas.next();

  Rng object = stream(p, Purpose::SyntheticObject, index);
  const int short_side = std::min(s.height, s.width);
  s.shape = class_shape(label);
  s.brightness = object.uniform(0.7, 1.2);
  for (int c = 0; c < 3; ++c) s.object_rgb[c] = class_colour(label).rgb[c] * static_cast<float>(s.brightness);
  s.radius = object.uniform(0.125, 0.3) * short_side;
  s.cx = object.uniform(s.radius, s.width - s.radius);
  s.cy = object.uniform(s.radius, s.height - s.radius);

  Rng crop = stream(p, Purpose::SyntheticCrop, index);
  const int side_lo = std::min(short_side, static_cast<int>(std::ceil(std::max(2.2 * s.radius, 0.5 * short_side))));
  s.crop_side = side_lo + static_cast<int>(crop.below(short_side - side_lo + 1));
  s.crop_left = crop_offset(crop, s.cx, s.radius, s.crop_side, s.width);
  s.crop_top = crop_offset(crop, s.cy, s.radius, s.crop_side, s.height);

  s.flip = stream(p, Purpose::SyntheticFlip, index).chance(0.5);
  return s;
}

// Shapes in coordinates normalised by the object radius (v points down). All are symmetric
// under u -> -u, so a flip never changes which shape a class draws.
bool inside_shape(int shape, double u, double v) {
  const double au = std::fabs(u), av = std::fabs(v), d2 = u * u + v * v;
  switch (shape) {
    case Circle:
      return d2 <= 1;
    case Square:
      return au <= 0.8 && av <= 0.8;
    case Triangle:
      return v >= -0.95 && v <= 0.75 && au <= (v + 0.95) * 0.55;  // apex up
    case Diamond:
      return au + av <= 1;
    case Cross:
      return (au <= 0.28 && av <= 0.95) || (av <= 0.28 && au <= 0.95);
    case Ring:
      return d2 <= 1 && d2 >= 0.36;
    case Hexagon:
      return av <= 0.866 && 1.732 * au + av <= 1.732;
    case Star: {
      if (d2 > 1) return false;
      // Fold the angle into [0, 36°] from the nearest tip, then test against the edge from the
      // tip (1, 0) to the inner vertex at radius 0.45, angle 36°.
      const double sector = 2 * kPi / 5;
      double a = std::fmod(std::atan2(au, -v), sector);
      a = std::min(a, sector - a);
      const double rho = std::sqrt(d2), px = rho * std::cos(a), py = rho * std::sin(a);
      const double ix = 0.45 * std::cos(sector / 2), iy = 0.45 * std::sin(sector / 2);
      return (ix - 1) * py - iy * (px - 1) >= 0;  // same side as the centre
    }
  }
  return false;
}

// Draws the crop window of the original canvas: u8 HWC RGB, crop_side^2 pixels.
std::vector<std::uint8_t> draw_crop(const Scene& s) {
  const int side = s.crop_side;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(side) * side * 3);
  const double x0 = s.cx - s.radius, x1 = s.cx + s.radius;
  const double y0 = s.cy - s.radius, y1 = s.cy + s.radius;
  const float dt = static_cast<float>(s.grad_x / s.grad_span);  // gradient step per pixel
  float bg_step[3];
  for (int c = 0; c < 3; ++c) bg_step[c] = s.bg_to[c] - s.bg_from[c];
  std::uint8_t* px = out.data();
  for (int y = s.crop_top; y < s.crop_top + side; ++y) {
    const double fy = y + 0.5;
    const bool row_hits = fy >= y0 && fy <= y1;
    float t = static_cast<float>(((s.crop_left + 0.5) * s.grad_x + fy * s.grad_y - s.grad_min) / s.grad_span);
    for (int x = s.crop_left; x < s.crop_left + side; ++x, px += 3, t += dt) {
      const double fx = x + 0.5;
      const bool in_object =
          row_hits && fx >= x0 && fx <= x1 && inside_shape(s.shape, (fx - s.cx) / s.radius, (fy - s.cy) / s.radius);
      // Noise hashes the canvas position, so the canvas does not depend on where it is cropped.
      const std::uint64_t h =
          mix64(s.noise_seed ^ (static_cast<std::uint64_t>(y) << 32 | static_cast<std::uint32_t>(x)));
      for (int c = 0; c < 3; ++c) {
        const float base = in_object ? s.object_rgb[c] : s.bg_from[c] + bg_step[c] * t;
        const int noise = static_cast<int>((h >> (8 * c)) & 15) - 8;  // uniform in [-8, 7]
        px[c] = static_cast<std::uint8_t>(std::clamp(static_cast<int>(base + 0.5f) + noise, 0, 255));
      }
    }
  }
  return out;
}

// Taps resampling `in` pixels to `out`: area averaging when shrinking (each output pixel is the
// mean of the input area it covers), bilinear when enlarging.
struct Taps {
  std::vector<int> first, count;
  std::vector<float> weights;  // out x stride
  int stride = 0;
};

Taps resample_taps(int in, int out) {
  const double scale = static_cast<double>(in) / out;
  Taps t;
  t.stride = static_cast<int>(std::ceil(scale)) + 2;
  t.weights.assign(static_cast<std::size_t>(out) * t.stride, 0.0f);
  for (int i = 0; i < out; ++i) {
    const double from = i * scale, to = (i + 1) * scale, centre = (from + to) / 2;
    const int lo = std::max(0, static_cast<int>(std::floor(scale > 1 ? from : centre - 1)));
    const int hi = std::min(in, static_cast<int>(std::ceil(scale > 1 ? to : centre + 1)));
    float* w = &t.weights[static_cast<std::size_t>(i) * t.stride];
    double total = 0;
    for (int j = lo; j < hi; ++j) {
      const double weight = scale > 1 ? std::min<double>(j + 1, to) - std::max<double>(j, from)
                                      : std::max(0.0, 1 - std::fabs(j + 0.5 - centre));
      w[j - lo] = static_cast<float>(weight);
      total += weight;
    }
    for (int j = lo; j < hi; ++j) w[j - lo] = static_cast<float>(w[j - lo] / total);
    t.first.push_back(lo);
    t.count.push_back(hi - lo);
  }
  return t;
}

// Square u8 RGB image of side `in` -> side `out`, mirrored left-right when `flip`.
std::vector<std::uint8_t> resize_square(const std::vector<std::uint8_t>& src, int in, int out, bool flip) {
  const Taps taps = resample_taps(in, out);
  const std::size_t in_row = static_cast<std::size_t>(in) * 3;
  // Vertical pass first: its inner loop runs along contiguous rows, and it leaves only `out`
  // rows for the per-pixel horizontal pass.
  std::vector<float> rows(static_cast<std::size_t>(out) * in_row, 0.0f);  // out x in x 3
  for (int i = 0; i < out; ++i) {
    float* acc = &rows[i * in_row];
    const float* w = &taps.weights[static_cast<std::size_t>(i) * taps.stride];
    for (int k = 0; k < taps.count[i]; ++k) {
      const std::uint8_t* s = &src[(taps.first[i] + k) * in_row];
      const float wk = w[k];  // a local: stores to acc cannot change it
      for (std::size_t x = 0; x < in_row; ++x) acc[x] += wk * s[x];
    }
  }
  std::vector<std::uint8_t> dst(static_cast<std::size_t>(out) * out * 3);
  for (int i = 0; i < out; ++i)
    for (int j = 0; j < out; ++j) {
      const float* w = &taps.weights[static_cast<std::size_t>(j) * taps.stride];
      const float* s = &rows[i * in_row + taps.first[j] * 3];
      float acc[3] = {0.5f, 0.5f, 0.5f};  // +0.5 so the conversion below rounds to nearest
      for (int k = 0; k < taps.count[j]; ++k)
        for (int c = 0; c < 3; ++c) acc[c] += w[k] * s[k * 3 + c];
      std::uint8_t* d = &dst[(static_cast<std::size_t>(i) * out + (flip ? out - 1 - j : j)) * 3];
      for (int c = 0; c < 3; ++c) d[c] = static_cast<std::uint8_t>(std::clamp(acc[c], 0.0f, 255.0f));
    }
  return dst;
}

std::string caption_for(const Scene& s, std::int32_t label, const SyntheticParams& p, Rng& rng) {
  // Where the object ends up in the final image: after the crop, scaled, then flipped.
  const double res = static_cast<double>(p.resolution);
  const double scale = res / s.crop_side;
  double x_final = (s.cx - s.crop_left) * scale;
  if (s.flip) x_final = res - x_final;
  const double radius_final = s.radius * scale / res;  // fraction of the image side
  const double offset = x_final / res - 0.5;

  std::string desc;
  auto adjective = [&](bool applies, const char* word) {
    if (applies && rng.chance(0.85)) desc += std::string(word) + " ";
  };
  adjective(radius_final < 0.18, radius_final < 0.14 ? "tiny" : "small");
  adjective(radius_final > 0.34, rng.chance(0.5) ? "large" : "big");
  adjective(s.brightness < 0.8, "dark");
  adjective(s.brightness > 1.1, "bright");
  desc += std::string(class_colour(label).name) + " " + kShapeNames[s.shape];
  const char* article = std::string("aeiou").find(desc[0]) != std::string::npos ? "an " : "a ";

  static const char* kPrefixes[] = {"", "", "a photo of ", "an image of ", "a picture of "};
  static const char* kMiddle[] = {"in the middle", "in the centre", "in the middle of the image"};
  static const char* kSide[] = {"on the %s", "on the %s side", "on the %s side of the image", "to the %s"};
  std::string where;
  if (std::fabs(offset) < 0.08) {
    where = rng.pick(kMiddle);
  } else {
    char buf[64];
    std::snprintf(buf, sizeof buf, rng.pick(kSide), offset < 0 ? "left" : "right");
    where = buf;
  }
  std::string caption = std::string(rng.pick(kPrefixes)) + article + desc + " " + where;
  const double bg_lum = (s.bg_from[0] + s.bg_from[1] + s.bg_from[2] + s.bg_to[0] + s.bg_to[1] + s.bg_to[2]) / 6;
  if ((bg_lum < 90 || bg_lum > 160) && rng.chance(0.4))
    caption += bg_lum < 90 ? " against a dark background" : " against a light background";
  return caption;
}

std::string manifest_path(const std::string& dir) { return dir + "/dataset.json"; }

// The identity recorded in dir's manifest, or nullopt when there is no manifest.
std::optional<std::string> manifest_identity(const std::string& dir) {
  const std::string path = manifest_path(dir);
  if (!path_exists(path)) return std::nullopt;
  try {
    return nlohmann::json::parse(read_file(path)).at("identity").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": malformed dataset manifest: " + e.what());
  }
}

[[noreturn]] void throw_identity_mismatch(const std::string& dir, const std::string& found, const std::string& wanted) {
  throw DataError(dir + " holds dataset " + found + ", not " + wanted +
                  " (different parameters); remove it or choose another directory");
}

// Renders every shard and the manifest into `dir` (an empty directory).
void render_dataset(const SyntheticParams& p, const std::string& dir, const std::string& identity,
                    const std::function<void(std::int64_t, std::int64_t)>& progress) {
  nlohmann::json shards = nlohmann::json::array();
  const ShardHeader header{kShardFormatVersion, PayloadKind::ImageU8, "none", identity, "", 1};
  for (std::int64_t first = 0; first < p.records; first += p.shard_records) {
    char name[32];
    std::snprintf(name, sizeof name, "synth-%05lld.ldms", static_cast<long long>(first / p.shard_records));
    ShardWriter writer(dir + "/" + name, header);
    const std::int64_t last = std::min(p.records, first + p.shard_records);
    for (std::int64_t i = first; i < last; ++i) writer.append(render_synthetic_record(p, i));
    writer.finish();
    shards.push_back(name);
    if (progress) progress(last, p.records);
  }
  nlohmann::json class_names = nlohmann::json::array();
  for (std::int64_t k = 0; k < p.classes; ++k) class_names.push_back(synthetic_class_name(k));
  const nlohmann::json manifest = {{"identity", identity}, {"records", p.records},
                                   {"classes", p.classes}, {"resolution", p.resolution},
                                   {"seed", p.seed},       {"shard_records", p.shard_records},
                                   {"shards", shards},     {"class_names", class_names}};
  write_file_atomic(manifest_path(dir), manifest.dump(2) + "\n");  // last: marks it complete
}

}  // namespace

std::string synthetic_identity(const SyntheticParams& p) {
  const std::string canonical = "synthetic/v" + std::to_string(kRendererVersion) +
                                " records=" + std::to_string(p.records) + " classes=" + std::to_string(p.classes) +
                                " resolution=" + std::to_string(p.resolution) + " seed=" + std::to_string(p.seed) +
                                " shard_records=" + std::to_string(p.shard_records);
  return "synthetic-" + hex64(fnv1a64(canonical));
}

std::string synthetic_class_name(std::int64_t k) {
  if (k < 0 || k >= kMaxClasses)
    throw DataError("synthetic class " + std::to_string(k) + " is out of range [0, " + std::to_string(kMaxClasses) +
                    ")");
  return std::string(class_colour(k).name) + " " + kShapeNames[class_shape(k)];
}

const std::vector<std::string>& synthetic_colour_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const NamedColour& c : kColours) v.emplace_back(c.name);
    return v;
  }();
  return names;
}

const std::vector<std::string>& synthetic_shape_names() {
  static const std::vector<std::string> names(std::begin(kShapeNames), std::end(kShapeNames));
  return names;
}

SyntheticAttributes parse_synthetic_caption(const std::string& caption) {
  SyntheticAttributes a;
  std::string word;
  const auto take = [&] {
    if (word.empty()) return;
    const auto find = [&](const std::vector<std::string>& names) {
      const auto it = std::find(names.begin(), names.end(), word);
      return it == names.end() ? -1 : static_cast<int>(it - names.begin());
    };
    if (a.colour < 0) a.colour = find(synthetic_colour_names());
    if (a.shape < 0) a.shape = find(synthetic_shape_names());
    if (a.side < 0) {
      if (word == "left") a.side = 0;
      if (word == "middle" || word == "centre" || word == "center") a.side = 1;
      if (word == "right") a.side = 2;
    }
    word.clear();
  };
  for (const char ch : caption) {
    if (std::isalpha(static_cast<unsigned char>(ch)))
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    else take();
  }
  take();
  return a;
}

Record render_synthetic_record(const SyntheticParams& p, std::int64_t index) {
  check_params(p);
  Record r;
  r.id = static_cast<std::uint64_t>(index);
  r.label = record_label(p, index);
  const Scene s = plan_scene(p, index, r.label);
  const int res = static_cast<int>(p.resolution);
  r.payload = resize_square(draw_crop(s), s.crop_side, res, s.flip);
  r.shape = {res, res, 3};
  r.control = {s.height, s.width, s.crop_top, s.crop_left, s.crop_side, s.crop_side, s.flip};
  Rng caption_rng = stream(p, Purpose::SyntheticCaption, index);
  r.caption = caption_for(s, r.label, p, caption_rng);
  return r;
}

void ensure_synthetic_dataset(const SyntheticParams& p, const std::string& dir_arg,
                              const std::function<void(std::int64_t, std::int64_t)>& progress) {
  namespace fs = std::filesystem;
  check_params(p);
  std::string dir = dir_arg;  // "out/" must not put the temporary directory inside "out"
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string identity = synthetic_identity(p);
  if (auto found = manifest_identity(dir)) {
    if (*found != identity) throw_identity_mismatch(dir, *found, identity);
    if (progress) progress(p.records, p.records);
    return;
  }
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
    throw DataError(dir +
                    " exists but holds no complete synthetic dataset (no dataset.json); "
                    "remove it or choose another directory");

  const std::string tmp = dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);  // left over by a killed run whose pid was reused
  make_dirs(tmp);
  try {
    render_dataset(p, tmp, identity, progress);
    if (::rename(tmp.c_str(), dir.c_str()) != 0) {
      const int err = errno;
      // Someone else finished the same dataset first: theirs is as good as ours.
      const auto found = (err == ENOTEMPTY || err == EEXIST) ? manifest_identity(dir) : std::nullopt;
      if (!found) {
        errno = err;
        throw_errno("cannot rename " + tmp + " to", dir);
      }
      if (*found != identity) throw_identity_mismatch(dir, *found, identity);
      fs::remove_all(tmp, ec);
      return;
    }
    fsync_path(parent_dir(dir));
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace ldm::data
