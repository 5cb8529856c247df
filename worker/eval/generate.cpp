#include "worker/eval/generate.h"

#include <fstream>

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "datasets/images/image_io.h"
#include "shared/core/progress.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/safe_file.h"
#include "shared/core/seeds.h"
#include "worker/diffusion/guidance.h"
#include "worker/diffusion/sampling.h"
#include "worker/diffusion/setup.h"

namespace ldm::eval {

std::vector<std::string> read_caption_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the caption file");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  if (out.empty()) throw Error(path + ": no captions in the file");
  return out;
}

GuidedSampling recipe_sampling(const worker::SamplingModel& m) {
  GuidedSampling s;
  s.sampler = worker::sampler_options(m.spec.recipe.sampler);
  s.cfg = m.spec.recipe.sampler.cfg;
  s.cfg_control = m.spec.recipe.sampler.cfg_control;
  return s;
}

// Mirrors worker::sample_latents (sampling.cpp) after its noise is drawn; keep the two in step.
// (sampling.h could offer this overload itself: sample_latents(m, request, x_T, generators).)
at::Tensor images_to_u8(const at::Tensor& images) {
  // [N,3,H,W] in [-1,1] -> [N,H,W,3] u8 (write_image_grid's rounding)
  return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
}

IndexRange rank_range(int64_t n, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world)
    throw Error("rank " + std::to_string(rank) + " of a world of " + std::to_string(world));
  return {n * rank / world, n * (rank + 1) / world};
}

std::string sample_file_name(int64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(index));
  return name;
}

at::Tensor eval_sample_noise(const worker::SamplingModel& m, uint64_t seed, int64_t index) {
  auto g = at::detail::createCPUGenerator(derive_seed(seed, Purpose::EvalSample, static_cast<uint64_t>(index)));
  return torch::randn({m.latent_channels, m.latent_side, m.latent_side}, g);  // [C, h, w]
}

// Named (not anonymous) so a unity build can merge this file with others.
namespace generate_detail {

void check_options(const worker::SamplingModel& m, const GenerateOptions& o) {
  if (o.n < 1) throw Error("generate: n must be at least 1, got " + std::to_string(o.n));
  if (o.batch < 1) throw Error("generate: batch must be at least 1, got " + std::to_string(o.batch));
  if (o.out_dir.empty()) throw Error("generate: no output directory");
  if (m.conditions->text_task() && o.captions.empty())
    throw Error("generate: this checkpoint is text-to-image: give captions (--captions FILE, one per line)");
  if (!m.conditions->text_task() && !o.captions.empty())
    throw Error("generate: this checkpoint is class-conditional: captions cannot be used");
  if (!m.conditions->text_task() && m.spec.dataset.classes < 1)
    throw Error("generate: the checkpoint's dataset has no classes");
  if (o.controls && !m.conditions->uses_controls())
    throw Error("generate: control metadata given, but this checkpoint's recipe has no control conditioning");
  diffusion::validate_sampler(*m.process, o.sampling.sampler);
}

ControlMeta default_controls(const worker::SamplingModel& m) {
  return worker::parse_control_meta("", m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution);
}

}  // namespace generate_detail

