#include <torch/torch.h>
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/format/shard.h"
#include "datasets/images/image_decode.h"
#include "datasets/images/image_io.h"
#include "datasets/tensor/npy.h"
#include "datasets/tensor/torchscript_encoders.h"
#include "shared/core/error.h"
#include "tests/support/errors.h"
#include "tests/support/python_reference.h"
#include "tests/support/temp_dir.h"
#include "worker/eval/features.h"
#include "worker/eval/fid_stats.h"
#include "worker/eval/frechet.h"
#include "worker/eval/image_folder.h"

// Feature extraction for FID (worker/eval/features.h), statistics of image folders and shards
// (worker/eval/image_folder.h) and the ldm-eval CLI. The Inception reference: an inline Python
// script exports random-weight torchvision inception_v3 networks with tools/export/
// export_inception.py and computes their features on PNG files the way pytorch-fid does
// (PIL -> ToTensor -> F.interpolate(299, bilinear, align_corners=False) -> 2x - 1 -> network).
namespace eval_features_test {

using ldm::testing::contains;
using ldm::testing::error_of;

namespace fs = std::filesystem;
using ldm::eval::BuiltinExtractor;
using ldm::eval::FeatureStats;
using ldm::eval::InceptionExtractor;
using ldm::eval::InceptionOptions;

// Writes into OUT:
//   img0.png .. img4.png     RGB images of different sizes (one is 299x299 already)
//   tv.pt                    torchvision inception_v3, random weights (seed 3), via --random
//   tv_features.npy          [5, 2048] eager features of the PNGs, pytorch-fid's preprocessing
//   prepared1.npy            [1, 3, 299, 299] the network input for img1.png
//   fid_weights.pth          a random FID-Inception state dict (1008 classes, seed 5)
//   fid.pt                   its export via --weights (architecture detected from fc.weight)
//   fid_features.npy         [5, 2048] eager features of the FID-Inception model
constexpr const char* kReferenceScript = R"PY(
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

out = Path(sys.argv[1])
tools = Path(__TOOLS__)
sys.path.insert(0, str(tools))
import export_inception as ei  # noqa: E402

torch.set_num_threads(1)
SIZES = [(299, 299), (64, 80), (400, 300), (31, 47), (128, 200)]  # (height, width)
rng = np.random.RandomState(0)
paths = []
for i, (h, w) in enumerate(SIZES):
    coarse = rng.randint(0, 256, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.float64)
    smooth = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
    img = np.clip(smooth * 0.8 + rng.randint(0, 52, size=(h, w, 3)), 0, 255).astype(np.uint8)
    p = out / f"img{i}.png"
    Image.fromarray(img, "RGB").save(p)
    paths.append(p)


def pytorch_fid_input(path):
    # pytorch-fid: ImagePathDataset (Image.open(...).convert("RGB"), TF.ToTensor()), then
    # InceptionV3.forward with resize_input=True, normalize_input=True.
    x = TF.to_tensor(Image.open(path).convert("RGB"))[None]
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return 2 * x - 1


x = torch.cat([pytorch_fid_input(p) for p in paths])
np.save(out / "prepared1.npy", x[1:2].numpy())

args = ei.parse_args(["--random", "--seed", "3", "--out", str(out / "tv.pt")])
model, network = ei.build(args)
ei.export(model, network, args.out)
with torch.no_grad():
    np.save(out / "tv_features.npy", model(x).numpy())

torch.manual_seed(5)
fid = ei.build_inception("fid", init_weights=True)
ei.calibrate_batchnorm(fid, 5)
torch.save(fid.state_dict(), out / "fid_weights.pth")
rc = ei.main(["--weights", str(out / "fid_weights.pth"), "--out", str(out / "fid.pt")])
assert rc == 0, rc
fid.fc = torch.nn.Identity()
fid.eval()
with torch.no_grad():
    np.save(out / "fid_features.npy", fid(x).numpy())
print("done")
)PY";

