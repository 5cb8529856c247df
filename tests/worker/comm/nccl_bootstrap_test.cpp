// How NCCL ranks find each other without NCCL: the launcher's rank variables, the id file that rank 0
// writes and the others wait for, and what the nccl communicator says where it cannot run (no NCCL in
// the build, or no GPU). The collectives themselves need GPUs: tests/gpu/ (world size 1 there).
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "shared/core/safe_file.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/comm/nccl_bootstrap.h"

using namespace ldm;
using namespace ldm::worker;

namespace nccl_bootstrap_test {

using Vars = std::map<std::string, std::optional<std::string>>;

// Sets (or unsets, with nullopt) variables for the scope, and restores them after; every launcher
// variable is unset first.
class EnvScope {
 public:
  explicit EnvScope(const Vars& vars) {
    for (const char* n : kLaunchVars) save(n);
    for (const auto& [n, v] : vars) save(n);
    for (const char* n : kLaunchVars) ::unsetenv(n);
    for (const auto& [n, v] : vars) v ? ::setenv(n.c_str(), v->c_str(), 1) : ::unsetenv(n.c_str());
  }
  ~EnvScope() {
    for (const auto& [n, v] : saved_) v ? ::setenv(n.c_str(), v->c_str(), 1) : ::unsetenv(n.c_str());
  }

