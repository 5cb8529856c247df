// `ldm-eval clip-score`: the CLIP score of a folder of images against their captions.
// ldm_eval_main.cpp dispatches `ldm-eval clip-score ...` here with argv[0] == "clip-score".
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "datasets/image_decode.h"
#include "datasets/npy.h"
#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/eval/clip_score.h"
#include "worker/eval/image_folder.h"

namespace ldm::eval {

namespace clip_score_cli_detail {

constexpr const char* kClipScoreUsage =
    "usage: ldm-eval clip-score FOLDER --captions FILE --clip-image P (--clip-text P --bpe P | --text-features F.npy)\n"
    "                           [--weight W] [--batch N] [--device D] [--no-truncate] [--json]\n"
    "\n"
    "Prints the CLIP score of the images in FOLDER (.png .jpg .jpeg .webp, not recursive, sorted by\n"
    "name as 'ldm-eval fid' reads them) against their captions:\n"
    "  mean over pairs of max(W * cos(image features, caption features), 0)\n"
    "(Hessel et al.'s CLIPScore with torchmetrics' scale W = 100; Hessel et al. use W = 2.5).\n"
    "\n"
    "options:\n"
    "  --captions FILE       UTF-8, one caption per line, line i for the i-th image in sorted order\n"
    "                        (a final newline ends the last line; '\\r' before '\\n' is dropped; the\n"
    "                        number of lines must equal the number of images)\n"
    "  --clip-image P        TorchScript image tower: forward(x float32 [N,3,S,S]) -> [N,D]; images are\n"
    "                        preprocessed as CLIP does (bicubic resize of the shorter side to S, center\n"
    "                        crop, CLIP mean/std); S = its input_resolution attribute (default 224)\n"
    "  --clip-text P         TorchScript text tower: forward(ids int64 [N,77]) -> [N,D]\n"
    "  --bpe P               CLIP's BPE merges, bpe_simple_vocab_16e6.txt.gz (or plain text)\n"
    "  --text-features F     instead of --clip-text/--bpe: precomputed caption features, .npy [N,D]\n"
    "                        (row i for the i-th image; --captions is then not needed)\n"
    "  --weight W            W above (default 100)\n"
    "  --batch N             images / captions per network call (default 32)\n"
    "  --device D            cpu (default), cuda, cuda:1, ...\n"
    "  --no-truncate         a caption longer than the context is an error (default: truncated, EOT kept)\n"
    "  --json                print one JSON object instead of text:\n"
    "                        {\"clip_score\": S, \"torchmetrics_clip_score\": T, \"mean_cosine\": C,\n"
    "                         \"weight\": W, \"count\": N, \"folder\": F, \"captions\": FILE or null,\n"
    "                         \"text_features\": F.npy or null, \"identity\": id, \"model\": label}\n"
    "  -h, --help            show this help\n"
    "\n"
    "Export the towers with tools/export/export_clip.py. Output: the model, the inputs, diagnostics,\n"
    "then 'CLIP score <value>' as the last line. torchmetrics clamps the mean instead of each pair\n"
    "(max(W * mean cos, 0)); it is printed too and equals the score unless some cosine is negative.\n"
    "\n"
    "Exit status: 0 done, 1 failure (unreadable input, mismatched counts or models), 2 usage error.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string folder, captions, image, text, bpe, text_features, device = "cpu";
  double weight = kClipScoreWeight;
  int batch = 32;
  bool json = false, truncate = true, help = false;
};

double parse_double(const std::string& flag, const std::string& v) {
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || !(x > 0) || !std::isfinite(x))
    throw UsageError(flag + " needs a positive number, got '" + v + "'");
  return x;
}

int parse_batch(const std::string& v) {
  std::size_t used = 0;
  long x = 0;
  try {
    x = std::stol(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || x < 1 || x > 100000)
    throw UsageError("--batch needs an integer from 1 to 100000, got '" + v + "'");
  return static_cast<int>(x);
}

Args parse(int argc, char** argv) {
  static const std::vector<std::string> kOptions = {"--captions",      "--clip-image", "--clip-text", "--bpe",
                                                    "--text-features", "--weight",     "--batch",     "--device",
                                                    "--no-truncate",   "--json",       "--help"};
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      a.help = true;
      return a;
    }
    if (arg == "--captions") a.captions = value();
    else if (arg == "--clip-image") a.image = value();
    else if (arg == "--clip-text") a.text = value();
    else if (arg == "--bpe") a.bpe = value();
    else if (arg == "--text-features") a.text_features = value();
    else if (arg == "--weight") a.weight = parse_double(arg, value());
    else if (arg == "--batch") a.batch = parse_batch(value());
    else if (arg == "--device") a.device = value();
    else if (arg == "--no-truncate") a.truncate = false;
    else if (arg == "--json") a.json = true;
    else if (arg.size() > 1 && arg[0] == '-')
      throw UsageError("clip-score: unknown option '" + arg + "'" + ldm::did_you_mean(arg, kOptions));
    else positional.push_back(arg);
  }
  if (positional.size() != 1)
    throw UsageError("clip-score needs exactly one FOLDER of images (got " + std::to_string(positional.size()) + ")");
  a.folder = positional[0];
  if (a.image.empty()) throw UsageError("clip-score needs --clip-image P (a TorchScript CLIP image tower)");
  const bool text_tower = !a.text.empty() || !a.bpe.empty();
  if (text_tower && !a.text_features.empty())
    throw UsageError("give either --clip-text and --bpe, or --text-features, not both");
  if (!a.text_features.empty()) {
    // captions are optional (only used to check the count when given)
  } else {
    if (a.text.empty() || a.bpe.empty())
      throw UsageError("clip-score needs --clip-text P and --bpe P (or --text-features F.npy)");
    if (a.captions.empty()) throw UsageError("clip-score needs --captions FILE");
  }
  return a;
}

