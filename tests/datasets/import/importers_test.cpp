// Importers on real files: a small ImageNet folder and a WebDataset tar written by python3-pil and
// Python's tarfile (the standard tools), imported and read back.
#include "datasets/import/importers.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/format/dataset_tools.h"
#include "datasets/format/shard.h"
#include "datasets/images/crop.h"
#include "datasets/images/image_decode.h"
#include "shared/core/error.h"
#include "tests/support/temp_dir.h"

namespace importers_test {
namespace fs = std::filesystem;
using ldm::data::ImportOptions;
using ldm::data::Record;

std::string python() {
  const char* p = std::getenv("LDM_TEST_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes ROOT/train/<wnid>/..., ROOT/val/... with labels files, and DIR/wds-0000{0,1}.tar.
// manifest.txt: "<split> <rel path> <expected label> <height> <width>" per good image.
constexpr const char* kScript = R"PY(
import io, json, os, sys, tarfile
from PIL import Image
root = sys.argv[1]
def img(w, h, seed, mode="RGB"):
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = ((x * 7 + seed * 31) % 256, (y * 5 + seed * 17) % 256, (x * y + seed) % 256)
    return im.convert(mode) if mode != "RGB" else im
wnids = ["n01530575", "n01440764", "n02102040"]  # deliberately unsorted
sizes = [(64, 48), (40, 80), (50, 50), (33, 77)]
man = open(os.path.join(root, "manifest.txt"), "w")
sorted_wnids = sorted(wnids)
n = 0
for wi, w in enumerate(wnids):
    d = os.path.join(root, "imagenet", "train", w)
    os.makedirs(d)
    for j, (sw, sh) in enumerate(sizes):
        n += 1
        name = "%s_%d.%s" % (w, j, "png" if j == 2 else "JPEG")
        path = os.path.join(d, name)
        if w == "n02102040" and j == 3:  # the truncated one
            buf = io.BytesIO(); img(sw, sh, n).save(buf, "JPEG", quality=90)
            open(path, "wb").write(buf.getvalue()[: len(buf.getvalue()) // 2])
            continue
        mode = "L" if j == 1 and wi == 0 else "RGB"
        img(sw, sh, n, mode).save(path, "PNG" if j == 2 else "JPEG", quality=90)
        man.write("train %s/%s %d %d %d\n" % (w, name, sorted_wnids.index(w), sh, sw))
    open(os.path.join(d, "notes.txt"), "w").write("not an image")
v = os.path.join(root, "imagenet", "val")
os.makedirs(v)
vals = [("ILSVRC2012_val_00000002.JPEG", "n02102040"), ("ILSVRC2012_val_00000001.JPEG", "n01440764"),
        ("ILSVRC2012_val_00000003.JPEG", "n01530575")]
for i, (name, w) in enumerate(vals):
    img(30 + i, 20 + i, 100 + i).save(os.path.join(v, name), "JPEG", quality=90)
    man.write("val %s %d %d %d\n" % (name, sorted_wnids.index(w), 20 + i, 30 + i))
with open(os.path.join(root, "val_named.txt"), "w") as f:
    for name, w in vals:
        f.write("%s %s\n" % (name, w))
with open(os.path.join(root, "val_index.txt"), "w") as f:
    for name, w in sorted(vals):
        f.write("%d\n" % sorted_wnids.index(w))
def add(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
def enc(im, fmt):
    b = io.BytesIO(); im.save(b, fmt); return b.getvalue()
with tarfile.open(os.path.join(root, "wds-00000.tar"), "w") as t:
    add(t, "000000.jpg", enc(img(40, 20, 1), "JPEG"))
    add(t, "000000.txt", b"  a red thing \n")
    add(t, "000000.json", json.dumps({"original_width": 400, "original_height": 200, "width": 40}).encode())
    add(t, "000001.txt", b"caption without image")
    add(t, "000002.png", enc(img(24, 36, 2), "PNG"))
    add(t, "000002.txt", "caf\u00e9 au lait".encode())
with tarfile.open(os.path.join(root, "wds-00001.tar"), "w") as t:
    add(t, "sub/000003.jpg", enc(img(20, 20, 3), "JPEG"))
    add(t, "sub/000003.txt", b"third")
    add(t, "sub/000003.json", json.dumps({"width": 20, "height": 20}).encode())
)PY";

struct Fixture {
  ldm::testing::TempDir dir{"ldm-importers"};
  std::string error;
  Fixture() {
    std::ofstream(dir.file("make.py")) << kScript;
    const std::string log = dir.file("make.log");
    const std::string cmd = python() + " " + dir.file("make.py") + " " + dir.path() + " >" + log + " 2>&1";
    if (std::system(cmd.c_str()) != 0)
      error = "making the test images failed (needs Debian's python3-pil):\n" + slurp(log);
  }
};

const Fixture& fixture() {
  static Fixture f;
  REQUIRE_MESSAGE(f.error.empty(), f.error);
  return f;
}

struct Expected {
  std::string split, rel;
  int label, h, w;
};

std::vector<Expected> manifest(const std::string& split) {
  std::ifstream in(fixture().dir.file("manifest.txt"));
  std::vector<Expected> out;
  Expected e;
  while (in >> e.split >> e.rel >> e.label >> e.h >> e.w)
    if (e.split == split) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const Expected& a, const Expected& b) { return a.rel < b.rel; });  // input order
  return out;
}

std::vector<Record> read_all(const std::string& dir) {
  std::vector<Record> out;
  for (const auto& path : ldm::data::list_shards(dir)) {
    const ldm::data::ShardReader reader(path);
    for (std::size_t i = 0; i < reader.size(); ++i) out.push_back(reader.read(i));
  }
  return out;
}

std::map<std::string, std::string> shard_bytes(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& path : ldm::data::list_shards(dir)) out[fs::path(path).filename().string()] = slurp(path);
  return out;
}

ImportOptions small_options(int threads) {
  ImportOptions o;
  o.crop.size = 16;
  o.shard_records = 5;
  o.threads = threads;
  return o;
}

std::string imagenet_root() { return fixture().dir.file("imagenet"); }

TEST_CASE("expand_braces keeps zero padding and expands lists") {
  using ldm::data::expand_braces;
  const auto v = expand_braces("cc-{00008..00011}.tar");
  REQUIRE(v.size() == 4);
  CHECK(v[0] == "cc-00008.tar");
  CHECK(v[3] == "cc-00011.tar");
  CHECK(expand_braces("a{1..3}").back() == "a3");
  CHECK(expand_braces("x{a,b}-{0..1}").size() == 4);
  CHECK(expand_braces("plain.tar") == std::vector<std::string>{"plain.tar"});
  CHECK_THROWS(expand_braces("bad-{1..x}.tar"));
  CHECK_THROWS(expand_braces("bad-{1..3.tar"));
}

TEST_CASE("import-imagenet train: wnid-order labels, control metadata, skipped truncated file") {
  const auto expected = manifest("train");
  REQUIRE(expected.size() == 11);
  ldm::testing::TempDir out{"ldm-imp-out"};
  std::vector<std::string> skipped_log;
  ImportOptions o = small_options(2);
  o.on_skip = [&](const std::string& s) { skipped_log.push_back(s); };
  const auto sum = ldm::data::import_imagenet(imagenet_root(), out.path(), {}, o);
  CHECK(sum.inputs == 12);
  CHECK(sum.images_kept == 11);
  CHECK(sum.records == 11);
  CHECK(sum.skipped_total() == 1);
  REQUIRE(sum.skipped_names.size() == 1);
  CHECK(sum.skipped_names[0].find("n02102040/n02102040_3.JPEG") != std::string::npos);
  REQUIRE(skipped_log.size() == 1);
  CHECK(skipped_log[0].find("n02102040_3.JPEG") != std::string::npos);
  CHECK(sum.shards == 3);
  CHECK(ldm::data::imagenet_classes(imagenet_root() + "/train") ==
        std::vector<std::string>{"n01440764", "n01530575", "n02102040"});

  const auto records = read_all(out.path());
  REQUIRE(records.size() == 11);
  // Ids are positions in the sorted list of all 12 files (the truncated one is last).
  std::map<std::uint64_t, const Record*> by_id;
  for (const auto& r : records) by_id[r.id] = &r;
  REQUIRE(by_id.size() == 11);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(expected[i].rel);
    REQUIRE(by_id.count(i) == 1);
    const Record& r = *by_id[i];
    CHECK(r.label == expected[i].label);
    CHECK(r.control.orig_h == expected[i].h);
    CHECK(r.control.orig_w == expected[i].w);
    CHECK(r.shape == std::vector<std::int64_t>{16, 16, 3});
    // The payload is exactly crop_image of the decoded file.
    const auto image = ldm::data::decode_image_file(imagenet_root() + "/train/" + expected[i].rel);
    const auto crop = ldm::data::crop_image(image, o.crop, {0, 0, i, 0});
    CHECK(crop.image.pixels == r.payload);
    CHECK(crop.control.crop_h == r.control.crop_h);
    CHECK(crop.control.crop_top == r.control.crop_top);
  }
  CHECK(ldm::data::verify_directory(out.path()).clean());
  const std::string manifest_text = slurp(out.file("dataset.json"));
  CHECK(manifest_text.find("\"n01440764\"") != std::string::npos);
  CHECK(manifest_text.find("\"images_kept\": 11") != std::string::npos);
}

TEST_CASE("import-imagenet val: labels file by name or by sorted position") {
  const auto expected = manifest("val");
  REQUIRE(expected.size() == 3);
  std::map<std::string, int> want;
  for (const auto& e : expected) want[e.rel] = e.label;
  std::vector<std::string> sorted_names;
  for (const auto& [name, label] : want) sorted_names.push_back(name);
  for (const char* labels : {"val_named.txt", "val_index.txt"}) {
    CAPTURE(labels);
    ldm::testing::TempDir out{"ldm-imp-val"};
    ldm::data::ImageNetOptions in;
    in.split = "val";
    in.val_labels = fixture().dir.file(labels);
    const auto sum = ldm::data::import_imagenet(imagenet_root(), out.path(), in, small_options(1));
    CHECK(sum.images_kept == 3);
    const auto records = read_all(out.path());
    REQUIRE(records.size() == 3);
    for (const auto& r : records) CHECK(r.label == want[sorted_names.at(r.id)]);
  }
  ldm::testing::TempDir out{"ldm-imp-val"};
  ldm::data::ImageNetOptions in;
  in.split = "val";
  CHECK_THROWS_AS(ldm::data::import_imagenet(imagenet_root(), out.path(), in, small_options(1)), ldm::Error);
}

TEST_CASE("import-wds: captions, json original size, sample without image skipped") {
  ldm::testing::TempDir out{"ldm-imp-wds"};
  ImportOptions o = small_options(2);
  const std::string pattern = fixture().dir.file("wds-{00000..00001}.tar");
  const auto sum = ldm::data::import_webdataset(pattern, out.path(), o);
  CHECK(sum.inputs == 4);
  CHECK(sum.images_kept == 3);
  CHECK(sum.skipped_total() == 1);
  CHECK(sum.skipped.at("missing image") == 1);
  REQUIRE(sum.skipped_names.size() == 1);
  CHECK(sum.skipped_names[0].find("wds-00000.tar:000001") != std::string::npos);
  CHECK(sum.shards == 2);
  const auto records = read_all(out.path());
  REQUIRE(records.size() == 3);
  std::map<std::uint64_t, Record> by_id;
  for (const auto& r : records) by_id[r.id] = r;
  REQUIRE(by_id.count(0));
  REQUIRE(by_id.count(2));
  REQUIRE(by_id.count(std::uint64_t{1} << 32));
  const Record& a = by_id[0];
  CHECK(a.caption == "a red thing");
  CHECK(a.label == -1);
  CHECK(a.control.orig_h == 200);  // from original_height, not the 40x20 file
  CHECK(a.control.orig_w == 400);
  CHECK(a.control.crop_h == 200);  // the 20-pixel centre square, scaled by 10
  CHECK(a.control.crop_left == 100);
  CHECK(by_id[2].caption == "caf\xc3\xa9 au lait");
  CHECK(by_id[2].control.orig_h == 36);
  CHECK(by_id[2].control.orig_w == 24);
  CHECK(by_id[std::uint64_t{1} << 32].caption == "third");
  CHECK(ldm::data::verify_directory(out.path()).clean());

  // Rerun: everything reused, the same counts.
  const auto again = ldm::data::import_webdataset(pattern, out.path(), o);
  CHECK(again.shards_reused == 2);
  CHECK(again.images_kept == 3);
  CHECK(again.skipped_total() == 1);
}

TEST_CASE("a resumed import rewrites only missing shards, byte-identical, no duplicates") {
  ldm::testing::TempDir out{"ldm-imp-resume"};
  const auto first = ldm::data::import_imagenet(imagenet_root(), out.path(), {}, small_options(2));
  const auto before = shard_bytes(out.path());
  REQUIRE(before.size() == 3);
  const std::string last = ldm::data::list_shards(out.path()).back();
  fs::remove(last);
  std::ofstream(last + ".tmp") << "partial";  // as a killed run leaves it
  const auto second = ldm::data::import_imagenet(imagenet_root(), out.path(), {}, small_options(2));
  CHECK(second.shards_reused == 2);
  CHECK(second.shards_written == 1);
  CHECK(second.images_kept == first.images_kept);
  CHECK(second.skipped_total() == 1);
  CHECK(shard_bytes(out.path()) == before);
  const auto report = ldm::data::verify_directory(out.path());
  CHECK_MESSAGE(report.clean(), ldm::data::verify_summary(report));
  std::set<std::uint64_t> ids;
  for (const auto& r : read_all(out.path())) CHECK(ids.insert(r.id).second);
  CHECK(ids.size() == 11);

  // Other options in the same directory are refused, not mixed in.
  ImportOptions other = small_options(2);
  other.crop.size = 8;
  CHECK_THROWS_AS(ldm::data::import_imagenet(imagenet_root(), out.path(), {}, other), ldm::DataError);
}

TEST_CASE("output bytes do not depend on the thread count") {
  ldm::testing::TempDir one{"ldm-imp-t1"}, two{"ldm-imp-t2"};
  ImportOptions o1 = small_options(1), o2 = small_options(2);
  o1.crop.strategy = o2.crop.strategy = ldm::data::CropStrategy::RandomResized;
  o1.crop.flip_prob = o2.crop.flip_prob = 0.5;
  o1.views = o2.views = 2;
  o1.seed = o2.seed = 7;
  ldm::data::import_imagenet(imagenet_root(), one.path(), {}, o1);
  ldm::data::import_imagenet(imagenet_root(), two.path(), {}, o2);
  const auto a = shard_bytes(one.path()), b = shard_bytes(two.path());
  REQUIRE(a.size() == 3);
  CHECK(a == b);
  CHECK(read_all(one.path()).size() == 22);

  ldm::testing::TempDir w1{"ldm-imp-w1"}, w2{"ldm-imp-w2"};
  const std::string pattern = fixture().dir.file("wds-{00000..00001}.tar");
  ldm::data::import_webdataset(pattern, w1.path(), o1);
  ldm::data::import_webdataset(pattern, w2.path(), o2);
  CHECK(shard_bytes(w1.path()) == shard_bytes(w2.path()));
}

}  // namespace importers_test