 private:
  static constexpr const char* kLaunchVars[] = {"OMPI_COMM_WORLD_RANK",
                                                "OMPI_COMM_WORLD_SIZE",
                                                "SLURM_PROCID",
                                                "SLURM_NTASKS",
                                                "PMI_RANK",
                                                "PMI_SIZE",
                                                "RANK",
                                                "WORLD_SIZE",
                                                "LDM_RANK",
                                                "LDM_WORLD_SIZE",
                                                "NCCL_COMM_ID",
                                                "LDM_NCCL_ID_FILE"};
  void save(const std::string& n) {
    if (saved_.count(n)) return;
    const char* v = std::getenv(n.c_str());
    saved_[n] = v ? std::optional<std::string>(v) : std::nullopt;
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

std::string some_id(std::size_t n) {
  std::string id(n, '\0');
  for (std::size_t i = 0; i < n; ++i) id[i] = static_cast<char>((i * 37 + 11) & 0xff);  // every byte value range
  return id;
}

}  // namespace nccl_bootstrap_test
using namespace nccl_bootstrap_test;

TEST_CASE("the launcher's variables give rank and world; none is a world of one; bad ones are named") {
  {
    EnvScope env(Vars{});
    const LaunchPlace p = launch_place_from_environment();
    CHECK(p.rank == 0);
    CHECK(p.size == 1);
  }
  {
    EnvScope env(Vars{{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}});
    const LaunchPlace p = launch_place_from_environment();
    CHECK(p.rank == 3);
    CHECK(p.size == 4);
    CHECK(p.source == "SLURM_PROCID/SLURM_NTASKS");
  }
  {  // Open MPI's variables win over SLURM's (mpirun inside an allocation sets both)
    EnvScope env(Vars{
        {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}, {"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}});
    CHECK(launch_place_from_environment().rank == 1);
    CHECK(launch_place_from_environment().size == 2);
  }
  {
    EnvScope env(Vars{{"LDM_RANK", "2"}, {"LDM_WORLD_SIZE", "2"}});
    CHECK_THROWS_WITH(launch_place_from_environment(), doctest::Contains("LDM_RANK=2 is outside a world of"));
  }
  {
    EnvScope env(Vars{{"RANK", "zero"}, {"WORLD_SIZE", "2"}});
    CHECK_THROWS_WITH(launch_place_from_environment(), doctest::Contains("RANK=\"zero\""));
  }
  {
    EnvScope env(Vars{{"PMI_RANK", "0"}});
    CHECK_THROWS_WITH(launch_place_from_environment(), doctest::Contains("PMI_SIZE is not"));
  }
}

TEST_CASE("the id file: rank 0 writes it, another rank waits for it and reads the same 128 bytes") {
  ldm::testing::TempDir tmp("ldm-nccl-id");
  const std::string path = tmp.file("job-42.nccl-id");
  const std::string id = some_id(128);
  int world = 0;
  CHECK(parse_id_file(format_id_file(2, id), 128, path, world) == id);
  CHECK(world == 2);

  // Rank 1 starts first and waits; rank 0 writes a little later.
  std::string got;
  std::thread rank1([&] { got = exchange_id_through_file(path, 1, 2, "", 128, 10.0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  CHECK(exchange_id_through_file(path, 0, 2, id, 128, 10.0) == id);
  rank1.join();
  CHECK(got == id);
}

TEST_CASE("the id file: another world's file is not taken, a timeout and a malformed file name the path") {
  ldm::testing::TempDir tmp("ldm-nccl-id-bad");
  const std::string path = tmp.file("stale.nccl-id");
  write_file_atomic(path, format_id_file(8, some_id(128)));  // another job's, for 8 ranks
  double waited = 0;
  auto fake_sleep = [&](double s) { waited += s; };
  CHECK_THROWS_WITH(exchange_id_through_file(path, 1, 2, "", 128, 1.0, fake_sleep),
                    doctest::Contains("written for a world of 8 ranks, this job has 2"));
  CHECK(waited >= 1.0);
  const std::string never = tmp.file("never") + " after 0 s: it does not exist";
  CHECK_THROWS_WITH(exchange_id_through_file(tmp.file("never"), 1, 2, "", 128, 0.5, fake_sleep),
                    doctest::Contains(never.c_str()));
  write_file_atomic(path, "ldm-nccl-id 1 2 abc\n");
  const std::string short_id = path + ": the NCCL id has 1 bytes, expected 128";
  CHECK_THROWS_WITH(exchange_id_through_file(path, 1, 2, "", 128, 1.0, fake_sleep),
                    doctest::Contains(short_id.c_str()));
  write_file_atomic(path, "hello\n");
  const std::string not_id = path + ": not an NCCL id file";
  CHECK_THROWS_WITH(exchange_id_through_file(path, 1, 2, "", 128, 1.0, fake_sleep), doctest::Contains(not_id.c_str()));
}

TEST_CASE("without MPI the NCCL id comes from NCCL_COMM_ID or LDM_NCCL_ID_FILE, and neither is an error saying so") {
  ldm::testing::TempDir tmp("ldm-nccl-env");
  int made = 0;
  auto make = [&] {
    ++made;
    return some_id(128);
  };
  {
    EnvScope env(Vars{{"NCCL_COMM_ID", "10.0.0.1:29500"}});
    CHECK(nccl_id_from_environment(1, 2, 128, make) == some_id(128));  // every rank asks NCCL
    CHECK(made == 1);
  }
  {
    EnvScope env(Vars{{"LDM_NCCL_ID_FILE", tmp.file("id")}});
    CHECK(nccl_id_from_environment(0, 2, 128, make) == some_id(128));
    CHECK(made == 2);
    CHECK(nccl_id_from_environment(1, 2, 128, make) == some_id(128));  // reads rank 0's file
    CHECK(made == 2);
  }
  {
    EnvScope env(Vars{});
    CHECK_THROWS_WITH(
        nccl_id_from_environment(1, 2, 128, make),
        doctest::Contains("set NCCL_COMM_ID=HOST:PORT (rank 0's host and a free port) or LDM_NCCL_ID_FILE"));
  }
}

TEST_CASE("the nccl communicator where it cannot run says why; auto never picks it without a GPU") {
  if (torch::cuda::is_available()) {
    MESSAGE("skipped: this machine has a CUDA GPU (tests/gpu/ runs NCCL there)");
    return;
  }
  EnvScope env(Vars{{"LDM_RANK", "0"}, {"LDM_WORLD_SIZE", "2"}});
  CHECK(resolve_communicator_kind("auto") != "nccl");
  if (built_with_nccl()) {
    // No driver: the runtime's own error; a driver and no GPU: ours. Either names the rank.
    std::string error;
    try {
      make_communicator("nccl");
    } catch (const std::exception& e) {
      error = e.what();
    }
    CAPTURE(error);
    CHECK(error.find("rank 0") != std::string::npos);
    CHECK((error.find("cudaGetDeviceCount") != std::string::npos || error.find("sees none") != std::string::npos));
  } else {
    CHECK_THROWS_WITH(make_communicator("nccl"), doctest::Contains("built without NCCL"));
  }
  CHECK_THROWS_WITH(resolve_communicator_kind("gloo"), doctest::Contains("unknown communicator 'gloo'"));
}
