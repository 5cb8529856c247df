// Crops against python3-pil (DiT's center_crop_arr and PIL crop+resize, computed by
// tests/datasets/reference/make_images.py on the same files) and the control-metadata contract.
// Rectangular targets (aspect-ratio buckets) are checked against kRectScript below, the same
// functions generalised to h x w, run with the same python3-pil on the same fixture files.
#include "datasets/images/crop.h"

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

#include "datasets/images/image_decode.h"
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

void check_meta_inside(const ldm::ControlMeta& m, const RgbImage& in) {
  CHECK(m.orig_h == in.height);
  CHECK(m.orig_w == in.width);
  CHECK(m.crop_top >= 0);
  CHECK(m.crop_left >= 0);
  CHECK(m.crop_h >= 1);
  CHECK(m.crop_w >= 1);
  CHECK(m.crop_top + m.crop_h <= in.height);
  CHECK(m.crop_left + m.crop_w <= in.width);
}

auto box_of(const ldm::ControlMeta& m) { return std::make_tuple(m.crop_top, m.crop_left, m.crop_h, m.crop_w); }

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
    const auto filter = c[8] == "bilinear"  ? ldm::data::ResampleFilter::Bilinear
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
    for (const auto& size : sizes) {
      const int w = size.first, h = size.second;  // variables, not bindings: CAPTURE's lambda reads them
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
        if (a.control.flip) CHECK(ldm::data::flip_horizontal(c.image).pixels == a.image.pixels);
        else CHECK(c.image.pixels == a.image.pixels);
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

// ---------------------------------------------------------------------------------------------
// Rectangular (h x w) targets.

// DiT's center_crop_arr generalised to h x w (datasets/images/crop.h, Center), torchvision's final
// resize for RandomResizedCrop(size=(h, w)), and DiT's function verbatim for the square check.
// Usage: python3 script DIR; DIR/jobs.txt holds one job a line, "<kind> <name> <source file> args":
//   cover <h> <w>          -> the two-step resize alone (BOX halvings, BICUBIC to cover h x w)
//   center <h> <w>         -> the central h x w window of it
//   dit <R>                -> DiT's center_crop_arr(img, R), verbatim
//   crop_resize <top> <left> <ch> <cw> <h> <w> <filter> -> img.crop(box).resize((w, h), filter)
// Each writes DIR/<name>.ppm; sources are opened as the fixture's references are
// (exif_transpose, convert("RGB")).
constexpr const char* kRectScript = R"PY(
import os
import sys

import numpy as np
from PIL import Image, ImageOps

d = sys.argv[1]
filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "box": Image.BOX}


def cover(img, h, w):
    while img.size[1] >= 2 * h and img.size[0] >= 2 * w:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = max(h / img.size[1], w / img.size[0])
    size = (max(round(img.size[0] * scale), w), max(round(img.size[1] * scale), h))
    return img.resize(size, resample=Image.BICUBIC)


def center(img, h, w):
    arr = np.array(cover(img, h, w))
    y = (arr.shape[0] - h) // 2
    x = (arr.shape[1] - w) // 2
    return Image.fromarray(arr[y: y + h, x: x + w])


def center_crop_arr(pil_image, image_size):
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return Image.fromarray(arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size])


n = 0
for line in open(os.path.join(d, "jobs.txt")):
    f = line.split()
    if not f:
        continue
    kind, name, src, a = f[0], f[1], f[2], f[3:]
    img = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    if kind == "cover":
        out = cover(img, int(a[0]), int(a[1]))
    elif kind == "center":
        out = center(img, int(a[0]), int(a[1]))
    elif kind == "dit":
        out = center_crop_arr(img, int(a[0]))
    elif kind == "crop_resize":
        top, left, ch, cw, h, w = map(int, a[:6])
        out = img.crop((left, top, left + cw, top + ch)).resize((w, h), filters[a[6]])
    else:
        raise SystemExit("unknown job " + kind)
    out.save(os.path.join(d, name + ".ppm"))
    n += 1
