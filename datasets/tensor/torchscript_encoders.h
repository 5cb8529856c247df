// Autoencoder and text encoder backed by TorchScript files, for encoding real datasets with real
// models (the Stable Diffusion VAE, a T5 encoder). tools/export/ turns PyTorch checkpoints into such
// files with Debian's python3-torch 1.13 (newer PyTorch may emit operators LibTorch 1.13 lacks);
// tools/export/README.md describes the module contracts repeated below.
//
// Both classes load the module once, run it in eval mode under torch::NoGradGuard, chunked into
// batches, and record the SHA-256 of their files in identity() (hashed once, at construction), so
// shards encoded with different weights or tokenizers are never mixed.
//
// Thread-safety: encode/decode are const and may be called from several threads at once (the
// TorchScript interpreter runs a shared module concurrently; the SentencePiece processor's
// encoding is const).
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/text_encoder.h"
#include "shared/core/sha256.h"

namespace ldm::data {

struct TorchScriptAutoencoderOptions {
  // Overrides of the file's scaling_factor / shift_factor; NaN keeps the file's value.
  double scale = std::numeric_limits<double>::quiet_NaN();
  double shift = std::numeric_limits<double>::quiet_NaN();
  int batch_size = 16;         // images (or latents) per module call
  std::string device = "cpu";  // where the module runs ("cpu", "cuda", "cuda:1"); results come back
                               // on the input's device
};

// A TorchScript autoencoder file (tools/export/export_vae.py writes one). The module must have
//   encode(x: float [N,3,H,W] in [-1,1]) -> raw posterior-mean latent [N, C, H/f, W/f]
//   decode(z: raw latent [N,C,h,w])      -> images [N,3,h*f,w*f] in [-1,1]
//   attributes scaling_factor (float), shift_factor (float), latent_channels (int),
//              downsampling_factor (int).
// encode() returns (mean - shift) * scale; decode() computes module.decode(latent / scale + shift).
// identity() = "torchscript-vae:<first 16 hex of the file's SHA-256>:scale=<%.6g>:shift=<%.6g>".
// Construction throws ldm::DataError naming the file for: a missing/unreadable file, a file that is
// not a TorchScript archive, a missing method or attribute, bad attribute values. encode/decode
// throw ldm::DataError naming the file when the module fails or returns the wrong shape.
class TorchScriptAutoencoder final : public Autoencoder {
 public:
  explicit TorchScriptAutoencoder(const std::string& path, TorchScriptAutoencoderOptions options = {});
  TorchScriptAutoencoder(const std::string& path, double scale, double shift, int batch_size = 16);
  ~TorchScriptAutoencoder() override;
  TorchScriptAutoencoder(const TorchScriptAutoencoder&) = delete;
  TorchScriptAutoencoder& operator=(const TorchScriptAutoencoder&) = delete;

  at::Tensor encode(const at::Tensor& images) const override;
  at::Tensor decode(const at::Tensor& latents) const override;
  int latent_channels() const override;
  int downsampling_factor() const override;
  double scale() const override;
  double shift() const override;
  std::string identity() const override;

  const std::string& path() const;
  const std::string& sha256() const;  // full hex digest of the file
  int batch_size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct TorchScriptTextEncoderOptions {
  int batch_size = 16;         // captions per module call in encode_batch
  std::string device = "cpu";  // where the module runs; embeddings are returned on the CPU
};

// A TorchScript text encoder (tools/export/export_text_encoder.py writes a T5 encoder) with its
// SentencePiece tokenizer model. The module must have
//   forward(input_ids: int64 [N,L], attention_mask: int64 [N,L]) -> float [N,L,D]
//   attribute hidden_size (int) = D.
// Tokenisation is T5's: the SentencePiece ids of the caption, truncated to max_tokens - 1, then the
// tokenizer's EOS id; the mask is 1 for those, and the rest (up to max_tokens) is the tokenizer's
// pad id (0 when it has none). The module always sees L = max_tokens.
// encode(): tokens [max_tokens, D] (rows >= length zeroed), mask, length (>= 1: EOS is always
// there), and pooled = the mean of the real tokens' features, EOS included. T5 has no pooled
// output of its own; the masked mean is our choice.
// identity() = "torchscript-text:<16 hex of the model's SHA-256>:<16 hex of the tokenizer's
// SHA-256>:tokens=<max_tokens>".
// Errors (ldm::DataError naming the file): missing files, a file that is not a TorchScript archive,
// a missing forward or hidden_size, a tokenizer that does not load or has no EOS id, a module that
// fails or returns the wrong shape.
class TorchScriptTextEncoder final : public TextEncoder {
 public:
  TorchScriptTextEncoder(const std::string& model_path, const std::string& tokenizer_path, int max_tokens,
                         TorchScriptTextEncoderOptions options = {});
  ~TorchScriptTextEncoder() override;
  TorchScriptTextEncoder(const TorchScriptTextEncoder&) = delete;
  TorchScriptTextEncoder& operator=(const TorchScriptTextEncoder&) = delete;

  TextEmbedding encode(const std::string& caption) const override;
  // One module call per batch_size captions (all padded to max_tokens).
  std::vector<TextEmbedding> encode_batch(const std::vector<std::string>& captions) const override;
  int dim() const override;
  int max_tokens() const override;
  std::string identity() const override;

  // The ids the module sees for `caption`, without padding (length = the returned size).
  std::vector<std::int64_t> tokenize(const std::string& caption) const;
  std::int64_t eos_id() const;
  std::int64_t pad_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ldm::data
