// The caption -> token-embedding interface, and the built-in frozen encoder.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ldm::data {

struct TextEmbedding {
  at::Tensor tokens;  // [max_tokens, dim] float; rows >= length are zero (padding is the model's job)
  at::Tensor mask;    // [max_tokens] bool; true for the `length` real tokens
  std::int64_t length = 0;
  at::Tensor pooled;  // [dim] float; a summary vector of the caption
};

class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  virtual TextEmbedding encode(const std::string& caption) const = 0;
  // Encodes several captions; result i equals encode(captions[i]). The default loops over encode();
  // encoders that batch (TorchScriptTextEncoder) override it.
  virtual std::vector<TextEmbedding> encode_batch(const std::vector<std::string>& captions) const;
  virtual int dim() const = 0;
  virtual int max_tokens() const = 0;
  virtual std::string identity() const = 0;  // recorded in shard headers and checkpoints
};

// Built-in frozen encoder: lower-cased words hashed into a vocabulary, a seeded Gaussian embedding
// table plus sin-cos positions; pooled = mean of the real tokens. Deterministic for a given
// (dim, max_tokens, vocab, seed) and NOT comparable with the paper's text encoder: it gives tests and
// the quickstart real, distinct token sequences without downloading weights.
class BuiltinTextEncoder final : public TextEncoder {
 public:
  BuiltinTextEncoder(int dim, int max_tokens, std::uint64_t seed, int vocab = 4096);
  TextEmbedding encode(const std::string& caption) const override;
  int dim() const override { return dim_; }
  int max_tokens() const override { return max_tokens_; }
  std::string identity() const override;

  // Token ids of a caption (words beyond max_tokens are dropped). Id 0 is never produced.
  std::vector<std::int64_t> tokenize(const std::string& caption) const;

 private:
  int dim_, max_tokens_, vocab_;
  std::uint64_t seed_;
  at::Tensor table_;      // [vocab, dim]
  at::Tensor positions_;  // [max_tokens, dim]
};

}  // namespace ldm::data
