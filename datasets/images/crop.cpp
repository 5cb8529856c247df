#include "datasets/images/crop.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "shared/core/error.h"

namespace ldm::data {
namespace {

// ---------------------------------------------------------------------------------------------
// PIL 9.4 Resample.c, 8 bits per channel.

constexpr int kPrecisionBits = 32 - 8 - 2;

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
double bicubic_filter(double x) {
  constexpr double a = -0.5;  // PIL's (and Keys') bicubic
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};
Filter filter_of(ResampleFilter f) {
  switch (f) {
    case ResampleFilter::Box:
      return {box_filter, 0.5};
    case ResampleFilter::Bilinear:
      return {bilinear_filter, 1.0};
    default:
      return {bicubic_filter, 2.0};
  }
}

// precompute_coeffs + normalize_coeffs_8bpc: per output index, the first source index, the tap
// count, and ksize fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // (xmin, xcount) per output index
  std::vector<std::int32_t> k;
};

Coeffs precompute(int in_size, double in0, double in1, int out_size, const Filter& filter) {
  double scale = (in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<std::size_t>(out_size) * 2);
  c.k.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = filter.fn((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<std::size_t>(xx) * c.ksize + x] =
          v < 0 ? static_cast<std::int32_t>(-0.5 + v * (1 << kPrecisionBits))
                : static_cast<std::int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

inline std::uint8_t clip8(std::int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<std::uint8_t>(v >> kPrecisionBits);
}

RgbImage resample_horizontal(const RgbImage& in, int out_w, const Coeffs& c) {
  RgbImage out;
  out.width = out_w;
  out.height = in.height;
  out.pixels.resize(static_cast<std::size_t>(out_w) * in.height * 3);
  for (int y = 0; y < in.height; ++y) {
    const std::uint8_t* row = in.pixels.data() + static_cast<std::size_t>(y) * in.width * 3;
    std::uint8_t* dst = out.pixels.data() + static_cast<std::size_t>(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
      const std::int32_t* k = c.k.data() + static_cast<std::size_t>(xx) * c.ksize;
      std::int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < xmax; ++x) {
        const std::uint8_t* p = row + (xmin + x) * 3;
        s0 += p[0] * k[x];
        s1 += p[1] * k[x];
        s2 += p[2] * k[x];
      }
      dst[xx * 3] = clip8(s0);
      dst[xx * 3 + 1] = clip8(s1);
      dst[xx * 3 + 2] = clip8(s2);
    }
  }
  return out;
}

RgbImage resample_vertical(const RgbImage& in, int out_h, const Coeffs& c) {
  RgbImage out;
  out.width = in.width;
  out.height = out_h;
  const std::size_t stride = static_cast<std::size_t>(in.width) * 3;
  out.pixels.resize(stride * out_h);
  std::vector<std::int32_t> acc(stride);
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
    const std::int32_t* k = c.k.data() + static_cast<std::size_t>(yy) * c.ksize;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < ymax; ++y) {
      const std::uint8_t* row = in.pixels.data() + static_cast<std::size_t>(ymin + y) * stride;
      const std::int32_t ky = k[y];
      for (std::size_t i = 0; i < stride; ++i) acc[i] += row[i] * ky;
    }
    std::uint8_t* dst = out.pixels.data() + static_cast<std::size_t>(yy) * stride;
    for (std::size_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

// Python's round() of a double to an int: ties to even (nearbyint in the default rounding mode).
inline int py_round(double x) { return static_cast<int>(std::nearbyint(x)); }

// A window [a, a+len) of an axis resized from `orig` to `resized`, mapped back to the original
// axis and rounded; kept inside [0, orig) with at least one pixel.
void map_back(int a, int len, int resized, int orig, std::int32_t* start, std::int32_t* extent) {
  const double s = static_cast<double>(orig) / resized;
  long lo = std::lround(a * s), hi = std::lround((a + len) * s);
  lo = std::clamp<long>(lo, 0, orig - 1);
  hi = std::clamp<long>(hi, lo + 1, orig);
  *start = static_cast<std::int32_t>(lo);
  *extent = static_cast<std::int32_t>(hi - lo);
}

// ADM's resize generalised to an h x w target: BOX halvings while the image is at least twice the
// target on both axes (for h == w == size: DiT's `min(*size) >= 2 * image_size`), then BICUBIC by
// max(h/H, w/W), which for a square target is size/min(H, W) exactly as in DiT.
RgbImage adm_resize(const RgbImage& in, int h, int w) {
  RgbImage img = in;
  while (img.height >= 2 * h && img.width >= 2 * w)
    img = resize_image(img, img.width / 2, img.height / 2, ResampleFilter::Box);
  const double scale = std::max(static_cast<double>(h) / img.height, static_cast<double>(w) / img.width);
  // Rounding cannot lose a pixel of a square target (the shorter side maps to size*(1 +- ulp));
  // for a rectangle the clamp is a guard, never a change of the square path.
  const int out_w = std::max(py_round(img.width * scale), w);
  const int out_h = std::max(py_round(img.height * scale), h);
  return resize_image(img, out_w, out_h, ResampleFilter::Bicubic);
}

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
inline std::uint64_t mix64(std::uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr std::uint64_t kCropStream = 1, kFlipStream = 2;

void check_input(const RgbImage& in, int h, int w) {
  if (h < 1 || w < 1)
    throw Error("crop: output size must be >= 1, got " + std::to_string(h) + "x" + std::to_string(w) +
                " (height x width)");
  if (in.width < 1 || in.height < 1 || in.pixels.size() != static_cast<std::size_t>(in.width) * in.height * 3)
    throw Error("crop: empty or malformed input image");
}

// The output side of CropOptions: a negative height/width is an error, not "use size".
void check_options(const CropOptions& o) {
  if (o.height < 0) throw Error("crop: height must be >= 0 (0 = size), got " + std::to_string(o.height));
  if (o.width < 0) throw Error("crop: width must be >= 0 (0 = size), got " + std::to_string(o.width));
}

// The h x w window at (top, left) of `r` (the ADM-resized `in`), with its box mapped back.
RgbImage take_window(const RgbImage& in, const RgbImage& r, int top, int left, int h, int w, ControlMeta* meta) {
  if (meta) {
    *meta = ControlMeta{};
    meta->orig_h = in.height;
    meta->orig_w = in.width;
    map_back(top, h, r.height, in.height, &meta->crop_top, &meta->crop_h);
    map_back(left, w, r.width, in.width, &meta->crop_left, &meta->crop_w);
  }
  return crop_region(r, top, left, h, w);
}

}  // namespace

RgbImage resize_image(const RgbImage& in, int out_w, int out_h, ResampleFilter filter) {
  if (out_w < 1 || out_h < 1) throw Error("resize: output size must be positive");
  if (out_w == in.width && out_h == in.height) return in;
  const Filter f = filter_of(filter);
  RgbImage tmp;
  const RgbImage* src = &in;
  if (out_w != in.width) {
    tmp = resample_horizontal(in, out_w, precompute(in.width, 0.0, in.width, out_w, f));
    src = &tmp;
  }
  if (out_h != in.height) return resample_vertical(*src, out_h, precompute(in.height, 0.0, in.height, out_h, f));
  return tmp;
}

RgbImage crop_region(const RgbImage& in, int top, int left, int h, int w) {
  if (top < 0 || left < 0 || h < 1 || w < 1 || top + h > in.height || left + w > in.width)
    throw Error("crop: region outside the image");
  RgbImage out;
  out.width = w;
  out.height = h;
  out.pixels.resize(static_cast<std::size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    std::memcpy(out.pixels.data() + static_cast<std::size_t>(y) * w * 3,
                in.pixels.data() + (static_cast<std::size_t>(top + y) * in.width + left) * 3,
                static_cast<std::size_t>(w) * 3);
  return out;
}

RgbImage flip_horizontal(const RgbImage& in) {
  RgbImage out = in;
  for (int y = 0; y < in.height; ++y) {
    const std::uint8_t* s = in.pixels.data() + static_cast<std::size_t>(y) * in.width * 3;
    std::uint8_t* d = out.pixels.data() + static_cast<std::size_t>(y) * in.width * 3;
    for (int x = 0; x < in.width; ++x) std::memcpy(d + x * 3, s + (in.width - 1 - x) * 3, 3);
  }
  return out;
}

CropStrategy parse_crop_strategy(const std::string& name) {
  if (name == "center") return CropStrategy::Center;
  if (name == "random") return CropStrategy::Random;
  if (name == "random_resized") return CropStrategy::RandomResized;
  throw Error("unknown crop strategy '" + name + "' (expected center, random or random_resized)");
}

const char* crop_strategy_name(CropStrategy s) {
  switch (s) {
    case CropStrategy::Center:
      return "center";
    case CropStrategy::Random:
      return "random";
    default:
      return "random_resized";
  }
}

AugmentRng::AugmentRng(const AugmentKey& key, std::uint64_t purpose) {
  std::uint64_t h = kGolden;
  const std::uint64_t parts[5] = {key.seed, key.epoch, key.record_id, key.view, purpose};
  for (int i = 0; i < 5; ++i) h = mix64(h ^ mix64(parts[i] + kGolden * static_cast<std::uint64_t>(i + 1)));
  base_ = h;
}

std::uint64_t AugmentRng::next_u64() { return mix64(base_ + kGolden * ++counter_); }

double AugmentRng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double AugmentRng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

std::int64_t AugmentRng::uniform_int(std::int64_t lo, std::int64_t hi_exclusive) {
  if (hi_exclusive <= lo) throw Error("AugmentRng::uniform_int: empty range");
  const std::uint64_t n = static_cast<std::uint64_t>(hi_exclusive - lo);
  // Lemire's multiply-and-reject: unbiased.
  const std::uint64_t threshold = (0 - n) % n;
  for (;;) {
    const unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * n;
    if (static_cast<std::uint64_t>(m) >= threshold) return lo + static_cast<std::int64_t>(m >> 64);
  }
}

RgbImage resize_to_cover(const RgbImage& in, int height, int width) {
  check_input(in, height, width);
  return adm_resize(in, height, width);
}

RgbImage center_crop_rect(const RgbImage& in, int height, int width, ControlMeta* meta) {
  check_input(in, height, width);
  const RgbImage r = adm_resize(in, height, width);
  return take_window(in, r, (r.height - height) / 2, (r.width - width) / 2, height, width, meta);
}

RgbImage center_crop_arr(const RgbImage& in, int size, ControlMeta* meta) {
  return center_crop_rect(in, size, size, meta);
}

CropResult crop_image(const RgbImage& in, const CropOptions& o, const AugmentKey& key) {
  check_options(o);
  const int out_h = o.out_height(), out_w = o.out_width();
  check_input(in, out_h, out_w);
  CropResult res;
  ControlMeta& m = res.control;
  AugmentRng rng(key, kCropStream);
  switch (o.strategy) {
    case CropStrategy::Center:
      res.image = center_crop_rect(in, out_h, out_w, &m);
      break;
    case CropStrategy::Random: {
      const RgbImage r = adm_resize(in, out_h, out_w);
      const int top = static_cast<int>(rng.uniform_int(0, r.height - out_h + 1));
      const int left = static_cast<int>(rng.uniform_int(0, r.width - out_w + 1));
      res.image = take_window(in, r, top, left, out_h, out_w, &m);
      break;
    }
    case CropStrategy::RandomResized: {
      // torchvision.transforms.RandomResizedCrop.get_params (independent of the output size).
      const int H = in.height, W = in.width;
      const double area = static_cast<double>(H) * W;
      const double log_r0 = std::log(o.ratio_min), log_r1 = std::log(o.ratio_max);
      int top = -1, left = 0, h = 0, w = 0;
      for (int attempt = 0; attempt < 10; ++attempt) {
        const double target_area = area * rng.uniform(o.scale_min, o.scale_max);
        const double aspect = std::exp(rng.uniform(log_r0, log_r1));
        const int cw = py_round(std::sqrt(target_area * aspect));
        const int ch = py_round(std::sqrt(target_area / aspect));
        if (cw > 0 && cw <= W && ch > 0 && ch <= H) {
          top = static_cast<int>(rng.uniform_int(0, H - ch + 1));
          left = static_cast<int>(rng.uniform_int(0, W - cw + 1));
          h = ch;
          w = cw;
          break;
        }
      }
      if (top < 0) {  // fallback: central crop with the ratio clamped into range
        const double in_ratio = static_cast<double>(W) / H;
        if (in_ratio < std::min(o.ratio_min, o.ratio_max)) {
          w = W;
          h = py_round(w / std::min(o.ratio_min, o.ratio_max));
        } else if (in_ratio > std::max(o.ratio_min, o.ratio_max)) {
          h = H;
          w = py_round(h * std::max(o.ratio_min, o.ratio_max));
        } else {
          w = W;
          h = H;
        }
        h = std::clamp(h, 1, H);
        w = std::clamp(w, 1, W);
        top = (H - h) / 2;
        left = (W - w) / 2;
      }
      m.orig_h = H;
      m.orig_w = W;
      m.crop_top = top;
      m.crop_left = left;
      m.crop_h = h;
      m.crop_w = w;
      // F.resized_crop(img, top, left, h, w, (out_h, out_w)): PIL's img.resize((out_w, out_h)).
      res.image = resize_image(crop_region(in, top, left, h, w), out_w, out_h, o.resized_filter);
      break;
    }
  }
  if (o.flip_prob > 0.0) {
    AugmentRng flip_rng(key, kFlipStream);
    m.flip = flip_rng.uniform() < o.flip_prob;
  }
  if (m.flip) res.image = flip_horizontal(res.image);
  return res;
}

}  // namespace ldm::data
