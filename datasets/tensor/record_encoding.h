// The in-process RecordEncoder (importers.h) with LibTorch: image payloads to latents through an
// Autoencoder, captions to features through a TextEncoder or from precomputed embeddings. Used by
// `ldm-encode --serve`, the child `ldm-data` runs for --vae / --text-encoder / --text-embeddings.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/import/importers.h"
#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/text_encoder.h"

namespace ldm::data {

// Caption features computed elsewhere, from .npz files (numpy.savez or savez_compressed) with
//   keys    [N]        unicode strings: the sample keys (WebDataset key; ImageNet path under the split)
//   tokens  [N, L, D]  float16/32/64 token features, rows past a caption's length ignored
//   lengths [N]        integer (optional; or `mask` [N, L] bool/int; default: all L tokens)
//   pooled  [N, D]     (optional; default: the mean of the real tokens, as our encoders do)
// Several files (a brace pattern) are read whole, one after another; a key in two files is an
// error. identity() = "precomputed-text:" + SHA-256 prefixes of the files.
class PrecomputedText {
 public:
  explicit PrecomputedText(const std::vector<std::string>& files);
  bool has(const std::string& key) const { return index_.count(key) != 0; }
  TextEmbedding at(const std::string& key) const;  // throws DataError naming the key
  int dim() const { return dim_; }
  std::size_t size() const { return index_.size(); }
  const std::string& identity() const { return identity_; }

 private:
  struct Entry {
    std::size_t file, row;
  };
  std::vector<at::Tensor> tokens_, lengths_, pooled_;  // per file
  std::map<std::string, Entry> index_;
  int dim_ = 0;
  std::string identity_;
};

class TorchRecordEncoder final : public RecordEncoder {
 public:
  // Any of the three may be null (not both text sources). `batch`: images / captions per forward.
  TorchRecordEncoder(std::shared_ptr<const Autoencoder> ae, std::shared_ptr<const TextEncoder> text,
                     std::shared_ptr<const PrecomputedText> precomputed, int batch = 16);
  PayloadKind kind() const override { return ae_ ? PayloadKind::LatentF32 : PayloadKind::ImageU8; }
  std::string identity() const override { return ae_ ? ae_->identity() : "none"; }
  std::string text_identity() const override;
  // Latents: records of one shape are encoded together, `batch` at a time (buckets differ in
  // shape). Captions: empty captions get no features. Thread-safe (no shared mutable state).
  void encode(std::vector<Record>& records, const std::vector<std::string>& keys,
              const std::string& shard) const override;

 private:
  std::shared_ptr<const Autoencoder> ae_;
  std::shared_ptr<const TextEncoder> text_;
  std::shared_ptr<const PrecomputedText> precomputed_;
  int batch_;
};

// Stores `e` (its first e.length token rows and pooled vector) in the record's caption features.
void set_text_features(Record& r, const TextEmbedding& e);

}  // namespace ldm::data