const ldm::testing::PythonReference& fixture() {
  static ldm::testing::PythonReference f("ldm-eval-features", "eval_features_reference.py",
                                         ldm::testing::with_tools_dir(kReferenceScript));
  REQUIRE_MESSAGE(f.error.empty(), f.error);
  return f;
}

std::string file(const std::string& name) { return (fixture().dir / name).string(); }

std::vector<ldm::data::RgbImage> reference_images() {
  std::vector<ldm::data::RgbImage> images;
  for (int i = 0; i < 5; ++i) images.push_back(ldm::data::decode_image_file(file("img" + std::to_string(i) + ".png")));
  return images;
}

// max |a - b| / max(1, max |b|)
double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() / scale;
}

// An RGB image with a deterministic pattern that depends on `seed`.
ldm::data::RgbImage pattern_image(int h, int w, int seed) {
  ldm::data::RgbImage im;
  im.height = h;
  im.width = w;
  im.pixels.resize(static_cast<std::size_t>(h) * w * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        im.pixels[(static_cast<std::size_t>(y) * w + x) * 3 + c] = static_cast<std::uint8_t>(
            (x * (seed + 3) + y * (2 * seed + 1) + c * 85 + ((x / 4 + y / 4 + seed) % 2) * 60) % 256);
  return im;
}

void write_image(const std::string& path, const ldm::data::RgbImage& im) {
  ldm::data::write_png(path, im.pixels.data(), im.height, im.width);
}

FeatureStats two_pass_stats(const torch::Tensor& features) { return ldm::eval::stats_from_features(features); }

double stats_diff(const FeatureStats& a, const FeatureStats& b) {
  return std::max(max_rel_diff(a.mu, b.mu), max_rel_diff(a.sigma, b.sigma));
}

// ---- the ldm-eval binary ------------------------------------------------------------------------

std::string eval_binary() {
  if (const char* p = std::getenv("LDM_EVAL_BIN"); p && *p) return p;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("ldm-eval") : (self.parent_path() / "ldm-eval").string();
}

struct CliResult {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

CliResult run_cli(const ldm::testing::TempDir& tmp, const std::vector<std::string>& args) {
  std::string cmd = quote(eval_binary());
  for (const auto& a : args) cmd += " " + quote(a);
  const std::string out = tmp.file("cli.out"), err = tmp.file("cli.err");
  cmd += " >" + quote(out) + " 2>" + quote(err);
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

double fid_of_last_line(const std::string& out) {
  const std::string line = last_line(out);
  REQUIRE_MESSAGE(line.rfind("FID ", 0) == 0, out);
  return std::stod(line.substr(4));
}

// A folder of `n` pattern images of mixed sizes, seeds starting at `seed`.
void make_folder(const std::string& dir, int n, int seed) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "im%03d.png", i);
    write_image(dir + "/" + name, pattern_image(24 + 4 * (i % 3), 32 + 2 * (i % 4), seed + i));
  }
}

