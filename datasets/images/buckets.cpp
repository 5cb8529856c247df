#include "datasets/images/buckets.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "shared/core/error.h"

namespace ldm::data {
namespace {

using u128 = unsigned __int128;

// max(a, b) / min(a, b) as the pair (max, min): |log(a/b)| compared without rounding.
struct Ratio {
  std::uint64_t num, den;  // num >= den >= 1
};
Ratio abs_log_ratio(std::uint64_t a, std::uint64_t b) { return a >= b ? Ratio{a, b} : Ratio{b, a}; }
// -1, 0, 1 as x <, ==, > y.
int compare(const Ratio& x, const Ratio& y) {
  const u128 l = static_cast<u128>(x.num) * y.den, r = static_cast<u128>(y.num) * x.den;
  return l < r ? -1 : (l > r ? 1 : 0);
}

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

std::vector<Bucket> make_buckets(int resolution, int step, double max_aspect) {
  if (resolution < 1) throw Error("make_buckets: resolution must be >= 1, got " + std::to_string(resolution));
  if (step < 1) throw Error("make_buckets: step must be >= 1, got " + std::to_string(step));
  if (resolution % step != 0)
    throw Error("make_buckets: resolution " + std::to_string(resolution) + " is not a multiple of step " +
                std::to_string(step));
  if (!(max_aspect >= 1.0) || !std::isfinite(max_aspect))
    throw Error("make_buckets: max_aspect must be a finite number >= 1, got " + fmt(max_aspect));
  // On the grid of step units: area limit a = (resolution/step)^2 cells.
  const std::int64_t r = resolution / step, a = r * r;
  auto largest = [a](std::int64_t i) { return a / i; };  // the largest j with i*j <= a
  std::vector<Bucket> out;
  for (std::int64_t i = 1; i <= a; ++i) {
    const std::int64_t j = largest(i);
    if (largest(j) != i) continue;  // (i+1, j) still fits: dominated by a taller bucket
    // max(i, j) / min(i, j) <= max_aspect, i.e. max <= max_aspect * min.
    const double hi = static_cast<double>(std::max(i, j)), lo = static_cast<double>(std::min(i, j));
    if (hi > max_aspect * lo) {
      if (i > j) break;  // taller ones are only more elongated
      continue;
    }
    out.push_back(Bucket{static_cast<int>(i * step), static_cast<int>(j * step)});
  }
  std::sort(out.begin(), out.end(), [](const Bucket& x, const Bucket& y) {
    return static_cast<std::int64_t>(x.width) * y.height < static_cast<std::int64_t>(y.width) * x.height;
  });
  return out;
}

std::size_t nearest_bucket(const std::vector<Bucket>& buckets, int image_h, int image_w) {
  if (buckets.empty()) throw Error("nearest_bucket: no buckets");
  if (image_h < 1 || image_w < 1)
    throw Error("nearest_bucket: image size must be positive, got " + std::to_string(image_h) + "x" +
                std::to_string(image_w) + " (height x width)");
  std::size_t best = 0;
  Ratio best_dist{0, 1}, best_square{0, 1};
  for (std::size_t k = 0; k < buckets.size(); ++k) {
    const Bucket& b = buckets[k];
    if (b.height < 1 || b.width < 1)
      throw Error("nearest_bucket: bucket " + std::to_string(k) + " has a non-positive size " +
                  std::to_string(b.height) + "x" + std::to_string(b.width));
    // |log(bw/bh) - log(iw/ih)| = |log(bw*ih / (bh*iw))|.
    const Ratio dist = abs_log_ratio(static_cast<std::uint64_t>(b.width) * static_cast<std::uint64_t>(image_h),
                                     static_cast<std::uint64_t>(b.height) * static_cast<std::uint64_t>(image_w));
    const Ratio square = abs_log_ratio(static_cast<std::uint64_t>(b.width), static_cast<std::uint64_t>(b.height));
    if (k == 0) {
      best_dist = dist;
      best_square = square;
      continue;
    }
    const int c = compare(dist, best_dist);
    if (c < 0 || (c == 0 && compare(square, best_square) < 0)) {
      best = k;
      best_dist = dist;
      best_square = square;
    }
  }
  return best;
}

}  // namespace ldm::data
