#include "worker/train/step.h"

#include <torch/cuda.h>

#include <chrono>

#include "worker/torch_compat.h"

namespace ldm::worker {

double forward_backward(TrainingState& state, const diffusion::NoiseProcess& process,
                        const diffusion::LossOptions& loss_options, const Hardware& hw, const StepInputs& in,
                        int64_t micro, const std::function<void(int64_t)>& before_backward, StepTimes* times) {
  using clock = std::chrono::steady_clock;
  auto mark = [&](clock::time_point& since, double* into) {
    if (!times) return;
    if (times->sync_device) synchronize_device(hw.device);
    const auto now = clock::now();
    if (into) *into += std::chrono::duration<double>(now - since).count();
    since = now;
  };
  clock::time_point since = clock::now();
  const int64_t micro_b = in.latents.size(0) / micro;
  // Batches, noise and conditions are made on the host (the same seed draws the same numbers on any
  // device) and moved once; the timesteps stay there (the process's tables move per call).
  const torch::Device device = hw.device;
  const bool non_blocking = device.is_cuda();
  const at::Tensor latents = in.latents.to(device, non_blocking), noise = in.noise.to(device, non_blocking);
  const models::Condition cond = in.cond.to(device);
  state.flat().zero_grad();
  double local_loss = 0;
  for (int64_t k = 0; k < micro; ++k) {
    auto x0 = latents.narrow(0, k * micro_b, micro_b);
    auto tk = in.t.narrow(0, k * micro_b, micro_b);
    auto nk = noise.narrow(0, k * micro_b, micro_b);
    mark(since, nullptr);
    auto x_t = diffusion::add_noise(process, x0, nk, tk);
    // mDT-v2 returns an unmasked and a masked prediction; their losses add up.
    std::vector<torch::Tensor> outs;
    {
      // bf16: the forward under autocast (its end drops the bf16 weight copies, which the optimiser
      // step makes stale); the loss and backward's accumulation into the fp32 master weights outside.
      torch_compat::AutocastScope autocast(device.type(), hw.bf16);
      outs = state.model().training_outputs(x_t, process.model_time(tk).to(device, torch::kFloat32),
                                            cond.narrow(k * micro_b, micro_b), state.generator(Purpose::Mask));
    }
    torch::Tensor loss;
    for (const auto& out : outs) {
      auto l = diffusion::diffusion_loss(process, loss_options, out.to(x0.scalar_type()), x0, nk, tk).loss.mean();
      loss = loss.defined() ? loss + l : l;
    }
    mark(since, times ? &times->forward_s : nullptr);
    if (before_backward) before_backward(k);
    (loss / double(micro)).backward();
    mark(since, times ? &times->backward_s : nullptr);
    local_loss += loss.item<double>() / double(micro);
  }
  return local_loss;
}

void synchronize_device(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace ldm::worker
