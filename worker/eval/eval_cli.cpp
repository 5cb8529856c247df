#include "worker/eval/eval_cli.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/comm.h"
#include "worker/eval/disentanglement.h"
#include "worker/eval/features.h"
#include "worker/eval/generate.h"
#include "worker/sampling.h"

namespace ldm::eval {

// Named (not anonymous) so a unity build can merge this file with others.
namespace eval_cli_detail {

const char* kGenerateUsage =
    "usage: generate --checkpoint DIR --n N --out DIR [--seed S] [--sampler M] [--steps K]\n"
    "                [--spacing S] [--eta E] [--cfg S_SEM] [--cfg-control S_CTRL] [--captions FILE]\n"
    "                [--controls K=V,...] [--resolution R] [--batch B] [--threads T] [--no-ema]\n"
    "\n"
    "Generates N evaluation samples from a checkpoint (a bundle or a checkpoints directory; EMA\n"
    "weights unless --no-ema) and writes OUT/samples/000000.png ... (one 8-bit RGB PNG each),\n"
    "OUT/grid.png (the first 64) and OUT/generate.json. Sample i is seeded by (seed, i) and gets\n"
    "class i % classes, or caption i % count of FILE (one caption per line; required for\n"
    "text-to-image checkpoints). Sampler and guidance default to the recipe's.\n"
    "--controls orig_h=512,orig_w=512,crop_top=0,crop_left=0,crop_h=..,crop_w=..,flip=0: the control\n"
    "metadata of every sample (recipes with controls; default: an uncropped, unflipped image of the\n"
    "sampled resolution). --resolution R: sample at R pixels instead of the trained stage's (the\n"
    "positional embeddings are resampled as recipe.pos_embed_resampling says; not for mDT-v2).\n"
    "Under mpirun (-n W) rank r generates samples [r*N/W, (r+1)*N/W); the files are byte-identical\n"
    "for any W (same --batch and --threads). --batch B: samples per network batch (default 8);\n"
    "--threads T: intra-op threads per process (default 1).\n";

const char* kDisentanglementUsage =
    "usage: disentanglement --checkpoint DIR [--sizes 64,128,256,512,1024] [--lpips PATH |\n"
    "                       --inception PATH | --pixel] [--draws M] [--high-res-min S] [--seed S]\n"
    "                       [--caption TEXT | --captions FILE] [--class K] [--sampler M] [--steps K]\n"
    "                       [--spacing S] [--eta E] [--cfg S_SEM] [--cfg-control S_CTRL] [--batch B]\n"
    "                       [--threads T] [--no-ema] [--quantize] [--drop-controls] [--json]\n"
    "\n"
    "The paper's disentanglement metric: for M draws of (noise, class or caption), one image per\n"
    "size condition (orig_h = orig_w = s, crop = the full image, no flip), and the mean distance\n"
    "between the images of every pair of sizes (lower: the size condition changes less content).\n"
    "Reports the mean over all pairs and over the pairs of sizes >= --high-res-min (default 512;\n"
    "[recon]: the paper's exact high-resolution variant is not known). Needs a recipe with controls.\n"
    "Distance: LPIPS with --lpips PATH (TorchScript: forward(x, y), x, y [N,3,H,W] in [-1,1] -> [N]),\n"
    "else the mean squared distance of Inception features (--inception PATH) or of the built-in\n"
    "feature network (default; NOT LPIPS), or of the pixels (--pixel).\n"
    "--draws M: default 8 [recon]; --caption/--captions: required for text-to-image checkpoints;\n"
    "--class K: every draw uses class K (default: draw j uses class j % classes);\n"
    "--quantize: round the images to 8 bits (as saved PNGs) before the distance [recon; default:\n"
    "the decoder's float images];\n"
    "--drop-controls: drop the controls of every generation (a check: the metric is then 0).\n"
    "Output: a table of pair means, then 'disentanglement all-pairs X high-res Y' (or, with --json,\n"
    "one JSON object) as the last line.\n";

struct UsageError : Error {
  using Error::Error;
};

struct Args {
  std::map<std::string, std::string> options;
  bool help = false;
  bool has(const std::string& k) const { return options.count(k) > 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = options.find(k);
    return it == options.end() ? def : it->second;
  }
};

Args parse(int argc, char** argv, const std::vector<std::string>& flags, const std::vector<std::string>& valued) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      a.help = true;
      continue;
    }
    if (!starts_with(s, "--")) throw UsageError("unexpected argument '" + s + "'");
    const std::string key = s.substr(2);
    if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
      a.options[key] = "1";
    } else if (std::find(valued.begin(), valued.end(), key) != valued.end()) {
      if (i + 1 >= argc) throw UsageError("option --" + key + " needs a value");
      a.options[key] = argv[++i];
    } else {
      std::vector<std::string> all = flags;
      all.insert(all.end(), valued.begin(), valued.end());
      throw UsageError("unknown option " + s + did_you_mean(key, all));
    }
  }
  return a;
}

