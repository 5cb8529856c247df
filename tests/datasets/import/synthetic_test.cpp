#include "datasets/import/synthetic.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "shared/core/error.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace ldm::data;
using ldm::testing::TempDir;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

SyntheticParams small_params() {
  SyntheticParams p;
  p.records = 50;
  p.classes = 10;
  p.resolution = 32;
  p.seed = 3;
  p.shard_records = 20;
  return p;
}

bool has_word(const std::string& caption, const std::string& word) {
  return (" " + caption + " ").find(" " + word + " ") != std::string::npos;
}

// Mean column (in pixels, from the left edge) of the object: its pixels are the saturated
// ones, because the background is nearly grey and every class colour is saturated.
// Returns -1 when fewer than 3 pixels look like the object.
double object_centre_x(const Record& r) {
  const int side = static_cast<int>(r.shape[1]);
  double sum = 0;
  int n = 0;
  for (int y = 0; y < r.shape[0]; ++y)
    for (int x = 0; x < side; ++x) {
      const std::uint8_t* px = &r.payload[(static_cast<std::size_t>(y) * side + x) * 3];
      if (*std::max_element(px, px + 3) - *std::min_element(px, px + 3) > 60) {
        sum += x + 0.5;
        ++n;
      }
    }
  return n >= 3 ? sum / n : -1;
}