int64_t generate_range(const worker::SamplingModel& m, const GenerateOptions& o, IndexRange range) {
  using namespace generate_detail;
  check_options(m, o);
  if (range.begin < 0 || range.end > o.n || range.begin > range.end)
    throw Error("generate: range [" + std::to_string(range.begin) + ", " + std::to_string(range.end) +
                ") is not inside [0, " + std::to_string(o.n) + ")");
  const std::string dir = o.out_dir + "/samples";
  make_dirs(dir);
  const bool text = m.conditions->text_task(), controls = m.conditions->uses_controls();
  const ControlMeta control = o.controls ? *o.controls : default_controls(m);
  const int64_t B = o.batch;
  int64_t written = 0;
  for (int64_t k = range.begin / B; k * B < range.end; ++k) {
    note_progress("generating samples");
    const int64_t lo = std::max(range.begin, k * B), hi = std::min(range.end, (k + 1) * B);
    // Row p of global batch k is sample k*B + p; rows this rank does not own repeat sample lo.
    std::vector<at::Tensor> noise;
    worker::ConditionInputs in;
    for (int64_t p = 0; p < B; ++p) {
      const int64_t i = k * B + p;
      const int64_t src = (i >= lo && i < hi) ? i : lo;
      noise.push_back(eval_sample_noise(m, o.seed, src));
      if (text)
        in.captions.push_back(o.captions[static_cast<std::size_t>(src % static_cast<int64_t>(o.captions.size()))]);
      else in.labels.push_back(src % m.spec.dataset.classes);
      if (controls) in.controls.push_back(control);
    }
    auto sampler_gen =
        at::detail::createCPUGenerator(derive_seed(o.seed, Purpose::EvalSampler, static_cast<uint64_t>(k)));
    auto padding_gen =
        at::detail::createCPUGenerator(derive_seed(o.seed, Purpose::EvalPaddingNoise, static_cast<uint64_t>(k)));
    auto latents = sample_from_noise(m, in, torch::stack(noise), o.sampling, sampler_gen, padding_gen);  // [B, C, h, w]
    auto u8 = images_to_u8(worker::decode_latents(m, latents));                                          // [B, H, W, 3]
    for (int64_t i = lo; i < hi; ++i) {
      auto image = u8[i - k * B].contiguous();
      data::write_png(dir + "/" + sample_file_name(i), image.data_ptr<uint8_t>(), static_cast<int>(image.size(0)),
                      static_cast<int>(image.size(1)));
      ++written;
    }
  }
  return written;
}

GenerateResult generate_for_eval(const worker::SamplingModel& m, GenerateOptions o, worker::Communicator& comm) {
  using namespace generate_detail;
  check_options(m, o);
  GenerateResult result;
  result.mine = rank_range(o.n, comm.rank(), comm.size());
  const int64_t count = generate_range(m, o, result.mine);
  comm.barrier();
  const nlohmann::json mine = {
      {"rank", comm.rank()}, {"begin", result.mine.begin}, {"end", result.mine.end}, {"count", count}};
  const std::vector<std::string> all = comm.gather(mine.dump(), 0);
  if (comm.rank() != 0) return result;

  nlohmann::json ranks = nlohmann::json::array();
  for (const std::string& s : all) {
    ranks.push_back(nlohmann::json::parse(s));
    result.rank_counts.push_back(ranks.back().at("count").get<int64_t>());
  }
  // The grid from the files every rank wrote (the barrier above ordered their writes before this).
  const int64_t shown = std::min(o.grid_samples, o.n);
  if (shown > 0) {
    std::vector<at::Tensor> images;
    for (int64_t i = 0; i < shown; ++i) {
      const data::RgbImage png = data::read_png(o.out_dir + "/samples/" + sample_file_name(i));
      auto hwc = torch::from_blob(const_cast<uint8_t*>(png.pixels.data()), {png.height, png.width, 3}, torch::kUInt8);
      images.push_back(hwc.permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0));  // [3, H, W] in [-1, 1]
    }
    result.grid = o.out_dir + "/grid.png";
    worker::write_image_grid(torch::stack(images), result.grid, o.grid_columns);
  }
  const auto& s = o.sampling;
  nlohmann::json controls_json = nullptr;  // recipes without control conditioning
  if (m.conditions->uses_controls()) {
    const ControlMeta c = o.controls ? *o.controls : default_controls(m);
    controls_json = {{"orig_h", c.orig_h}, {"orig_w", c.orig_w}, {"crop_top", c.crop_top}, {"crop_left", c.crop_left},
                     {"crop_h", c.crop_h}, {"crop_w", c.crop_w}, {"flip", c.flip}};
  }
  const nlohmann::json manifest = {
      {"source", o.source},
      {"experiment", m.spec.name},
      {"stage_index", m.stage_index},
      {"step", m.step},
      {"weights", m.ema ? "ema" : "model"},
      {"resolution", m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution},
      {"n", o.n},
      {"seed", o.seed},
      {"batch", o.batch},
      {"sampler",
       {{"method", s.sampler.method},
        {"steps", s.sampler.steps},
        {"spacing", s.sampler.spacing},
        {"eta", s.sampler.eta}}},
      {"cfg", s.cfg},
      {"cfg_control", s.cfg_control},
      {"captions", o.captions.size()},
      {"controls", controls_json},
      {"world_size", comm.size()},
      {"ranks", ranks},
      {"files", "samples/%06d.png"},
  };
  write_file_atomic(o.out_dir + "/generate.json", manifest.dump(2) + "\n");
  return result;
}

}  // namespace ldm::eval
