#include "datasets/tensor/text_encoder.h"

#include <torch/torch.h>

#include <cctype>
#include <cmath>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/seeds.h"

namespace ldm::data {

std::vector<TextEmbedding> TextEncoder::encode_batch(const std::vector<std::string>& captions) const {
  std::vector<TextEmbedding> out;
  out.reserve(captions.size());
  for (const auto& c : captions) out.push_back(encode(c));
  return out;
}

BuiltinTextEncoder::BuiltinTextEncoder(int dim, int max_tokens, std::uint64_t seed, int vocab)
    : dim_(dim), max_tokens_(max_tokens), vocab_(vocab), seed_(seed) {
  if (dim < 2 || dim % 2) throw Error("builtin text encoder: dim must be even and >= 2, got " + std::to_string(dim));
  if (max_tokens < 1) throw Error("builtin text encoder: max_tokens must be >= 1");
  if (vocab < 2) throw Error("builtin text encoder: vocab must be >= 2");
  auto gen = at::detail::createCPUGenerator(derive_seed(seed, Purpose::TextEncoderTable));
  table_ = at::empty({vocab, dim}, torch::kFloat32).normal_(0.0, 1.0 / std::sqrt(double(dim)), gen);
  // positions [L, D]: sin on even, cos on odd columns, transformer-style
  auto pos = torch::arange(max_tokens, torch::kFloat64).unsqueeze(1);                              // [L,1]
  auto freq = torch::exp(torch::arange(0, dim, 2, torch::kFloat64) * (-std::log(10000.0) / dim));  // [D/2]
  auto angles = pos * freq.unsqueeze(0);                                                           // [L,D/2]
  positions_ = torch::stack({angles.sin(), angles.cos()}, 2).reshape({max_tokens, dim}).to(torch::kFloat32) * 0.1;
}

std::vector<std::int64_t> BuiltinTextEncoder::tokenize(const std::string& caption) const {
  std::vector<std::int64_t> ids;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && static_cast<int>(ids.size()) < max_tokens_)
      ids.push_back(1 + static_cast<std::int64_t>(fnv1a64(word) % std::uint64_t(vocab_ - 1)));
    word.clear();
  };
  for (char c : caption) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else flush();
  }
  flush();
  return ids;
}

TextEmbedding BuiltinTextEncoder::encode(const std::string& caption) const {
  auto ids = tokenize(caption);
  TextEmbedding out;
  out.length = static_cast<std::int64_t>(ids.size());
  out.tokens = torch::zeros({max_tokens_, dim_}, torch::kFloat32);
  out.mask = torch::zeros({max_tokens_}, torch::kBool);
  if (out.length > 0) {
    auto idx = torch::tensor(ids, torch::kInt64);
    auto real = table_.index_select(0, idx) + positions_.narrow(0, 0, out.length);  // [L, D]
    out.tokens.narrow(0, 0, out.length).copy_(real);
    out.mask.narrow(0, 0, out.length).fill_(true);
    out.pooled = real.mean(0);
  } else {
    out.pooled = torch::zeros({dim_}, torch::kFloat32);
  }
  return out;
}

std::string BuiltinTextEncoder::identity() const {
  return "builtin-text:dim=" + std::to_string(dim_) + ",max_tokens=" + std::to_string(max_tokens_) +
         ",vocab=" + std::to_string(vocab_) + ",seed=" + std::to_string(seed_);
}

}  // namespace ldm::data
