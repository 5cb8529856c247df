// The GPU path (issue 26). Every case runs on a CUDA GPU when LibTorch sees one and is skipped with a
// message otherwise; LDM_GPU_TESTS_ON_CPU=1 runs them on the CPU instead (bf16 autocast there), which
// is how cluster/gpu-check.sh is rehearsed on a machine without a GPU. Run by `build/bin/test_gpu`.
#include <torch/cuda.h>
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shared/core/ids.h"
#include "shared/core/spec.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/diffusion/sampling.h"
#include "worker/diffusion/setup.h"
#include "worker/hardware.h"
#include "worker/io/checkpoint.h"
#include "worker/torch_compat.h"
#include "worker/train/condition_builder.h"
#include "worker/train/state.h"
#include "worker/train/step.h"
#include "worker/train/trainer.h"

using namespace ldm;
using namespace ldm::worker;
using ldm::testing::TempDir;

namespace gpu_test {

// The device the cases run on: a CUDA GPU, or the CPU under LDM_GPU_TESTS_ON_CPU=1; nullopt: skip.
bool on_cpu_rehearsal() {
  const char* v = std::getenv("LDM_GPU_TESTS_ON_CPU");
  return v && std::strcmp(v, "1") == 0;
}
bool have_device() { return torch::cuda::is_available() || on_cpu_rehearsal(); }
std::string device_name() { return torch::cuda::is_available() ? "cuda" : "cpu"; }

#define LDM_GPU_OR_SKIP()                                                                                      \
  if (!gpu_test::have_device()) {                                                                              \
    MESSAGE("skipped: LibTorch " << ldm::torch_compat::libtorch_version()                                      \
                                 << " sees no CUDA GPU (LDM_GPU_TESTS_ON_CPU=1 runs these cases on the CPU)"); \
    return;                                                                                                    \
  }

constexpr int64_t kLatentChannels = 4, kSide = 8, kBatch = 8;

std::string preset_of(const std::string& family) { return family == "unet" ? "tiny" : "tiny/2"; }

ExperimentSpec spec_for(const std::string& family, const std::string& device, const std::string& precision) {
  ExperimentSpec s;
  s.name = "gpu-" + family;
  s.seed = 11;
  s.dataset.records = 64;
  s.dataset.classes = 4;
  s.dataset.shard_records = 64;
  s.recipe = recipe_defaults(family);
  s.recipe.preset = preset_of(family);
  s.hardware.device = device;
  s.hardware.precision = precision;
  s.stages.emplace_back();
  s.stages[0].resolution = 16;
  s.stages[0].steps = 20;
  s.stages[0].batch_size = kBatch;
  s.stages[0].lr = 1e-3;
  s.stages[0].log_every = 1000;
  validate(s);
  return s;
}

// A model with its process, loss and conditions, and one fixed batch (latents, t, noise, condition)
// drawn from `seed` on the host, so two rigs on two devices see the same numbers.
struct Rig {
  ExperimentSpec spec;
  Hardware hw;
  ConditionBuilder conditions;
  TrainingState state;
  std::unique_ptr<diffusion::NoiseProcess> process;
  diffusion::LossOptions loss;
  StepInputs batch;

  Rig(const ExperimentSpec& s, uint64_t seed)
      : spec(s),
        hw(resolve_hardware(s.hardware)),
        conditions(s, 1.0),
        state(s, conditions.geometry(kLatentChannels, kSide, kSide), 0, hw.device),
        process(make_process(s, s.stages[0])),
        loss(loss_options(s.recipe)) {
    auto g = at::detail::createCPUGenerator(seed);
    ConditionInputs in;
    for (int64_t i = 0; i < kBatch; ++i) in.labels.push_back(i % s.dataset.classes);
    if (conditions.uses_controls()) {
      ControlMeta meta;
      meta.orig_h = meta.orig_w = meta.crop_h = meta.crop_w = 16;
      in.controls.assign(kBatch, meta);
    }
    batch.latents = torch::randn({kBatch, kLatentChannels, kSide, kSide}, g);
    batch.noise = torch::randn({kBatch, kLatentChannels, kSide, kSide}, g);
    batch.t = process->sample_training_t(kBatch, g);
    batch.cond = conditions.training(in, batch.t, {&g, &g, &g});
  }
  double step(double lr, int64_t step_index) {
    const double l = forward_backward(state, *process, loss, hw, batch, 1);
    state.optimizer().step(lr);
    state.ema().update(step_index);
    return l;
  }
};

// The flat gradient buffers, concatenated, on the host in float64.
torch::Tensor host_grads(TrainingState& s) {
  std::vector<torch::Tensor> parts;
  for (const auto& b : s.flat().buckets()) parts.push_back(b.grads.to(torch::kCPU, torch::kFloat64));
  return torch::cat(parts);
}

}  // namespace gpu_test
using namespace gpu_test;

