#include "worker/diffusion/sampling.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>

#include "datasets/images/image_io.h"
#include "datasets/tensor/encoders.h"
#include "shared/core/progress.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/recipes/card.h"
#include "shared/core/seeds.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"
#include "worker/diffusion/guidance.h"
#include "worker/diffusion/setup.h"
#include "worker/io/checkpoint.h"
#include "worker/hardware.h"
#include "worker/io/weights.h"
#include "worker/torch_compat.h"

namespace ldm::worker {

SamplingModel load_sampling_model(const std::string& checkpoint, bool use_ema, int64_t resolution, double shift) {
  CheckpointBundle b = read_checkpoint(checkpoint);
  if (!b.manifest.contains("spec"))
    throw DataError(checkpoint + ": the manifest has no resolved spec (written by an older worker)");
  SamplingModel m;
  m.stage_index = b.manifest.value("stage_index", 0);
  // The experiment as the stage trained it: its overrides, and the schedule reference it used.
  ExperimentSpec full = spec_from_json(b.manifest.at("spec"));
  m.spec = stage_view(full, static_cast<std::size_t>(m.stage_index));
  if (m.spec.recipe.diffusion.reference_resolution == 0 && b.manifest.contains("reference_resolution"))
    m.spec.recipe.diffusion.reference_resolution = b.manifest["reference_resolution"].get<int64_t>();
  m.step = b.manifest.value("step", int64_t{0});
  m.ema = use_ema;
  StageSpec& stage = m.spec.stages.at(static_cast<std::size_t>(m.stage_index));
  const int64_t trained_side = latent_side(m.spec, stage);
  m.spec.recipe.diffusion.shift = shift > 0 ? shift : resolution_shift(m.spec, stage);
  if (resolution > 0 && resolution != stage.resolution) {
    const RecipeCard& card = recipe_card(m.spec.recipe.family);
    if (!card.capabilities.resolution_change)
      throw Error("--resolution " + std::to_string(resolution) + ": " + card.title +
                  " checkpoints cannot change resolution yet; sample at " + std::to_string(stage.resolution));
    stage.resolution = resolution;
    full.stages.at(static_cast<std::size_t>(m.stage_index)).resolution = resolution;
    try {
      validate(full);  // the experiment, not the view: every stage's overrides apply to its own view only
    } catch (const SpecError& e) {
      throw Error("--resolution " + std::to_string(resolution) + ": " + e.detail());
    }
  }
  m.autoencoder = data::make_autoencoder(m.spec.autoencoder);
  if (b.manifest.contains("autoencoder") && b.manifest["autoencoder"].get<std::string>() != m.autoencoder->identity())
    throw DataError(checkpoint + ": trained on latents of autoencoder '" +
                    b.manifest["autoencoder"].get<std::string>() + "', but the experiment's autoencoder is now '" +
                    m.autoencoder->identity() + "'");
  m.latent_channels = m.autoencoder->latent_channels();
  m.latent_side = latent_side(m.spec, stage);
  m.conditions = std::make_shared<const ConditionBuilder>(m.spec, resolution_shift(m.spec, stage));
  auto gen = at::detail::createCPUGenerator(0);  // weights are overwritten below
  m.model = models::build_denoiser(m.spec.recipe,
                                   m.conditions->geometry(m.latent_channels, m.latent_side, m.latent_side), gen);
  const PresetInfo* preset = find_preset(m.spec.recipe.family, m.spec.recipe.preset);
  const int64_t patch = preset && preset->patch > 0 ? preset->patch : 1;
  GridChange grid{trained_side / patch,
                  trained_side / patch,
                  m.latent_side / patch,
                  m.latent_side / patch,
                  m.spec.recipe.pos_embed_resampling,
                  m.spec.recipe.pos_embed_grid};
  load_weights(*m.model, use_ema ? b.ema : b.model, checkpoint + "/" + (use_ema ? "ema" : "model") + ".safetensors",
               grid);
  m.model->eval();
  const Hardware hw = resolve_hardware(m.spec.hardware);
  apply_numerics(hw);
  m.device = hw.device;
  m.bf16 = hw.bf16;
  m.model->to(m.device);
  m.process = make_process(m.spec, stage);
  m.objective = m.spec.recipe.diffusion.objective;
  return m;
}

torch::Tensor sample_from_noise(const SamplingModel& m, const ConditionInputs& in, const torch::Tensor& x_T,
                                const GuidedSampling& s, at::Generator& sampler_gen, at::Generator& padding_gen) {
  torch::NoGradGuard no_grad;
  const int64_t n = in.size();
  if (n == 0) throw Error("sampling: no samples requested");
  if (x_T.dim() != 4 || x_T.size(0) != n || x_T.size(1) != m.latent_channels || x_T.size(2) != m.latent_side ||
      x_T.size(3) != m.latent_side)
    throw Error("sampling: the starting noise must be [" + std::to_string(n) + ", " +
                std::to_string(m.latent_channels) + ", " + std::to_string(m.latent_side) + ", " +
                std::to_string(m.latent_side) + "]");
  const ConditionBuilder& cb = *m.conditions;
  // The branches of guidance, stacked along the batch (row layout: guidance.h).
  const models::Condition c = cb.inference(in, false, s.drop_controls, &padding_gen);
  std::vector<models::Condition> branches;
  const bool two_scale = cb.uses_controls();
  const bool guided = two_scale ? (s.cfg != 1.0 || s.cfg_control != 1.0) : s.cfg != 1.0;
  const SamplerSpec& recipe = m.spec.recipe.sampler;  // the guidance schedule is the recipe's
  const bool ramped = recipe.cfg_schedule == GuidanceSchedule::PowerCosine;
  if (!guided) branches = {c};
  else if (!two_scale) branches = {cb.with_drops(c, true, false), c};
  else branches = {cb.with_drops(c, true, true), cb.with_drops(c, false, true), c};
  const models::Condition all = models::Condition::cat(branches).to(m.device);
  auto net = [&](const torch::Tensor& x, const torch::Tensor& t) {
    note_progress("sampling");  // every network evaluation: the watchdog's progress
    models::Condition cond = all;
    cond.noise_level = cb.noise_level(t).to(m.device);
    torch_compat::AutocastScope autocast(m.device.type(), m.bf16);
    return m.model->forward(x, m.process->model_time(t).to(m.device, torch::kFloat32), cond).to(torch::kFloat32);
  };
  diffusion::Denoiser denoiser = net;
  if (guided && ramped) {
    auto scale = diffusion::power_cosine_scale(s.cfg, recipe.cfg_power, m.process->timesteps());
    denoiser =
        two_scale ? diffusion::guided_denoiser(net, scale, s.cfg_control) : diffusion::guided_denoiser(net, scale);
  } else if (guided && two_scale) {
    denoiser = diffusion::guided_denoiser(net, s.cfg, s.cfg_control);
  } else if (guided) {
    denoiser = diffusion::guided_denoiser(net, s.cfg);
  }
  diffusion::validate_sampler(*m.process, s.sampler);
  return diffusion::sample(*m.process, m.objective, denoiser, x_T.to(m.device, torch::kFloat32).contiguous(), s.sampler,
                           &sampler_gen)
      .cpu();
}

torch::Tensor sample_latents(const SamplingModel& m, const SampleRequest& r) {
  const ConditionInputs in{r.labels, r.captions, r.controls, {}};
  const int64_t n = in.size();
  if (n == 0) throw Error("sampling: no samples requested");
  std::vector<torch::Tensor> noise;
  for (int64_t i = 0; i < n; ++i) {
    auto g = at::detail::createCPUGenerator(derive_seed(r.seed, Purpose::SampleNoise, static_cast<uint64_t>(i)));
    noise.push_back(torch::randn({m.latent_channels, m.latent_side, m.latent_side}, g));
  }
  auto pad_gen = at::detail::createCPUGenerator(derive_seed(r.seed, Purpose::PaddingNoise));
  auto gen = at::detail::createCPUGenerator(derive_seed(r.seed, Purpose::Sampler));
  return sample_from_noise(m, in, torch::stack(noise), GuidedSampling{r.sampler, r.cfg, r.cfg_control, false}, gen,
                           pad_gen);
}

ControlMeta parse_control_meta(const std::string& text, int64_t resolution) {
  ControlMeta c;
  c.orig_h = c.orig_w = c.crop_h = c.crop_w = static_cast<int32_t>(resolution);
  const std::map<std::string, int32_t*> fields = {{"orig_h", &c.orig_h},     {"orig_w", &c.orig_w},
                                                  {"crop_top", &c.crop_top}, {"crop_left", &c.crop_left},
                                                  {"crop_h", &c.crop_h},     {"crop_w", &c.crop_w}};
  for (const std::string& item : split(text, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw Error("--controls: '" + item + "' is not KEY=VALUE");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end || errno == ERANGE || v < INT32_MIN || v > INT32_MAX)
      throw Error("--controls " + key + ": '" + value + "' is not an integer");
    if (key == "flip") {
      c.flip = v != 0;
      continue;
    }
    const auto it = fields.find(key);
    if (it == fields.end()) {
      std::vector<std::string> keys = {"flip"};
      for (const auto& f : fields) keys.push_back(f.first);
      throw Error("--controls: unknown key '" + key + "'" + did_you_mean(key, keys));
    }
    *it->second = static_cast<int32_t>(v);
  }
  return c;
}

torch::Tensor decode_latents(const SamplingModel& m, const torch::Tensor& latents) {
  torch::NoGradGuard no_grad;
  return m.autoencoder->decode(latents).clamp(-1.0, 1.0);
}

void write_image_grid(const torch::Tensor& images, const std::string& path, int64_t columns) {
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3), gap = 2;
  columns = std::max<int64_t>(1, std::min(columns, n));
  const int64_t rows = (n + columns - 1) / columns;
  const int64_t gh = rows * h + (rows + 1) * gap, gw = columns * w + (columns + 1) * gap;
  // [N,3,H,W] in [-1,1] -> [N,H,W,3] u8
  auto u8 = images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  auto grid = torch::full({gh, gw, 3}, 255, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / columns, c = i % columns;
    grid.narrow(0, gap + r * (h + gap), h).narrow(1, gap + c * (w + gap), w).copy_(u8[i]);
  }
  data::write_png(path, grid.data_ptr<uint8_t>(), static_cast<int>(gh), static_cast<int>(gw));
}

}  // namespace ldm::worker
