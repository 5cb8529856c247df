#include <torch/torch.h>
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "tests/worker/models/reference_forward.h"
#include "worker/models/mdt.h"

// Our mDT-v2 against tests/worker/reference/mdt_reference.py, an independent plain-torch forward of
// MDTv2 with its state-dict keys: relative-position biases, the encoder's long skips, the decoder's
// input skip, and the masked training pass (kept tokens only, the bias gathered to them, the
// side-interpolator with mask_token) for a given mask.
namespace mdt_reference_test {

std::map<std::string, torch::Tensor> load(const std::string& file) {
  return ldm::testing::load_family_reference("mdt", file);
}

// Must match CONFIG and NUM_CLASSES in mdt_reference.py.
ldm::models::MDTConfig config(int64_t h, int64_t w) {
  ldm::models::MDTConfig m;
  m.in_channels = 4;
  m.latent_h = h;
  m.latent_w = w;
  m.patch = 2;
  m.width = 64;
  m.heads = 4;
  m.depth = 4;
  m.decoder_depth = 2;
  m.mlp_ratio = 4.0;
  m.learn_sigma = true;
  m.num_classes = 10;
  m.mask_ratio = 0.4;
  return m;
}

}  // namespace mdt_reference_test

TEST_CASE(
    "mDT-v2: state-dict keys and shapes equal MDTv2's, and the unmasked and masked passes match the "
    "independent Python reference within 1e-4") {
  namespace ref = mdt_reference_test;
  struct Case {
    const char* name;
    int64_t h, w;
  };
  for (const Case& c : {Case{"square", 8, 8}, Case{"nonsquare", 8, 12}}) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    ldm::models::MDT model(ref::config(c.h, c.w));
    ldm::testing::load_reference_weights(model, ref::load(std::string("mdt_") + c.name + ".pt"),
                                         /*fixed_pos_embed=*/false);  // learned in mDT
    model.eval();
    const auto io = ref::load(std::string("io_") + c.name + ".pt");
    torch::NoGradGuard no_grad;
    ldm::models::Condition cond;
    cond.labels = io.at("y");
    ldm::testing::check_reference_output(case_name, model.forward(io.at("x"), io.at("t"), cond), io);
    if (!io.count("ids_keep")) continue;
    const ldm::models::TokenMask mask{io.at("ids_keep"), io.at("mask")};
    const std::map<std::string, torch::Tensor> masked = {{"out", io.at("out_masked")},
                                                         {"out_f32", io.at("out_masked_f32")}};
    ldm::testing::check_reference_output(case_name + " masked",
                                         model.forward_masked(io.at("x"), io.at("t"), cond, mask), masked);
  }
}