int64_t to_int(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end) throw UsageError(what + " must be an integer, got '" + s + "'");
  return v;
}

double to_double(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end || !std::isfinite(v)) throw UsageError(what + " must be a number, got '" + s + "'");
  return v;
}

std::string error_text(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

std::string program(int argc, char** argv) {
  std::string p = argc > 0 ? argv[0] : "ldm-worker";
  if (auto slash = p.rfind('/'); slash != std::string::npos) p = p.substr(slash + 1);
  return p + " " + (argc > 1 ? argv[1] : "");
}

// One caption per line; empty lines are skipped.
std::vector<std::string> read_captions(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("--captions " + path + ": cannot open the file");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  if (out.empty()) throw UsageError("--captions " + path + ": no captions in the file");
  return out;
}

// The sampler and guidance options shared by both commands, over the recipe's defaults.
GuidedSampling sampling_from_args(const worker::SamplingModel& m, const Args& a) {
  GuidedSampling s = recipe_sampling(m);
  if (a.has("sampler")) s.sampler.method = a.get("sampler");
  if (a.has("steps")) s.sampler.steps = to_int(a.get("steps"), "--steps");
  if (a.has("spacing")) s.sampler.spacing = a.get("spacing");
  if (a.has("eta")) s.sampler.eta = to_double(a.get("eta"), "--eta");
  if (a.has("cfg")) s.cfg = to_double(a.get("cfg"), "--cfg");
  if (a.has("cfg-control")) {
    if (!m.conditions->uses_controls())
      throw UsageError("--cfg-control: this checkpoint's recipe has no control conditioning");
    s.cfg_control = to_double(a.get("cfg-control"), "--cfg-control");
  }
  return s;
}

const std::vector<std::string> kSamplingOptions = {"sampler", "steps", "spacing", "eta", "cfg", "cfg-control"};

// Started by mpirun (Open MPI), or a PMI/PMIx launcher (srun, MPICH's hydra)?
bool started_by_mpi_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace eval_cli_detail

int run_generate_cli(int argc, char** argv) {
  using namespace eval_cli_detail;
  const std::string prog = program(argc, argv);
  Args a;
  try {
    std::vector<std::string> valued = {"checkpoint", "n",       "out",      "seed",      "captions",
                                       "batch",      "threads", "controls", "resolution"};
    valued.insert(valued.end(), kSamplingOptions.begin(), kSamplingOptions.end());
    a = parse(argc, argv, {"no-ema"}, valued);
    if (a.help) {
      std::cout << kGenerateUsage;
      return 0;
    }
    for (const char* k : {"checkpoint", "n", "out"})
      if (!a.has(k)) throw UsageError(std::string("needs --") + k);
  } catch (const UsageError& e) {
    std::cerr << prog << ": " << e.what() << "\n\n" << kGenerateUsage;
    return 2;
  }
  std::unique_ptr<worker::Communicator> comm = started_by_mpi_launcher() ? worker::make_mpi_communicator(&argc, &argv)
                                                                         : worker::make_single_process_communicator();
  const int rank = comm->rank();
  try {
    at::set_num_threads(static_cast<int>(to_int(a.get("threads", "1"), "--threads")));
    const int64_t resolution = a.has("resolution") ? to_int(a.get("resolution"), "--resolution") : 0;
    if (a.has("resolution") && resolution < 1) throw UsageError("--resolution must be a positive number of pixels");
    const worker::SamplingModel m = worker::load_sampling_model(a.get("checkpoint"), !a.has("no-ema"), resolution);
    GenerateOptions o;
    if (a.has("controls")) {
      if (!m.conditions->uses_controls())
        throw UsageError(
            "--controls: this checkpoint's recipe has no control conditioning "
            "(recipe.conditioning.controls = \"none\")");
      try {
        o.controls = worker::parse_control_meta(a.get("controls"),
                                                m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution);
      } catch (const Error& e) {
        throw UsageError(e.what());
      }
    }
    o.n = to_int(a.get("n"), "--n");
    o.out_dir = a.get("out");
    o.seed = static_cast<uint64_t>(to_int(a.get("seed", "0"), "--seed"));
    o.batch = to_int(a.get("batch", "8"), "--batch");
    if (o.n < 1) throw UsageError("--n must be at least 1");
    if (o.batch < 1) throw UsageError("--batch must be at least 1");
    o.sampling = sampling_from_args(m, a);
    if (a.has("captions")) {
      if (!m.conditions->text_task()) throw UsageError("--captions: this checkpoint is class-conditional");
      o.captions = read_captions(a.get("captions"));
    } else if (m.conditions->text_task()) {
      throw UsageError("this checkpoint is text-to-image: give --captions FILE (one caption per line)");
    }
    o.source = a.get("checkpoint");
    const IndexRange mine = rank_range(o.n, rank, comm->size());
    if (rank == 0)
      std::cout << "generating " << o.n << " samples from " << m.spec.name << " step " << m.step << " ("
                << (m.ema ? "EMA" : "raw") << " weights) on " << comm->size() << " rank(s) with "
                << o.sampling.sampler.method << ", " << o.sampling.sampler.steps << " steps, cfg " << o.sampling.cfg
                << " at " << m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution << " px" << std::endl;
    const GenerateResult r = generate_for_eval(m, o, *comm);
    std::cout << "rank " << rank << ": samples [" << mine.begin << ", " << mine.end << ")" << std::endl;
    if (rank == 0) {
      std::string counts;
      for (int64_t c : r.rank_counts) counts += (counts.empty() ? "" : " ") + std::to_string(c);
      std::cout << "wrote " << o.n << " samples to " << o.out_dir << "/samples (per rank: " << counts << "), grid "
                << r.grid << std::endl;
    }
    return 0;
  } catch (const std::exception& e) {
    const bool usage = dynamic_cast<const UsageError*>(&e) != nullptr;
    std::cerr << prog << ": " << (usage ? "" : "error: ")
              << (comm->size() > 1 ? "rank " + std::to_string(rank) + ": " : "") << error_text(e) << std::endl;
    // A usage error is the same on every rank (arguments, checkpoint kind) and comes before any
    // collective: every rank returns. Anything else may be one rank's alone while the others wait
    // in a collective: end the job.
    if (!usage && comm->size() > 1) comm->abort(1);
    return usage ? 2 : 1;
  }
}

int run_disentanglement_cli(int argc, char** argv) {
  using namespace eval_cli_detail;
  const std::string prog = program(argc, argv);
  try {
    std::vector<std::string> valued = {"checkpoint", "sizes",   "lpips",    "inception", "draws", "high-res-min",
                                       "seed",       "caption", "captions", "class",     "batch", "threads"};
    valued.insert(valued.end(), kSamplingOptions.begin(), kSamplingOptions.end());
    const Args a = parse(argc, argv, {"pixel", "no-ema", "quantize", "drop-controls", "json"}, valued);
    if (a.help) {
      std::cout << kDisentanglementUsage;
      return 0;
    }
    if (!a.has("checkpoint")) throw UsageError("needs --checkpoint DIR");
    if (int(a.has("lpips")) + int(a.has("inception")) + int(a.has("pixel")) > 1)
      throw UsageError("give at most one of --lpips, --inception and --pixel");
    if (a.has("caption") && a.has("captions")) throw UsageError("give --caption or --captions, not both");
    DisentanglementOptions o;
    if (a.has("sizes")) {
      o.sizes.clear();
      for (const std::string& s : split(a.get("sizes"), ','))
        if (!s.empty()) o.sizes.push_back(to_int(s, "--sizes"));
      if (o.sizes.size() < 2) throw UsageError("--sizes needs at least two sizes");
      for (int64_t s : o.sizes)
        if (s < 1) throw UsageError("--sizes: sizes must be positive");
    }
    o.draws = to_int(a.get("draws", "8"), "--draws");
    o.high_res_min = to_int(a.get("high-res-min", "512"), "--high-res-min");
    o.seed = static_cast<uint64_t>(to_int(a.get("seed", "0"), "--seed"));
    o.batch = to_int(a.get("batch", "8"), "--batch");
    if (o.draws < 1) throw UsageError("--draws must be at least 1");
    if (o.batch < 1) throw UsageError("--batch must be at least 1");
    at::set_num_threads(static_cast<int>(to_int(a.get("threads", "1"), "--threads")));

    const worker::SamplingModel m = worker::load_sampling_model(a.get("checkpoint"), !a.has("no-ema"));
    if (!m.conditions->uses_controls())
      throw Error(
          "this checkpoint's recipe has no control conditioning (recipe.conditioning.controls = \"none\"): "
          "the disentanglement metric needs size conditions");
    const bool text = m.conditions->text_task();
    if (text) {
      if (a.has("class")) throw UsageError("--class: this checkpoint is text-to-image (use --caption)");
      if (a.has("caption")) o.captions = {a.get("caption")};
      else if (a.has("captions")) o.captions = read_captions(a.get("captions"));
      else throw UsageError("this checkpoint is text-to-image: give --caption TEXT or --captions FILE");
    } else {
      if (a.has("caption") || a.has("captions")) throw UsageError("--caption: this checkpoint is class-conditional");
      if (a.has("class")) {
        const int64_t k = to_int(a.get("class"), "--class");
        if (k < 0 || k > m.spec.dataset.classes)
          throw UsageError("--class must be in [0, " + std::to_string(m.spec.dataset.classes) + "]");
        o.labels = {k};
      }
    }
    o.sampling = sampling_from_args(m, a);
    o.sampling.drop_controls = a.has("drop-controls");
    o.quantize = a.has("quantize");

    std::unique_ptr<FeatureExtractor> extractor;
    ImageDistance distance;
    if (a.has("lpips")) {
      distance = lpips_distance(a.get("lpips"));
    } else if (a.has("pixel")) {
      distance = pixel_distance();
    } else {
      extractor = make_feature_extractor(a.get("inception"));
      const FeatureExtractor* fx = extractor.get();
      distance = feature_distance("features:" + fx->identity(),
                                  [fx](const at::Tensor& images01) { return fx->features(images01); });
      std::cerr << prog << ": note: no --lpips: the distance is the mean squared difference of " << fx->label()
                << " features, not LPIPS" << std::endl;
    }

    const DisentanglementResult r = measure_disentanglement(m, o, distance);
    auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
    if (a.has("json")) {
      nlohmann::json per_draw_high = nlohmann::json::array();
      for (double v : r.per_draw_high_res) per_draw_high.push_back(number(v));
      const nlohmann::json j = {{"checkpoint", a.get("checkpoint")},
                                {"experiment", m.spec.name},
                                {"step", m.step},
                                {"weights", m.ema ? "ema" : "model"},
                                {"distance", r.distance},
                                {"sizes", r.sizes},
                                {"draws", r.draws},
                                {"seed", o.seed},
                                {"sampler", o.sampling.sampler.method},
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
      return 0;
    }
    std::printf("disentanglement of %s step %lld (%s weights): %lld draws, %s %lld steps, cfg %g/%g, distance %s\n",
                m.spec.name.c_str(), (long long)m.step, m.ema ? "EMA" : "raw", (long long)r.draws,
                o.sampling.sampler.method.c_str(), (long long)o.sampling.sampler.steps, o.sampling.cfg,
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
    if (std::isfinite(r.high_res))
      std::printf("disentanglement all-pairs %.6g high-res %.6g\n", r.all_pairs, r.high_res);
    else std::printf("disentanglement all-pairs %.6g high-res n/a\n", r.all_pairs);
    return 0;
  } catch (const UsageError& e) {
    std::cerr << prog << ": " << e.what() << "\n\n" << kDisentanglementUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << prog << ": error: " << error_text(e) << std::endl;
    return 1;
  }
}

}  // namespace ldm::eval