print(n, "jobs done")
)PY";

// One batch of kRectScript jobs on the fixture's files.
class RectJobs {
 public:
  void add(const std::string& kind, const std::string& name, const std::string& src, const std::string& args) {
    jobs_ << kind << ' ' << name << ' ' << images().dir.file(src) << ' ' << args << '\n';
  }
  void run() {
    std::ofstream(dir_.file("rect.py")) << kRectScript;
    std::ofstream(dir_.file("jobs.txt")) << jobs_.str();
    const std::string log = dir_.file("rect.log");
    const std::string cmd =
        ldm::testing::pil_python() + " " + dir_.file("rect.py") + " " + dir_.path() + " >" + log + " 2>&1";
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "rectangular reference script failed:\n" << slurp(log));
  }
  RgbImage result(const std::string& name) const { return read_ppm(dir_.file(name + ".ppm")); }

 private:
  ldm::testing::TempDir dir_{"ldm-crop-rect"};
  std::ostringstream jobs_;
};

struct RectCase {
  std::string src;
  int h, w;
};
// Landscape and portrait targets of landscape, portrait and tiny images: BOX halvings stopped by
// either axis (1000x300 to 64x128 halves twice, to 32x400 once, limited by the width), upscaling
// (17x9 to 24x40), EXIF rotation and CMYK.
const std::vector<RectCase>& rect_cases() {
  static const std::vector<RectCase> c = {
      {"rgb_320x240_s2.jpg", 64, 128},  {"rgb_320x240_s2.jpg", 160, 96},
      {"rgb_1000x300_s2.jpg", 64, 128}, {"rgb_1000x300_s2.jpg", 96, 32},
      {"rgb_1000x300_s2.jpg", 32, 400}, {"rgb_200x500_s2.jpg", 128, 64},
      {"rgb_200x500_s2.jpg", 40, 100},  {"rgb_257x129_s0.jpg", 32, 96},
      {"exif_o6.jpg", 48, 80},          {"cmyk.jpg", 90, 60},
      {"rgb_17x9_s2.jpg", 8, 12},       {"rgb_17x9_s2.jpg", 24, 40},
  };
  return c;
}
std::string rect_name(const std::string& kind, const RectCase& c) {
  return kind + "_" + fs::path(c.src).stem().string() + "_" + std::to_string(c.h) + "x" + std::to_string(c.w);
}

// The window [a, a+len) of an axis resized from `orig` to `resized`, in original coordinates.
void check_axis_maps_back(int start, int extent, int a, int len, int resized, int orig) {
  const double s = double(orig) / resized;
  CHECK(std::abs(start - a * s) <= 1.0);
  CHECK(std::abs(start + extent - (a + len) * s) <= 1.0);
}

