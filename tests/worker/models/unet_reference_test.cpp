#include <torch/torch.h>
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "tests/worker/models/reference_forward.h"
#include "worker/models/unet.h"

// Our UNet against tests/worker/reference/unet_reference.py, an independent plain-torch forward of
// LDM's UNetModel (use_spatial_transformer) with its state-dict keys, at a small LDM-4-G-shaped
// size: ResBlocks with the timestep embedding, spatial transformers with self- and cross-attention
// (GEGLU feed-forward), down- and up-sampling, skip concatenation; class labels through
// ClassEmbedder, or caption tokens with a key mask.
namespace unet_reference_test {

std::map<std::string, torch::Tensor> load(const std::string& file) {
  return ldm::testing::load_family_reference("unet", file);
}

// Must match CONFIG, CONTEXT_DIM, NUM_CLASSES and TEXT_CHANNELS in unet_reference.py.
ldm::models::UNetConfig config(int64_t h, int64_t w, bool text) {
  ldm::models::UNetConfig u;
  u.in_channels = 4;
  u.latent_h = h;
  u.latent_w = w;
  u.model_channels = 32;
  u.channel_mult = {1, 2};
  u.num_res_blocks = 1;
  u.attention_ds = {2};
  u.head_channels = 16;
  u.transformer_depth = 1;
  u.context_dim = 24;
  u.num_classes = text ? 0 : 10;
  u.text_channels = text ? 20 : 0;
  u.mask_padding = text;
  u.learn_sigma = false;
  return u;
}

}  // namespace unet_reference_test

TEST_CASE(
    "LDM's UNet: state-dict keys and shapes equal UNetModel's, and the forward matches the independent "
    "Python reference within 1e-4") {
  namespace ref = unet_reference_test;
  struct Case {
    const char* name;
    int64_t h, w;
    bool text;
  };
  for (const Case& c : {Case{"class_square", 8, 8, false}, Case{"text_nonsquare", 8, 12, true}}) {
    const std::string case_name = c.name;
    CAPTURE(case_name);
    ldm::models::UNet model(ref::config(c.h, c.w, c.text));
    ldm::testing::load_reference_weights(model, ref::load(std::string("unet_") + c.name + ".pt"));
    model.eval();
    const auto io = ref::load(std::string("io_") + c.name + ".pt");
    torch::NoGradGuard no_grad;
    ldm::models::Condition cond;
    if (c.text) {
      cond.tokens = io.at("tokens");
      cond.token_mask = io.at("mask");
    } else {
      cond.labels = io.at("y");
    }
    ldm::testing::check_reference_output(case_name, model.forward(io.at("x"), io.at("t"), cond), io);
  }
}
