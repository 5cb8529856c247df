#include "worker/hardware.h"

#include <torch/cuda.h>

#include <cstdlib>

#include "shared/core/error.h"
#include "worker/torch_compat.h"

namespace ldm::worker {

std::string Hardware::summary() const {
  std::string s = device.str() + (bf16 ? ", bf16 autocast" : ", fp32");
  if (device.is_cuda() && tf32) s += ", tf32";
  if (deterministic) s += ", deterministic";
  return s;
}

Hardware resolve_hardware(const HardwareSpec& spec, int cuda_devices, int local_rank) {
  Hardware hw;
  hw.tf32 = spec.tf32;
  hw.deterministic = spec.deterministic;
  bool cuda = false;
  if (spec.device == "cuda") {
    if (cuda_devices <= 0) {
      const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
      throw Error("hardware.device = \"cuda\", but this worker's LibTorch " + torch_compat::libtorch_version() +
                  " sees no CUDA GPU (" +
                  (visible ? "CUDA_VISIBLE_DEVICES=\"" + std::string(visible) + "\"; " : std::string()) +
                  "a CPU-only LibTorch never does); set device = \"cpu\" or \"auto\"");
    }
    cuda = true;
  } else if (spec.device == "auto") {
    cuda = cuda_devices > 0;
  } else if (spec.device != "cpu") {
    throw Error("hardware.device: expected auto, cpu or cuda, got \"" + spec.device + "\"");
  }
  if (cuda) hw.device = c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(local_rank % cuda_devices));
  if (spec.precision == "bf16") hw.bf16 = true;
  else if (spec.precision == "auto") hw.bf16 = cuda;
  else if (spec.precision != "fp32")
    throw Error("hardware.precision: expected auto, fp32 or bf16, got \"" + spec.precision + "\"");
  return hw;
}

Hardware resolve_hardware(const HardwareSpec& spec) {
  const int devices = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  return resolve_hardware(spec, devices, local_rank_from_environment());
}

void apply_numerics(const Hardware& hw) {
  // Only on a GPU: newer LibTorch versions read the same matmul-precision setting on some CPUs.
  if (hw.device.is_cuda()) torch_compat::set_tf32(hw.tf32);
  torch_compat::set_deterministic(hw.deterministic);
}

int local_rank_from_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    char* end = nullptr;
    const long r = std::strtol(v, &end, 10);
    if (*end == '\0' && r >= 0 && r < 1 << 20) return static_cast<int>(r);
  }
  return 0;
}

}  // namespace ldm::worker
