#include "datasets/tensor/record_encoding.h"

#include <torch/torch.h>

#include <cstring>

#include "datasets/tensor/npy.h"
#include "datasets/tensor/torchscript_encoders.h"
#include "shared/core/error.h"

namespace ldm::data {

// ---- precomputed caption features ---------------------------------------------------------

PrecomputedText::PrecomputedText(const std::vector<std::string>& files) {
  if (files.empty()) throw DataError("--text-embeddings: no files");
  identity_ = "precomputed-text";
  for (std::size_t f = 0; f < files.size(); ++f) {
    const std::string& path = files[f];
    const std::vector<std::string> keys = read_npz_strings(path, "keys");
    std::vector<std::string> wanted;  // the numeric members only: `keys` is a string array
    for (const std::string& k : npz_keys(path))
      if (k == "tokens" || k == "lengths" || k == "mask" || k == "pooled") wanted.push_back(k);
    NpzMap m = read_npz_members(path, wanted);
    auto member = [&](const char* name) -> at::Tensor {
      auto it = m.find(name);
      return it == m.end() ? at::Tensor() : it->second;
    };
    at::Tensor tokens = member("tokens");
    if (!tokens.defined() || tokens.dim() != 3) throw DataError(path + ": needs a 'tokens' member of shape [N, L, D]");
    tokens = tokens.to(torch::kFloat32);
    const int64_t n = tokens.size(0), l = tokens.size(1), d = tokens.size(2);
    if (static_cast<int64_t>(keys.size()) != n)
      throw DataError(path + ": 'keys' has " + std::to_string(keys.size()) + " entries, 'tokens' " + std::to_string(n));
    if (dim_ == 0) dim_ = static_cast<int>(d);
    if (d != dim_)
      throw DataError(path + ": features of width " + std::to_string(d) + ", earlier files have " +
                      std::to_string(dim_));
    at::Tensor lengths = member("lengths");
    if (lengths.defined()) {
      lengths = lengths.to(torch::kInt64).reshape({-1});
    } else if (at::Tensor mask = member("mask"); mask.defined()) {
      if (mask.dim() != 2 || mask.size(0) != n || mask.size(1) != l)
        throw DataError(path + ": 'mask' must be [N, L] = [" + std::to_string(n) + ", " + std::to_string(l) + "]");
      lengths = mask.to(torch::kInt64).sum(1);
    } else {
      lengths = torch::full({n}, l, torch::kInt64);
    }
    if (lengths.size(0) != n || (lengths < 0).any().item<bool>() || (lengths > l).any().item<bool>())
      throw DataError(path + ": 'lengths' must hold N values in [0, L]");
    at::Tensor pooled = member("pooled");
    if (pooled.defined()) {
      if (pooled.dim() != 2 || pooled.size(0) != n || pooled.size(1) != d)
        throw DataError(path + ": 'pooled' must be [N, D] = [" + std::to_string(n) + ", " + std::to_string(d) + "]");
      pooled = pooled.to(torch::kFloat32);
    } else {
      auto mask = (torch::arange(l).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kFloat32);  // [N, L]
      pooled = (tokens * mask.unsqueeze(2)).sum(1) / mask.sum(1, true).clamp_min(1.0);
    }
    for (int64_t i = 0; i < n; ++i) {
      if (!index_.emplace(keys[static_cast<std::size_t>(i)], Entry{f, static_cast<std::size_t>(i)}).second)
        throw DataError(path + ": key '" + keys[static_cast<std::size_t>(i)] + "' appears in an earlier row or file");
    }
    tokens_.push_back(tokens.contiguous());
    lengths_.push_back(lengths.contiguous());
    pooled_.push_back(pooled.contiguous());
    identity_ += ":" + sha256_file_hex(path).substr(0, 16);
  }
}

TextEmbedding PrecomputedText::at(const std::string& key) const {
  auto it = index_.find(key);
  if (it == index_.end()) throw DataError("no precomputed caption features for key '" + key + "'");
  const auto [f, row] = it->second;
  TextEmbedding e;
  e.length = lengths_[f][static_cast<int64_t>(row)].item<int64_t>();
  e.tokens = tokens_[f][static_cast<int64_t>(row)];
  e.mask = torch::arange(e.tokens.size(0)) < e.length;
  e.pooled = pooled_[f][static_cast<int64_t>(row)];
  return e;
}

// ---- encoder ------------------------------------------------------------------------------

void set_text_features(Record& r, const TextEmbedding& e) {
  const auto tokens = e.tokens.narrow(0, 0, e.length).to(torch::kFloat32).contiguous();
  const auto pooled = e.pooled.to(torch::kFloat32).contiguous();
  r.text_len = static_cast<std::int32_t>(e.length);
  r.text_dim = static_cast<std::int32_t>(e.tokens.size(1));
  r.text_tokens.assign(tokens.data_ptr<float>(), tokens.data_ptr<float>() + tokens.numel());
  r.text_pooled.assign(pooled.data_ptr<float>(), pooled.data_ptr<float>() + pooled.numel());
}

TorchRecordEncoder::TorchRecordEncoder(std::shared_ptr<const Autoencoder> ae, std::shared_ptr<const TextEncoder> text,
                                       std::shared_ptr<const PrecomputedText> precomputed, int batch)
    : ae_(std::move(ae)), text_(std::move(text)), precomputed_(std::move(precomputed)), batch_(std::max(1, batch)) {
  if (text_ && precomputed_) throw Error("caption features come from a text encoder or precomputed files, not both");
}

std::string TorchRecordEncoder::text_identity() const {
  if (text_) return text_->identity();
  if (precomputed_) return precomputed_->identity();
  return "";
}

void TorchRecordEncoder::encode(std::vector<Record>& records, const std::vector<std::string>& keys,
                                const std::string& shard) const {
  torch::NoGradGuard no_grad;
  if (ae_) {
    // Same-shape records together (aspect-ratio buckets), in record order within a shape.
    std::map<std::vector<std::int64_t>, std::vector<std::size_t>> by_shape;
    for (std::size_t i = 0; i < records.size(); ++i) by_shape[records[i].shape].push_back(i);
    for (const auto& [shape, members] : by_shape) {
      for (std::size_t b = 0; b < members.size(); b += static_cast<std::size_t>(batch_)) {
        const std::size_t e = std::min(members.size(), b + static_cast<std::size_t>(batch_));
        std::vector<at::Tensor> images;
        for (std::size_t k = b; k < e; ++k) {
          const Record& r = records[members[k]];
          images.push_back(image_u8_to_tensor(r.payload.data(), r.shape[0], r.shape[1]));
        }
        const at::Tensor latents = ae_->encode(torch::stack(images)).to(torch::kFloat32).contiguous();
        for (std::size_t k = b; k < e; ++k) {
          Record& r = records[members[k]];
          const at::Tensor z = latents[static_cast<int64_t>(k - b)].contiguous();
          r.shape = {z.size(0), z.size(1), z.size(2)};
          r.payload.resize(static_cast<std::size_t>(z.numel()) * sizeof(float));
          std::memcpy(r.payload.data(), z.data_ptr<float>(), r.payload.size());
        }
      }
    }
  }
  if (text_) {
    std::vector<std::size_t> with_caption;
    for (std::size_t i = 0; i < records.size(); ++i)
      if (!records[i].caption.empty()) with_caption.push_back(i);
    for (std::size_t b = 0; b < with_caption.size(); b += static_cast<std::size_t>(batch_)) {
      const std::size_t e = std::min(with_caption.size(), b + static_cast<std::size_t>(batch_));
      std::vector<std::string> captions;
      for (std::size_t k = b; k < e; ++k) captions.push_back(records[with_caption[k]].caption);
      const auto features = text_->encode_batch(captions);
      for (std::size_t k = b; k < e; ++k) set_text_features(records[with_caption[k]], features[k - b]);
    }
  }
  if (precomputed_) {
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (!precomputed_->has(keys.at(i)))
        throw DataError(shard + ": no precomputed caption features for sample '" + keys[i] + "' (record " +
                        std::to_string(records[i].id) + ")");
      set_text_features(records[i], precomputed_->at(keys[i]));
    }
  }
}

}  // namespace ldm::data