TEST_CASE(
    "eval features: Inception features of a torchvision inception_v3 export (random weights) match Python within "
    "1e-5") {
  const auto images = reference_images();
  const auto want = ldm::data::read_npy(file("tv_features.npy"));
  InceptionExtractor inception(file("tv.pt"));

  // The network input equals pytorch-fid's ToTensor + bilinear resize to 299 + 2x - 1.
  const auto prepared = inception.prepare(ldm::eval::image_to_tensor(images[1]));
  const auto want_prepared = ldm::data::read_npy(file("prepared1.npy"));
  REQUIRE(prepared.sizes() == want_prepared.sizes());
  CHECK((prepared.scalar_type() == torch::kFloat32));
  CHECK((prepared - want_prepared).abs().max().item<double>() <= 1e-6);

  const auto got = inception.features(images);
  REQUIRE(got.sizes() == want.sizes());
  CHECK((got.scalar_type() == torch::kFloat32));
  const double rel = max_rel_diff(got, want);
  MESSAGE("max |C++ - Python| / max(1, max |Python|) = " << rel
                                                         << ", max |Python| = " << want.abs().max().item<double>());
  CHECK(rel <= 1e-5);
  // Features differ between images (the comparison above is not vacuous).
  CHECK((want[0] - want[1]).abs().max().item<double>() > 1e-2 * std::max(1.0, want.abs().max().item<double>()));

  // Batches of two give the same features.
  InceptionOptions small;
  small.batch_size = 2;
  InceptionExtractor chunked(file("tv.pt"), small);
  CHECK(max_rel_diff(chunked.features(images), want) <= 1e-5);

  // The identity is the file's hash; the label says random weights are not comparable.
  CHECK(inception.identity() == "torchscript-inception:" + ldm::sha256_file_hex(file("tv.pt")).substr(0, 16));
  CHECK(inception.network() == "torchvision-inception-v3:random-seed-3");
  CHECK(inception.dim() == 2048);
  CHECK_FALSE(inception.comparable_with_published_fid());
  CHECK(contains(inception.label(), "NOT comparable"));

  // uint8 NHWC and float NCHW in [0,1] inputs give the same network input and features.
  const auto u8 = ldm::eval::image_to_tensor(images[3]);
  const auto f = u8.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255);
  CHECK(torch::equal(inception.prepare(u8), inception.prepare(f)));
  CHECK(max_rel_diff(inception.features(u8), want.narrow(0, 3, 1)) <= 1e-5);

  auto made = ldm::eval::make_feature_extractor(file("tv.pt"), 7);
  CHECK(made->identity() == inception.identity());
  CHECK(made->batch_size() == 7);
}

TEST_CASE(
    "eval features: FID-Inception export from a 1008-class state dict matches Python and is labelled comparable") {
  const auto images = reference_images();
  const auto want = ldm::data::read_npy(file("fid_features.npy"));
  InceptionExtractor inception(file("fid.pt"));
  const double rel = max_rel_diff(inception.features(images), want);
  MESSAGE("FID-Inception: max relative difference " << rel);
  CHECK(rel <= 1e-5);
  CHECK(inception.network() == "fid-inception-v3:fid_weights.pth");
  CHECK(inception.comparable_with_published_fid());
  CHECK(contains(inception.label(), "comparable with published FID"));
  CHECK_FALSE(contains(inception.label(), "NOT"));
  // Another network than torchvision's: the features differ.
  const auto tv = ldm::data::read_npy(file("tv_features.npy"));
  CHECK(max_rel_diff(want, tv) > 1e-2);
}

TEST_CASE("eval features: bad Inception files and bad inputs are clear errors") {
  ldm::testing::TempDir tmp("ldm-eval-bad");
  const std::string missing = tmp.file("missing.pt");
  CHECK(contains(error_of([&] { InceptionExtractor x(missing); }), missing));
  const std::string junk = tmp.file("junk.pt");
  std::ofstream(junk) << "not a torchscript file";
  const std::string e = error_of([&] { InceptionExtractor x(junk); });
  CHECK(contains(e, junk));
  CHECK(contains(e, "export_inception.py"));
  const std::string zip = tmp.file("weights.npz");  // a zip archive, but not TorchScript
  ldm::data::write_npz(zip, {{"w", torch::ones({3})}});
  CHECK(contains(error_of([&] { InceptionExtractor x(zip); }), "weights.npz"));
  CHECK(contains(error_of([&] { InceptionExtractor x(tmp.path()); }), "not a regular file"));

  BuiltinExtractor builtin;
  CHECK(contains(error_of([&] { builtin.prepare(torch::zeros({2, 8, 8, 4}, torch::kByte)); }), "[N,H,W,3]"));
  CHECK(contains(error_of([&] { builtin.prepare(torch::zeros({2, 8, 8}, torch::kByte)); }), "shape"));
  CHECK(contains(error_of([&] { builtin.prepare(torch::full({1, 3, 8, 8}, -0.5)); }), "[0, 1]"));
  CHECK(contains(error_of([&] { builtin.prepare(torch::zeros({1, 3, 8, 8}, torch::kInt)); }), "uint8 or floating"));
  CHECK(contains(error_of([&] { builtin.features_of_prepared(torch::zeros({1, 3, 8, 8})); }), "[N,3,64,64]"));
  CHECK(builtin.features(torch::zeros({0, 8, 8, 3}, torch::kByte)).sizes() == torch::IntArrayRef({0, 256}));
}

