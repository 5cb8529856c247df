// Shared steps of the tests that check a model's forward against an independent Python reference
// (tests/worker/reference/<family>_reference.py): same state-dict keys and shapes, the reference's
// weights copied in by name, and the output within 1e-4 of the reference's float64 and float32
// forwards.
#pragma once

#include <torch/torch.h>
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "tests/support/python_reference.h"
#include "worker/io/pt_reader.h"

namespace ldm::testing {

// The output directory of tests/worker/reference/<family>_reference.py, run once per test binary.
inline const PythonReference& family_reference(const std::string& family) {
  static std::map<std::string, std::unique_ptr<PythonReference>> runs;
  auto& run = runs[family];
  if (!run)
    run = std::make_unique<PythonReference>("ldm-" + family + "-reference",
                                            source_path("tests/worker/reference/" + family + "_reference.py"));
  REQUIRE_MESSAGE(run->error.empty(), run->error);
  return *run;
}

// One file the family's reference script wrote (a state dict or a dict of tensors).
inline std::map<std::string, torch::Tensor> load_family_reference(const std::string& family, const std::string& file) {
  return ldm::worker::load_pt_state_dict((family_reference(family).dir / file).string());
}

// Every parameter and buffer of `model` by its state-dict name.
inline std::map<std::string, torch::Tensor> module_state(torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value();
  for (const auto& b : model.named_buffers()) out[b.key()] = b.value();
  return out;
}

// Requires the key sets and shapes to be equal (naming the keys only one side has), then copies the
// reference's float tensors in; integer buffers (index tables) must already be equal. With
// `fixed_pos_embed`, `pos_embed` (a fixed sin-cos table built by the constructor) must be too.
inline void load_reference_weights(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& reference,
                                   bool fixed_pos_embed = true) {
  auto ours = module_state(model);
  std::set<std::string> only_ours, only_reference;
  for (const auto& [k, t] : ours)
    if (!reference.count(k)) only_ours.insert(k);
  for (const auto& [k, t] : reference)
    if (!ours.count(k)) only_reference.insert(k);
  CHECK(only_ours.empty());
  CHECK(only_reference.empty());
  REQUIRE(only_ours.size() + only_reference.size() == 0);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : ours) {
    CAPTURE(name);
    const auto& r = reference.at(name);
    REQUIRE(t.sizes() == r.sizes());
    if (!r.is_floating_point()) {
      CHECK(torch::equal(t, r.to(t.scalar_type())));
      continue;
    }
    REQUIRE((r.scalar_type() == torch::kFloat32));
    if (name == "pos_embed" && fixed_pos_embed) CHECK((t - r).abs().max().item<double>() <= 1e-6);
    t.copy_(r);
  }
}

// `out` against io["out"] (float64 forward of the same float32 weights) and io["out_f32"].
inline void check_reference_output(const std::string& case_name, const torch::Tensor& out,
                                   const std::map<std::string, torch::Tensor>& io) {
  const auto& expected = io.at("out");
  REQUIRE((expected.scalar_type() == torch::kFloat64));
  REQUIRE(expected.abs().max().item<double>() > 0.5);  // random adaLN and output layers: far from zero
  REQUIRE(out.sizes() == expected.sizes());
  const double diff = (out.to(torch::kFloat64) - expected).abs().max().item<double>();
  const double diff_f32 = (out - io.at("out_f32")).abs().max().item<double>();
  MESSAGE(case_name, ": max |ours - reference(float64)| = ", diff, ", max |ours - reference(float32)| = ", diff_f32,
          ", max |reference| = ", expected.abs().max().item<double>());
  CHECK(diff <= 1e-4);
  CHECK(diff_f32 <= 1e-4);
}

}  // namespace ldm::testing
