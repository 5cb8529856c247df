// Training throughput of one rank on its device, through the trainer's own step (worker/train/step.h:
// forward under bf16 autocast, diffusion loss, backward into the flat buffers; then the optimiser and
// the EMA), on batches already on the device (the loader is measured by bench_data). Prints figures
// and writes them as JSON; asserts nothing about speed.
//
//   build/bin/bench_train_device [--family dit] [--preset XL/2] [--latent 32] [--batch 256] [--steps 20]
//                                [--warmup 3] [--precision bf16] [--out FILE.json] [--dump DIR]
//
// Defaults: DiT-XL/2 at 256² (4×32×32 latents, ε with learned sigma and the hybrid loss, AdamW, EMA,
// bf16) at batch 256, on a CUDA GPU when LibTorch sees one, else the CPU (give a small preset there).
//
// MFU. The DiT paper counts 118.6 "GFLOPs" for a forward of DiT-XL/2 at 256², one multiply-add
// counted once; a training image costs forward + backward ≈ 3 forwards, so
//   FLOP per training image = 3 × 2 × G,   G = the card's analytic forward GFLOPs (118.6 for XL/2),
//   MFU = images/s × 6 G × 1e9 / peak.
// Two peaks: 989 TFLOP/s (dense bf16 of an H100/H200 SXM, NVIDIA's datasheet) and a bf16 matrix
// product measured in the same run (8192³ on a GPU, 1024³ on the CPU).
//
// --dump DIR writes the initial weights, every step's inputs and our losses in the format of
// LDM_DUMP_STEPS (worker/train/step_dump.h), for tests/bench/train_step_reference.py to train PyTorch's
// DiT on the same work and time it (eager and torch.compile): cluster/gpu-check.sh runs both.
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#if LDM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "shared/core/cli.h"
#include "shared/core/recipes/card.h"
#include "shared/core/spec.h"
#include "worker/diffusion/setup.h"
#include "worker/hardware.h"
#include "worker/torch_compat.h"
#include "worker/train/condition_builder.h"
#include "worker/train/state.h"
#include "worker/train/step.h"
#include "worker/train/step_dump.h"

using namespace ldm;
using namespace ldm::worker;

namespace {

constexpr double kH200DenseBf16 = 989e12;  // FLOP/s, H100/H200 SXM dense bf16

struct Options {
  std::string family = "dit", preset = "XL/2", precision = "bf16", out, dump;
  int64_t latent = 32, batch = 256, steps = 20, warmup = 3, threads = 0;
};

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// FLOP/s of a bf16 n×n×n matrix product on `d` (mean of 10 after 3 warm-ups).
double measured_bf16_matmul(const torch::Device& d) {
  const int64_t n = d.is_cuda() ? 8192 : 1024;
  auto a = torch::randn({n, n}, torch::TensorOptions().device(d).dtype(torch::kBFloat16));
  auto b = torch::randn({n, n}, torch::TensorOptions().device(d).dtype(torch::kBFloat16));
  for (int i = 0; i < 3; ++i) a.mm(b);
  sync(d);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) a.mm(b);
  sync(d);
  return 10.0 * 2.0 * double(n) * n * n / seconds_since(t0);
}

bool out_of_memory(const std::exception& e) { return std::string(e.what()).find("out of memory") != std::string::npos; }