ino_t inode(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("the same parameters render identical bytes, another seed renders other images") {
  const SyntheticParams p = small_params();
  SyntheticParams other = p;
  other.seed = p.seed + 1;
  int differing = 0;
  for (std::int64_t i = 0; i < 20; ++i) {
    const Record a = render_synthetic_record(p, i), b = render_synthetic_record(p, i);
    CHECK(a.payload == b.payload);
    CHECK(a.caption == b.caption);
    CHECK(a.label == b.label);
    CHECK(a.control.crop_left == b.control.crop_left);
    differing += render_synthetic_record(other, i).payload != a.payload;
  }
  CHECK(differing == 20);
}

TEST_CASE(
    "records carry ids and {R, R, 3} images; every block of `classes` records holds each class "
    "once") {
  SyntheticParams p = small_params();
  p.resolution = 16;
  for (std::int64_t block = 0; block < 3; ++block) {
    std::set<std::int32_t> labels;
    for (std::int64_t i = block * p.classes; i < (block + 1) * p.classes; ++i) {
      const Record r = render_synthetic_record(p, i);
      CHECK(r.id == static_cast<std::uint64_t>(i));
      CHECK(r.shape == std::vector<std::int64_t>{16, 16, 3});
      CHECK(r.payload.size() == 16u * 16u * 3u);
      labels.insert(r.label);
    }
    CHECK(labels.size() == static_cast<std::size_t>(p.classes));
    CHECK(*labels.begin() == 0);
    CHECK(*labels.rbegin() == p.classes - 1);
  }
}

TEST_CASE("classes differ in shape or colour: class names are distinct") {
  std::set<std::string> names;
  for (std::int64_t k = 0; k < 64; ++k) names.insert(synthetic_class_name(k));
  CHECK(names.size() == 64);
  CHECK(synthetic_class_name(0) != synthetic_class_name(1));
}

TEST_CASE("invalid parameters are a DataError naming the parameter") {
  SyntheticParams p = small_params();
  p.classes = 0;
  CHECK_THROWS_WITH_AS(render_synthetic_record(p, 0), doctest::Contains("classes"), ldm::DataError);
  p.classes = 100000;
  CHECK_THROWS_WITH_AS(render_synthetic_record(p, 0), doctest::Contains("classes"), ldm::DataError);
  p = small_params();
  p.resolution = 2;
  CHECK_THROWS_WITH_AS(render_synthetic_record(p, 0), doctest::Contains("resolution"), ldm::DataError);
}

TEST_CASE("the crop box lies inside the original canvas and the control metadata is consistent") {
  const SyntheticParams p = small_params();
  std::set<std::int32_t> widths;
  int flipped = 0;
  for (std::int64_t i = 0; i < 300; ++i) {
    const ldm::ControlMeta c = render_synthetic_record(p, i).control;
    CAPTURE(i);
    CHECK(c.orig_h >= p.resolution / 2);
    CHECK(c.orig_h <= 3 * p.resolution);
    CHECK(c.orig_w >= p.resolution / 2);
    CHECK(c.orig_w <= 3 * p.resolution);
    const double aspect = static_cast<double>(c.orig_w) / c.orig_h;
    CHECK(aspect >= 0.5 - 0.05);
    CHECK(aspect <= 2 + 0.05);
    CHECK(c.crop_h == c.crop_w);
    CHECK(c.crop_h > 0);
    CHECK(c.crop_top >= 0);
    CHECK(c.crop_left >= 0);
    CHECK(c.crop_top + c.crop_h <= c.orig_h);
    CHECK(c.crop_left + c.crop_w <= c.orig_w);
    widths.insert(c.orig_w);
    flipped += c.flip;
  }
  CHECK(widths.size() > 30);  // the original size really varies
  CHECK(flipped > 100);
  CHECK(flipped < 200);
}

TEST_CASE(
    "the caption names the class and its left/right word matches the object's measured position, "
    "flipped or not") {
  const SyntheticParams p = small_params();
  const double res = static_cast<double>(p.resolution);
  int sided[2][2] = {};  // [flip][right]
  int middle = 0;
  for (std::int64_t i = 0; i < 400; ++i) {
    const Record r = render_synthetic_record(p, i);
    CAPTURE(i);
    CAPTURE(r.caption);
    CHECK(r.caption.find(synthetic_class_name(r.label)) != std::string::npos);
    const double x = object_centre_x(r);
    REQUIRE(x >= 0);
    const bool left = has_word(r.caption, "left"), right = has_word(r.caption, "right");
    CHECK(left + right + has_word(r.caption, "middle") + has_word(r.caption, "centre") == 1);
    if (left) CHECK(x < res / 2);
    if (right) CHECK(x > res / 2);
    if (left || right) {
      ++sided[r.control.flip][right];
    } else {
      CHECK(std::abs(x - res / 2) < 0.15 * res);
      ++middle;
    }
  }
  // Both sides occur with and without a flip, so a caption that ignored the flip would fail above.
  for (auto& by_flip : sided)
    for (int n : by_flip) CHECK(n > 30);
  CHECK(middle > 0);
}

TEST_CASE("parse_synthetic_caption reads back the class's colour and shape and the caption's side") {
  const SyntheticParams p = small_params();
  for (std::int64_t i = 0; i < 200; ++i) {
    const Record r = render_synthetic_record(p, i);
    CAPTURE(r.caption);
    const SyntheticAttributes a = parse_synthetic_caption(r.caption);
    REQUIRE(a.colour >= 0);
    REQUIRE(a.shape >= 0);
    CHECK(synthetic_colour_names().at(a.colour) + " " + synthetic_shape_names().at(a.shape) ==
          synthetic_class_name(r.label));
    const int side = has_word(r.caption, "left") ? 0 : has_word(r.caption, "right") ? 2 : 1;
    CHECK(a.side == side);
  }
  // Whole words only, any case; the first colour and shape win; nothing stated stays -1.
  const SyntheticAttributes a = parse_synthetic_caption("A sublime RED Ring, then a blue circle; to the Right");
  CHECK(a.colour == 0);
  CHECK(synthetic_shape_names().at(a.shape) == "ring");
  CHECK(a.side == 2);
  const SyntheticAttributes none = parse_synthetic_caption("a photo of something in the corner");
  CHECK(none.colour == -1);
  CHECK(none.shape == -1);
  CHECK(none.side == -1);
  CHECK(parse_synthetic_caption("a lime star in the centre").side == 1);
}

TEST_CASE("captions vary in length and wording") {
  const SyntheticParams p = small_params();
  std::set<std::size_t> lengths;
  std::set<std::string> captions;
  for (std::int64_t i = 0; i < 200; ++i) {
    const std::string c = render_synthetic_record(p, i).caption;
    lengths.insert(c.size());
    captions.insert(c);
  }
  CHECK(lengths.size() > 20);
  CHECK(*lengths.rbegin() - *lengths.begin() > 25);
  CHECK(captions.size() > 150);
}

TEST_CASE("the identity is synthetic-<16 hex> and changes with every parameter") {
  const SyntheticParams p = small_params();
  const std::string id = synthetic_identity(p);
  CHECK(id.rfind("synthetic-", 0) == 0);
  CHECK(id.size() == std::string("synthetic-").size() + 16);
  CHECK(synthetic_identity(small_params()) == id);
  std::set<std::string> ids = {id};
  for (std::int64_t SyntheticParams::*field :
       {&SyntheticParams::records, &SyntheticParams::classes, &SyntheticParams::resolution, &SyntheticParams::seed,
        &SyntheticParams::shard_records}) {
    SyntheticParams q = p;
    q.*field += 1;
    ids.insert(synthetic_identity(q));
  }
  CHECK(ids.size() == 6);
}

TEST_CASE("ensure_synthetic_dataset writes shards of rendered records and a manifest, then reuses them") {
  TempDir tmp;
  const SyntheticParams p = small_params();
  const std::string dir = tmp.file("data/synth");
  std::int64_t last_done = -1;
  ensure_synthetic_dataset(p, dir, [&](std::int64_t done, std::int64_t total) {
    CHECK(total == p.records);
    CHECK(done > last_done);
    last_done = done;
  });
  CHECK(last_done == p.records);

  const std::vector<std::string> shards = list_shards(dir);
  REQUIRE(shards.size() == 3);  // 20 + 20 + 10
  CHECK(fs::path(shards[0]).filename() == "synth-00000.ldms");
  std::int64_t index = 0;
  for (const std::string& path : shards) {
    ShardReader reader(path);
    CHECK(reader.header().kind == PayloadKind::ImageU8);
    CHECK(reader.header().encoder == "none");
    CHECK(reader.header().dataset == synthetic_identity(p));
    for (std::size_t i = 0; i < reader.size(); ++i, ++index) {
      const Record stored = reader.read(i), rendered = render_synthetic_record(p, index);
      CHECK(stored.payload == rendered.payload);
      CHECK(stored.caption == rendered.caption);
      CHECK(stored.label == rendered.label);
    }
  }
  CHECK(index == p.records);

  const auto manifest = nlohmann::json::parse(read_bytes(dir + "/dataset.json"));
  CHECK(manifest.at("identity") == synthetic_identity(p));
  CHECK(manifest.at("records") == p.records);
  CHECK(manifest.at("classes") == p.classes);
  CHECK(manifest.at("resolution") == p.resolution);
  CHECK(manifest.at("seed") == p.seed);
  CHECK(manifest.at("shards").size() == 3);
  CHECK(manifest.at("class_names").at(0) == synthetic_class_name(0));

  // Reuse: nothing is rewritten, and no temporary directory is left beside it.
  const ino_t before = inode(shards[1]);
  ensure_synthetic_dataset(p, dir);
  CHECK(inode(shards[1]) == before);
  CHECK(std::distance(fs::directory_iterator(tmp.file("data")), fs::directory_iterator{}) == 1);
}

TEST_CASE("two runs with the same parameters write byte-identical shards") {
  TempDir tmp;
  const SyntheticParams p = small_params();
  ensure_synthetic_dataset(p, tmp.file("a"));
  ensure_synthetic_dataset(p, tmp.file("b/"));
  for (const char* name : {"synth-00000.ldms", "synth-00002.ldms", "dataset.json"})
    CHECK(read_bytes(tmp.file("a/") + name) == read_bytes(tmp.file("b/") + name));
}

TEST_CASE("ensure_synthetic_dataset rejects a directory made with other parameters, naming both") {
  TempDir tmp;
  const std::string dir = tmp.file("synth");
  SyntheticParams p = small_params();
  ensure_synthetic_dataset(p, dir);
  SyntheticParams q = p;
  q.seed = 99;
  CHECK_THROWS_WITH_AS(
      ensure_synthetic_dataset(q, dir),
      doctest::Contains((dir + " holds dataset " + synthetic_identity(p) + ", not " + synthetic_identity(q)).c_str()),
      ldm::DataError);
}

TEST_CASE(
    "ensure_synthetic_dataset refuses a non-empty directory without a manifest but fills an empty "
    "one") {
  TempDir tmp;
  const SyntheticParams p = small_params();
  fs::create_directories(tmp.file("busy"));
  std::ofstream(tmp.file("busy/notes.txt")) << "mine";
  CHECK_THROWS_WITH_AS(ensure_synthetic_dataset(p, tmp.file("busy")),
                       doctest::Contains("no complete synthetic dataset"), ldm::DataError);
  CHECK(fs::exists(tmp.file("busy/notes.txt")));

  fs::create_directories(tmp.file("empty"));
  ensure_synthetic_dataset(p, tmp.file("empty"));
  CHECK(list_shards(tmp.file("empty")).size() == 3);
}