std::vector<std::string> read_captions(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ldm::DataError("captions " + path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  const std::string all = s.str();
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < all.size()) {
    std::size_t nl = all.find('\n', pos);
    if (nl == std::string::npos) nl = all.size();
    std::string line = all.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    pos = nl + 1;
  }
  return lines;
}

int run(const Args& a) {
  std::error_code ec;
  if (!std::filesystem::is_directory(a.folder, ec)) throw ldm::Error(a.folder + ": not a folder of images");
  const std::vector<std::string> files = list_image_files(a.folder);
  if (files.empty()) throw ldm::DataError(a.folder + ": no images (.png .jpg .jpeg .webp)");
  const auto n = static_cast<std::int64_t>(files.size());

  std::vector<std::string> captions;
  if (!a.captions.empty()) {
    captions = read_captions(a.captions);
    if (static_cast<std::int64_t>(captions.size()) != n)
      throw ldm::DataError("captions " + a.captions + " has " + std::to_string(captions.size()) + " lines but " +
                           a.folder + " has " + std::to_string(n) +
                           " images (one caption per line, in the sorted "
                           "order of the image names)");
  }
  at::Tensor text_features;
  if (!a.text_features.empty()) {
    text_features = ldm::data::read_npy(a.text_features);
    if (text_features.dim() != 2 || text_features.size(0) != n || !text_features.is_floating_point())
      throw ldm::DataError("text features " + a.text_features + ": expected a float array [" + std::to_string(n) +
                           ", D] (one row per image), got " + std::to_string(text_features.dim()) + "-d " +
                           std::string(c10::toString(text_features.scalar_type())));
  }

  ClipModelOptions options;
  options.batch_size = a.batch;
  options.device = a.device;
  options.truncate = a.truncate;
  std::unique_ptr<ClipModel> model = text_features.defined()
                                         ? std::make_unique<ClipModel>(a.image, options)
                                         : std::make_unique<ClipModel>(a.image, a.text, a.bpe, options);

  std::vector<at::Tensor> cosines;
  auto last = std::chrono::steady_clock::now();
  for (std::int64_t start = 0; start < n; start += a.batch) {
    const std::int64_t rows = std::min<std::int64_t>(a.batch, n - start);
    std::vector<ldm::data::RgbImage> images;
    images.reserve(rows);
    for (std::int64_t i = start; i < start + rows; ++i) images.push_back(ldm::data::decode_image_file(files[i]));
    const at::Tensor img = model->image_features(images);
    at::Tensor txt;
    if (text_features.defined()) {
      txt = text_features.narrow(0, start, rows);
    } else {
      txt = model->text_features(std::vector<std::string>(captions.begin() + start, captions.begin() + start + rows));
    }
    if (img.size(1) != txt.size(1))
      throw ldm::Error("CLIP score: image features have D = " + std::to_string(img.size(1)) +
                       " but caption features have D = " + std::to_string(txt.size(1)));
    cosines.push_back(clip_cosines(img, txt));
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::seconds(2) || start + rows == n) {
      std::fprintf(stderr, "clip-score: %lld/%lld pairs\n", static_cast<long long>(start + rows),
                   static_cast<long long>(n));
      last = now;
    }
  }
  const ClipScoreResult r = clip_score_from_cosines(torch::cat(cosines), a.weight);

  if (a.json) {
    auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
    const nlohmann::json out = {{"clip_score", r.score},
                                {"torchmetrics_clip_score", r.torchmetrics_score},
                                {"mean_cosine", r.mean_cosine},
                                {"weight", r.weight},
                                {"count", r.count},
                                {"folder", a.folder},
                                {"captions", or_null(a.captions)},
                                {"text_features", or_null(a.text_features)},
                                {"identity", model->identity()},
                                {"model", model->label()}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("model: %s\n", model->label().c_str());
  std::printf("identity: %s\n", model->identity().c_str());
  std::printf("pairs: %lld (images %s, %s %s)\n", static_cast<long long>(r.count), a.folder.c_str(),
              text_features.defined() ? "text features" : "captions",
              (text_features.defined() ? a.text_features : a.captions).c_str());
  std::printf("mean cosine %.6f; weight %g; torchmetrics-style max(W * mean cos, 0) = %.6f\n", r.mean_cosine, r.weight,
              r.torchmetrics_score);
  std::printf("CLIP score %.6f\n", r.score);
  return 0;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace clip_score_cli_detail

int run_clip_score_cli(int argc, char** argv) {
  namespace cli = clip_score_cli_detail;
  try {
    const cli::Args a = cli::parse(argc, argv);
    if (a.help) {
      std::fputs(cli::kClipScoreUsage, stdout);
      return 0;
    }
    return cli::run(a);
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "ldm-eval: %s (see 'ldm-eval clip-score --help')\n", cli::one_line(e.what()).c_str());
    return 2;
  } catch (const std::exception& e) {  // ldm::Error, c10::Error, std::bad_alloc, filesystem errors
    std::string msg = e.what();
    if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) msg = ce->what_without_backtrace();
    std::fprintf(stderr, "ldm-eval: error: %s\n", cli::one_line(msg).c_str());
    return 1;
  }
}

}  // namespace ldm::eval