TEST_CASE("a DiT step on the device (bf16, TF32) matches the CPU fp32 step from the same weights and batch") {
  LDM_GPU_OR_SKIP();
  Rig device(spec_for("dit", device_name(), "bf16"), 3);
  Rig cpu(spec_for("dit", "cpu", "fp32"), 3);
  REQUIRE(device.state.param_checksum() == cpu.state.param_checksum());  // the same initial weights
  const double ld = forward_backward(device.state, *device.process, device.loss, device.hw, device.batch, 1);
  const double lc = forward_backward(cpu.state, *cpu.process, cpu.loss, cpu.hw, cpu.batch, 1);
  CAPTURE(ld);
  CAPTURE(lc);
  CHECK(std::isfinite(ld));
  CHECK(std::abs(ld - lc) < 0.03 * std::abs(lc));
  const auto gd = host_grads(device.state), gc = host_grads(cpu.state);
  const double cosine = (gd * gc).sum().item<double>() / (gd.norm().item<double>() * gc.norm().item<double>());
  const double norm_ratio = gd.norm().item<double>() / gc.norm().item<double>();
  CAPTURE(cosine);
  CAPTURE(norm_ratio);
  CHECK(cosine > 0.98);
  CHECK(std::abs(norm_ratio - 1.0) < 0.05);
  // The optimiser and EMA on the device: the weights move, and stay close to the CPU's.
  device.state.optimizer().step(1e-4);
  cpu.state.optimizer().step(1e-4);
  CHECK(device.state.param_checksum() != cpu.state.param_checksum());
  double worst = 0;
  for (std::size_t i = 0; i < cpu.state.flat().buckets().size(); ++i)
    worst = std::max(worst, (device.state.flat().buckets()[i].params.cpu() - cpu.state.flat().buckets()[i].params)
                                .abs()
                                .max()
                                .item<double>());
  CHECK(worst <= 2.0 * 1e-4 + 1e-6);  // AdamW's first step moves a weight by at most ~lr
}

TEST_CASE("bf16 autocast: the output changes after one optimiser step (the weight cache is dropped)") {
  LDM_GPU_OR_SKIP();
  Rig rig(spec_for("dit", device_name(), "bf16"), 4);
  REQUIRE(rig.hw.bf16);
  auto& model = rig.state.model();
  const auto x = rig.batch.latents.to(rig.hw.device);
  const auto t = rig.process->model_time(rig.batch.t).to(rig.hw.device, torch::kFloat32);
  const auto cond = rig.batch.cond.to(rig.hw.device);
  torch::NoGradGuard no_grad;
  torch::Tensor before, after, stale;
  {
    torch_compat::AutocastScope scope(rig.hw.device.type(), true);
    before = model.forward(x, t, cond).to(torch::kFloat32);
    // One long scope that spans an optimiser step: where autocast caches bf16 weights, this output is
    // the stale one (informational; LibTorch 1.13's Linear casts a transposed view it never caches).
    for (auto& b : rig.state.flat().buckets()) b.grads.fill_(1.0);
    rig.state.optimizer().step(1e-2);
    stale = model.forward(x, t, cond).to(torch::kFloat32);
  }
  {
    torch_compat::AutocastScope scope(rig.hw.device.type(), true);
    after = model.forward(x, t, cond).to(torch::kFloat32);
  }
  const double moved = (after - before).abs().max().item<double>();
  CAPTURE(moved);
  CHECK(moved > 1e-3);
  const bool was_stale = (stale - before).abs().max().item<double>() == 0.0;
  MESSAGE("inside one scope across the step the output " << std::string(
              was_stale ? "did not change (autocast's cache was stale)" : "changed (no cached weight was used)"));
}

