#include <torch/torch.h>
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "tests/worker/models/reference_forward.h"
#include "worker/models/pixart.h"

// Our PixArt-α against tests/worker/reference/pixart_reference.py, an independent plain-torch
// forward of the published architecture with the reference implementation's state-dict keys
// (captions with a key mask and with the null caption; class labels, our [recon] mode): the script
// saves random non-zero weights with torch.save, the inputs and its outputs; we load the weights by
// name through load_pt_state_dict and must reproduce the outputs.
namespace pixart_reference_test {

struct Case {
  const char* name;
  int64_t h, w;
  bool text;
};
const Case kCases[] = {{"text_square", 8, 8, true}, {"text_nonsquare", 8, 12, true}, {"class_square", 8, 8, false}};

ldm::models::PixArtConfig config(const Case& c) {
  // Must match CONFIG, CAPTION_CHANNELS, MAX_TOKENS and NUM_CLASSES in pixart_reference.py.
  ldm::models::PixArtConfig p;
  p.in_channels = 4;
  p.latent_h = c.h;
  p.latent_w = c.w;
  p.patch = 2;
  p.width = 64;
  p.depth = 2;
  p.heads = 4;
  p.mlp_ratio = 4.0;
  p.learn_sigma = true;
  if (c.text) {
    p.caption_channels = 24;
    p.max_tokens = 4;
  } else {
    p.num_classes = 10;
  }
  return p;
}

std::map<std::string, torch::Tensor> load(const std::string& file) {
  return ldm::testing::load_family_reference("pixart", file);
}

}  // namespace pixart_reference_test

TEST_CASE(
    "PixArt-α's state-dict keys and shapes equal the reference implementation's, and its forward matches "
    "the independent Python reference within 1e-4") {
  namespace ref = pixart_reference_test;
  for (const auto& c : ref::kCases) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    ldm::models::PixArt model(ref::config(c));
    ldm::testing::load_reference_weights(model, ref::load(std::string("pixart_") + c.name + ".pt"));
    model.eval();
    const auto io = ref::load(std::string("io_") + c.name + ".pt");
    torch::NoGradGuard no_grad;
    torch::Tensor out;
    if (c.text) {
      const torch::Tensor mask = io.count("mask") ? io.at("mask") : torch::Tensor();
      const torch::Tensor drop = io.count("drop") ? io.at("drop") : torch::Tensor();
      out = model.forward_text(io.at("x"), io.at("t"), io.at("tokens"), mask, drop);
    } else {
      ldm::models::Condition cond;
      cond.labels = io.at("y");
      out = model.forward(io.at("x"), io.at("t"), cond);
    }
    ldm::testing::check_reference_output(case_name, out, io);
  }
}
