#include <torch/torch.h>
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "tests/worker/models/reference_forward.h"
#include "worker/diffusion/guidance.h"
#include "worker/models/conditioning.h"
#include "worker/models/mmdit.h"

// The paper's proposed model against tests/worker/reference/proposed_reference.py: the MM-DiT trunk
// with semantics through attention only, the w_α(t)-weighted control path (four groups, each its
// own α, a dropped sample's controls exactly zero), caption dropout, and the two-scale
// classifier-free guidance combination of its three branches.
namespace proposed_reference_test {

std::map<std::string, torch::Tensor> load(const std::string& file) {
  return ldm::testing::load_family_reference("proposed", file);
}

// Must match CONFIG (mmdit_reference.py), FREQUENCIES, ALPHAS, CONTEXT_CHANNELS (proposed_reference.py).
ldm::models::MMDiTConfig config(int64_t h, int64_t w, bool text) {
  ldm::models::MMDiTConfig m;
  m.in_channels = 4;
  m.latent_h = h;
  m.latent_w = w;
  m.patch = 2;
  m.width = 64;
  m.depth = 2;
  m.heads = 4;
  m.learn_sigma = false;
  m.semantic_in_adaln = false;
  m.num_classes = text ? 0 : 10;
  if (text) {
    m.context_channels = 24;
    m.pooled_channels = 16;  // required in text mode; unused without semantics in adaLN
  }
  ldm::models::ControlEmbedderOptions c;
  c.frequency_size = 16;
  c.weighting = "noise_weighted";
  c.alpha_size = 2.0;
  c.alpha_crop = 1.0;
  c.alpha_flip = 0.5;
  c.alpha_aspect = 1.5;
  c.dropped = "zero";
  m.controls = c;
  return m;
}

ldm::models::Condition condition(const std::map<std::string, torch::Tensor>& io) {
  ldm::models::Condition cond;
  if (io.count("y")) cond.labels = io.at("y");
  if (io.count("tokens")) cond.tokens = io.at("tokens");
  if (io.count("semantic_drop")) cond.semantic_drop = io.at("semantic_drop");
  if (io.count("control_drop")) cond.control_drop = io.at("control_drop");
  cond.controls = io.at("controls");
  cond.noise_level = io.at("noise_level");
  return cond;
}

}  // namespace proposed_reference_test

TEST_CASE(
    "the proposed model's forward (w_α(t) controls, caption dropout) and its two-scale guidance match the "
    "independent Python reference within 1e-4") {
  namespace ref = proposed_reference_test;
  struct Case {
    const char* name;
    int64_t h, w;
    bool text;
  };
  for (const Case& c :
       {Case{"class_square", 8, 8, false}, Case{"text_nonsquare", 8, 12, true}, Case{"guided", 8, 8, false}}) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    ldm::models::MMDiT model(ref::config(c.h, c.w, c.text));
    ldm::testing::load_reference_weights(model, ref::load(std::string("proposed_") + c.name + ".pt"));
    model.eval();
    const auto io = ref::load(std::string("io_") + c.name + ".pt");
    torch::NoGradGuard no_grad;
    const auto& x = io.at("x");
    const auto& t = io.at("t");
    ldm::models::Condition cond = ref::condition(io);
    torch::Tensor out;
    if (case_name != "guided") {
      out = model.forward(x, t, cond);
    } else {
      const int64_t n = x.size(0);
      ldm::models::Condition none = cond, semantic = cond, full = cond;
      none.labels = torch::full({n}, 10, torch::kInt64);  // the null class
      none.control_drop = semantic.control_drop = torch::ones({n}, torch::kBool);
      full.control_drop = torch::zeros({n}, torch::kBool);
      const auto branches = torch::cat({model.forward(x, t, none), model.forward(x, t, semantic),
                                        model.forward(x, t, full)});  // (∅,∅), (c,∅), (c,k)
      out = ldm::diffusion::combine_guidance(branches, 4, /*s_sem=*/3.0, /*s_ctrl=*/2.0);
    }
    ldm::testing::check_reference_output(case_name, out, io);
  }
}