TEST_CASE("scaled-dot-product attention equals the explicit form on the device, fp32 and bf16, with masks") {
  LDM_GPU_OR_SKIP();
  const torch::Device dev(device_name());
  torch_compat::set_tf32(false);
  auto g = at::detail::createCPUGenerator(5);
  const auto q = torch::randn({2, 4, 33, 32}, g).to(dev), k = torch::randn({2, 4, 40, 32}, g).to(dev),
             v = torch::randn({2, 4, 40, 32}, g).to(dev);
  const auto bias = torch::randn({1, 4, 33, 40}, g).to(dev);
  auto keep = torch::ones({2, 40}, torch::kBool);
  keep.narrow(1, 30, 10).select(0, 1).fill_(false);
  keep = keep.to(dev);
  for (const bool bf16 : {false, true}) {
    CAPTURE(bf16);
    const auto dt = bf16 ? torch::kBFloat16 : torch::kFloat32;
    const auto qd = q.to(dt), kd = k.to(dt), vd = v.to(dt);
    for (const bool masked : {false, true}) {
      CAPTURE(masked);
      const auto b = masked ? bias : torch::Tensor(), kk = masked ? keep : torch::Tensor();
      torch_compat::set_math_attention(false);
      const auto fused = torch_compat::attention(qd, kd, vd, b, kk).to(torch::kFloat32);
      const auto ref = torch_compat::explicit_attention(q, k, v, b, kk);
      const double err = (fused - ref).abs().max().item<double>();
      CAPTURE(err);
      CHECK(err < (bf16 ? 3e-2 : 2e-5));
    }
  }
  MESSAGE("fused attention kernel available: " << std::string(torch_compat::has_fused_attention() ? "yes" : "no"));
}

TEST_CASE("AdamW: LibTorch's fused kernel and the vector ops give the same step on the device") {
  LDM_GPU_OR_SKIP();
  const torch::Device dev(device_name());
  if (!torch_compat::has_fused_adamw(dev)) {
    MESSAGE("skipped: LibTorch " << torch_compat::libtorch_version() << " has no fused AdamW for " << dev.str());
    return;
  }
  auto make = [&] {
    torch::manual_seed(1);
    auto m = torch::nn::Sequential(torch::nn::Linear(64, 256), torch::nn::LayerNorm(std::vector<int64_t>{256}),
                                   torch::nn::Linear(256, 8));
    m->to(dev);
    return m;
  };
  auto ma = make(), mb = make();
  FlatParams pa(*ma, false), pb(*mb, false);
  FlatAdamW fused(pa, {0.9, 0.999, 1e-8, 0.03, true}), plain(pb, {0.9, 0.999, 1e-8, 0.03, false});
  REQUIRE(fused.fused());
  REQUIRE(!plain.fused());
  auto g = at::detail::createCPUGenerator(2);
  for (int step = 1; step <= 5; ++step) {
    for (std::size_t i = 0; i < pa.buckets().size(); ++i) {
      const auto grad = torch::randn(pa.buckets()[i].grads.sizes(), g).to(dev);
      pa.buckets()[i].grads.copy_(grad);
      pb.buckets()[i].grads.copy_(grad);
    }
    fused.step(1e-3);
    plain.step(1e-3);
  }
  for (std::size_t i = 0; i < pa.buckets().size(); ++i) {
    const double err = (pa.buckets()[i].params - pb.buckets()[i].params).abs().max().item<double>();
    CAPTURE(err);
    CHECK(err < 1e-6);
  }
}

TEST_CASE("every family trains 20 steps on the device (bf16) on one batch: finite, falling loss") {
  LDM_GPU_OR_SKIP();
  for (const std::string& family : recipe_families()) {
    CAPTURE(family);
    Rig rig(spec_for(family, device_name(), "bf16"), 6);
    std::vector<double> losses;
    for (int64_t s = 1; s <= 20; ++s) losses.push_back(rig.step(1e-3, s));
    bool finite = true;
    for (double l : losses) finite = finite && std::isfinite(l);
    CHECK(finite);
    const double first = (losses[0] + losses[1] + losses[2] + losses[3] + losses[4]) / 5,
                 last = (losses[15] + losses[16] + losses[17] + losses[18] + losses[19]) / 5;
    CAPTURE(first);
    CAPTURE(last);
    CHECK(last < 0.9 * first);
  }
}

