// ldm-eval: evaluation metrics comparable with published numbers.
//   ldm-eval fid A B [--inception PATH] [--batch N] [--json]
//   ldm-eval stats FOLDER|SHARDS --out S.npz [--inception PATH] [--batch N] [--compress]
//   ldm-eval clip-score FOLDER --captions FILE --clip-image P ...
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "shared/core/sha256.h"
#include "shared/core/cli.h"
#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/eval/clip_score.h"
#include "worker/eval/features.h"
#include "worker/eval/fid_stats.h"
#include "worker/eval/frechet.h"
#include "worker/eval/image_folder.h"
#include "worker/torch_compat.h"

namespace {

// Options both commands read.
struct Common {
  std::string inception;
  int batch = 50;
  std::string device = "auto";
  bool json = false, compress = false;
  std::string out;
};

Common common(const ldm::cli::Args& a) {
  Common c;
  c.inception = a.text("inception");
  if (a.has("inception") && c.inception.empty()) throw ldm::cli::UsageError("--inception needs a file");
  c.batch = static_cast<int>(a.integer("batch", 50));
  c.device = a.text("device", "auto");
  c.json = a.has("json");
  c.compress = a.has("compress");
  c.out = a.text("out");
  return c;
}

bool is_folder(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

std::string kind_name(ldm::eval::CollectionKind k) {
  return k == ldm::eval::CollectionKind::ImageShards ? "image shards" : "image folder";
}

// Builds the extractor and prints what it is (and the built-in warning) on stderr.
std::unique_ptr<ldm::eval::FeatureExtractor> make_extractor(const Common& c) {
  auto e = ldm::eval::make_feature_extractor(c.inception, c.batch, c.device);
  if (c.inception.empty()) {
    std::fprintf(stderr, "ldm-eval: %s\n", ldm::eval::kBuiltinFeaturesWarning);
  } else if (!e->comparable_with_published_fid()) {
    std::fprintf(stderr, "ldm-eval: warning: features from %s\n", e->label().c_str());
  }
  return e;
}

struct Input {
  std::string path;
  ldm::eval::FeatureStats stats;
  std::string extractor;  // identity; "" = unknown (a statistics file from another tool)
  std::string description;
};

constexpr const char* kBuiltinIdentity = "builtin-convnet-v1:256";

int run_stats(const ldm::cli::Args& args) {
  const Common c = common(args);
  const std::string& in = args.positional.at(0);
  if (!is_folder(in))
    throw ldm::Error(in + ": not a folder (stats reads a folder of images or a directory of image shards)");
  const auto extractor = make_extractor(c);
  ldm::eval::CollectionStatsOptions options;
  options.batch_size = c.batch;
  options.progress = true;
  const auto r = ldm::eval::collection_feature_stats(in, *extractor, options);
  ldm::eval::write_stats_file(c.out, r.stats, extractor->identity(), c.compress);
  std::printf("features: %s\n", extractor->label().c_str());
  std::printf("%s: %s, %lld images, D = %lld\n", in.c_str(), kind_name(r.kind).c_str(),
              static_cast<long long>(r.stats.count), static_cast<long long>(r.stats.mu.size(0)));
  std::printf("wrote %s\n", c.out.c_str());
  return 0;
}

// The result as one JSON object, or as text ending in "FID <value>".
void print_fid(const ldm::eval::FrechetResult& r, const Input& a, const Input& b, const Common& c,
               const std::optional<std::string>& features, const std::optional<bool>& comparable) {
  auto id_or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  if (c.json) {
    nlohmann::json out = {
        {"fid", r.fid},
        {"eps_added", r.eps_added},
        {"max_imag", r.max_imag},
        {"max_clipped_eigenvalue", r.max_clipped_eigenvalue},
        {"dims", a.stats.mu.size(0)},
        {"a", a.path},
        {"b", b.path},
        {"features", features ? nlohmann::json(*features) : nlohmann::json(nullptr)},
        {"comparable_with_published_fid", comparable ? nlohmann::json(*comparable) : nlohmann::json(nullptr)},
        {"extractor_a", id_or_null(a.extractor)},
        {"extractor_b", id_or_null(b.extractor)},
        {"count_a", a.stats.count},
        {"count_b", b.stats.count}};
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  if (features) std::printf("features: %s\n", features->c_str());
  else std::printf("features: as recorded by the statistics files (see below); both must come from the same network\n");
  std::printf("A: %s (%s)\n", a.path.c_str(), a.description.c_str());
  std::printf("B: %s (%s)\n", b.path.c_str(), b.description.c_str());
  if (r.eps_added)
    std::printf("note: the matrix square root was not finite; added %g * I to both covariances (as pytorch-fid)\n",
                r.offset);
  std::printf("sqrtm diagnostics: max |imag| %.3g, largest clipped negative eigenvalue %.3g\n", r.max_imag,
              r.max_clipped_eigenvalue);
  // Rounding can leave FID(s, s) at -1e-12: print that as 0.000000 rather than -0.000000.
  std::printf("FID %.6f\n", std::abs(r.fid) < 5e-7 ? 0.0 : r.fid);
}

int run_fid(const ldm::cli::Args& args) {
  const Common c = common(args);

  // Statistics files are read first and checked against the network that will be used, so a
  // mismatch is reported before any feature extraction.
  std::vector<Input> inputs(2);
  bool any_folder = false;
  for (std::size_t i = 0; i < 2; ++i) {
    Input& in = inputs[i];
    in.path = args.positional.at(i);
    if (is_folder(in.path)) {
      any_folder = true;
      continue;
    }
    std::error_code ec;
    if (!std::filesystem::exists(in.path, ec)) throw ldm::Error(in.path + ": no such file or folder");
    in.stats = ldm::eval::read_fid_stats(in.path);
    in.extractor = ldm::eval::read_stats_extractor(in.path);
    in.stats.count = ldm::eval::read_stats_count(in.path);
    in.description = "statistics";
    if (in.stats.count > 0) in.description += " of " + std::to_string(in.stats.count) + " images";
  }
  std::unique_ptr<ldm::eval::FeatureExtractor> extractor;  // only when a side is a folder
  // The network the statistics files say they came from must agree with each other and with the
  // one asked for (--inception, or the built-in one when a folder is read without it).
  std::string wanted;
  if (any_folder) {
    extractor = make_extractor(c);
    wanted = extractor->identity();
  } else if (!c.inception.empty()) {
    wanted = "torchscript-inception:" + ldm::sha256_file_hex(c.inception).substr(0, 16);
  }
  for (const Input& in : inputs) {
    if (in.extractor.empty()) continue;
    if (!wanted.empty() && in.extractor != wanted)
      throw ldm::Error(
          in.path + " was computed with feature network '" + in.extractor + "', but the other side uses '" + wanted +
          "'" + (any_folder && c.inception.empty() ? " (the built-in network, since no --inception was given)" : "") +
          ": FIDs across different networks are meaningless");
    if (wanted.empty()) wanted = in.extractor;
  }
  for (Input& in : inputs) {
    if (in.stats.mu.defined()) continue;
    ldm::eval::CollectionStatsOptions options;
    options.batch_size = c.batch;
    options.progress = true;
    const auto r = ldm::eval::collection_feature_stats(in.path, *extractor, options);
    in.stats = r.stats;
    in.extractor = extractor->identity();
    in.description = kind_name(r.kind) + ", " + std::to_string(r.stats.count) + " images";
  }
  for (Input& in : inputs)
    in.description += ", D = " + std::to_string(in.stats.mu.size(0)) + ", features " +
                      (in.extractor.empty() ? std::string("unknown (not recorded in the file)") : in.extractor);
  const Input& a = inputs[0];
  const Input& b = inputs[1];
  if (a.stats.mu.size(0) != b.stats.mu.size(0))
    throw ldm::Error("the statistics have different dimensions: " + a.path +
                     " has D = " + std::to_string(a.stats.mu.size(0)) + ", " + b.path + " has D = " +
                     std::to_string(b.stats.mu.size(0)) + " (2048: Inception pool3, 256: ldm-eval's built-in network)");
  const bool builtin_used =
      (extractor && c.inception.empty()) || a.extractor == kBuiltinIdentity || b.extractor == kBuiltinIdentity;
  if (builtin_used && !extractor)
    std::fprintf(stderr,
                 "ldm-eval: warning: the statistics come from the built-in feature network: the FID is NOT "
                 "comparable with published (Inception) FID\n");

  const ldm::eval::FrechetResult r = ldm::eval::frechet_distance(a.stats, b.stats);
  std::optional<std::string> features;
  std::optional<bool> comparable;
  if (extractor) {
    features = extractor->label();
    comparable = extractor->comparable_with_published_fid();
  } else if (builtin_used) {
    features = ldm::eval::BuiltinExtractor().label();
    comparable = false;
  }
  print_fid(r, a, b, c, features, comparable);
  return 0;
}

ldm::cli::Option inception_option() {
  return ldm::cli::text("inception", "PATH",
                        "TorchScript Inception-v3 (forward(x [N,3,299,299] in [-1,1]) -> [N,2048]); images are\n"
                        "resized as pytorch-fid does (uint8 RGB / 255, bilinear resize to 299x299 with\n"
                        "align_corners=False, no antialiasing, then 2x - 1). Export pytorch-fid's FID Inception\n"
                        "with tools/export/export_inception.py for FIDs comparable with published ones.\n"
                        "Without it: the built-in 256-d network (NOT comparable with published FID).");
}

ldm::cli::Program program() {
  using namespace ldm;
  const cli::Option batch = cli::integer("batch", "N", "images per network call (default 50)", 1, 100000);
  const cli::Option device = cli::text("device", "DEV",
                                       "where the Inception network runs: auto (a GPU when LibTorch sees one; the "
                                       "default), cpu, cuda or cuda:N");
  return {
      "ldm-eval",
      "Evaluation metrics comparable with published numbers. Samples to evaluate come from 'ldm-worker\n"
      "generate' (under mpirun, split over ranks); the size-condition disentanglement metric is 'ldm-worker\n"
      "disentanglement'. Real FID needs --inception FILE (tools/export/export_inception.py); without it a\n"
      "small built-in network is used whose numbers are NOT comparable with published FID.",
      {{"fid",
        {"A", "B"},
        "Frechet Inception Distance between two image collections or statistics files.",
        {inception_option(), batch, device,
         cli::flag("json",
                   "print one JSON object instead of text: {\"fid\", \"eps_added\", \"max_imag\",\n"
                   "\"max_clipped_eigenvalue\", \"dims\", \"a\", \"b\", \"features\",\n"
                   "\"comparable_with_published_fid\", \"extractor_a\", \"extractor_b\", \"count_a\", \"count_b\"}")},
        run_fid,
        "Prints the Frechet distance between the Gaussian feature statistics of A and B,\n"
        "  |mu_A - mu_B|^2 + tr(sigma_A) + tr(sigma_B) - 2 tr sqrtm(sigma_A sigma_B),\n"
        "computed in float64 with pytorch-fid's semantics (eps * I added to both covariances if the\n"
        "square root is not finite; an imaginary component above 1e-3 is an error that gives its size).\n"
        "\n"
        "A and B are each one of:\n"
        "  - a .npz statistics file holding mu [D] and sigma [D, D], as 'ldm-eval stats', pytorch-fid\n"
        "    (--save-stats) and ADM/DiT's evaluator write them; ADM/DiT's reference batches (e.g.\n"
        "    VIRTUAL_imagenet256_labeled.npz) work directly: only mu and sigma are read;\n"
        "  - a folder of images (.png .jpg .jpeg .webp, not recursive) or a folder of image shards\n"
        "    (*.ldms; latent shards must be decoded first): statistics are computed on the fly.\n"
        "Both sides must come from the same feature network. Files written by 'ldm-eval stats' record\n"
        "theirs, and a mismatch is an error; files from other tools do not, which cannot be checked:\n"
        "the network used is printed with the result.\n"
        "\n"
        "Output: the feature network, one line per input, diagnostics, then 'FID <value>' as the last line.\n"
        "Progress of feature extraction and warnings go to stderr.\n"
        "Exit status: 0 done, 1 failure (unreadable input, mismatched statistics or networks, imaginary\n"
        "component), 2 usage error."},
       {"stats",
        {"IN"},
        "Feature statistics (mu, sigma) of a folder of images or of image shards, as .npz.",
        {cli::text("out", "S.npz", "the statistics file to write").required(), inception_option(), batch, device,
         cli::flag("compress", "deflate the members (np.savez_compressed); default: stored (np.savez)")},
        run_stats,
        "Computes the mean and covariance (float64, N - 1) of the features of every image in IN (a folder\n"
        "of .png .jpg .jpeg .webp files directly inside, sorted by name, or a directory of *.ldms image\n"
        "shards: view 0 of each source image; latent shards are refused) and writes them to S.npz as mu and\n"
        "sigma (pytorch-fid's layout), plus feature_extractor (the network's identity, as uint8 bytes) and\n"
        "count, which other tools ignore.\n"
        "Exit status: 0 done, 1 failure, 2 usage error."},
       eval::clip_score_command()}};
}

}  // namespace

int main(int argc, char** argv) { return ldm::cli::run(program(), argc, argv, ldm::torch_compat::error_text); }
