#include <torch/torch.h>
// torch before doctest: glog's CHECK would otherwise replace doctest's.
#include <doctest/doctest.h>

#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/text_encoder.h"

using namespace ldm::data;

TEST_CASE("patch autoencoder round trip is bit-exact and has 3*f*f channels") {
  auto gen = at::detail::createCPUGenerator(7);
  for (int f : {1, 2, 4}) {
    PatchAutoencoder ae(f);
    auto x = torch::rand({3, 3, 16, 24}, gen) * 2 - 1;
    auto z = ae.encode(x);
    CHECK(z.sizes() == torch::IntArrayRef({3, 3 * f * f, 16 / f, 24 / f}));
    CHECK(ae.latent_channels() == 3 * f * f);
    CHECK(torch::equal(ae.decode(z), x));
  }
}

TEST_CASE("patch autoencoder latent channels hold the pixels of one patch") {
  PatchAutoencoder ae(2);
  auto x = torch::arange(3 * 4 * 4, torch::kFloat32).reshape({1, 3, 4, 4});
  auto z = ae.encode(x);
  // channel (c=0, dy=0, dx=1) at latent (0, 0) is pixel (0, 0, 1)
  CHECK(z[0][1][0][0].item<float>() == x[0][0][0][1].item<float>());
  // channel (c=2, dy=1, dx=0) at latent (1, 1) is pixel (2, 3, 2)
  CHECK(z[0][2 * 4 + 2][1][1].item<float>() == x[0][2][3][2].item<float>());
}

TEST_CASE("patch autoencoder applies scale and shift, and its identity names them") {
  PatchAutoencoder plain(2), scaled(2, 0.5, 0.25);
  auto x = torch::rand({1, 3, 8, 8});
  CHECK(torch::allclose(scaled.encode(x), (plain.encode(x) - 0.25) * 0.5));
  CHECK(torch::allclose(scaled.decode(scaled.encode(x)), x, 0, 1e-6));
  CHECK(plain.identity() != scaled.identity());
}

TEST_CASE("patch autoencoder rejects images not divisible by the factor") {
  PatchAutoencoder ae(4);
  CHECK_THROWS(ae.encode(torch::zeros({1, 3, 10, 8})));
}

TEST_CASE("u8 pixels map to [-1, 1] in CHW order") {
  std::vector<std::uint8_t> px = {0, 128, 255, 255, 0, 0};  // 1x2 image
  auto t = image_u8_to_tensor(px.data(), 1, 2);
  CHECK(t.sizes() == torch::IntArrayRef({3, 1, 2}));
  CHECK(t[0][0][0].item<float>() == doctest::Approx(-1.0));
  CHECK(t[2][0][0].item<float>() == doctest::Approx(1.0));
  CHECK(t[0][0][1].item<float>() == doctest::Approx(1.0));
}

TEST_CASE("builtin text encoder is deterministic, masks padding and tells captions apart") {
  BuiltinTextEncoder enc(16, 8, 42), other_seed(16, 8, 43);
  auto a = enc.encode("a red square on the left");
  auto b = enc.encode("a red square on the left");
  auto c = enc.encode("a red square on the right");
  CHECK(a.length == 6);
  CHECK(a.tokens.sizes() == torch::IntArrayRef({8, 16}));
  CHECK(torch::equal(a.tokens, b.tokens));
  CHECK(!torch::equal(a.tokens, c.tokens));
  CHECK(a.mask.sum().item<int64_t>() == 6);
  CHECK(torch::equal(a.tokens.narrow(0, 6, 2), torch::zeros({2, 16})));
  CHECK(!torch::equal(a.tokens, other_seed.encode("a red square on the left").tokens));
  CHECK(enc.identity() != other_seed.identity());
  // longer than max_tokens: truncated, never overflowing
  CHECK(enc.encode("one two three four five six seven eight nine ten").length == 8);
}
