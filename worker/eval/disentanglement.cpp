#include "worker/eval/disentanglement.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/seeds.h"
#include "worker/diffusion/sampling.h"
#include "worker/eval/adherence.h"
#include "worker/torch_compat.h"

namespace ldm::eval {

// Named (not anonymous) so a unity build can merge this file with others.
namespace disentanglement_detail {

// Images as the distances take them: float32 [N, 3, H, W] in [-1, 1].
at::Tensor checked_images(const at::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != 3 || x.scalar_type() != torch::kFloat32)
    throw Error("image distance: expected float32 [N, 3, H, W] images in [-1, 1]");
  return x.contiguous();
}

// The useful line of a LibTorch error: the first line of a c10::Error, the last non-empty line of
// an error raised inside a TorchScript module (its first lines are the interpreter's traceback
// header, e.g. "The following operation failed in the TorchScript interpreter.").
std::string error_line(const std::exception& e) {
  const bool c10 = dynamic_cast<const c10::Error*>(&e) != nullptr;
  std::string s = torch_compat::error_text(e);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (!c10 && s.find('\n') != std::string::npos) return s.substr(s.rfind('\n') + 1);
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

// The options' contract (disentanglement.h: measure_disentanglement's throws).
void check_inputs(const worker::SamplingModel& m, const DisentanglementOptions& o, const ImageDistance& distance) {
  if (!m.conditions->uses_controls())
    throw Error(
        "disentanglement: this checkpoint's recipe has no control conditioning (recipe.conditioning.controls "
        "= \"none\"): the size condition does not reach the network, so the metric means nothing");
  if (o.sizes.size() < 2) throw Error("disentanglement: needs at least two size conditions");
  for (int64_t s : o.sizes)
    if (s < 1 || s > std::numeric_limits<int32_t>::max())
      throw Error("disentanglement: size condition " + std::to_string(s) + " is not a positive pixel count");
  if (o.draws < 1) throw Error("disentanglement: draws must be at least 1");
  if (o.batch < 1) throw Error("disentanglement: batch must be at least 1");
  const bool text = m.conditions->text_task();
  if (text && o.captions.empty()) throw Error("disentanglement: this checkpoint is text-to-image: give captions");
  if (!text && !o.captions.empty()) throw Error("disentanglement: this checkpoint is class-conditional: no captions");
  if (text && !o.labels.empty()) throw Error("disentanglement: this checkpoint is text-to-image: no class labels");
  const int64_t classes = m.spec.dataset.classes;
  for (int64_t l : o.labels)
    if (l < 0 || l > classes)
      throw Error("disentanglement: class label " + std::to_string(l) + " is outside [0, " + std::to_string(classes) +
                  "]");
  if (!text && o.labels.empty() && classes < 1) throw Error("disentanglement: the checkpoint's dataset has no classes");
  if (!distance.compare) throw Error("disentanglement: no distance");
  diffusion::validate_sampler(*m.process, o.sampling.sampler);
}

}  // namespace disentanglement_detail

ImageDistance lpips_distance(const std::string& path) {
  using namespace disentanglement_detail;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError("LPIPS network " + path + ": no such file");
  auto module = std::make_shared<torch::jit::Module>();
  try {
    *module = torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    throw DataError("LPIPS network " + path + ": not a TorchScript archive this LibTorch can load (" + error_line(e) +
                    ")");
  }
  module->eval();
  if (!module->find_method("forward"))
    throw DataError("LPIPS network " + path + ": no forward method (expected forward(x, y) -> [N])");
  auto mutex = std::make_shared<std::mutex>();  // a jit::Module is not safe to call from two threads
  ImageDistance d;
  d.name = "lpips:" + std::filesystem::path(path).filename().string();
  d.embed = checked_images;
  d.compare = [module, mutex, path](const at::Tensor& a, const at::Tensor& b) {
    torch::NoGradGuard no_grad;
    std::lock_guard<std::mutex> lock(*mutex);
    at::Tensor out;
    try {
      out = module->forward({a, b}).toTensor();
    } catch (const std::exception& e) {
      throw DataError("LPIPS network " + path + ": forward(x, y) failed on " + std::to_string(a.size(0)) +
                      " images of " + std::to_string(a.size(2)) + "x" + std::to_string(a.size(3)) + " (" +
                      error_line(e) + ")");
    }
    if (out.numel() != a.size(0))
      throw DataError("LPIPS network " + path + ": forward(x, y) returned " + std::to_string(out.numel()) +
                      " values for " + std::to_string(a.size(0)) + " image pairs (expected [N] or [N, 1, 1, 1])");
    out = out.reshape({a.size(0)}).to(torch::kFloat64);
    if (!torch::isfinite(out).all().item<bool>()) throw DataError("LPIPS network " + path + ": non-finite distances");
    return out;
  };
  return d;
}

ImageDistance feature_distance(std::string name, std::function<at::Tensor(const at::Tensor&)> features) {
  using namespace disentanglement_detail;
  ImageDistance d;
  d.name = std::move(name);
  d.embed = [features](const at::Tensor& images) {
    torch::NoGradGuard no_grad;
    auto f = features(checked_images(images).add(1.0).div(2.0).clamp(0.0, 1.0));  // [0, 1]
    if (f.dim() != 2 || f.size(0) != images.size(0))
      throw Error("feature distance: the feature function returned " + std::to_string(f.dim()) + "-d features for " +
                  std::to_string(images.size(0)) + " images (expected [N, D])");
    return f.to(torch::kFloat64);
  };
  d.compare = [](const at::Tensor& a, const at::Tensor& b) { return (a - b).pow(2).mean(1); };  // [N]
  return d;
}

ImageDistance pixel_distance() {
  using namespace disentanglement_detail;
  ImageDistance d;
  d.name = "pixel-mse";
  d.embed = [](const at::Tensor& images) { return checked_images(images).to(torch::kFloat64); };
  d.compare = [](const at::Tensor& a, const at::Tensor& b) { return (a - b).pow(2).flatten(1).mean(1); };  // [N]
  return d;
}

ControlMeta size_condition(int64_t s) {
  ControlMeta c;
  c.orig_h = c.orig_w = c.crop_h = c.crop_w = static_cast<int32_t>(s);
  c.crop_top = c.crop_left = 0;
  c.flip = false;
  return c;
}

DisentanglementResult measure_disentanglement(const worker::SamplingModel& m, const DisentanglementOptions& o,
                                              const ImageDistance& distance) {
  disentanglement_detail::check_inputs(m, o, distance);
  const int64_t S = static_cast<int64_t>(o.sizes.size());
  const bool text = m.conditions->text_task();
  const int64_t classes = m.spec.dataset.classes;
  std::vector<std::vector<double>> sums(S, std::vector<double>(S, 0.0));
  DisentanglementResult r;
  r.distance = distance.name;
  r.sizes = o.sizes;
  r.draws = o.draws;
  r.high_res_min = o.high_res_min;
  std::vector<std::pair<int64_t, int64_t>> pairs, high;
  for (int64_t a = 0; a < S; ++a)
    for (int64_t b = a + 1; b < S; ++b) {
      pairs.emplace_back(a, b);
      if (o.sizes[a] >= o.high_res_min && o.sizes[b] >= o.high_res_min) high.emplace_back(a, b);
    }
  const double nan = std::numeric_limits<double>::quiet_NaN();

  for (int64_t start = 0, chunk = 0; start < o.draws; start += o.batch, ++chunk) {
    const int64_t nb = std::min(o.batch, o.draws - start);
    std::vector<at::Tensor> noise;
    worker::ConditionInputs base;
    for (int64_t j = start; j < start + nb; ++j) {
      auto g =
          at::detail::createCPUGenerator(derive_seed(o.seed, Purpose::DisentanglementNoise, static_cast<uint64_t>(j)));
      noise.push_back(torch::randn({m.latent_channels, m.latent_side, m.latent_side}, g));  // [C, h, w]
      if (text)
        base.captions.push_back(o.captions[static_cast<std::size_t>(j % static_cast<int64_t>(o.captions.size()))]);
      else
        base.labels.push_back(o.labels.empty()
                                  ? j % classes
                                  : o.labels[static_cast<std::size_t>(j % static_cast<int64_t>(o.labels.size()))]);
    }
    const auto x_T = torch::stack(noise);  // [nb, C, h, w], the same for every size
    std::vector<at::Tensor> reps;          // per size: the distance's representation of the nb images
    std::vector<at::Tensor> energy;        // per size: [nb] high-frequency energies
    for (int64_t s = 0; s < S; ++s) {
      worker::ConditionInputs in = base;
      in.controls.assign(static_cast<std::size_t>(nb), size_condition(o.sizes[static_cast<std::size_t>(s)]));
      // The same generators for every size: only the size condition differs between the images.
      auto sampler_gen = at::detail::createCPUGenerator(
          derive_seed(o.seed, Purpose::DisentanglementSampler, static_cast<uint64_t>(chunk)));
      auto padding_gen = at::detail::createCPUGenerator(
          derive_seed(o.seed, Purpose::DisentanglementPadding, static_cast<uint64_t>(chunk)));
      auto latents = sample_from_noise(m, in, x_T, o.sampling, sampler_gen, padding_gen);
      auto images = worker::decode_latents(m, latents).to(torch::kFloat32);  // [nb, 3, H, W] in [-1, 1]
      if (o.quantize)  // as a PNG holds them: u8 [nb, H, W, 3] -> back to [-1, 1]
        images = images_to_u8(images).permute({0, 3, 1, 2}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous();
      reps.push_back(distance.embed ? distance.embed(images) : images);
      energy.push_back(high_frequency_energy(images));
    }
    std::vector<at::Tensor> pair_d(static_cast<std::size_t>(S * S));
    for (auto [a, b] : pairs) {
      auto d = distance.compare(reps[a], reps[b]).to(torch::kFloat64).reshape({nb});  // [nb]
      if (!torch::isfinite(d).all().item<bool>())
        throw Error("disentanglement: distance " + distance.name + " gave non-finite values");
      sums[a][b] += d.sum().item<double>();
      pair_d[static_cast<std::size_t>(a * S + b)] = d;
    }
    for (int64_t j = 0; j < nb; ++j) {
      double all = 0.0, hr = 0.0;
      for (auto [a, b] : pairs) all += pair_d[static_cast<std::size_t>(a * S + b)][j].item<double>();
      for (auto [a, b] : high) hr += pair_d[static_cast<std::size_t>(a * S + b)][j].item<double>();
      r.per_draw_all_pairs.push_back(all / double(pairs.size()));
      r.per_draw_high_res.push_back(high.empty() ? nan : hr / double(high.size()));
      std::vector<double> e;
      for (int64_t s = 0; s < S; ++s) e.push_back(energy[static_cast<std::size_t>(s)][j].item<double>());
      r.per_draw_energy.push_back(std::move(e));
    }
  }
  r.pair_mean.assign(S, std::vector<double>(S, 0.0));
  for (auto [a, b] : pairs) r.pair_mean[a][b] = r.pair_mean[b][a] = sums[a][b] / double(o.draws);
  double all = 0.0, hr = 0.0;
  for (auto [a, b] : pairs) all += r.pair_mean[a][b];
  for (auto [a, b] : high) hr += r.pair_mean[a][b];
  r.all_pairs = all / double(pairs.size());
  r.high_res = high.empty() ? nan : hr / double(high.size());
  return r;
}

}  // namespace ldm::eval