TEST_CASE("rectangular center crop equals the generalised center_crop_arr (python3-pil) within 2/255") {
  RectJobs jobs;
  for (const auto& c : rect_cases()) {
    jobs.add("center", rect_name("center", c), c.src, std::to_string(c.h) + " " + std::to_string(c.w));
    jobs.add("cover", rect_name("cover", c), c.src, std::to_string(c.h) + " " + std::to_string(c.w));
  }
  jobs.run();
  for (const auto& c : rect_cases()) {
    CAPTURE(rect_name("center", c));
    const RgbImage in = ldm::data::decode_image_file(images().dir.file(c.src));
    const RgbImage ref = jobs.result(rect_name("center", c));
    const RgbImage ref_cover = jobs.result(rect_name("cover", c));
    CropOptions o;
    o.strategy = CropStrategy::Center;
    o.height = c.h;
    o.width = c.w;
    const auto res = ldm::data::crop_image(in, o, AugmentKey{1, 2, 3, 0});
    REQUIRE(res.image.height == c.h);
    REQUIRE(res.image.width == c.w);
    REQUIRE(ref.height == c.h);
    REQUIRE(ref.width == c.w);
    const int diff = max_abs_diff(res.image, ref);
    // The resize alone, same size as PIL's (both sides cover the target, one of them exactly).
    const RgbImage cover = ldm::data::resize_to_cover(in, c.h, c.w);
    REQUIRE(cover.height == ref_cover.height);
    REQUIRE(cover.width == ref_cover.width);
    CHECK(cover.height >= c.h);
    CHECK(cover.width >= c.w);
    CHECK((cover.height == c.h || cover.width == c.w));
    const int cover_diff = max_abs_diff(cover, ref_cover);
    MESSAGE(rect_name("center", c) << " from " << in.width << "x" << in.height << " via " << cover.width << "x"
                                   << cover.height << " box (" << res.control.crop_top << "," << res.control.crop_left
                                   << "," << res.control.crop_h << "," << res.control.crop_w << ") max|diff| = " << diff
                                   << ", resize " << cover_diff);
    CHECK(diff <= 2);
    CHECK(cover_diff <= 2);
    // The crop is the central window of the resize, and center_crop_rect is the same function.
    CHECK(res.image.pixels ==
          ldm::data::crop_region(cover, (cover.height - c.h) / 2, (cover.width - c.w) / 2, c.h, c.w).pixels);
    ldm::ControlMeta meta;
    CHECK(ldm::data::center_crop_rect(in, c.h, c.w, &meta).pixels == res.image.pixels);
    CHECK(box_of(meta) == box_of(res.control));
    // The box: inside the original, the central window mapped back, with the target's aspect and
    // one side (nearly) the whole image.
    check_meta_inside(res.control, in);
    CHECK_FALSE(res.control.flip);
    check_axis_maps_back(res.control.crop_top, res.control.crop_h, (cover.height - c.h) / 2, c.h, cover.height,
                         in.height);
    check_axis_maps_back(res.control.crop_left, res.control.crop_w, (cover.width - c.w) / 2, c.w, cover.width,
                         in.width);
    const double sy = double(in.height) / cover.height, sx = double(in.width) / cover.width;
    CHECK((std::abs(res.control.crop_h - in.height) <= 1 + sy || std::abs(res.control.crop_w - in.width) <= 1 + sx));
    CHECK(std::abs(res.control.crop_top + res.control.crop_h / 2.0 - in.height / 2.0) <= 1 + sy);
    CHECK(std::abs(res.control.crop_left + res.control.crop_w / 2.0 - in.width / 2.0) <= 1 + sx);
  }
}

// Every (top, left) where `win` is exactly a window of `big`.
std::vector<std::pair<int, int>> find_window(const RgbImage& big, const RgbImage& win) {
  std::vector<std::pair<int, int>> at;
  for (int t = 0; t + win.height <= big.height; ++t)
    for (int l = 0; l + win.width <= big.width; ++l)
      if (ldm::data::crop_region(big, t, l, win.height, win.width).pixels == win.pixels) at.emplace_back(t, l);
  return at;
}

TEST_CASE("rectangular random crop: a uniformly placed window of the generalised resize (python3-pil)") {
  // The resize is checked against PIL in the center test; here: every random crop is a window of
  // it, the box maps that window back, and the windows move.
  for (const auto& c : rect_cases()) {
    CAPTURE(rect_name("random", c));
    const RgbImage in = ldm::data::decode_image_file(images().dir.file(c.src));
    const RgbImage cover = ldm::data::resize_to_cover(in, c.h, c.w);
    CropOptions o;
    o.strategy = CropStrategy::Random;
    o.height = c.h;
    o.width = c.w;
    std::set<std::pair<int, int>> offsets;
    for (std::uint64_t rec = 0; rec < 12; ++rec) {
      const auto res = ldm::data::crop_image(in, o, AugmentKey{5, 1, rec, 0});
      REQUIRE(res.image.height == c.h);
      REQUIRE(res.image.width == c.w);
      check_meta_inside(res.control, in);
      const auto at = find_window(cover, res.image);
      REQUIRE(!at.empty());
      // A textured image has one place for each window; take the first if it has more.
      const auto [top, left] = at.front();
      offsets.insert(at.front());
      check_axis_maps_back(res.control.crop_top, res.control.crop_h, top, c.h, cover.height, in.height);
      check_axis_maps_back(res.control.crop_left, res.control.crop_w, left, c.w, cover.width, in.width);
    }
    const std::size_t positions = std::size_t(cover.height - c.h + 1) * (cover.width - c.w + 1);
    if (positions >= 20) CHECK(offsets.size() >= 6);
    if (positions == 1) CHECK(offsets.size() == 1);
  }
}

