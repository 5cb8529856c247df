#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/tensor/npy.h"
#include "datasets/tensor/text_encoder.h"
#include "datasets/tensor/torchscript_encoders.h"
#include "shared/core/error.h"
#include "tests/support/python_reference.h"
#include "tests/support/temp_dir.h"

// TorchScriptAutoencoder and TorchScriptTextEncoder against tests/datasets/tensor/reference/
// torchscript_encoders_reference.py, which exports a tiny random VAE and tiny T5 encoders with
// tools/export/ (Debian's python3-torch), trains a tiny SentencePiece model, and saves what the
// eager Python models compute on fixed inputs. A missing python3-torch or a failing script fails
// every test here.
namespace torchscript_encoders_test {

namespace fs = std::filesystem;
using ldm::data::TorchScriptAutoencoder;
using ldm::data::TorchScriptAutoencoderOptions;
using ldm::data::TorchScriptTextEncoder;
using ldm::data::TorchScriptTextEncoderOptions;

constexpr int kMaxTokens = 8;  // MAX_TOKENS in the script
constexpr double kScale = 0.5, kShift = 0.1;

fs::path script_path() {
  return ldm::testing::source_path("tests/datasets/tensor/reference/torchscript_encoders_reference.py");
}

const ldm::testing::PythonReference& fixture() {
  static ldm::testing::PythonReference f("ldm-torchscript-encoders", script_path());
  REQUIRE_MESSAGE(f.error.empty(), f.error);
  return f;
}

std::string file(const std::string& name) { return (fixture().dir / name).string(); }
torch::Tensor npy(const std::string& name) { return ldm::data::read_npy(file(name)); }

std::vector<std::string> captions() {
  std::ifstream in(file("captions.txt"));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The message of the ldm::DataError that `fn` throws ("" if it throws none, which fails the check).
template <class F>
std::string data_error_of(F&& fn) {
  try {
    fn();
  } catch (const ldm::DataError& e) {
    return e.what();
  }
  return "";
}

void copy_with_tail(const std::string& from, const std::string& to, const std::string& tail) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  if (!tail.empty()) std::ofstream(to, std::ios::binary | std::ios::app) << tail;
}

TEST_CASE("TorchScript VAE matches the Python export: encode and decode with scaling, shift and batches") {
  SUBCASE("encode matches the Python export with scaling and shift, in batches") {
    TorchScriptAutoencoder vae(file("vae.pt"), TorchScriptAutoencoderOptions{NAN, NAN, 2, "cpu"});  // 5 images: 2+2+1
    CHECK(vae.latent_channels() == 4);
    CHECK(vae.downsampling_factor() == 2);
    CHECK(vae.scale() == doctest::Approx(kScale));
    CHECK(vae.shift() == doctest::Approx(kShift));
    CHECK(vae.batch_size() == 2);
    const auto images = npy("vae_images.npy");
    const auto expected = npy("vae_latents.npy");
    const auto latents = vae.encode(images);
    CHECK(latents.sizes() == expected.sizes());
    CHECK(max_diff(latents, expected) <= 1e-5);
    // batch size does not change the result
    TorchScriptAutoencoder whole(file("vae.pt"));
    CHECK(whole.batch_size() == 16);
    CHECK(max_diff(whole.encode(images), latents) <= 1e-5);
    CHECK(whole.encode(images.narrow(0, 0, 0)).sizes() == torch::IntArrayRef({0, 4, 8, 8}));
  }
  SUBCASE("decode matches the Python export and inverts scaling and shift") {
    TorchScriptAutoencoder vae(file("vae.pt"), TorchScriptAutoencoderOptions{NAN, NAN, 3, "cpu"});
    const auto latents = npy("vae_latents.npy");
    const auto expected = npy("vae_decoded.npy");
    const auto images = vae.decode(latents);
    CHECK(images.sizes() == torch::IntArrayRef({5, 3, 16, 16}));
    CHECK(max_diff(images, expected) <= 1e-5);
  }
  SUBCASE("scale and shift overrides apply and enter the identity") {
    const auto images = npy("vae_images.npy");
    TorchScriptAutoencoder file_values(file("vae.pt"));
    TorchScriptAutoencoder overridden(file("vae.pt"), 0.25, -0.5);
    CHECK(overridden.scale() == 0.25);
    CHECK(overridden.shift() == -0.5);
    // latents = (mean - shift) * scale with mean recovered from the file's own normalisation
    const auto mean = file_values.encode(images) / kScale + kShift;
    CHECK(max_diff(overridden.encode(images), (mean + 0.5) * 0.25) <= 1e-5);
    const auto round_trip = overridden.decode(overridden.encode(images));
    CHECK(max_diff(round_trip, file_values.decode(file_values.encode(images))) <= 1e-4);
    const auto hex = ldm::sha256_file_hex(file("vae.pt")).substr(0, 16);
    CHECK(file_values.identity() == "torchscript-vae:" + hex + ":scale=0.5:shift=0.1");
    CHECK(overridden.identity() == "torchscript-vae:" + hex + ":scale=0.25:shift=-0.5");
    CHECK(file_values.sha256() == ldm::sha256_file_hex(file("vae.pt")));
  }
}

TEST_CASE("TorchScript VAE identity follows the file bytes and its errors name the file") {
  SUBCASE("identity follows the file bytes") {
    ldm::testing::TempDir tmp("ldm-ts-vae-id");
    const std::string same = tmp.file("copy.pt"), changed = tmp.file("changed.pt");
    copy_with_tail(file("vae.pt"), same, "");
    copy_with_tail(file("vae.pt"), changed, "one more byte");  // still loads: the zip directory is found
    const TorchScriptAutoencoder a(file("vae.pt")), b(file("vae.pt")), c(same), d(changed), e(file("vae_seed2.pt"));
    CHECK(a.identity() == b.identity());
    CHECK(a.identity() == c.identity());  // content, not path
    CHECK(a.identity() != d.identity());
    CHECK(a.identity() != e.identity());
    CHECK(max_diff(a.encode(npy("vae_images.npy")), d.encode(npy("vae_images.npy"))) == 0.0);
  }
  SUBCASE("errors name the file") {
    ldm::testing::TempDir tmp("ldm-ts-vae-err");
    const std::string missing = tmp.file("missing.pt");
    auto msg = data_error_of([&] { TorchScriptAutoencoder x(missing); });
    CHECK(msg.find(missing) != std::string::npos);
    CHECK(msg.find("no such file") != std::string::npos);

    const std::string text = tmp.file("not-a-model.pt");
    std::ofstream(text) << "hello, I am not a zip archive\n";
    msg = data_error_of([&] { TorchScriptAutoencoder x(text); });
    CHECK(msg.find(text) != std::string::npos);
    CHECK(msg.find("not a TorchScript archive") != std::string::npos);

    msg = data_error_of([&] { TorchScriptAutoencoder x(file("state_dict.pt")); });  // torch.save, not jit
    CHECK(msg.find(file("state_dict.pt")) != std::string::npos);
    CHECK(msg.find("not a TorchScript archive") != std::string::npos);

    msg = data_error_of([&] { TorchScriptAutoencoder x(file("vae_no_attr.pt")); });
    CHECK(msg.find(file("vae_no_attr.pt")) != std::string::npos);
    CHECK(msg.find("scaling_factor") != std::string::npos);

    msg = data_error_of([&] { TorchScriptAutoencoder x(file("t5.pt")); });  // a text encoder: no encode()
    CHECK(msg.find(file("t5.pt")) != std::string::npos);
    CHECK(msg.find("encode") != std::string::npos);

    TorchScriptAutoencoder bad(file("vae_bad_shape.pt"));
    msg = data_error_of([&] { bad.encode(npy("vae_images.npy")); });
    CHECK(msg.find(file("vae_bad_shape.pt")) != std::string::npos);
    CHECK(msg.find("[5, 3, 16, 16]") != std::string::npos);  // what it returned
    CHECK(msg.find("[5, 4, 8, 8]") != std::string::npos);    // what it should have

    TorchScriptAutoencoder vae(file("vae.pt"));
    CHECK_THROWS_AS(vae.encode(torch::zeros({1, 3, 15, 16})), ldm::Error);  // not divisible by f
    CHECK_THROWS_AS(vae.decode(torch::zeros({1, 3, 8, 8})), ldm::Error);    // wrong channels
  }
}

TEST_CASE("TorchScript text encoder matches python sentencepiece and the Python T5") {
  SUBCASE("tokenizes like python sentencepiece with EOS and truncation") {
    TorchScriptTextEncoder enc(file("t5.pt"), file("tok.model"), kMaxTokens);
    CHECK(enc.eos_id() == 1);
    CHECK(enc.pad_id() == 0);
    const auto ids = npy("text_ids.npy");
    const auto lengths = npy("text_lengths.npy");
    const auto caps = captions();
    REQUIRE(static_cast<int64_t>(caps.size()) == ids.size(0));
    bool truncated = false;
    for (std::size_t i = 0; i < caps.size(); ++i) {
      CAPTURE(caps[i]);
      const auto tok = enc.tokenize(caps[i]);
      const int64_t len = lengths[static_cast<int64_t>(i)].item<int64_t>();
      REQUIRE(static_cast<int64_t>(tok.size()) == len);
      CHECK(tok.back() == 1);
      const auto row = ids[static_cast<int64_t>(i)];
      for (int64_t j = 0; j < len; ++j) CHECK(tok[static_cast<std::size_t>(j)] == row[j].item<int64_t>());
      truncated = truncated || len == kMaxTokens;
    }
    CHECK(truncated);
    CHECK(enc.tokenize("") == std::vector<std::int64_t>{1});
  }
  SUBCASE("features match the Python T5 (gated-gelu and relu)") {
    for (const std::string name : {"t5", "t5_relu"}) {
      CAPTURE(name);
      TorchScriptTextEncoder enc(file(name + ".pt"), file("tok.model"), kMaxTokens);
      CHECK(enc.dim() == 32);
      CHECK(enc.max_tokens() == kMaxTokens);
      const auto expected = npy(name + "_features.npy");  // [n, L, D], padding rows are the model's
      const auto lengths = npy("text_lengths.npy");
      const auto caps = captions();
      for (std::size_t i = 0; i < caps.size(); ++i) {
        CAPTURE(caps[i]);
        const auto e = enc.encode(caps[i]);
        const int64_t len = lengths[static_cast<int64_t>(i)].item<int64_t>();
        REQUIRE(e.length == len);
        CHECK(e.tokens.sizes() == torch::IntArrayRef({kMaxTokens, 32}));
        CHECK((e.tokens.scalar_type() == torch::kFloat32));
        CHECK(max_diff(e.tokens.narrow(0, 0, len), expected[static_cast<int64_t>(i)].narrow(0, 0, len)) <= 1e-5);
        if (len < kMaxTokens) CHECK(e.tokens.narrow(0, len, kMaxTokens - len).abs().max().item<float>() == 0.0f);
        CHECK((e.mask.scalar_type() == torch::kBool));
        CHECK(e.mask.sum().item<int64_t>() == len);
        CHECK(e.mask.narrow(0, 0, len).all().item<bool>());
        const auto pooled = expected[static_cast<int64_t>(i)].narrow(0, 0, len).mean(0);
        CHECK(max_diff(e.pooled, pooled) <= 1e-5);
        CHECK(max_diff(e.pooled, e.tokens.narrow(0, 0, len).mean(0)) <= 1e-6);
      }
    }
  }
}

TEST_CASE("TorchScript text encoder encode_batch, identity and errors") {
  SUBCASE("encode_batch equals per-caption encode") {
    TorchScriptTextEncoder enc(file("t5.pt"), file("tok.model"), kMaxTokens, TorchScriptTextEncoderOptions{4, "cpu"});
    const auto caps = captions();  // 6 captions: batches of 4 and 2
    const auto batch = enc.encode_batch(caps);
    REQUIRE(batch.size() == caps.size());
    for (std::size_t i = 0; i < caps.size(); ++i) {
      CAPTURE(caps[i]);
      const auto one = enc.encode(caps[i]);
      CHECK(batch[i].length == one.length);
      CHECK(max_diff(batch[i].tokens, one.tokens) <= 1e-5);  // other batch shapes: other float summation order
      CHECK(torch::equal(batch[i].mask, one.mask));
      CHECK(max_diff(batch[i].pooled, one.pooled) <= 1e-5);
    }
    CHECK(enc.encode_batch({}).empty());
    // The interface's default (used by the built-in encoder) loops over encode().
    const ldm::data::BuiltinTextEncoder builtin(16, kMaxTokens, 5);
    const auto defaults = builtin.encode_batch(caps);
    REQUIRE(defaults.size() == caps.size());
    for (std::size_t i = 0; i < caps.size(); ++i) {
      const auto one = builtin.encode(caps[i]);
      CHECK(defaults[i].length == one.length);
      CHECK(torch::equal(defaults[i].tokens, one.tokens));
      CHECK(torch::equal(defaults[i].pooled, one.pooled));
    }
  }
  SUBCASE("identity hashes model and tokenizer") {
    ldm::testing::TempDir tmp("ldm-ts-text-id");
    const TorchScriptTextEncoder a(file("t5.pt"), file("tok.model"), kMaxTokens);
    const TorchScriptTextEncoder b(file("t5.pt"), file("tok.model"), kMaxTokens);
    const auto model_hex = ldm::sha256_file_hex(file("t5.pt")).substr(0, 16);
    const auto tok_hex = ldm::sha256_file_hex(file("tok.model")).substr(0, 16);
    CHECK(a.identity() == "torchscript-text:" + model_hex + ":" + tok_hex + ":tokens=8");
    CHECK(a.identity() == b.identity());
    CHECK(a.identity() != TorchScriptTextEncoder(file("t5_relu.pt"), file("tok.model"), kMaxTokens).identity());
    CHECK(a.identity() != TorchScriptTextEncoder(file("t5.pt"), file("tok.model"), 16).identity());
    copy_with_tail(file("t5.pt"), tmp.file("t5-changed.pt"), "x");
    CHECK(a.identity() != TorchScriptTextEncoder(tmp.file("t5-changed.pt"), file("tok.model"), kMaxTokens).identity());
    copy_with_tail(file("t5.pt"), tmp.file("t5-copy.pt"), "");
    CHECK(a.identity() == TorchScriptTextEncoder(tmp.file("t5-copy.pt"), file("tok.model"), kMaxTokens).identity());
  }
  SUBCASE("errors name the file") {
    ldm::testing::TempDir tmp("ldm-ts-text-err");
    auto msg = data_error_of([&] { TorchScriptTextEncoder x(tmp.file("none.pt"), file("tok.model"), kMaxTokens); });
    CHECK(msg.find(tmp.file("none.pt")) != std::string::npos);
    msg = data_error_of([&] { TorchScriptTextEncoder x(file("t5.pt"), tmp.file("none.model"), kMaxTokens); });
    CHECK(msg.find(tmp.file("none.model")) != std::string::npos);
    std::ofstream(tmp.file("junk.model")) << "not a sentencepiece model";
    msg = data_error_of([&] { TorchScriptTextEncoder x(file("t5.pt"), tmp.file("junk.model"), kMaxTokens); });
    CHECK(msg.find(tmp.file("junk.model")) != std::string::npos);
    msg = data_error_of([&] { TorchScriptTextEncoder x(file("state_dict.pt"), file("tok.model"), kMaxTokens); });
    CHECK(msg.find(file("state_dict.pt")) != std::string::npos);
    CHECK(msg.find("not a TorchScript archive") != std::string::npos);
    msg = data_error_of([&] { TorchScriptTextEncoder x(file("vae.pt"), file("tok.model"), kMaxTokens); });
    CHECK(msg.find(file("vae.pt")) != std::string::npos);
    CHECK(msg.find("hidden_size") != std::string::npos);
  }
}

}  // namespace torchscript_encoders_test
