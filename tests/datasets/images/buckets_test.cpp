// Aspect-ratio buckets: the SDXL-style list and the nearest-bucket rule (datasets/images/buckets.h).
#include "datasets/images/buckets.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "shared/core/error.h"

namespace buckets_test {

using ldm::data::Bucket;

bool contains(const std::vector<Bucket>& list, int h, int w) {
  return std::find(list.begin(), list.end(), Bucket{h, w}) != list.end();
}

// Every constraint of make_buckets' contract, for one list.
void check_list(const std::vector<Bucket>& list, int resolution, int step, double max_aspect) {
  const long long area = static_cast<long long>(resolution) * resolution;
  REQUIRE_FALSE(list.empty());
  CHECK(contains(list, resolution, resolution));
  std::set<std::pair<int, int>> seen;
  std::set<int> heights;
  for (const Bucket& b : list) {
    CAPTURE(b.height);
    CAPTURE(b.width);
    CHECK(b.height >= step);
    CHECK(b.width >= step);
    CHECK(b.height % step == 0);
    CHECK(b.width % step == 0);
    CHECK(static_cast<long long>(b.height) * b.width <= area);
    CHECK(std::max(b.height, b.width) <= max_aspect * std::min(b.height, b.width));
    // Maximal on the grid: one more step on either axis exceeds the area.
    CHECK(static_cast<long long>(b.height) * (b.width + step) > area);
    CHECK(static_cast<long long>(b.height + step) * b.width > area);
    CHECK(contains(list, b.width, b.height));        // symmetric
    CHECK(seen.insert({b.height, b.width}).second);  // no duplicates
    CHECK(heights.insert(b.height).second);          // one bucket per height
  }
  // Sorted by aspect w/h, ascending, strictly (no two buckets share an aspect).
  for (std::size_t i = 1; i < list.size(); ++i)
    CHECK(static_cast<long long>(list[i - 1].width) * list[i].height <
          static_cast<long long>(list[i].width) * list[i - 1].height);
  // Complete: every maximal grid pair within the aspect bound is listed.
  for (int h = step; static_cast<long long>(h) * step <= area; h += step) {
    const int w = static_cast<int>(area / h / step * step);
    const bool maximal = static_cast<long long>(h + step) * w > area;
    const bool aspect_ok = std::max(h, w) <= max_aspect * std::min(h, w);
    CHECK(contains(list, h, w) == (maximal && aspect_ok));
  }
}

TEST_CASE("make_buckets(256, 32, 2): the SDXL-style grid list") {
  const auto list = ldm::data::make_buckets(256, 32, 2.0);
  check_list(list, 256, 32, 2.0);
  // 256^2 = 64 cells of 32^2: (6, 10), (7, 9), (8, 8), (9, 7), (10, 6); (5, 12) is too elongated.
  const std::vector<Bucket> expect = {{320, 192}, {288, 224}, {256, 256}, {224, 288}, {192, 320}};
  REQUIRE(list.size() == expect.size());
  for (std::size_t i = 0; i < expect.size(); ++i) {
    CHECK(list[i].height == expect[i].height);
    CHECK(list[i].width == expect[i].width);
  }
}

TEST_CASE("make_buckets: constraints, maximality and symmetry over several settings") {
  for (const auto& setting : std::vector<std::tuple<int, int, double>>{{256, 32, 2.0},
                                                                       {256, 16, 2.0},
                                                                       {256, 8, 4.0},
                                                                       {512, 64, 4.0},
                                                                       {1024, 64, 4.0},
                                                                       {64, 1, 1.5},
                                                                       {96, 32, 1.0},
                                                                       {32, 32, 3.0}}) {
    const int res = std::get<0>(setting), step = std::get<1>(setting);
    const double aspect = std::get<2>(setting);
    CAPTURE(res);
    CAPTURE(step);
    CAPTURE(aspect);
    const auto list = ldm::data::make_buckets(res, step, aspect);
    check_list(list, res, step, aspect);
    if (aspect == 1.0) CHECK(list.size() == 1);
  }
  // The defaults are the named constants.
  CHECK(ldm::data::make_buckets(256).size() ==
        ldm::data::make_buckets(256, ldm::data::kDefaultBucketStep, ldm::data::kDefaultBucketMaxAspect).size());
  // SDXL's own 1024^2 list (64-pixel steps) holds these near-square buckets; ours too. (Its more
  // elongated ones are not all area-maximal, e.g. 640x1536 where the grid allows 640x1600: SDXL
  // gives no rule, which is why ours is a reconstruction.)
  const auto sdxl = ldm::data::make_buckets(1024, 64, 4.0);
  for (auto [h, w] : std::vector<std::pair<int, int>>{{1024, 1024}, {896, 1152}, {832, 1216}, {768, 1344}}) {
    CHECK(contains(sdxl, h, w));
    CHECK(contains(sdxl, w, h));
  }
  CHECK_FALSE(contains(sdxl, 640, 1536));
  CHECK(contains(sdxl, 640, 1600));
}

TEST_CASE("make_buckets: bad arguments name the value") {
  auto message = [](int r, int s, double a) {
    try {
      ldm::data::make_buckets(r, s, a);
    } catch (const ldm::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message(250, 32, 2.0).find("250") != std::string::npos);
  CHECK(message(250, 32, 2.0).find("32") != std::string::npos);
  CHECK(message(256, 0, 2.0).find("step") != std::string::npos);
  CHECK(message(256, -8, 2.0).find("-8") != std::string::npos);
  CHECK(message(256, 32, 0.5).find("0.5") != std::string::npos);
  CHECK(message(256, 32, std::nan("")).find("max_aspect") != std::string::npos);
  CHECK(message(0, 1, 2.0).find("resolution") != std::string::npos);
}

TEST_CASE("nearest_bucket: portrait, landscape and square images") {
  const auto list = ldm::data::make_buckets(256, 32, 2.0);
  auto pick = [&](int h, int w) {
    const Bucket b = list[ldm::data::nearest_bucket(list, h, w)];
    return std::make_pair(b.height, b.width);
  };
  using P = std::pair<int, int>;
  CHECK(pick(256, 256) == P{256, 256});
  CHECK(pick(1000, 1000) == P{256, 256});
  CHECK(pick(480, 500) == P{256, 256});
  CHECK(pick(480, 640) == P{224, 288});    // 4:3 landscape: 288/224 = 1.286 vs 320/192 = 1.667
  CHECK(pick(640, 480) == P{288, 224});    // 3:4 portrait
  CHECK(pick(1080, 1920) == P{192, 320});  // 16:9 landscape: the widest bucket
  CHECK(pick(1920, 1080) == P{320, 192});  // 9:16 portrait: the tallest
  CHECK(pick(100, 1000) == P{192, 320});   // beyond the range: the extreme bucket
  CHECK(pick(1000, 100) == P{320, 192});
  // Log distance, not linear: aspect 1.5 is nearer 1.667 (log 0.105) than 1.286 (log 0.154).
  CHECK(pick(200, 300) == P{192, 320});
  // The bucket is found by aspect only, whatever the image's size.
  CHECK(pick(9, 16) == pick(1080, 1920));
}

TEST_CASE("nearest_bucket: exact ties go to the squarer bucket, then the earlier one") {
  // Image aspect 2 lies exactly between 1 and 4 in log space.
  const std::vector<Bucket> list = {{64, 256}, {128, 128}};
  CHECK(ldm::data::nearest_bucket(list, 100, 200) == 1);
  const std::vector<Bucket> rev = {{128, 128}, {64, 256}};
  CHECK(ldm::data::nearest_bucket(rev, 100, 200) == 0);
  // Portrait and landscape equally far from a square image: the earlier one.
  const std::vector<Bucket> pair = {{64, 128}, {128, 64}};
  CHECK(ldm::data::nearest_bucket(pair, 50, 50) == 0);
  // Identical aspects: the earlier one.
  const std::vector<Bucket> same = {{64, 128}, {128, 256}};
  CHECK(ldm::data::nearest_bucket(same, 10, 20) == 0);
  CHECK_THROWS_AS(ldm::data::nearest_bucket({}, 10, 10), ldm::Error);
  CHECK_THROWS_AS(ldm::data::nearest_bucket(list, 0, 10), ldm::Error);
  CHECK_THROWS_AS(ldm::data::nearest_bucket(std::vector<Bucket>{{0, 5}}, 10, 10), ldm::Error);
}

}  // namespace buckets_test
