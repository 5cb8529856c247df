#include "worker/train/step_dump.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec_json.h"

namespace ldm::worker {

std::unique_ptr<StepDump> StepDump::from_environment(int rank, int world) {
  const char* v = std::getenv("LDM_DUMP_STEPS");
  if (v == nullptr || *v == '\0') return nullptr;
  std::string dir = v;
  int64_t steps = 50;
  if (const auto colon = dir.rfind(':'); colon != std::string::npos) {
    const std::string n = dir.substr(colon + 1);
    char* end = nullptr;
    steps = std::strtoll(n.c_str(), &end, 10);
    if (n.empty() || *end != '\0' || steps < 1)
      throw Error("LDM_DUMP_STEPS=\"" + std::string(v) + "\": expected DIR or DIR:N with N >= 1 steps");
    dir = dir.substr(0, colon);
  }
  if (world > 1) dir += "/rank-" + std::to_string(rank);
  return std::make_unique<StepDump>(dir, steps);
}

StepDump::StepDump(std::string dir, int64_t steps) : dir_(std::move(dir)), steps_(steps) { make_dirs(dir_); }

void StepDump::begin(const ExperimentSpec& spec, const StageSpec& stage, const models::ModelGeometry& geometry,
                     int64_t first_step, const TensorMap& weights) {
  first_ = first_step;
  const RecipeSpec& r = spec.recipe;
  const PresetInfo& p = recipe_preset(r.family, r.preset);
  const nlohmann::json meta = {{"family", r.family},
                               {"preset", r.preset},
                               {"width", p.width},
                               {"depth", p.depth},
                               {"heads", p.heads},
                               {"patch", p.patch},
                               {"mlp_ratio", p.mlp_ratio},
                               {"in_channels", geometry.in_channels},
                               {"latent_h", geometry.latent_h},
                               {"latent_w", geometry.latent_w},
                               {"num_classes", geometry.num_classes},
                               {"learn_sigma", r.learn_sigma},
                               {"controls", choice_name(r.conditioning.controls)},
                               {"process", choice_name(r.diffusion.process)},
                               {"objective", choice_name(r.diffusion.objective)},
                               {"timesteps", r.diffusion.timesteps},
                               {"beta_start", r.diffusion.beta_start},
                               {"beta_end", r.diffusion.beta_end},
                               {"vlb_weight", r.diffusion.vlb_weight},
                               {"optimizer",
                                {{"name", choice_name(r.optimizer.name)},
                                 {"beta1", r.optimizer.beta1},
                                 {"beta2", r.optimizer.beta2},
                                 {"eps", r.optimizer.eps},
                                 {"weight_decay", r.optimizer.weight_decay}}},
                               {"grad_clip", r.optimizer.grad_clip},
                               {"ema_decay", r.ema.decay},
                               {"ema_warmup", r.ema.warmup},
                               {"grad_accumulation", stage.grad_accumulation},
                               {"first_step", first_step},
                               {"steps", steps_},
                               {"hardware", spec_to_json(spec).value("hardware", nlohmann::json::object())}};
  write_file_atomic(dir_ + "/meta.json", meta.dump(2) + "\n");
  TensorMap host;
  for (const auto& [name, t] : weights) host[name] = t.detach().to(torch::kCPU).contiguous();
  write_file_atomic(dir_ + "/init.safetensors", safetensors_encode(host));
  std::ofstream(dir_ + "/losses.jsonl", std::ios::trunc);
}

void StepDump::inputs(int64_t step, const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise,
                      const models::Condition& cond, double lr) {
  TensorMap m = {{"x0", x0.to(torch::kCPU).contiguous()},
                 {"t", t.to(torch::kCPU, torch::kFloat64).contiguous()},
                 {"noise", noise.to(torch::kCPU).contiguous()},
                 {"lr", torch::full({1}, lr, torch::kFloat64)}};
  if (cond.labels.defined()) m["labels"] = cond.labels.to(torch::kCPU).contiguous();
  char name[40];
  std::snprintf(name, sizeof name, "/step-%06lld.safetensors", static_cast<long long>(step));
  write_file_atomic(dir_ + name, safetensors_encode(m));
}

void StepDump::outcome(int64_t step, double loss, double grad_norm, double lr) {
  std::ofstream(dir_ + "/losses.jsonl", std::ios::app)
      << nlohmann::json{{"step", step}, {"loss", loss}, {"grad_norm", grad_norm}, {"lr", lr}}.dump() << "\n";
}

}  // namespace ldm::worker