TEST_CASE("eval features: the built-in network is deterministic, labelled and tells images apart") {
  std::vector<ldm::data::RgbImage> images = {pattern_image(40, 56, 1), pattern_image(40, 56, 2),
                                             pattern_image(97, 33, 3)};
  BuiltinExtractor a, b(2);
  const auto fa = a.features(images);
  const auto fb = b.features(images);
  REQUIRE(fa.sizes() == torch::IntArrayRef({3, 256}));
  // Another batch size may change the convolution's summation order: equal to float32 rounding.
  CHECK(max_rel_diff(fb, fa) <= 1e-5);
  // Fixed weights, independent of the global seed: bit-identical for the same batch size.
  torch::manual_seed(12345);
  BuiltinExtractor c;
  CHECK(torch::equal(c.features(images), fa));
  CHECK(torch::isfinite(fa).all().item<bool>());
  CHECK(fa.abs().max().item<double>() > 1e-3);  // not dead
  CHECK((fa[0] - fa[1]).abs().max().item<double>() > 1e-3);
  CHECK((fa[0] - fa[2]).abs().max().item<double>() > 1e-3);
  CHECK(a.identity() == "builtin-convnet-v1:256");
  CHECK(contains(a.label(), "NOT comparable"));
  CHECK_FALSE(a.comparable_with_published_fid());
  auto made = ldm::eval::make_feature_extractor("");
  CHECK(made->identity() == a.identity());
}

TEST_CASE(
    "eval features: image folders are listed sorted and filtered, and their statistics equal stats_from_features") {
  ldm::testing::TempDir tmp("ldm-eval-folder");
  const std::string dir = tmp.file("imgs");
  fs::create_directories(dir + "/sub.png");  // a folder with an image name: skipped
  std::vector<ldm::data::RgbImage> images;
  const std::vector<std::string> names = {"a.png", "B.PNG", "c.jpg", "d.JPEG", "e.webp"};
  for (int i = 0; i < 7; ++i) images.push_back(pattern_image(30 + i, 20 + 3 * i, i + 10));
  // PNG content behind every name: the format comes from the bytes, not the name.
  for (std::size_t i = 0; i < names.size(); ++i) write_image(dir + "/" + names[i], images[i]);
  write_image(dir + "/f.png", images[5]);
  write_image(dir + "/g.png", images[6]);
  std::ofstream(dir + "/notes.txt") << "not an image";
  write_image(dir + "/.hidden.png", images[0]);

  const auto files = ldm::eval::list_image_files(dir);
  std::vector<std::string> got;
  for (const auto& f : files) got.push_back(fs::path(f).filename().string());
  CHECK(got == std::vector<std::string>{"B.PNG", "a.png", "c.jpg", "d.JPEG", "e.webp", "f.png", "g.png"});
  CHECK(ldm::eval::is_image_file_name("x.JpG"));
  CHECK_FALSE(ldm::eval::is_image_file_name("x.gif"));
  CHECK_FALSE(ldm::eval::is_image_file_name(".png"));
  CHECK(ldm::eval::collection_kind(dir) == ldm::eval::CollectionKind::ImageFolder);

  // Batches of 3 (7 images: 3, 3, 1) both in the network and in the streaming statistics, so the
  // features are bit-identical and only the accumulation differs.
  BuiltinExtractor builtin(3);
  std::vector<ldm::data::RgbImage> in_order;
  for (const auto& f : files) in_order.push_back(ldm::data::decode_image_file(f));
  const auto want = two_pass_stats(builtin.features(in_order));
  ldm::eval::CollectionStatsOptions options;
  options.batch_size = 3;
  const auto stats = ldm::eval::folder_feature_stats(dir, builtin, options);
  CHECK(stats.count == 7);
  CHECK(stats_diff(stats, want) <= 1e-10);

  // Errors: one image, a file that does not decode, not a folder.
  const std::string one = tmp.file("one");
  fs::create_directories(one);
  write_image(one + "/x.png", images[0]);
  CHECK(contains(error_of([&] { ldm::eval::folder_feature_stats(one, builtin); }), "at least two"));
  std::ofstream(dir + "/h_broken.png") << "garbage";
  CHECK(contains(error_of([&] { ldm::eval::folder_feature_stats(dir, builtin); }), "h_broken.png"));
  CHECK(contains(error_of([&] { ldm::eval::list_image_files(tmp.file("nope")); }), "no such folder"));
}

