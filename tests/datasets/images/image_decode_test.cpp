// Decoding against python3-pil: tests/datasets/reference/make_images.py writes real JPEG/PNG/WebP
// files (sizes, aspects, gray, CMYK, progressive, all EXIF orientations, alpha, palette, 16-bit,
// truncated) and PIL's `ImageOps.exif_transpose(Image.open(f)).convert("RGB")` of each.
#include "datasets/images/image_decode.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "shared/core/error.h"
#include "tests/support/pil_images.h"
#include "tests/support/temp_dir.h"

namespace image_decode_test {
namespace fs = std::filesystem;

using Images = ldm::testing::PilImages;
inline std::string slurp(const std::string& path) { return ldm::testing::slurp_file(path); }

const Images& images() {
  static Images im{"ldm-image-decode"};
  REQUIRE_MESSAGE(im.error.empty(), im.error);
  return im;
}

struct Case {
  std::string name, file, expect;
  std::vector<std::string> args;
};

std::vector<Case> manifest(const std::string& kind) {
  std::ifstream in(images().dir.file("manifest.txt"));
  std::vector<Case> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    Case c;
    s >> c.name >> c.file >> c.expect;
    for (std::string a; s >> a;) c.args.push_back(a);
    if (c.expect == kind) out.push_back(c);
  }
  return out;
}

// PIL's PPM ("P6\n<w> <h>\n255\n" + RGB bytes).
ldm::data::RgbImage read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int maxval = 0;
  ldm::data::RgbImage img;
  in >> magic >> img.width >> img.height >> maxval;
  REQUIRE_MESSAGE((magic == "P6" && maxval == 255 && in.get() == '\n'), "bad PPM " << path);
  img.pixels.resize(static_cast<std::size_t>(img.width) * img.height * 3);
  in.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
  REQUIRE_MESSAGE(in.good(), "short PPM " << path);
  return img;
}

int max_abs_diff(const ldm::data::RgbImage& a, const ldm::data::RgbImage& b) {
  int m = 0;
  for (std::size_t i = 0; i < a.pixels.size() && i < b.pixels.size(); ++i)
    m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  const std::string s = slurp(path);
  return std::vector<std::uint8_t>(s.begin(), s.end());
}

// The test cases live in the namespace too, so a unity build sees no clashing helpers.
using ldm::data::RgbImage;

TEST_CASE("decode_image matches PIL's exif_transpose(open(f)).convert('RGB') within 2/255") {
  const auto cases = manifest("ok");
  REQUIRE(cases.size() >= 30);
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const RgbImage ref = read_ppm(images().dir.file(c.name + ".ppm"));
    const RgbImage got = ldm::data::decode_image_file(images().dir.file(c.file));
    REQUIRE(got.width == ref.width);
    REQUIRE(got.height == ref.height);
    REQUIRE(got.pixels.size() == ref.pixels.size());
    const int diff = max_abs_diff(got, ref);
    MESSAGE(c.name << " " << got.width << "x" << got.height << " max|diff| = " << diff);
    CHECK(diff <= 2);
  }
}

TEST_CASE("unreadable and truncated images throw DataError naming the source") {
  const auto cases = manifest("error");
  REQUIRE(cases.size() >= 6);
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const auto bytes = read_bytes(images().dir.file(c.file));
    const std::string source = "train/n01440764/" + c.file;
    try {
      ldm::data::decode_image(bytes, source);
      FAIL("decoded " << c.file << " without error");
    } catch (const ldm::DataError& e) {
      const std::string what = e.what();
      MESSAGE(what);
      CHECK(what.rfind(source + ": ", 0) == 0);
    }
  }
  // The truncated baseline JPEG is reported as truncated, not decoded with a grey bottom.
  const auto bytes = read_bytes(images().dir.file("truncated.jpg"));
  CHECK_THROWS_WITH_AS(ldm::data::decode_image(bytes, "x.JPEG"), doctest::Contains("x.JPEG: "), ldm::DataError);
  try {
    ldm::data::decode_image(bytes, "x.JPEG");
  } catch (const ldm::DataError& e) {
    CHECK(std::string(e.what()).find("truncated") != std::string::npos);
  }
}

TEST_CASE("the format comes from the magic bytes") {
  using ldm::data::detect_image_format;
  using ldm::data::ImageFormat;
  const auto jpg = read_bytes(images().dir.file("rgb_64x64_s1.jpg"));
  const auto png = read_bytes(images().dir.file("disguised.JPEG"));
  const auto webp = read_bytes(images().dir.file("lossy.webp"));
  CHECK(detect_image_format(jpg.data(), jpg.size()) == ImageFormat::Jpeg);
  CHECK(detect_image_format(png.data(), png.size()) == ImageFormat::Png);
  CHECK(detect_image_format(webp.data(), webp.size()) == ImageFormat::Webp);
  const std::uint8_t junk[4] = {1, 2, 3, 4};
  CHECK(detect_image_format(junk, 4) == ImageFormat::Unknown);
  CHECK(detect_image_format(junk, 0) == ImageFormat::Unknown);
}

TEST_CASE("apply_exif_orientation: the 8 orientations on a 3x2 image") {
  RgbImage in;
  in.width = 3;
  in.height = 2;
  for (int i = 0; i < 6; ++i) in.pixels.insert(in.pixels.end(), {std::uint8_t(i), 0, 0});
  // in (row-major):  0 1 2 / 3 4 5
  auto values = [](const RgbImage& im) {
    std::vector<int> v;
    for (std::size_t i = 0; i < im.pixels.size(); i += 3) v.push_back(im.pixels[i]);
    return v;
  };
  using V = std::vector<int>;
  CHECK(values(ldm::data::apply_exif_orientation(in, 1)) == V{0, 1, 2, 3, 4, 5});
  CHECK(values(ldm::data::apply_exif_orientation(in, 2)) == V{2, 1, 0, 5, 4, 3});
  CHECK(values(ldm::data::apply_exif_orientation(in, 3)) == V{5, 4, 3, 2, 1, 0});
  CHECK(values(ldm::data::apply_exif_orientation(in, 4)) == V{3, 4, 5, 0, 1, 2});
  CHECK(values(ldm::data::apply_exif_orientation(in, 5)) == V{0, 3, 1, 4, 2, 5});
  CHECK(values(ldm::data::apply_exif_orientation(in, 6)) == V{3, 0, 4, 1, 5, 2});
  CHECK(values(ldm::data::apply_exif_orientation(in, 7)) == V{5, 2, 4, 1, 3, 0});
  CHECK(values(ldm::data::apply_exif_orientation(in, 8)) == V{2, 5, 1, 4, 0, 3});
  const RgbImage r = ldm::data::apply_exif_orientation(in, 6);
  CHECK(r.width == 2);
  CHECK(r.height == 3);
}

}  // namespace image_decode_test
