// Crops against python3-pil (DiT's center_crop_arr and PIL crop+resize, computed by
// tests/datasets/reference/make_images.py on the same files) and the control-metadata contract.
#include "datasets/crop.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "datasets/image_decode.h"
#include "shared/core/error.h"
#include "tests/support/pil_images.h"
#include "tests/support/temp_dir.h"

namespace crop_test {
namespace fs = std::filesystem;
using ldm::data::RgbImage;

using Images = ldm::testing::PilImages;
inline std::string slurp(const std::string& path) { return ldm::testing::slurp_file(path); }

const Images& images() {
  static Images im{"ldm-crop"};
  REQUIRE_MESSAGE(im.error.empty(), im.error);
  return im;
}

std::vector<std::vector<std::string>> manifest(const std::string& kind) {
  std::ifstream in(images().dir.file("manifest.txt"));
  std::vector<std::vector<std::string>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::vector<std::string> f;
    for (std::string a; s >> a;) f.push_back(a);
    if (f.size() >= 3 && f[2] == kind) out.push_back(f);
  }
  return out;
}

RgbImage read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int maxval = 0;
  RgbImage img;
  in >> magic >> img.width >> img.height >> maxval;
  REQUIRE_MESSAGE((magic == "P6" && maxval == 255 && in.get() == '\n'), "bad PPM " << path);
  img.pixels.resize(static_cast<std::size_t>(img.width) * img.height * 3);
  in.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
  REQUIRE_MESSAGE(in.good(), "short PPM " << path);
  return img;
}