TEST_CASE("eval features: image shards give the folder's statistics (view 0 only) and latent shards are refused") {
  ldm::testing::TempDir tmp("ldm-eval-shards");
  std::vector<ldm::data::RgbImage> images;
  for (int i = 0; i < 5; ++i) images.push_back(pattern_image(24 + i, 28, 40 + i));
  const std::string shards = tmp.file("shards");
  fs::create_directories(shards);
  {
    ldm::data::ShardHeader h;
    h.kind = ldm::data::PayloadKind::ImageU8;
    h.encoder = "none";
    h.dataset = "eval-test";
    h.views = 2;  // view 1 is a different (inverted) image: it must not count
    ldm::data::ShardWriter w(shards + "/part-0.ldms", h);
    for (int i = 0; i < 5; ++i)
      for (int v = 0; v < 2; ++v) {
        ldm::data::Record r;
        r.id = static_cast<std::uint64_t>(2 * i + v);
        r.view = static_cast<std::uint16_t>(v);
        r.shape = {images[i].height, images[i].width, 3};
        r.payload = images[i].pixels;
        if (v == 1)
          for (auto& p : r.payload) p = static_cast<std::uint8_t>(255 - p);
        w.append(r);
      }
    w.finish();
  }
  BuiltinExtractor builtin;
  CHECK(ldm::eval::collection_kind(shards) == ldm::eval::CollectionKind::ImageShards);
  const auto got = ldm::eval::collection_feature_stats(shards, builtin);
  CHECK(got.kind == ldm::eval::CollectionKind::ImageShards);
  CHECK(got.stats.count == 5);
  CHECK(stats_diff(got.stats, two_pass_stats(builtin.features(images))) <= 1e-10);

  const std::string latents = tmp.file("latents");
  fs::create_directories(latents);
  {
    ldm::data::ShardHeader h;
    h.kind = ldm::data::PayloadKind::LatentF32;
    h.encoder = "patch-2";
    h.dataset = "eval-test";
    ldm::data::ShardWriter w(latents + "/part-0.ldms", h);
    for (int i = 0; i < 3; ++i) {
      ldm::data::Record r;
      r.id = static_cast<std::uint64_t>(i);
      r.shape = {4, 2, 2};
      r.payload.assign(16 * sizeof(float), 0);
      w.append(r);
    }
    w.finish();
  }
  CHECK(contains(error_of([&] { ldm::eval::collection_feature_stats(latents, builtin); }), "decode latents first"));
}

TEST_CASE("eval features: statistics files record the feature network and round-trip") {
  ldm::testing::TempDir tmp("ldm-eval-statsfile");
  FeatureStats s = two_pass_stats(torch::randn({20, 6}, torch::kDouble));
  ldm::eval::write_stats_file(tmp.file("s.npz"), s, "builtin-convnet-v1:256", true);
  const auto back = ldm::eval::read_fid_stats(tmp.file("s.npz"));
  CHECK(torch::equal(back.mu, s.mu));
  CHECK(torch::equal(back.sigma, s.sigma));
  CHECK(ldm::eval::read_stats_extractor(tmp.file("s.npz")) == "builtin-convnet-v1:256");
  CHECK(ldm::eval::read_stats_count(tmp.file("s.npz")) == 20);
  ldm::eval::write_fid_stats(tmp.file("plain.npz"), s);  // pytorch-fid's layout: no extractor recorded
  CHECK(ldm::eval::read_stats_extractor(tmp.file("plain.npz")).empty());
  CHECK(ldm::eval::read_stats_count(tmp.file("plain.npz")) == 0);
}