TEST_CASE("rectangular random_resized equals PIL's img.crop(box).resize((w, h)) within 2/255") {
  struct Case {
    std::string src;
    int h, w;
    ldm::data::ResampleFilter filter;
    const char* filter_name;
  };
  const std::vector<Case> cases = {
      {"rgb_320x240_s2.jpg", 64, 128, ldm::data::ResampleFilter::Bilinear, "bilinear"},
      {"rgb_200x500_s2.jpg", 96, 48, ldm::data::ResampleFilter::Bilinear, "bilinear"},
      {"rgb_1000x300_s2.jpg", 50, 120, ldm::data::ResampleFilter::Bicubic, "bicubic"},
      {"cmyk.jpg", 33, 70, ldm::data::ResampleFilter::Box, "box"},
  };
  RectJobs jobs;
  std::vector<std::tuple<Case, std::uint64_t, ldm::data::CropResult, std::string>> runs;
  for (const auto& c : cases) {
    const RgbImage in = ldm::data::decode_image_file(images().dir.file(c.src));
    for (std::uint64_t rec = 0; rec < 3; ++rec) {
      CropOptions o;
      o.strategy = CropStrategy::RandomResized;
      o.height = c.h;
      o.width = c.w;
      o.resized_filter = c.filter;
      const AugmentKey key{11, 0, rec, 0};
      auto res = ldm::data::crop_image(in, o, key);
      const auto& m = res.control;
      check_meta_inside(m, in);
      // get_params does not depend on the output size: the square crop draws the same box.
      CropOptions square = o;
      square.height = square.width = 0;
      square.size = 40;
      CHECK(box_of(ldm::data::crop_image(in, square, key).control) == box_of(m));
      const std::string name = "rr_" + fs::path(c.src).stem().string() + "_" + std::to_string(rec);
      std::ostringstream args;
      args << m.crop_top << ' ' << m.crop_left << ' ' << m.crop_h << ' ' << m.crop_w << ' ' << c.h << ' ' << c.w << ' '
           << c.filter_name;
      jobs.add("crop_resize", name, c.src, args.str());
      runs.emplace_back(c, rec, std::move(res), name);
    }
  }
  jobs.run();
  for (const auto& run : runs) {
    const auto& [c, rec, res, label] = run;
    const std::string name = label;  // a variable: CAPTURE's lambda cannot read a structured binding (C++17)
    CAPTURE(name);
    const RgbImage ref = jobs.result(name);
    REQUIRE(res.image.height == c.h);
    REQUIRE(res.image.width == c.w);
    REQUIRE(ref.height == c.h);
    REQUIRE(ref.width == c.w);
    const int diff = max_abs_diff(res.image, ref);
    MESSAGE(name << " box (" << res.control.crop_top << "," << res.control.crop_left << "," << res.control.crop_h << ","
                 << res.control.crop_w << ") -> " << c.w << "x" << c.h << " max|diff| = " << diff);
    CHECK(diff <= 2);
  }
}