int max_abs_diff(const RgbImage& a, const RgbImage& b) {
  int m = 0;
  for (std::size_t i = 0; i < a.pixels.size() && i < b.pixels.size(); ++i)
    m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

// A deterministic textured image (no Python needed).
RgbImage pattern(int w, int h) {
  RgbImage im;
  im.width = w;
  im.height = h;
  im.pixels.resize(static_cast<std::size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        im.pixels[(static_cast<std::size_t>(y) * w + x) * 3 + c] =
            static_cast<std::uint8_t>((x * 7 + y * 13 + c * 50 + (x * y) % 31) & 0xFF);
  return im;
}

void check_meta_inside(const ldm::data::ControlMeta& m, const RgbImage& in) {
  CHECK(m.orig_h == in.height);
  CHECK(m.orig_w == in.width);
  CHECK(m.crop_top >= 0);
  CHECK(m.crop_left >= 0);
  CHECK(m.crop_h >= 1);
  CHECK(m.crop_w >= 1);
  CHECK(m.crop_top + m.crop_h <= in.height);
  CHECK(m.crop_left + m.crop_w <= in.width);
}

auto box_of(const ldm::data::ControlMeta& m) { return std::make_tuple(m.crop_top, m.crop_left, m.crop_h, m.crop_w); }

// The test cases live in the namespace too, so a unity build sees no clashing helpers.
using ldm::data::AugmentKey;
using ldm::data::CropOptions;
using ldm::data::CropStrategy;

TEST_CASE("center crop equals DiT's center_crop_arr (python3-pil) within 2/255") {
  const auto cases = manifest("center");
  REQUIRE(cases.size() >= 6);
  for (const auto& c : cases) {
    CAPTURE(c[0]);
    const int r = std::stoi(c[3]);
    const RgbImage in = ldm::data::decode_image_file(images().dir.file(c[1]));
    const RgbImage ref = read_ppm(images().dir.file(c[0] + ".ppm"));
    CropOptions o;
    o.strategy = CropStrategy::Center;
    o.size = r;
    const auto res = ldm::data::crop_image(in, o, AugmentKey{1, 2, 3, 0});
    REQUIRE(res.image.width == r);
    REQUIRE(res.image.height == r);
    REQUIRE(ref.width == r);
    REQUIRE(ref.height == r);
    const int diff = max_abs_diff(res.image, ref);
    MESSAGE(c[0] << " from " << in.width << "x" << in.height << " box (" << res.control.crop_top << ","
                  << res.control.crop_left << "," << res.control.crop_h << "," << res.control.crop_w
                  << ") max|diff| = " << diff);
    CHECK(diff <= 2);
    check_meta_inside(res.control, in);
    CHECK_FALSE(res.control.flip);
    // The central square of the shorter side, give or take rounding: the window's offset is
    // floored in resized pixels (one is about s/r original pixels) and mapped back.
    const int s = std::min(in.width, in.height);
    const double tol = 1.0 + double(s) / r;
    CHECK(std::abs(res.control.crop_h - s) <= 1);
    CHECK(std::abs(res.control.crop_w - s) <= 1);
    CHECK(std::abs(res.control.crop_top - (in.height - s) / 2.0) <= tol);
    CHECK(std::abs(res.control.crop_left - (in.width - s) / 2.0) <= tol);
  }
}

TEST_CASE("crop + resize (bilinear, bicubic, box) equals PIL's img.crop(box).resize within 2/255") {
  const auto cases = manifest("crop_resize");
  REQUIRE(cases.size() >= 3);
  for (const auto& c : cases) {
    CAPTURE(c[0]);
    const int top = std::stoi(c[3]), left = std::stoi(c[4]), h = std::stoi(c[5]), w = std::stoi(c[6]);
    const int r = std::stoi(c[7]);
    const auto filter = c[8] == "bilinear" ? ldm::data::ResampleFilter::Bilinear
                        : c[8] == "bicubic" ? ldm::data::ResampleFilter::Bicubic
                                            : ldm::data::ResampleFilter::Box;
    const RgbImage in = ldm::data::decode_image_file(images().dir.file(c[1]));
    const RgbImage got = ldm::data::resize_image(ldm::data::crop_region(in, top, left, h, w), r, r, filter);
    const RgbImage ref = read_ppm(images().dir.file(c[0] + ".ppm"));
    REQUIRE(got.width == ref.width);
    REQUIRE(got.height == ref.height);
    const int diff = max_abs_diff(got, ref);
    MESSAGE(c[0] << " max|diff| = " << diff);
    CHECK(diff <= 2);
  }
}

TEST_CASE("every strategy: metadata inside the original, deterministic in (seed, epoch, record, view)") {
  const std::vector<std::pair<int, int>> sizes = {{320, 240}, {240, 320}, {100, 100}, {1000, 90}, {33, 517}};
  for (CropStrategy s : {CropStrategy::Center, CropStrategy::Random, CropStrategy::RandomResized}) {
    for (auto [w, h] : sizes) {
      CAPTURE(ldm::data::crop_strategy_name(s));
      CAPTURE(w);
      CAPTURE(h);
      const RgbImage in = pattern(w, h);
      CropOptions o;
      o.strategy = s;
      o.size = 48;
      o.flip_prob = 0.5;
      for (std::uint64_t rec = 0; rec < 8; ++rec) {
        const AugmentKey key{42, 3, rec, 0};
        const auto a = ldm::data::crop_image(in, o, key);
        const auto b = ldm::data::crop_image(in, o, key);
        REQUIRE(a.image.width == 48);
        REQUIRE(a.image.height == 48);
        CHECK(a.image.pixels == b.image.pixels);
        CHECK(box_of(a.control) == box_of(b.control));
        CHECK(a.control.flip == b.control.flip);
        check_meta_inside(a.control, in);
        // The flip flag is what was done: with flip forced off, the same crop, mirrored.
        CropOptions no_flip = o;
        no_flip.flip_prob = 0.0;
        const auto c = ldm::data::crop_image(in, no_flip, key);
        CHECK(box_of(c.control) == box_of(a.control));
        CHECK_FALSE(c.control.flip);
        if (a.control.flip)
          CHECK(ldm::data::flip_horizontal(c.image).pixels == a.image.pixels);
        else
          CHECK(c.image.pixels == a.image.pixels);
      }
    }
  }
}

TEST_CASE("random crops change with the epoch, the record and the view, center does not") {
  // 1000x300 at 64: the ADM resize gives 213x64, i.e. 150 random windows.
  const RgbImage in = pattern(1000, 300);
  for (CropStrategy s : {CropStrategy::Random, CropStrategy::RandomResized}) {
    CAPTURE(ldm::data::crop_strategy_name(s));
    CropOptions o;
    o.strategy = s;
    o.size = 64;
    int differ_epoch = 0, differ_view = 0;
    std::set<std::tuple<int, int, int, int>> boxes;
    for (std::uint64_t rec = 0; rec < 20; ++rec) {
      const auto e0 = ldm::data::crop_image(in, o, AugmentKey{7, 0, rec, 0});
      const auto e1 = ldm::data::crop_image(in, o, AugmentKey{7, 1, rec, 0});
      const auto v1 = ldm::data::crop_image(in, o, AugmentKey{7, 0, rec, 1});
      differ_epoch += box_of(e0.control) != box_of(e1.control);
      differ_view += box_of(e0.control) != box_of(v1.control);
      boxes.insert(box_of(e0.control));
    }
    CHECK(differ_epoch >= 18);
    CHECK(differ_view >= 18);
    CHECK(boxes.size() >= 17);
  }
  CropOptions o;
  o.size = 64;
  const auto a = ldm::data::crop_image(in, o, AugmentKey{7, 0, 1, 0});
  const auto b = ldm::data::crop_image(in, o, AugmentKey{7, 5, 9, 2});
  CHECK(a.image.pixels == b.image.pixels);
  CHECK(box_of(a.control) == box_of(b.control));
}

TEST_CASE("random crop: a window of the ADM-resized image, without resizing it is the original's pixels") {
  const RgbImage in = pattern(64, 150);  // shorter side == size: no resize, boxes map 1:1
  CropOptions o;
  o.strategy = CropStrategy::Random;
  o.size = 64;
  std::set<int> tops;
  for (std::uint64_t rec = 0; rec < 30; ++rec) {
    const auto r = ldm::data::crop_image(in, o, AugmentKey{1, 1, rec, 0});
    CHECK(r.control.crop_h == 64);
    CHECK(r.control.crop_w == 64);
    CHECK(r.control.crop_left == 0);
    tops.insert(r.control.crop_top);
    CHECK(r.image.pixels == ldm::data::crop_region(in, r.control.crop_top, 0, 64, 64).pixels);
  }
  CHECK(tops.size() >= 15);
}

TEST_CASE("random_resized: boxes obey torchvision's scale and ratio bounds") {
  CropOptions o;
  o.strategy = CropStrategy::RandomResized;
  o.size = 32;
  for (auto [w, h] : std::vector<std::pair<int, int>>{{500, 375}, {256, 256}, {300, 1000}}) {
    const RgbImage in = pattern(w, h);
    double min_scale = 1, max_scale = 0;
    for (std::uint64_t rec = 0; rec < 300; ++rec) {
      const auto m = ldm::data::crop_image(in, o, AugmentKey{9, 0, rec, 0}).control;
      check_meta_inside(m, in);
      const double scale = double(m.crop_h) * m.crop_w / (double(w) * h);
      const double ratio = double(m.crop_w) / m.crop_h;
      // Rounding w and h to integers moves the area and ratio a little outside the real bounds.
      const double tol_s = (m.crop_h + m.crop_w + 1.0) / (double(w) * h);
      const double tol_r = 1.0 / std::min(m.crop_h, m.crop_w) + 1e-9;
      CHECK(scale >= 0.08 - tol_s);
      CHECK(scale <= 1.0 + 1e-12);
      CHECK(ratio >= 3.0 / 4.0 * (1 - tol_r) - 1e-9);
      CHECK(ratio <= 4.0 / 3.0 * (1 + tol_r) + 1e-9);
      min_scale = std::min(min_scale, scale);
      max_scale = std::max(max_scale, scale);
    }
    // The whole range is used (a 300x1000 image holds no crop above 300*400 at ratio >= 3/4).
    CHECK(min_scale < 0.2);
    CHECK(max_scale > (h > 2 * w ? 0.35 : 0.7));
  }
  // An image too elongated for any try: the fallback central crop, clamped to the ratio range.
  const RgbImage strip = pattern(2000, 20);
  const auto m = ldm::data::crop_image(strip, o, AugmentKey{1, 0, 0, 0}).control;
  check_meta_inside(m, strip);
  CHECK(m.crop_h == 20);
  CHECK(m.crop_w == 27);  // round(20 * 4/3)
  CHECK(m.crop_left == (2000 - 27) / 2);
}

TEST_CASE("flip probability: about p of the records are flipped, 0 and 1 are exact") {
  const RgbImage in = pattern(80, 60);
  CropOptions o;
  o.size = 16;
  int flipped = 0;
  o.flip_prob = 0.5;
  for (std::uint64_t rec = 0; rec < 1000; ++rec) flipped += ldm::data::crop_image(in, o, {3, 0, rec, 0}).control.flip;
  CHECK(flipped > 430);
  CHECK(flipped < 570);
  o.flip_prob = 1.0;
  CHECK(ldm::data::crop_image(in, o, {3, 0, 5, 0}).control.flip);
  o.flip_prob = 0.0;
  CHECK_FALSE(ldm::data::crop_image(in, o, {3, 0, 5, 0}).control.flip);
}

TEST_CASE("AugmentRng: a pure function of its key, uniform_int stays in range") {
  ldm::data::AugmentRng a({1, 2, 3, 4}, 1), b({1, 2, 3, 4}, 1), c({1, 2, 3, 4}, 2), d({1, 3, 3, 4}, 1);
  const auto x = a.next_u64();
  CHECK(x == b.next_u64());
  CHECK(x != c.next_u64());
  CHECK(x != d.next_u64());
  for (int i = 0; i < 1000; ++i) {
    const auto v = a.uniform_int(-3, 4);
    CHECK(v >= -3);
    CHECK(v < 4);
    const double u = a.uniform();
    CHECK(u >= 0.0);
    CHECK(u < 1.0);
  }
  CHECK_THROWS_AS(a.uniform_int(5, 5), ldm::Error);
}

TEST_CASE("parse_crop_strategy and bad inputs") {
  CHECK(ldm::data::parse_crop_strategy("center") == CropStrategy::Center);
  CHECK(ldm::data::parse_crop_strategy("random") == CropStrategy::Random);
  CHECK(ldm::data::parse_crop_strategy("random_resized") == CropStrategy::RandomResized);
  CHECK_THROWS_AS(ldm::data::parse_crop_strategy("middle"), ldm::Error);
  CropOptions o;
  o.size = 0;
  CHECK_THROWS_AS(ldm::data::crop_image(pattern(10, 10), o, {}), ldm::Error);
  o.size = 8;
  CHECK_THROWS_AS(ldm::data::crop_image(RgbImage{}, o, {}), ldm::Error);
}

}  // namespace crop_test
