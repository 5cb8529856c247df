// Where the worker computes and in which precision: `[hardware]` resolved on this machine.
#pragma once

#include <c10/core/Device.h>

#include <string>

#include "shared/core/spec.h"

namespace ldm::worker {

struct Hardware {
  c10::Device device{c10::DeviceType::CPU};
  bool bf16 = false;  // bf16 autocast around forward passes; weights and optimiser state stay fp32
  bool tf32 = true;
  bool deterministic = false;
  std::string summary() const;  // e.g. "cpu, fp32" or "cuda:1, bf16 autocast, tf32"
};

// [hardware] against what this machine has. cuda_devices: GPUs LibTorch sees (0 for a CPU LibTorch);
// local_rank: this rank's index on its host, which picks its GPU (local_rank modulo cuda_devices).
// Throws Error naming `hardware.device` when the device asked for is not there.
Hardware resolve_hardware(const HardwareSpec& spec, int cuda_devices, int local_rank);
// The same for this process: LibTorch's GPU count and the launcher's local rank.
Hardware resolve_hardware(const HardwareSpec& spec);

// The process-wide numerics `hw` asks for: TF32 (on a GPU), deterministic algorithms, the attention form.
void apply_numerics(const Hardware& hw);

// This rank's index among the ranks of its host: OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID or
// LOCAL_RANK, else 0 (the NCCL backend picks its GPU with it too).
int local_rank_from_environment();

}  // namespace ldm::worker
