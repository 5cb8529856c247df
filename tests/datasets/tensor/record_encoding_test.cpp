// The importers' record encoder: latents and caption features as the encoders compute them, and
// precomputed caption features read from numpy's .npz files.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cstring>

#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/npy.h"
#include "datasets/tensor/record_encoding.h"
#include "datasets/tensor/text_encoder.h"
#include "shared/core/error.h"
#include "tests/support/python_reference.h"

using namespace ldm::data;

namespace record_encoding_test {

Record image(std::uint64_t id, int h, int w, const std::string& caption) {
  Record r;
  r.id = id;
  r.caption = caption;
  r.shape = {h, w, 3};
  for (int i = 0; i < h * w * 3; ++i) r.payload.push_back(static_cast<std::uint8_t>((i * 7 + id * 31) % 256));
  return r;
}

at::Tensor latent_of(const Record& r) {
  return torch::from_blob(const_cast<std::uint8_t*>(r.payload.data()), r.shape, torch::kFloat32).clone();
}

}  // namespace record_encoding_test

using namespace record_encoding_test;

TEST_CASE("record encoder: latents per shape bucket and caption features equal the encoders' own outputs") {
  auto ae = std::make_shared<const PatchAutoencoder>(2, 0.5, 0.1);
  auto text = std::make_shared<const BuiltinTextEncoder>(8, 6, 0);
  TorchRecordEncoder enc(ae, text, nullptr, /*batch=*/2);
  CHECK(enc.kind() == PayloadKind::LatentF32);
  CHECK(enc.identity() == ae->identity());
  CHECK(enc.text_identity() == text->identity());
  std::vector<Record> records = {image(0, 4, 4, "a red circle"), image(1, 4, 8, "two blue squares on the left"),
                                 image(2, 4, 4, ""), image(3, 4, 8, "green"), image(4, 4, 4, "a b c d e f g h")};
  const std::vector<Record> originals = records;
  enc.encode(records, {"k0", "k1", "k2", "k3", "k4"}, "shard-0");
  for (std::size_t i = 0; i < records.size(); ++i) {
    CAPTURE(i);
    const Record& o = originals[i];
    const auto expected = ae->encode(image_u8_to_tensor(o.payload.data(), o.shape[0], o.shape[1]).unsqueeze(0))[0];
    CHECK(records[i].shape == expected.sizes().vec());
    CHECK(torch::equal(latent_of(records[i]), expected));
    if (o.caption.empty()) {
      CHECK(records[i].text_len == 0);
      continue;
    }
    const TextEmbedding e = text->encode(o.caption);
    REQUIRE(records[i].text_len == e.length);
    CHECK(records[i].text_dim == 8);
    CHECK(torch::equal(torch::tensor(records[i].text_tokens).view({e.length, 8}), e.tokens.narrow(0, 0, e.length)));
    CHECK(torch::equal(torch::tensor(records[i].text_pooled), e.pooled));
  }
  CHECK(records[4].text_len == 6);  // truncated to the encoder's token slots
}

TEST_CASE("precomputed caption features: keys, lengths or mask, default pooled, and a missing key named") {
  ldm::testing::PythonReference ref("ldm-precomputed", "make.py", R"PY(
import os, sys
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(1)
tok = rng.standard_normal((3, 4, 5)).astype(np.float32)
np.savez(os.path.join(out, "a.npz"), keys=np.array(["x/1.JPEG", "x/2.JPEG", "y/3.JPEG"]), tokens=tok,
         lengths=np.array([2, 4, 1]))
mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=bool)
pooled = rng.standard_normal((2, 5)).astype(np.float64)
np.savez_compressed(os.path.join(out, "b.npz"), keys=np.array(["z", "w"]), tokens=tok[:2].astype(np.float16),
                    mask=mask, pooled=pooled)
np.save(os.path.join(out, "tok.npy"), tok)
np.save(os.path.join(out, "tok16.npy"), tok[:2].astype(np.float16).astype(np.float32))
np.save(os.path.join(out, "pooled.npy"), pooled.astype(np.float32))
np.savez(os.path.join(out, "dup.npz"), keys=np.array(["z"]), tokens=tok[:1])
)PY");
  REQUIRE_MESSAGE(ref.error.empty(), ref.error);
  const std::string a = (ref.dir / "a.npz").string(), b = (ref.dir / "b.npz").string();
  PrecomputedText pre({a, b});
  CHECK(pre.size() == 5);
  CHECK(pre.dim() == 5);
  auto read = [&](const char* name) { return ldm::data::read_npy((ref.dir / name).string()); };
  const auto t = read("tok.npy"), t16 = read("tok16.npy"), pooled = read("pooled.npy");
  auto e = pre.at("x/2.JPEG");
  CHECK(e.length == 4);
  CHECK(torch::equal(e.tokens, t[1]));
  CHECK(torch::allclose(e.pooled, t[1].mean(0)));
  e = pre.at("x/1.JPEG");
  CHECK(e.length == 2);
  CHECK(torch::allclose(e.pooled, t[0].narrow(0, 0, 2).mean(0)));
  CHECK(e.mask.sum().item<int64_t>() == 2);
  e = pre.at("z");  // from the mask, float16 tokens, explicit pooled
  CHECK(e.length == 3);
  CHECK(torch::equal(e.tokens, t16[0]));
  CHECK(torch::allclose(e.pooled, pooled[0]));
  CHECK_THROWS_WITH_AS(pre.at("nope"), doctest::Contains("'nope'"), ldm::DataError);
  CHECK(pre.identity().rfind("precomputed-text:", 0) == 0);
  CHECK(PrecomputedText({a}).identity() != pre.identity());
  CHECK_THROWS_WITH_AS(PrecomputedText({b, (ref.dir / "dup.npz").string()}), doctest::Contains("'z'"), ldm::DataError);

  // Through the record encoder: features by sample key, images untouched without an autoencoder.
  TorchRecordEncoder enc(nullptr, nullptr, std::make_shared<const PrecomputedText>(std::vector<std::string>{a, b}));
  CHECK(enc.kind() == PayloadKind::ImageU8);
  std::vector<Record> records = {image(0, 4, 4, "cap"), image(1, 4, 4, "cap")};
  const auto payload = records[0].payload;
  enc.encode(records, {"y/3.JPEG", "w"}, "s");
  CHECK(records[0].payload == payload);
  CHECK(records[0].text_len == 1);
  CHECK(records[1].text_len == 1);
  CHECK_THROWS_WITH_AS(enc.encode(records, {"y/3.JPEG", "missing-key"}, "shard-7"),
                       doctest::Contains("shard-7: no precomputed caption features for sample 'missing-key'"),
                       ldm::DataError);
}
