#include <torch/torch.h>
#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "tests/support/python_reference.h"
#include "tests/worker/models/reference_forward.h"
#include "worker/io/pt_reader.h"
#include "worker/models/dit.h"

// Our DiT against tests/worker/reference/dit_reference.py, an independent plain-torch forward of
// the published architecture with the reference implementation's state-dict keys: the script saves
// random (all non-zero) weights with torch.save, and the inputs and its outputs; we load the weights
// by name through load_pt_state_dict and must reproduce the outputs.
namespace dit_reference_test {

namespace fs = std::filesystem;

// The script sits next to this file; a build may point elsewhere with -DLDM_DIT_REFERENCE_SCRIPT=...
fs::path script_path() {
#ifdef LDM_DIT_REFERENCE_SCRIPT
  return fs::path(LDM_DIT_REFERENCE_SCRIPT);
#else
  return ldm::testing::source_path("tests/worker/reference/dit_reference.py");
#endif
}

const ldm::testing::PythonReference& fixture() {
  static ldm::testing::PythonReference f("ldm-dit-reference", script_path());
  REQUIRE_MESSAGE(f.error.empty(), f.error);
  return f;
}

ldm::models::DiTConfig tiny_config(int64_t h, int64_t w) {
  // Must match CONFIG in dit_reference.py.
  ldm::models::DiTConfig c;
  c.in_channels = 4;
  c.latent_h = h;
  c.latent_w = w;
  c.patch = 2;
  c.width = 64;
  c.depth = 2;
  c.heads = 4;
  c.mlp_ratio = 4.0;
  c.num_classes = 10;
  c.learn_sigma = true;
  c.null_class = true;
  return c;
}

std::set<std::string> keys(const std::map<std::string, torch::Tensor>& m) {
  std::set<std::string> out;
  for (const auto& kv : m) out.insert(kv.first);
  return out;
}

std::map<std::string, torch::Tensor> load(const std::string& file) {
  return ldm::worker::load_pt_state_dict((fixture().dir / file).string());
}

struct Case {
  const char* name;
  int64_t h, w;
};
const Case kCases[] = {{"square", 8, 8}, {"nonsquare", 8, 12}};

}  // namespace dit_reference_test

TEST_CASE("DiT's state-dict keys and shapes equal the reference implementation's") {
  namespace ref = dit_reference_test;
  for (const auto& c : ref::kCases) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    ldm::models::DiT model(ref::tiny_config(c.h, c.w));
    auto ours = ldm::testing::module_state(model);
    auto reference = ref::load(std::string("dit_") + c.name + ".pt");
    std::set<std::string> only_ours, only_reference;
    for (const auto& k : ref::keys(ours))
      if (!reference.count(k)) only_ours.insert(k);
    for (const auto& k : ref::keys(reference))
      if (!ours.count(k)) only_reference.insert(k);
    CHECK(only_ours.empty());
    CHECK(only_reference.empty());
    for (const auto& [name, t] : ours)
      if (reference.count(name)) {
        CAPTURE(name);
        CHECK(t.sizes() == reference.at(name).sizes());
      }
  }
}

TEST_CASE("DiT's fixed sin-cos positional embedding equals the reference's on square and non-square grids") {
  namespace ref = dit_reference_test;
  for (const auto& c : ref::kCases) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    ldm::models::DiT model(ref::tiny_config(c.h, c.w));
    auto gen = at::detail::createCPUGenerator(7);
    model.initialize(gen);
    const auto ours = ldm::testing::module_state(model).at("pos_embed");
    const auto reference = ref::load(std::string("dit_") + c.name + ".pt").at("pos_embed");
    REQUIRE(ours.sizes() == reference.sizes());
    CHECK((ours - reference).abs().max().item<double>() <= 1e-6);
  }
}

TEST_CASE("DiT forward with reference weights matches the independent Python reference within 1e-4") {
  namespace ref = dit_reference_test;
  for (const auto& c : ref::kCases) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    ldm::models::DiT model(ref::tiny_config(c.h, c.w));
    ldm::testing::load_reference_weights(model, ref::load(std::string("dit_") + c.name + ".pt"));
    model.eval();
    const auto io = ref::load(std::string("io_") + c.name + ".pt");
    torch::NoGradGuard no_grad;
    ldm::testing::check_reference_output(case_name, model.forward(io.at("x"), io.at("t"), io.at("y")), io);
  }
}
