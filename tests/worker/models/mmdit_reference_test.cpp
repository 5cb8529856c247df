#include <torch/torch.h>
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "tests/worker/models/reference_forward.h"
#include "worker/models/mmdit.h"

// Our MM-DiT against tests/worker/reference/mmdit_reference.py, an independent plain-torch forward
// of SD3's architecture with its state-dict keys (joint attention over [context | image], the
// pre_only last context stream, q/k RMSNorm, a caption key mask; class labels, our [recon] mode).
namespace mmdit_reference_test {

struct Case {
  const char* name;
  int64_t h, w;
  bool text, qk_norm;
};
const Case kCases[] = {{"text_square_qknorm", 8, 8, true, true},
                       {"text_nonsquare", 8, 12, true, false},
                       {"class_square", 8, 8, false, false}};

ldm::models::MMDiTConfig config(const Case& c) {
  // Must match CONFIG, CONTEXT_CHANNELS, POOLED_CHANNELS and NUM_CLASSES in mmdit_reference.py.
  ldm::models::MMDiTConfig m;
  m.in_channels = 4;
  m.latent_h = c.h;
  m.latent_w = c.w;
  m.patch = 2;
  m.width = 64;
  m.depth = 2;
  m.heads = 4;
  m.mlp_ratio = 4.0;
  m.learn_sigma = false;
  m.qk_norm = c.qk_norm;
  m.num_classes = c.text ? 0 : 10;
  if (c.text) {
    m.context_channels = 24;
    m.pooled_channels = 16;
  }
  return m;
}

std::map<std::string, torch::Tensor> load(const std::string& file) {
  return ldm::testing::load_family_reference("mmdit", file);
}

}  // namespace mmdit_reference_test

TEST_CASE(
    "MM-DiT's state-dict keys and shapes equal SD3's, and its forward matches the independent Python "
    "reference within 1e-4") {
  namespace ref = mmdit_reference_test;
  for (const auto& c : ref::kCases) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    ldm::models::MMDiT model(ref::config(c));
    ldm::testing::load_reference_weights(model, ref::load(std::string("mmdit_") + c.name + ".pt"));
    model.eval();
    const auto io = ref::load(std::string("io_") + c.name + ".pt");
    torch::NoGradGuard no_grad;
    torch::Tensor out;
    if (c.text) {
      const torch::Tensor mask = io.count("mask") ? io.at("mask") : torch::Tensor();
      out = model.forward_text(io.at("x"), io.at("t"), io.at("tokens"), mask, io.at("pooled"));
    } else {
      ldm::models::Condition cond;
      cond.labels = io.at("y");
      out = model.forward(io.at("x"), io.at("t"), cond);
    }
    ldm::testing::check_reference_output(case_name, out, io);
  }
}
