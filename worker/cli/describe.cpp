// `ldm-worker describe FAMILY`: build a model, count its parameters against its recipe card (and
// the published count), and list the family's recipe defaults with their sources.
#include <torch/torch.h>

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "worker/cli/commands.h"
#include "worker/models/conditioning.h"
#include "worker/models/denoiser.h"
#include "worker/torch_compat.h"

// tcmalloc's live-byte count where the program links it (ldm-worker does when it was found); glibc's
// mallinfo2 otherwise.
extern "C" int MallocExtension_GetNumericProperty(const char* property, size_t* value) __attribute__((weak));

namespace ldm::worker {
namespace {

// Bytes the process's heap holds live now.
double live_heap_bytes() {
  size_t value = 0;
  if (MallocExtension_GetNumericProperty &&
      MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &value))
    return double(value);
  const struct mallinfo2 m = ::mallinfo2();
  return double(m.uordblks + m.hblkhd);
}

struct MemoryEstimate {
  double state_bytes = 0;       // weights, gradients, optimiser moments, EMA, bf16 weight copies
  double activation_bytes = 0;  // per sample, kept from forward for backward
  double total(int64_t batch) const { return state_bytes + activation_bytes * double(batch) * 1.1; }
  int64_t largest_batch(double bytes) const {
    return activation_bytes > 0 ? std::max<int64_t>(0, int64_t((bytes - state_bytes) / (activation_bytes * 1.1))) : 0;
  }
};

// Training memory of `model` on one GPU: 22 bytes per trainable parameter (fp32 weights 4, gradients
// 4, AdamW's two moments 8, EMA 4, autocast's bf16 copies 2) and the activations one sample keeps for
// backward, measured here: a training forward at batch `probe` on the CPU under bf16 autocast (the
// heap's live bytes after it, less before it), divided by `probe`. total = state + 1.1 × batch ×
// activations (the 10% for backward's transient tensors is ours). The CPU runs the explicit
// attention form, which keeps the T×T scores a GPU's fused kernel does not: an upper bound there.
// The heap bytes a training forward at batch `n` leaves live for backward (its outputs excluded).
double forward_live_bytes(models::Denoiser& model, const models::ModelGeometry& g, bool controls, int64_t n) {
  auto gen = at::detail::createCPUGenerator(1);
  auto x = torch::randn({n, g.in_channels, g.latent_h, g.latent_w}, gen);
  auto t = torch::full({n}, 500.0f);
  models::Condition cond;
  if (g.num_classes > 0) cond.labels = torch::zeros({n}, torch::kInt64);
  if (g.text_channels > 0) {
    cond.tokens = torch::randn({n, g.text_tokens, g.text_channels}, gen);
    cond.token_mask = torch::ones({n, g.text_tokens}, torch::kBool);
    cond.pooled = torch::randn({n, g.text_channels}, gen);
  }
  if (controls) {
    cond.controls = torch::full({n, models::kControlColumns}, 256.0f);
    cond.control_drop = torch::zeros({n}, torch::kBool);
    cond.noise_level = torch::full({n}, 0.5f);
  }
  torch::AutoGradMode grad(true);
  const double before = live_heap_bytes();
  std::vector<torch::Tensor> outs;
  {
    torch_compat::AutocastScope autocast(c10::DeviceType::CPU, true);
    outs = model.training_outputs(x, t, cond, gen);
  }
  double after = live_heap_bytes();
  for (const auto& o : outs) after -= double(o.numel() * o.element_size());
  return after - before;
}

// Training memory on one GPU: 22 bytes per trainable parameter (fp32 weights 4, gradients 4, AdamW's
// two moments 8, EMA 4, autocast's bf16 copies 2, which the autograd graph holds through backward) and
// the activations one sample keeps for backward, measured here on the CPU under bf16 autocast: the
// live heap after a training forward at batch 2p less at batch p, over p, after a first forward (the
// difference leaves out what does not grow with the batch, the bf16 weight copies first). total = state + 1.1 × batch ×
// activations (the 10% for backward's transient tensors is ours). The CPU runs the explicit attention
// form, which keeps the T×T scores a GPU's fused kernel does not: an upper bound there.
MemoryEstimate estimate_memory(models::Denoiser& model, const models::ModelGeometry& g, bool controls,
                               int64_t trainable, int64_t probe) {
  MemoryEstimate e;
  e.state_bytes = 22.0 * double(trainable);
  model.train();
  // Warm-ups at both sizes: what a first call at a shape caches (LibTorch's per-shape state) is no activation.
  forward_live_bytes(model, g, controls, probe);
  forward_live_bytes(model, g, controls, 2 * probe);
  const double one = forward_live_bytes(model, g, controls, probe);
  const double two = forward_live_bytes(model, g, controls, 2 * probe);
  e.activation_bytes = std::max(0.0, two - one) / double(probe);
  return e;
}

// --memory: the estimate against --batch and --gpu-memory, as JSON and as the text block.
struct MemoryReport {
  MemoryEstimate e;
  int64_t batch = 32;
  double gpu_gib = 80;
  static constexpr double kGiB = double(1u << 30);
  bool fits() const { return e.total(batch) <= gpu_gib * kGiB; }
  nlohmann::json json() const {
    return {{"state_gib", e.state_bytes / kGiB},
            {"activations_gib_per_sample", e.activation_bytes / kGiB},
            {"batch", batch},
            {"total_gib", e.total(batch) / kGiB},
            {"gpu_memory_gib", gpu_gib},
            {"fits", fits()},
            {"largest_batch", e.largest_batch(gpu_gib * kGiB)}};
  }
  void print() const {
    std::printf(
        "  memory      training state %.2f GiB (22 B per trainable parameter: fp32 weights, gradients,\n"
        "              AdamW moments, EMA, bf16 copies) + activations %.3f GiB per sample (bf16 autocast,\n"
        "              measured on the CPU; an upper bound where the GPU runs fused attention)\n",
        e.state_bytes / kGiB, e.activation_bytes / kGiB);
    std::printf("              batch %lld per GPU: %.1f GiB -> %s in %.0f GiB; at most batch %lld there\n",
                (long long)batch, e.total(batch) / kGiB, fits() ? "fits" : "does NOT fit", gpu_gib,
                (long long)e.largest_batch(gpu_gib * kGiB));
  }
};

void print_defaults(const RecipeCard& card, const std::vector<DefaultOrigin>& origins) {
  std::printf("\n%s recipe defaults (a file's keys override them; `ldm-coord show FILE` prints one resolved):\n",
              card.title.c_str());
  std::size_t width = 0;
  for (const DefaultOrigin& o : origins) width = std::max(width, o.key.size() + 2 + o.value.dump().size());
  for (const DefaultOrigin& o : origins) {
    const std::string kv = o.key + "  " + o.value.dump();
    std::printf("  %-*s  %s\n", int(width), kv.c_str(), o.source.c_str());
  }
}

int cmd_describe(const cli::Args& a) {
  RecipeSpec recipe;
  recipe.family = a.positional.at(0);
  const RecipeCard* card = nullptr;
  const PresetInfo* found = nullptr;
  try {  // a name typed on the command line: a usage error that lists what exists
    card = &recipe_card(recipe.family);
    recipe.preset = a.text("preset", card->default_preset);
    found = &recipe_preset(recipe.family, recipe.preset);
  } catch (const SpecError& e) {
    throw cli::UsageError(e.detail());
  }
  const PresetInfo& preset = *found;
  if (a.has("learn-sigma") && a.has("no-learn-sigma"))
    throw cli::UsageError("--learn-sigma and --no-learn-sigma contradict each other");
  recipe.learn_sigma = recipe_defaults(recipe.family).learn_sigma;  // the family's published default
  if (a.has("learn-sigma")) recipe.learn_sigma = true;
  if (a.has("no-learn-sigma")) recipe.learn_sigma = false;
  recipe.conditioning.controls = a.choice("controls", ControlMode::None);
  const int64_t resolution = a.integer("resolution", 256);
  const int64_t factor = a.integer("factor", 8);
  const int64_t in_channels = a.integer("in-channels", 4);
  const std::string task = a.text("task", "class");
  const int64_t classes = task == "class" ? a.integer("classes", 1000) : 0;
  const int64_t text_dim = a.integer("text-dim", 4096);
  const int64_t text_tokens = a.integer("text-tokens", 120);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(0);
  models::ModelGeometry g{in_channels, resolution / factor, resolution / factor, classes};
  if (task == "text") {
    g.text_channels = text_dim;
    g.text_tokens = text_tokens;
  }
  auto model = models::build_denoiser(recipe, g, gen);
  int64_t params = 0, trainable = 0;
  for (const auto& p : model->parameters()) {
    params += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  const ModelShape shape = models::model_shape(g, recipe);
  const int64_t analytic = card->param_count(preset, shape);
  const double gflops = card->gflops(preset, shape);
  const std::vector<DefaultOrigin> origins = recipe_default_origins(*card);
  std::optional<MemoryReport> memory;
  if (a.has("memory"))
    memory = MemoryReport{estimate_memory(*model, g, recipe.conditioning.controls != ControlMode::None, trainable,
                                          a.integer("probe-batch", 1)),
                          a.integer("batch", 32), a.number("gpu-memory", 80.0)};
  if (a.has("json")) {
    nlohmann::json defaults = nlohmann::json::array();
    for (const DefaultOrigin& o : origins)
      defaults.push_back({{"key", o.key}, {"value", o.value}, {"source", o.source}, {"from_card", o.from_card}});
    nlohmann::json out{{"family", recipe.family},
                       {"preset", recipe.preset},
                       {"preset_source", preset.source},
                       {"task", task},
                       {"controls", choice_name(recipe.conditioning.controls)},
                       {"learn_sigma", recipe.learn_sigma},
                       {"resolution", resolution},
                       {"latent", {in_channels, resolution / factor, resolution / factor}},
                       {"parameters", params},
                       {"trainable", trainable},
                       {"analytic_parameters", analytic},
                       {"gflops", gflops},
                       {"defaults", defaults}};
    if (memory) out["memory"] = memory->json();
    if (preset.published_params_m > 0)
      out["published"] = {{"parameters_m", preset.published_params_m},
                          {"rounding_m", preset.published_rounding_m},
                          {"source", preset.published_source}};
    std::cout << out.dump(2) << "\n";
  } else {
    const std::string cond = task == "class"
                                 ? std::to_string(classes) + " classes"
                                 : "captions " + std::to_string(text_tokens) + "x" + std::to_string(text_dim);
    std::printf("%s %s at %lldpx (latent %lldx%lldx%lld, %s, controls %s)\n", recipe.family.c_str(),
                recipe.preset.c_str(), (long long)resolution, (long long)in_channels, (long long)(resolution / factor),
                (long long)(resolution / factor), cond.c_str(), choice_name(recipe.conditioning.controls));
    std::printf("  parameters  %lld (trainable %lld; analytic %lld)\n", (long long)params, (long long)trainable,
                (long long)analytic);
    if (preset.published_params_m > 0)
      std::printf("  published   %gM (%s)\n", preset.published_params_m, preset.published_source.c_str());
    std::printf("  forward     %.4g GFLOPs per sample (multiply-add = 1 FLOP)\n", gflops);
    std::printf("  sizes from  %s\n", preset.source.c_str());
    if (memory) memory->print();
    print_defaults(*card, origins);
  }
  if (params != analytic) {
    std::cerr << "ldm-worker: error: built module has " << params << " parameters but the analytic count is "
              << analytic << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

cli::Command describe_command() {
  const cli::Option controls = cli::choice<ControlMode>("controls", "control conditioning of the model (default none)");
  return {"describe",
          {"FAMILY"},
          "Build a model and print its parameter count (checked against the analytic count and, where the preset "
          "has one, the published figure), its forward GFLOPs, and the family's recipe defaults with the paper "
          "section or reference file each comes from.",
          {cli::text("preset", "P", "size preset (default: the family's own, see `ldm-coord presets`)"),
           cli::integer("resolution", "R", "image side in pixels (default 256)", 1, 65536),
           cli::integer("factor", "F", "autoencoder down-sampling factor (default 8)", 1, 64),
           cli::integer("in-channels", "C", "latent channels (default 4)", 1, 4096),
           cli::integer("classes", "N", "class task: number of classes (default 1000)", 1, 1000000),
           cli::choice("task", {"class", "text"}, "class-conditional or text-to-image (default class)"),
           cli::integer("text-dim", "D", "text task: token feature width (default 4096)", 1, 65536),
           cli::integer("text-tokens", "L", "text task: token slots (default 120)", 1, 4096), controls,
           cli::flag("learn-sigma", "learned-variance output channels (default: the family's recipe)"),
           cli::flag("no-learn-sigma", "no learned-variance output channels"),
           cli::flag("memory",
                     "estimate training memory on one GPU (AdamW, EMA, bf16 autocast): the state from the parameter "
                     "count, the activations measured by one forward on the CPU at this resolution"),
           cli::integer("batch", "B", "--memory: samples per GPU (default 32)", 1, 1 << 20),
           cli::number("gpu-memory", "GIB", "--memory: the GPU's memory (default 80; an H200 has 141)", 0.001, 1e6),
           cli::integer("probe-batch", "B", "--memory: samples in the measuring forward (default 1)", 1, 1024),
           cli::flag("json", "print JSON")},
          cmd_describe};
}

}  // namespace ldm::worker