// The square path as it was before rectangular targets, from the public pieces: DiT's resize with
// `min(W, H) >= 2*size` and size/min(W, H), then the window (crop stream = purpose 1).
RgbImage old_square_resize(const RgbImage& in, int size) {
  RgbImage img = in;
  while (std::min(img.width, img.height) >= 2 * size)
    img = ldm::data::resize_image(img, img.width / 2, img.height / 2, ldm::data::ResampleFilter::Box);
  const double scale = static_cast<double>(size) / std::min(img.width, img.height);
  return ldm::data::resize_image(img, static_cast<int>(std::nearbyint(img.width * scale)),
                                 static_cast<int>(std::nearbyint(img.height * scale)),
                                 ldm::data::ResampleFilter::Bicubic);
}

TEST_CASE("a square target (height == width == size, or 0) is the old square path bit for bit") {
  // The generalised Python reference reduces to DiT's verbatim function...
  RectJobs jobs;
  const auto centers = manifest("center");
  REQUIRE(centers.size() >= 6);
  for (const auto& c : centers) {
    const RectCase rc{c[1], std::stoi(c[3]), std::stoi(c[3])};
    jobs.add("center", rect_name("center", rc), c[1], c[3] + " " + c[3]);
    jobs.add("dit", rect_name("dit", rc), c[1], c[3]);
  }
  jobs.run();
  for (const auto& c : centers) {
    CAPTURE(c[0]);
    const int r = std::stoi(c[3]);
    const RectCase rc{c[1], r, r};
    CHECK(jobs.result(rect_name("center", rc)).pixels == jobs.result(rect_name("dit", rc)).pixels);
    CHECK(jobs.result(rect_name("dit", rc)).pixels == read_ppm(images().dir.file(c[0] + ".ppm")).pixels);
    // ... and so does ours: center_crop_rect(s, s) == center_crop_arr(s) == the old resize's window.
    const RgbImage in = ldm::data::decode_image_file(images().dir.file(c[1]));
    ldm::ControlMeta ma, mb;
    const RgbImage a = ldm::data::center_crop_arr(in, r, &ma);
    CHECK(ldm::data::center_crop_rect(in, r, r, &mb).pixels == a.pixels);
    CHECK(box_of(ma) == box_of(mb));
    const RgbImage old = old_square_resize(in, r);
    CHECK(ldm::data::resize_to_cover(in, r, r).pixels == old.pixels);
    CHECK(a.pixels == ldm::data::crop_region(old, (old.height - r) / 2, (old.width - r) / 2, r, r).pixels);
  }
  // Every strategy: height/width == size, or one of them, give what size alone gives.
  const std::vector<std::pair<int, int>> sizes = {{320, 240}, {240, 320}, {100, 100}, {1000, 90}, {33, 517}, {7, 5}};
  for (CropStrategy s : {CropStrategy::Center, CropStrategy::Random, CropStrategy::RandomResized}) {
    for (const auto& size : sizes) {
      const int w = size.first, h = size.second;  // variables, not bindings: CAPTURE's lambda reads them
      CAPTURE(ldm::data::crop_strategy_name(s));
      CAPTURE(w);
      CAPTURE(h);
      const RgbImage in = pattern(w, h);
      for (std::uint64_t rec = 0; rec < 6; ++rec) {
        const AugmentKey key{42, 3, rec, 1};
        CropOptions o;
        o.strategy = s;
        o.size = 48;
        o.flip_prob = 0.5;
        const auto base = ldm::data::crop_image(in, o, key);
        for (auto [hh, ww] : std::vector<std::pair<int, int>>{{48, 48}, {48, 0}, {0, 48}}) {
          CropOptions r = o;
          r.height = hh;
          r.width = ww;
          const auto got = ldm::data::crop_image(in, r, key);
          CHECK(got.image.pixels == base.image.pixels);
          CHECK(box_of(got.control) == box_of(base.control));
          CHECK(got.control.flip == base.control.flip);
        }
        CropOptions r = o;  // `size` is ignored when both are set
        r.size = 3;
        r.height = r.width = 48;
        CHECK(ldm::data::crop_image(in, r, key).image.pixels == base.image.pixels);
        if (s == CropStrategy::RandomResized) continue;
        // The old Center / Random code, rebuilt from the public pieces.
        const RgbImage old = old_square_resize(in, 48);
        int top = (old.height - 48) / 2, left = (old.width - 48) / 2;
        if (s == CropStrategy::Random) {
          ldm::data::AugmentRng rng(key, 1);
          top = static_cast<int>(rng.uniform_int(0, old.height - 48 + 1));
          left = static_cast<int>(rng.uniform_int(0, old.width - 48 + 1));
        }
        RgbImage expect = ldm::data::crop_region(old, top, left, 48, 48);
        if (base.control.flip) expect = ldm::data::flip_horizontal(expect);
        CHECK(base.image.pixels == expect.pixels);
      }
    }
  }
}

