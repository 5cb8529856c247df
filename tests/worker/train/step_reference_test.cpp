// ldm-worker's DiT training step against an independent PyTorch one (tests/bench/train_step_reference.py,
// issue 27): the trainer dumps its first steps' inputs (LDM_DUMP_STEPS), the reference trains DiT the
// DiT repository's way from the same weights on the same inputs, and the losses of 50 steps agree.
// fp32 on the CPU here; the GPU comparison (bf16, SDPA, fused AdamW, torch.compile) is the benchmark's.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "shared/core/safe_file.h"
#include "shared/core/spec.h"
#include "tests/support/python_reference.h"
#include "tests/support/skip.h"
#include "tests/support/source_path.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/train/trainer.h"

using namespace ldm;
using namespace ldm::worker;

namespace step_reference_test {

ExperimentSpec dit_spec() {
  ExperimentSpec s;
  s.name = "step-reference";
  s.seed = 21;
  s.dataset.records = 64;
  s.dataset.classes = 5;
  s.dataset.shard_records = 64;
  s.recipe = recipe_defaults("dit");  // ε with learned sigma, the hybrid loss, AdamW, EMA
  s.recipe.preset = "tiny/2";
  s.hardware.device = "cpu";
  s.hardware.precision = "fp32";
  s.stages.emplace_back();
  s.stages[0].resolution = 16;
  s.stages[0].steps = 50;
  s.stages[0].batch_size = 8;
  s.stages[0].lr = 1e-3;
  s.stages[0].log_every = 1000;
  validate(s);
  return s;
}

// Sets LDM_DUMP_STEPS for the scope.
struct DumpEnv {
  explicit DumpEnv(const std::string& value) { ::setenv("LDM_DUMP_STEPS", value.c_str(), 1); }
  ~DumpEnv() { ::unsetenv("LDM_DUMP_STEPS"); }
};

}  // namespace step_reference_test
using namespace step_reference_test;

TEST_CASE("the DiT training step agrees with a PyTorch reference of DiT's for 50 steps (fp32, CPU)") {
  const bool python =
      std::system((std::string(ldm::testing::kReferencePython) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  LDM_REQUIRE_OR_SKIP(python, "python3-torch is required (install Debian's python3-torch)");
  ldm::testing::TempDir tmp("ldm-step-reference");
  const std::string dump = tmp.file("dump");
  {
    DumpEnv env(dump + ":50");
    StageContext ctx;
    ctx.spec = dit_spec();
    ctx.run_dir = tmp.file("run");
    ctx.data_dir = tmp.file("data");
    auto comm = make_single_process_communicator();
    const StageResult r = train_stage(ctx, *comm, nullptr);
    REQUIRE(r.steps == 50);
  }
  REQUIRE(path_exists(dump + "/init.safetensors"));
  REQUIRE(path_exists(dump + "/step-000050.safetensors"));
  const std::string script = ldm::testing::source_path("tests/bench/train_step_reference.py").string();
  const std::string out = tmp.file("reference.json"), log = tmp.file("reference.log");
  const int rc = std::system((std::string(ldm::testing::kReferencePython) + " " + script + " " + dump +
                              " --tolerance 1e-5 --out " + out + " >" + log + " 2>&1")
                                 .c_str());
  const std::string text = read_file(log);
  CAPTURE(text);
  REQUIRE(path_exists(out));
  const auto result = nlohmann::json::parse(read_file(out));
  CHECK(result.at("steps").size() == 50);
  const double worst = result.at("worst_rel").get<double>();
  CAPTURE(worst);
  CHECK(worst < 1e-5);
  CHECK(rc == 0);
  MESSAGE("reference: " << text);
  // The comparison can fail: the losses move over the 50 steps (the weights train), so agreeing at
  // every step is not agreeing with a constant.
  const auto& steps = result.at("steps");
  CHECK(steps.front().at("ldm_worker").get<double>() != steps.back().at("ldm_worker").get<double>());

  // And it does fail when the two do different work: the reference without the VLB term.
  auto meta = nlohmann::json::parse(read_file(dump + "/meta.json"));
  meta["vlb_weight"] = 0.0;
  write_file_atomic(dump + "/meta.json", meta.dump());
  const int other = std::system((std::string(ldm::testing::kReferencePython) + " " + script + " " + dump +
                                 " --steps 5 --tolerance 1e-3 >" + log + " 2>&1")
                                    .c_str());
  CHECK(other != 0);
}