TEST_CASE("a checkpoint written on the device resumes on the CPU, and the reverse; sampling runs on the device") {
  LDM_GPU_OR_SKIP();
  TempDir tmp("ldm-gpu-resume");
  auto run = [&](const std::string& device, const std::string& precision, const std::string& dir,
                 const std::string& from) {
    ExperimentSpec s = spec_for("dit", device, precision);
    s.stages[0].steps = 6;
    s.stages[0].checkpoint_every = 3;
    StageContext ctx;
    ctx.spec = s;
    ctx.run_dir = tmp.file(dir);
    ctx.data_dir = tmp.file("data");
    ctx.resume_from = from;
    auto comm = make_single_process_communicator();
    return train_stage(ctx, *comm, nullptr);
  };
  const StageResult on_device = run(device_name(), "bf16", "device", "");
  const StageResult on_cpu = run("cpu", "fp32", "cpu", "");
  const std::string device_at3 = tmp.file("device") + "/checkpoints/" + step_dir_name(3);
  const std::string cpu_at3 = tmp.file("cpu") + "/checkpoints/" + step_dir_name(3);
  const StageResult device_to_cpu = run("cpu", "fp32", "device-to-cpu", device_at3);
  const StageResult cpu_to_device = run(device_name(), "bf16", "cpu-to-device", cpu_at3);
  for (const StageResult* r : {&on_device, &on_cpu, &device_to_cpu, &cpu_to_device}) {
    CHECK(r->steps == 6);
    CHECK(std::isfinite(r->final_loss));
  }
  CHECK(std::abs(device_to_cpu.final_loss - on_cpu.final_loss) < 0.05 * std::abs(on_cpu.final_loss) + 1e-3);
  CHECK(std::abs(cpu_to_device.final_loss - on_device.final_loss) < 0.05 * std::abs(on_device.final_loss) + 1e-3);
  // The bundle holds host tensors in float32 whatever the device was.
  for (const auto& [name, t] : read_checkpoint(on_device.checkpoint).model) {
    CAPTURE(name);
    CHECK(t.is_cpu());
  }
  // Sampling from the device run's bundle runs where its [hardware] says, and returns host latents.
  const SamplingModel m = load_sampling_model(on_device.checkpoint);
  CHECK(m.device.str() == torch::Device(device_name()).str());
  SampleRequest r;
  r.labels = {0, 1};
  r.seed = 3;
  r.sampler = sampler_options(m.spec.recipe.sampler);
  r.sampler.steps = 4;
  r.cfg = 1.5;
  const auto latents = sample_latents(m, r);
  CHECK(latents.is_cpu());
  CHECK(latents.size(0) == 2);
  CHECK(torch::isfinite(latents).all().item<bool>());
}

TEST_CASE("the NCCL communicator at world size 1 on the GPU: device and host buffers, integers, strings") {
  if (!torch::cuda::is_available() || !built_with_nccl()) {
    MESSAGE("skipped: needs a CUDA GPU and a build with NCCL (this one has "
            << std::string(built_with_nccl() ? "NCCL" : "no NCCL") << ")");
    return;
  }
  auto comm = make_communicator("nccl");
  CHECK(comm->backend() == "nccl");
  CHECK(comm->size() == 1);
  auto device_buffer = torch::arange(1000, torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA));
  comm->allreduce_sum(device_buffer.data_ptr<float>(), 1000);
  CHECK(device_buffer.sum().item<double>() == doctest::Approx(999.0 * 1000 / 2));
  float host[2] = {1.5f, 2.5f};
  comm->allreduce_sum(host, 2);
  CHECK(host[0] == 1.5f);
  CHECK(comm->allreduce_max(7) == 7);
  std::string text = "rank zero's words";
  comm->broadcast(text, 0);
  CHECK(text == "rank zero's words");
  CHECK(comm->gather("mine", 0) == std::vector<std::string>{"mine"});
  comm->barrier();
}