TEST_CASE(
    "eval features: ldm-eval stats then fid (a folder against its own statistics is 0, different folders are not)") {
  const std::string bin = eval_binary();
  REQUIRE_MESSAGE(fs::exists(bin),
                  "the ldm-eval binary is not at " << bin << " (build the ldm-eval target, or set LDM_EVAL_BIN)");
  ldm::testing::TempDir tmp("ldm-eval-cli");
  const std::string a = tmp.file("a"), b = tmp.file("b");
  make_folder(a, 6, 0);
  make_folder(b, 6, 100);

  // Built-in network: a warning that the numbers are not comparable.
  auto r = run_cli(tmp, {"stats", a, "--out", tmp.file("a.npz"), "--batch", "4"});
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  CHECK(contains(r.err, "NOT comparable"));
  CHECK(contains(r.out, "6 images"));
  CHECK(ldm::eval::read_stats_extractor(tmp.file("a.npz")) == "builtin-convnet-v1:256");

  r = run_cli(tmp, {"fid", a, tmp.file("a.npz")});
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  CHECK(std::abs(fid_of_last_line(r.out)) < 1e-6);
  CHECK(contains(r.out, "builtin"));
  CHECK(contains(r.err, "NOT comparable"));

  r = run_cli(tmp, {"fid", a, b, "--json"});
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  const auto j = nlohmann::json::parse(last_line(r.out));
  CHECK(j.at("fid").get<double>() > 1e-3);
  CHECK(j.at("dims") == 256);
  CHECK(j.at("comparable_with_published_fid") == false);
  CHECK(j.at("count_a") == 6);

  // Two statistics files: no extraction, the recorded network is printed.
  r = run_cli(tmp, {"stats", b, "--out", tmp.file("b.npz"), "--compress"});
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  r = run_cli(tmp, {"fid", tmp.file("a.npz"), tmp.file("b.npz")});
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  CHECK(std::abs(fid_of_last_line(r.out) - j.at("fid").get<double>()) <
        1e-6 * std::max(1.0, j.at("fid").get<double>()));
  CHECK(contains(r.out, "builtin-convnet-v1:256"));

  // Inception: statistics of a folder and the folder against them; against built-in statistics
  // it is an error that names both networks.
  r = run_cli(tmp, {"stats", a, "--out", tmp.file("ai.npz"), "--inception", file("tv.pt")});
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  CHECK(contains(r.out, "inception-2048"));
  r = run_cli(tmp, {"fid", tmp.file("ai.npz"), a, "--inception", file("tv.pt")});
  REQUIRE_MESSAGE(r.rc == 0, r.err);
  CHECK(std::abs(fid_of_last_line(r.out)) < 1e-6);
  r = run_cli(tmp, {"fid", tmp.file("ai.npz"), tmp.file("a.npz")});
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "meaningless"));
  r = run_cli(tmp, {"fid", a, tmp.file("ai.npz")});  // folder read with the built-in network
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "built-in"));

  // Usage errors.
  r = run_cli(tmp, {"stats", a});
  CHECK(r.rc == 2);
  CHECK(contains(r.err, "--out"));
  r = run_cli(tmp, {"fid", a, b, "--incepton", "x"});
  CHECK(r.rc == 2);
  CHECK(contains(r.err, "--inception"));
  r = run_cli(tmp, {"fid", "--help"});
  CHECK(r.rc == 0);
  CHECK(contains(r.out, "--inception"));
}

}  // namespace eval_features_test
