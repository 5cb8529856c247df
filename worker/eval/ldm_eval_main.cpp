// ldm-eval: evaluation metrics comparable with published numbers.
//   ldm-eval fid A B [--inception PATH] [--batch N] [--json]
//   ldm-eval stats FOLDER|SHARDS --out S.npz [--inception PATH] [--batch N] [--compress]
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

#include "datasets/torchscript_encoders.h"  // sha256_file_hex
#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/eval/clip_score.h"
#include "worker/eval/features.h"
#include "worker/eval/fid_stats.h"
#include "worker/eval/frechet.h"
#include "worker/eval/image_folder.h"

namespace {

constexpr const char* kUsage =
    "usage: ldm-eval <command> [options]\n"
    "\n"
    "commands:\n"
    "  fid A B     Frechet Inception Distance between two image collections or statistics files\n"
    "  stats IN    feature statistics (mu, sigma) of a folder of images or of image shards, as .npz\n"
    "  clip-score FOLDER --captions FILE\n"
    "              CLIP score of images and their captions (TorchScript CLIP towers from\n"
    "              tools/export/export_clip.py and CLIP's BPE merges file)\n"
    "\n"
    "Samples to evaluate come from 'ldm-worker generate' (under mpirun, split over ranks); the\n"
    "size-condition disentanglement metric is 'ldm-worker disentanglement'.\n"
    "\n"
    "Real FID needs --inception FILE, a TorchScript export of the FID Inception network\n"
    "(tools/export/export_inception.py); without it a small built-in network is used whose numbers\n"
    "are NOT comparable with published FID.\n"
    "\n"
    "Run 'ldm-eval <command> --help' for a command's options.\n";

constexpr const char* kFidUsage =
    "usage: ldm-eval fid A B [--inception PATH] [--batch N] [--json]\n"
    "\n"
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
    "options:\n"
    "  --inception PATH  TorchScript Inception-v3 (forward(x [N,3,299,299] in [-1,1]) -> [N,2048]);\n"
    "                    images are resized as pytorch-fid does (uint8 RGB / 255, bilinear resize to\n"
    "                    299x299 with align_corners=False, no antialiasing, then 2x - 1). Export\n"
    "                    pytorch-fid's FID Inception with tools/export/export_inception.py for FIDs\n"
    "                    comparable with published ones.\n"
    "                    Without it: the built-in 256-d network (NOT comparable with published FID).\n"
    "  --batch N         images per network call (default 50)\n"
    "  --json            print one JSON object instead of text:\n"
    "                    {\"fid\": F, \"eps_added\": bool, \"max_imag\": X, \"max_clipped_eigenvalue\": E,\n"
    "                     \"dims\": D, \"a\": A, \"b\": B, \"features\": label or null,\n"
    "                     \"comparable_with_published_fid\": bool or null,\n"
    "                     \"extractor_a\": id or null, \"extractor_b\": id or null,\n"
    "                     \"count_a\": N, \"count_b\": N}\n"
    "  -h, --help        show this help\n"
    "\n"
    "Output: the feature network, one line per input, diagnostics, then 'FID <value>' as the last line.\n"
    "Progress of feature extraction and warnings go to stderr.\n"
    "\n"
    "Exit status: 0 done, 1 failure (unreadable input, mismatched statistics or networks, imaginary\n"
    "component), 2 usage error.\n";

constexpr const char* kStatsUsage =
    "usage: ldm-eval stats FOLDER|SHARDS --out S.npz [--inception PATH] [--batch N] [--compress]\n"
    "\n"
    "Computes the mean and covariance (float64, N - 1) of the features of every image in FOLDER\n"
    "(.png .jpg .jpeg .webp files directly inside, sorted by name) or of the images in a shard\n"
    "directory (*.ldms image shards; view 0 of each source image; latent shards are refused) and\n"
    "writes them to S.npz as mu and sigma (pytorch-fid's layout), plus feature_extractor (the\n"
    "network's identity, as uint8 bytes) and count, which other tools ignore.\n"
    "\n"
    "options:\n"
    "  --out S.npz       the statistics file to write (required)\n"
    "  --inception PATH  TorchScript Inception-v3 (see 'ldm-eval fid --help'); without it the\n"
    "                    built-in network (NOT comparable with published FID)\n"
    "  --batch N         images per network call (default 50)\n"
    "  --compress        deflate the members (np.savez_compressed); default: stored (np.savez)\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit status: 0 done, 1 failure, 2 usage error.\n";

struct UsageError : std::runtime_error {
  UsageError(const std::string& message, std::string help_command = "ldm-eval --help")
      : std::runtime_error(message), help(std::move(help_command)) {}
  std::string help;  // where the help for this mistake is
};

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int parse_batch(const std::string& value, const std::string& help) {
  std::size_t used = 0;
  long v = 0;
  try {
    v = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || v < 1 || v > 100000)
    throw UsageError("--batch needs an integer from 1 to 100000, got '" + value + "'", help);
  return static_cast<int>(v);
}

// Options shared by fid and stats.
struct Common {
  std::string inception;
  int batch = 50;
  bool json = false, compress = false;
  std::string out;
  std::vector<std::string> inputs;
};

Common parse(const std::vector<std::string>& args, const std::string& command, bool* help,
             const std::vector<std::string>& allowed) {
  Common c;
  const std::string help_cmd = "ldm-eval " + command + " --help";
  auto allowed_opt = [&](const std::string& o) {
    return std::find(allowed.begin(), allowed.end(), o) != allowed.end();
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError(arg + " needs a value", help_cmd);
      return args[++i];
    };
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return c;
    }
    if (arg.size() > 1 && arg[0] == '-' && !allowed_opt(arg)) {
      std::vector<std::string> all = allowed;
      all.push_back("--help");
      throw UsageError(command + ": unknown option '" + arg + "'" + ldm::did_you_mean(arg, all), help_cmd);
    }
    if (arg == "--json") {
      c.json = true;
    } else if (arg == "--compress") {
      c.compress = true;
    } else if (arg == "--inception") {
      c.inception = value();
      if (c.inception.empty()) throw UsageError("--inception needs a file", help_cmd);
    } else if (arg == "--batch") {
      c.batch = parse_batch(value(), help_cmd);
    } else if (arg == "--out") {
      c.out = value();
    } else {
      c.inputs.push_back(arg);
    }
  }
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
  auto e = ldm::eval::make_feature_extractor(c.inception, c.batch);
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

