// `ldm-eval clip-score`: the CLIP score of a folder of images against their captions.
// ldm_eval_main.cpp lists clip_score_command() among its commands.
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

#include "datasets/images/image_decode.h"
#include "datasets/tensor/npy.h"
#include "shared/core/cli.h"
#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/eval/clip_score.h"
#include "worker/eval/image_folder.h"

namespace ldm::eval {

namespace clip_score_cli_detail {

struct Args {
  std::string folder, captions, image, text, bpe, text_features, device = "cpu";
  double weight = kClipScoreWeight;
  int batch = 32;
  bool json = false, truncate = true;
};

Args parse(const cli::Args& c) {
  Args a;
  a.folder = c.positional.at(0);
  a.captions = c.text("captions");
  a.image = c.text("clip-image");
  a.text = c.text("clip-text");
  a.bpe = c.text("bpe");
  a.text_features = c.text("text-features");
  a.device = c.text("device", "cpu");
  a.weight = c.number("weight", kClipScoreWeight);
  a.batch = static_cast<int>(c.integer("batch", 32));
  a.json = c.has("json");
  a.truncate = !c.has("no-truncate");
  if (!(a.weight > 0)) throw cli::UsageError("--weight needs a positive number, got " + c.text("weight"));
  const bool text_tower = !a.text.empty() || !a.bpe.empty();
  if (text_tower && !a.text_features.empty())
    throw cli::UsageError("give either --clip-text and --bpe, or --text-features, not both");
  if (a.text_features.empty()) {  // with --text-features, captions only check the count when given
    if (a.text.empty() || a.bpe.empty())
      throw cli::UsageError("clip-score needs --clip-text P and --bpe P (or --text-features F.npy)");
    if (a.captions.empty()) throw cli::UsageError("clip-score needs --captions FILE");
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

}  // namespace clip_score_cli_detail

cli::Command clip_score_command() {
  namespace detail = clip_score_cli_detail;
  return {"clip-score",
          {"FOLDER"},
          "CLIP score of the images in FOLDER against their captions.",
          {cli::text("captions", "FILE",
                     "UTF-8, one caption per line, line i for the i-th image in sorted order (a final\n"
                     "newline ends the last line; '\\r' before '\\n' is dropped; the number of lines must\n"
                     "equal the number of images)"),
           cli::text("clip-image", "P",
                     "TorchScript image tower: forward(x float32 [N,3,S,S]) -> [N,D]; images are preprocessed\n"
                     "as CLIP does (bicubic resize of the shorter side to S, center crop, CLIP mean/std);\n"
                     "S = its input_resolution attribute (default 224)")
               .required(),
           cli::text("clip-text", "P", "TorchScript text tower: forward(ids int64 [N,77]) -> [N,D]"),
           cli::text("bpe", "P", "CLIP's BPE merges, bpe_simple_vocab_16e6.txt.gz (or plain text)"),
           cli::text("text-features", "F.npy",
                     "instead of --clip-text/--bpe: precomputed caption features [N,D], row i for the i-th\n"
                     "image (--captions is then not needed)"),
           cli::number("weight", "W", "W below (default 100)"),
           cli::integer("batch", "N", "images / captions per network call (default 32)", 1, 100000),
           cli::text("device", "D", "cpu (default), cuda, cuda:1, ..."),
           cli::flag("no-truncate", "a caption longer than the context is an error (default: truncated, EOT kept)"),
           cli::flag("json",
                     "print one JSON object instead of text: {\"clip_score\", \"torchmetrics_clip_score\",\n"
                     "\"mean_cosine\", \"weight\", \"count\", \"folder\", \"captions\", \"text_features\",\n"
                     "\"identity\", \"model\"}")},
          [](const cli::Args& a) { return detail::run(detail::parse(a)); },
          "Score: mean over pairs of max(W * cos(image features, caption features), 0) (Hessel et al.'s\n"
          "CLIPScore with torchmetrics' scale W = 100; Hessel et al. use W = 2.5). Images: .png .jpg .jpeg\n"
          ".webp, not recursive, sorted by name as 'ldm-eval fid' reads them. Export the towers with\n"
          "tools/export/export_clip.py. Output: the model, the inputs, diagnostics, then 'CLIP score <value>'\n"
          "as the last line. torchmetrics clamps the mean instead of each pair (max(W * mean cos, 0)); it is\n"
          "printed too and equals the score unless some cosine is negative.\n"
          "Exit status: 0 done, 1 failure (unreadable input, mismatched counts or models), 2 usage error."};
}

}  // namespace ldm::eval