TEST_CASE("rectangular targets, every strategy: shape, metadata inside the original, determinism, flip") {
  const std::vector<std::pair<int, int>> sizes = {{320, 240}, {240, 320}, {100, 100}, {1000, 90}, {33, 517}, {5, 3}};
  const std::vector<std::pair<int, int>> targets = {{48, 96}, {96, 48}, {17, 64}, {64, 30}};  // (h, w)
  for (CropStrategy s : {CropStrategy::Center, CropStrategy::Random, CropStrategy::RandomResized}) {
    for (const auto& size : sizes) {
      const int w = size.first, h = size.second;  // variables, not bindings: CAPTURE's lambda reads them
      for (const auto& target : targets) {
        const int th = target.first, tw = target.second;
        CAPTURE(ldm::data::crop_strategy_name(s));
        CAPTURE(w);
        CAPTURE(h);
        CAPTURE(th);
        CAPTURE(tw);
        const RgbImage in = pattern(w, h);
        CropOptions o;
        o.strategy = s;
        o.height = th;
        o.width = tw;
        o.flip_prob = 0.5;
        for (std::uint64_t rec = 0; rec < 4; ++rec) {
          const AugmentKey key{42, 3, rec, 0};
          const auto a = ldm::data::crop_image(in, o, key);
          const auto b = ldm::data::crop_image(in, o, key);
          REQUIRE(a.image.height == th);
          REQUIRE(a.image.width == tw);
          CHECK(a.image.pixels == b.image.pixels);
          CHECK(box_of(a.control) == box_of(b.control));
          check_meta_inside(a.control, in);
          if (s != CropStrategy::RandomResized) {
            // The box has (about) the target's aspect: the window is th x tw resized pixels,
            // each about orig/resized original pixels.
            const RgbImage cover = ldm::data::resize_to_cover(in, th, tw);
            const double sy = double(h) / cover.height, sx = double(w) / cover.width;
            CHECK(std::abs(a.control.crop_h - th * sy) <= 2.0);
            CHECK(std::abs(a.control.crop_w - tw * sx) <= 2.0);
          }
          CropOptions no_flip = o;
          no_flip.flip_prob = 0.0;
          const auto c = ldm::data::crop_image(in, no_flip, key);
          CHECK(box_of(c.control) == box_of(a.control));
          if (a.control.flip) CHECK(ldm::data::flip_horizontal(c.image).pixels == a.image.pixels);
          else CHECK(c.image.pixels == a.image.pixels);
        }
      }
    }
  }
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
  o.height = -1;
  CHECK_THROWS_AS(ldm::data::crop_image(pattern(10, 10), o, {}), ldm::Error);
  o.height = 0;
  o.width = -4;
  CHECK_THROWS_AS(ldm::data::crop_image(pattern(10, 10), o, {}), ldm::Error);
  o.size = 0;  // unused when both sides are given
  o.height = 6;
  o.width = 9;
  CHECK(ldm::data::crop_image(pattern(10, 10), o, {}).image.width == 9);
  CHECK_THROWS_AS(ldm::data::center_crop_rect(pattern(10, 10), 0, 4), ldm::Error);
  CHECK_THROWS_AS(ldm::data::resize_to_cover(pattern(10, 10), 4, 0), ldm::Error);
}

}  // namespace crop_test