int run_stats(const std::vector<std::string>& args) {
  bool help = false;
  const Common c = parse(args, "stats", &help, {"--out", "--inception", "--batch", "--compress"});
  if (help) {
    std::fputs(kStatsUsage, stdout);
    return 0;
  }
  if (c.inputs.size() != 1)
    throw UsageError("stats needs exactly one input FOLDER|SHARDS (got " + std::to_string(c.inputs.size()) + ")",
                     "ldm-eval stats --help");
  if (c.out.empty()) throw UsageError("stats needs --out S.npz", "ldm-eval stats --help");
  const std::string& in = c.inputs[0];
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

int run_fid(const std::vector<std::string>& args) {
  bool help = false;
  const Common c = parse(args, "fid", &help, {"--json", "--inception", "--batch"});
  if (help) {
    std::fputs(kFidUsage, stdout);
    return 0;
  }
  if (c.inputs.size() != 2)
    throw UsageError("fid needs exactly two inputs A B (got " + std::to_string(c.inputs.size()) + ")",
                     "ldm-eval fid --help");

  // Statistics files are read first and checked against the network that will be used, so a
  // mismatch is reported before any feature extraction.
  std::vector<Input> inputs(2);
  bool any_folder = false;
  for (std::size_t i = 0; i < 2; ++i) {
    Input& in = inputs[i];
    in.path = c.inputs[i];
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
    wanted = "torchscript-inception:" + ldm::data::sha256_file_hex(c.inception).substr(0, 16);
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
    return 0;
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
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    const std::vector<std::string> rest(argv + std::min(argc, 2), argv + argc);
    if (command == "--help" || command == "-h" || command == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (command == "fid") return run_fid(rest);
    if (command == "stats") return run_stats(rest);
    if (command == "clip-score") return ldm::eval::run_clip_score_cli(argc - 1, argv + 1);
    throw UsageError(command.empty() ? "missing command"
                                     : "unknown command '" + command + "'" +
                                           ldm::did_you_mean(command, {"fid", "stats", "clip-score"}));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "ldm-eval: %s (see '%s')\n", one_line(e.what()).c_str(), e.help.c_str());
    return 2;
  } catch (const std::exception& e) {  // ldm::Error, c10::Error, std::bad_alloc, filesystem errors
    std::string msg = e.what();
    if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) msg = ce->what_without_backtrace();
    std::fprintf(stderr, "ldm-eval: error: %s\n", one_line(msg).c_str());
    return 1;
  }
}
