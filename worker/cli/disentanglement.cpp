// `ldm-worker disentanglement`: the paper's size-condition disentanglement metric of a checkpoint
// with controls; prints it as the last line.
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/cli/commands.h"
#include "worker/cli/eval_options.h"
#include "worker/eval/disentanglement.h"
#include "worker/eval/features.h"

namespace ldm::worker {
namespace {

using namespace ldm::eval;

void print_disentanglement(const DisentanglementResult& r, const DisentanglementOptions& o,
                           const worker::SamplingModel& m, const cli::Args& a) {
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  if (a.has("json")) {
    nlohmann::json per_draw_high = nlohmann::json::array();
    for (double v : r.per_draw_high_res) per_draw_high.push_back(number(v));
    const nlohmann::json j = {{"checkpoint", a.text("checkpoint")},
                              {"experiment", m.spec.name},
                              {"step", m.step},
                              {"weights", m.ema ? "ema" : "model"},
                              {"distance", r.distance},
                              {"sizes", r.sizes},
                              {"draws", r.draws},
                              {"seed", o.seed},
                              {"sampler", choice_name(o.sampling.sampler.method)},
                              {"steps", o.sampling.sampler.steps},
                              {"cfg", o.sampling.cfg},
                              {"cfg_control", o.sampling.cfg_control},
                              {"drop_controls", o.sampling.drop_controls},
                              {"quantize", o.quantize},
                              {"all_pairs", number(r.all_pairs)},
                              {"high_res", number(r.high_res)},
                              {"high_res_min", r.high_res_min},
                              {"pair_mean", r.pair_mean},
                              {"per_draw_all_pairs", r.per_draw_all_pairs},
                              {"per_draw_high_res", per_draw_high}};
    std::cout << j.dump() << std::endl;
    return;
  }
  std::printf("disentanglement of %s step %lld (%s weights): %lld draws, %s %lld steps, cfg %g/%g, distance %s\n",
              m.spec.name.c_str(), (long long)m.step, m.ema ? "EMA" : "raw", (long long)r.draws,
              choice_name(o.sampling.sampler.method), (long long)o.sampling.sampler.steps, o.sampling.cfg,
              o.sampling.cfg_control, r.distance.c_str());
  std::printf("%8s", "size");
  for (int64_t s : r.sizes) std::printf(" %10lld", (long long)s);
  std::printf("\n");
  for (std::size_t i = 0; i < r.sizes.size(); ++i) {
    std::printf("%8lld", (long long)r.sizes[i]);
    for (std::size_t k = 0; k < r.sizes.size(); ++k) std::printf(" %10.4g", r.pair_mean[i][k]);
    std::printf("\n");
  }
  std::printf("high-res: the pairs of sizes >= %lld [recon]\n", (long long)r.high_res_min);
  if (std::isfinite(r.high_res)) std::printf("disentanglement all-pairs %.6g high-res %.6g\n", r.all_pairs, r.high_res);
  else std::printf("disentanglement all-pairs %.6g high-res n/a\n", r.all_pairs);
}

int run_disentanglement(const cli::Args& a) {
  if (int(a.has("lpips")) + int(a.has("inception")) + int(a.has("pixel")) > 1)
    throw cli::UsageError("give at most one of --lpips, --inception and --pixel");
  if (a.has("caption") && a.has("captions")) throw cli::UsageError("give --caption or --captions, not both");
  DisentanglementOptions o;
  if (a.has("sizes")) {
    o.sizes.clear();
    for (const std::string& s : split(a.text("sizes"), ',')) {
      if (s.empty()) continue;
      char* end = nullptr;
      const long long v = std::strtoll(s.c_str(), &end, 10);
      if (*end || v < 1) throw cli::UsageError("--sizes: '" + s + "' is not a positive integer");
      o.sizes.push_back(v);
    }
    if (o.sizes.size() < 2) throw cli::UsageError("--sizes needs at least two sizes");
  }
  o.draws = a.integer("draws", 8);
  o.high_res_min = a.integer("high-res-min", 512);
  o.seed = static_cast<uint64_t>(a.integer("seed", 0));
  o.batch = a.integer("batch", 8);
  at::set_num_threads(static_cast<int>(a.integer("threads", 1)));

  const worker::SamplingModel m = worker::load_sampling_model(a.text("checkpoint"), !a.has("no-ema"));
  if (!m.conditions->uses_controls())
    throw Error(
        "this checkpoint's recipe has no control conditioning (recipe.conditioning.controls = \"none\"): "
        "the disentanglement metric needs size conditions");
  if (m.conditions->text_task()) {
    if (a.has("class")) throw cli::UsageError("--class: this checkpoint is text-to-image (use --caption)");
    if (a.has("caption")) o.captions = {a.text("caption")};
    else if (a.has("captions")) o.captions = read_captions(a.text("captions"));
    else throw cli::UsageError("this checkpoint is text-to-image: give --caption TEXT or --captions FILE");
  } else {
    if (a.has("caption") || a.has("captions")) throw cli::UsageError("--caption: this checkpoint is class-conditional");
    if (a.has("class")) {
      const int64_t k = a.integer("class", 0);
      if (k < 0 || k > m.spec.dataset.classes)
        throw cli::UsageError("--class must be in [0, " + std::to_string(m.spec.dataset.classes) + "]");
      o.labels = {k};
    }
  }
  o.sampling = sampling_from_args(m, a);
  o.sampling.drop_controls = a.has("drop-controls");
  o.quantize = a.has("quantize");

  std::unique_ptr<FeatureExtractor> extractor;
  ImageDistance distance;
  if (a.has("lpips")) {
    distance = lpips_distance(a.text("lpips"));
  } else if (a.has("pixel")) {
    distance = pixel_distance();
  } else {
    extractor = make_feature_extractor(a.text("inception"));
    const FeatureExtractor* fx = extractor.get();
    distance = feature_distance("features:" + fx->identity(),
                                [fx](const at::Tensor& images01) { return fx->features(images01); });
    std::cerr << "ldm-worker disentanglement: note: no --lpips: the distance is the mean squared difference of "
              << fx->label() << " features, not LPIPS" << std::endl;
  }
  print_disentanglement(measure_disentanglement(m, o, distance), o, m, a);
  return 0;
}

}  // namespace

cli::Command disentanglement_command() {
  std::vector<cli::Option> options = {
      cli::text("checkpoint", "DIR", "a bundle or a checkpoints directory").required(),
      cli::text("sizes", "S1,S2,...", "size conditions (default 64,128,256,512,1024)"),
      cli::text("lpips", "PATH", "LPIPS TorchScript: forward(x, y), x, y [N,3,H,W] in [-1,1] -> [N]"),
      cli::text("inception", "PATH", "mean squared distance of these Inception features"),
      cli::flag("pixel", "mean squared distance of the pixels"),
      cli::integer("draws", "M", "draws of (noise, class or caption) (default 8 [recon])", 1, 1e6),
      cli::integer("high-res-min", "S", "the high-res mean takes the pairs of sizes >= S (default 512 [recon])", 1),
      cli::integer("seed", "S", "noise seed (default 0)", 0),
      cli::text("caption", "TEXT", "caption of every draw (text-to-image checkpoints)"),
      cli::text("captions", "FILE", "one caption per line, draw j gets caption j % count"),
      cli::integer("class", "K", "every draw uses class K (default: draw j uses class j % classes)"),
      cli::flag("quantize", "round the images to 8 bits before the distance [recon; default: float images]"),
      cli::flag("drop-controls", "drop the controls of every generation (a check: the metric is then 0)"),
      cli::flag("json", "print one JSON object instead of the table")};
  for (cli::Option& o : sampling_options()) options.push_back(o);
  return {"disentanglement",
          {},
          "The paper's size-condition disentanglement metric of a checkpoint with controls.",
          options,
          run_disentanglement,
          "For M draws of (noise, class or caption), one image per size condition (orig_h = orig_w = s, crop =\n"
          "the full image, no flip), and the mean distance between the images of every pair of sizes (lower:\n"
          "the size condition changes less content). Reports the mean over all pairs and over the pairs of\n"
          "sizes >= --high-res-min ([recon]: the paper's exact high-resolution variant is not known).\n"
          "Distance: LPIPS with --lpips, else the mean squared distance of Inception features (--inception)\n"
          "or of the built-in feature network (default; NOT LPIPS), or of the pixels (--pixel).\n"
          "Output: a table of pair means, then 'disentanglement all-pairs X high-res Y' (or, with --json, one\n"
          "JSON object) as the last line."};
}

}  // namespace ldm::worker
