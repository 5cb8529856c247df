// The arithmetic of one training step on one rank, outside the loop that feeds it: the forward passes
// of the micro-batches under the precision of [hardware], the diffusion loss, backward into the flat
// gradient buffers. The trainer (train/trainer.cpp) steps through it; the GPU tests and the device
// benchmark (tests/gpu/, tests/bench/bench_train_device.cpp) call the same function, so what they
// check and time is what trains.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>

#include "worker/diffusion/loss.h"
#include "worker/diffusion/process.h"
#include "worker/hardware.h"
#include "worker/models/denoiser.h"
#include "worker/train/state.h"

namespace ldm::worker {

struct StepInputs {
  at::Tensor latents;      // [b, C, h, w] float32, any device (moved to the model's)
  at::Tensor t;            // [b] float64 process time, on the host
  at::Tensor noise;        // like latents
  models::Condition cond;  // [b] rows, any device
};

// Where one step's time went on this rank (seconds). With `sync_device` the device is synchronised
// at each boundary, so on a GPU these are device times (profiling only: it stalls the pipeline).
struct StepTimes {
  double forward_s = 0, backward_s = 0;
  bool sync_device = false;
};

// Zeroes the gradients, then for each of `micro` equal micro-batches: the forward under bf16 autocast
// when hw.bf16 (fp32 master weights; the loss in float32 outside it), the loss scaled by 1/micro, and
// backward. `before_backward(k)` runs before micro-batch k's backward (the gradient all-reduce arms
// itself for the last one). Returns the mean loss over the rank's batch (a host read per micro-batch).
double forward_backward(TrainingState& state, const diffusion::NoiseProcess& process,
                        const diffusion::LossOptions& loss, const Hardware& hw, const StepInputs& in, int64_t micro,
                        const std::function<void(int64_t)>& before_backward = {}, StepTimes* times = nullptr);

// Waits for the work queued on `device` (a no-op on the CPU).
void synchronize_device(const torch::Device& device);

}  // namespace ldm::worker
