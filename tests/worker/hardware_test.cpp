// worker/hardware: `[hardware]` resolved against a machine's GPUs and the code path's support.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "worker/hardware.h"

using namespace ldm;
using namespace ldm::worker;

namespace hardware_test {
HardwareSpec hw(const std::string& device, const std::string& precision = "auto") {
  HardwareSpec s;
  s.device = device;
  s.precision = precision;
  return s;
}
}  // namespace hardware_test
using namespace hardware_test;

TEST_CASE("device auto: a GPU when there is one, else the CPU; precision follows") {
  Hardware h = resolve_hardware(hw("auto"), 0, 0);
  CHECK(h.device.is_cpu());
  CHECK_FALSE(h.bf16);
  CHECK(h.summary() == "cpu, fp32");
  h = resolve_hardware(hw("auto"), 4, 6);  // local rank 6 of a host with 4 GPUs
  CHECK(h.device.is_cuda());
  CHECK(h.device.index() == 2);
  CHECK(h.bf16);
  CHECK(h.summary() == "cuda:2, bf16 autocast, tf32");
  h = resolve_hardware(hw("cpu", "bf16"), 4, 0);
  CHECK(h.device.is_cpu());
  CHECK(h.bf16);
  CHECK(h.summary() == "cpu, bf16 autocast");
  h = resolve_hardware(hw("cuda", "fp32"), 1, 3);
  CHECK(h.device == c10::Device(c10::DeviceType::CUDA, 0));
  CHECK_FALSE(h.bf16);
}

TEST_CASE("device cuda without a GPU is an error naming the key") {
  CHECK_THROWS_WITH(resolve_hardware(hw("cuda"), 0, 0),
                    doctest::Contains("hardware.device = \"cuda\", but this worker's LibTorch"));
  CHECK_THROWS_WITH(resolve_hardware(hw("tpu"), 0, 0), doctest::Contains("hardware.device"));
  CHECK_THROWS_WITH(resolve_hardware(hw("cpu", "fp8"), 0, 0), doctest::Contains("hardware.precision"));
  // This machine's own resolution: a GPU exactly when LibTorch sees one.
  CHECK(resolve_hardware(hw("auto")).device.is_cuda() == torch::cuda::is_available());
}

TEST_CASE("the local rank comes from the launcher's environment") {
  // Restores the launcher's own values (this test may itself run under mpirun or srun).
  struct Saved {
    std::vector<std::pair<std::string, std::optional<std::string>>> vars;
    Saved() {
      for (const char* n : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}) {
        const char* v = std::getenv(n);
        vars.emplace_back(n, v ? std::optional<std::string>(v) : std::nullopt);
      }
    }
    ~Saved() {
      for (const auto& [n, v] : vars) v ? ::setenv(n.c_str(), v->c_str(), 1) : ::unsetenv(n.c_str());
    }
  } saved;
  ::unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  ::unsetenv("LOCAL_RANK");
  ::setenv("SLURM_LOCALID", "3", 1);
  CHECK(local_rank_from_environment() == 3);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  CHECK(local_rank_from_environment() == 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x", 1);  // malformed: the next one
  CHECK(local_rank_from_environment() == 3);
  ::unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  ::unsetenv("SLURM_LOCALID");
  CHECK(local_rank_from_environment() == 0);
}