int run(const Options& o) {
  if (o.threads > 0) at::set_num_threads(static_cast<int>(o.threads));
  ExperimentSpec spec;
  spec.name = "bench";
  spec.seed = 1;
  spec.dataset.classes = 1000;
  spec.recipe = recipe_defaults(o.family);
  spec.recipe.preset = o.preset;
  spec.hardware.precision = o.precision;
  spec.stages.emplace_back();
  spec.stages[0].batch_size = o.batch;
  validate(spec);
  const Hardware hw = resolve_hardware(spec.hardware);
  apply_numerics(hw);
  const ConditionBuilder conditions(spec, 1.0);
  const models::ModelGeometry geometry = conditions.geometry(4, o.latent, o.latent);
  const double gflops = analytic_gflops(recipe_preset(spec.recipe.family, spec.recipe.preset),
                                        models::model_shape(geometry, spec.recipe));
  std::printf("%s %s, latent 4x%lldx%lld, batch %lld, %s; LibTorch %s; analytic forward %.4g GFLOP/image\n",
              o.family.c_str(), o.preset.c_str(), (long long)o.latent, (long long)o.latent, (long long)o.batch,
              hw.summary().c_str(), torch_compat::libtorch_version().c_str(), gflops);
  std::fflush(stdout);

  TrainingState state(spec, geometry, 0, hw.device);
  std::unique_ptr<StepDump> dump;
  if (!o.dump.empty()) {
    // The warm-up steps only (the timed ones write nothing); every step trains on the same batch,
    // so the reference repeats them for its own timing (--repeat).
    dump = std::make_unique<StepDump>(o.dump, o.warmup);
    dump->begin(spec, spec.stages[0], geometry, 1, model_state(state.model()));
  }
  const auto process = make_process(spec, spec.stages[0]);
  const auto loss = loss_options(spec.recipe);
  // One batch on the device, drawn on the host (labels, t, noise as the trainer draws them).
  auto g = at::detail::createCPUGenerator(7);
  ConditionInputs in;
  for (int64_t i = 0; i < o.batch; ++i) in.labels.push_back(i % spec.dataset.classes);
  StepInputs batch;
  batch.latents = torch::randn({o.batch, 4, o.latent, o.latent}, g).to(hw.device);
  batch.noise = torch::randn({o.batch, 4, o.latent, o.latent}, g).to(hw.device);
  batch.t = process->sample_training_t(o.batch, g);
  batch.cond = conditions.training(in, batch.t, {&g, &g, &g}).to(hw.device);

  // Micro-batches: the whole batch at once, halved on out-of-memory (the global batch stays).
  int64_t micro = 1;
  double first_loss = 0, last_loss = 0;
  auto step = [&](int64_t s) {
    if (dump && dump->wants(s)) dump->inputs(s, batch.latents, batch.t, batch.noise, batch.cond, 1e-4);
    last_loss = forward_backward(state, *process, loss, hw, batch, micro);
    state.optimizer().step(1e-4);
    state.ema().update(s);
    if (dump && dump->wants(s)) dump->outcome(s, last_loss, 0.0, 1e-4);
  };
  for (;;) {
    try {
      step(1);
      first_loss = last_loss;
      break;
    } catch (const std::exception& e) {
      if (!out_of_memory(e) || micro >= o.batch) throw;
      micro *= 2;
#if LDM_WITH_CUDA
      if (hw.device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
      std::printf("out of memory: %lld micro-batches of %lld\n", (long long)micro, (long long)(o.batch / micro));
    }
  }
  for (int64_t s = 2; s <= o.warmup; ++s) step(s);
  sync(hw.device);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < o.steps; ++s) step(o.warmup + 1 + s);
  sync(hw.device);
  const double elapsed = seconds_since(t0);
  const double images_per_s = double(o.steps * o.batch) / elapsed;
  const double flop_per_image = 3.0 * 2.0 * gflops * 1e9;
  const double achieved = images_per_s * flop_per_image;
  // Where a step's time goes: a few more steps with the device synchronised at each phase boundary
  // (so the phases are device times; these steps are not in the figures above).
  StepTimes phases;
  phases.sync_device = true;
  double update_s = 0;
  const int64_t profiled = std::min<int64_t>(3, o.steps);
  for (int64_t s = 0; s < profiled; ++s) {
    forward_backward(state, *process, loss, hw, batch, micro, {}, &phases);
    const auto u0 = std::chrono::steady_clock::now();
    state.optimizer().step(1e-4);
    state.ema().update(o.warmup + o.steps + 1 + s);
    sync(hw.device);
    update_s += seconds_since(u0);
  }
  const double forward_s = phases.forward_s / double(profiled), backward_s = phases.backward_s / double(profiled);
  update_s /= double(profiled);
  const double matmul = measured_bf16_matmul(hw.device);
  double peak_mem_gib = 0;
#if LDM_WITH_CUDA
  if (hw.device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(hw.device.index());
    peak_mem_gib = double(stats.allocated_bytes[0].peak) / double(1u << 30);  // [0]: all pools
  }
#endif
  std::printf("%lld steps in %.3f s: %.1f images/s, %.3f s/step, %lld micro-batch(es); loss %.4f -> %.4f\n",
              (long long)o.steps, elapsed, images_per_s, elapsed / double(o.steps), (long long)micro, first_loss,
              last_loss);
  std::printf("achieved %.1f TFLOP/s (6 x %.4g GFLOP per image); bf16 matmul measured %.1f TFLOP/s\n", achieved / 1e12,
              gflops, matmul / 1e12);
  std::printf("MFU %.1f%% of 989 TFLOP/s (H100/H200 SXM dense bf16), %.1f%% of the measured matmul\n",
              100.0 * achieved / kH200DenseBf16, 100.0 * achieved / matmul);
  std::printf("per step (synchronised): forward + loss %.4f s, backward %.4f s, optimiser + EMA %.4f s\n", forward_s,
              backward_s, update_s);
  if (peak_mem_gib > 0) std::printf("peak GPU memory allocated: %.1f GiB\n", peak_mem_gib);
  if (!o.out.empty()) {
    nlohmann::json j = {{"family", o.family},
                        {"preset", o.preset},
                        {"latent", {4, o.latent, o.latent}},
                        {"batch", o.batch},
                        {"micro_batches", micro},
                        {"steps", o.steps},
                        {"warmup", o.warmup},
                        {"hardware", hw.summary()},
                        {"libtorch", torch_compat::libtorch_version()},
                        {"fused_attention", torch_compat::has_fused_attention()},
                        {"fused_adamw", torch_compat::has_fused_adamw(hw.device)},
                        {"seconds", elapsed},
                        {"images_per_s", images_per_s},
                        {"analytic_forward_gflops", gflops},
                        {"flop_per_image", flop_per_image},
                        {"achieved_tflops", achieved / 1e12},
                        {"matmul_bf16_tflops", matmul / 1e12},
                        {"mfu_vs_989", achieved / kH200DenseBf16},
                        {"mfu_vs_matmul", achieved / matmul},
                        {"peak_gpu_mem_gib", peak_mem_gib},
                        {"phase_s", {{"forward", forward_s}, {"backward", backward_s}, {"optimizer_ema", update_s}}},
                        {"fused_adamw_used", dynamic_cast<FlatAdamW*>(&state.optimizer()) &&
                                                 dynamic_cast<FlatAdamW*>(&state.optimizer())->fused()},
                        {"loss_first", first_loss},
                        {"loss_last", last_loss}};
    std::ofstream(o.out) << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ldm::cli;
  const Program program{
      "bench_train_device",
      "",
      {{"",
        {},
        "Training images/s and MFU of one rank on its device (DiT-XL/2 at 256² by default; prints figures).",
        {text("family", "F", "recipe family (default dit)"), text("preset", "P", "preset (default XL/2)"),
         integer("latent", "S", "latent side (default 32: 256² through an f=8 VAE)", 1, 1024),
         integer("batch", "B", "global batch of the one rank (default 256)", 1, 1 << 20),
         integer("steps", "N", "measured steps (default 20)", 1, 1 << 20),
         integer("warmup", "W", "steps before measuring (default 3)", 1, 1 << 20),
         integer("threads", "T", "CPU intra-op threads (default LibTorch's)", 1, 1024),
         text("precision", "P", "[hardware] precision: bf16 (default), fp32, auto"),
         text("out", "FILE", "also write the figures as JSON"),
         text("dump", "DIR", "write weights, inputs and losses for tests/bench/train_step_reference.py")},
        [](const Args& a) {
          Options o;
          o.family = a.text("family", o.family);
          o.preset = a.text("preset", o.preset);
          o.precision = a.text("precision", o.precision);
          o.out = a.text("out");
          o.dump = a.text("dump");
          o.latent = a.integer("latent", o.latent);
          o.batch = a.integer("batch", o.batch);
          o.steps = a.integer("steps", o.steps);
          o.warmup = a.integer("warmup", o.warmup);
          o.threads = a.integer("threads", 0);
          return run(o);
        }}}};
  return ldm::cli::run(program, argc, argv, ldm::torch_compat::error_text);
}
