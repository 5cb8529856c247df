#include "datasets/tensor/encoders.h"

#include "datasets/tensor/torchscript_encoders.h"
#include "shared/core/error.h"

namespace ldm::data {

std::shared_ptr<const Autoencoder> make_autoencoder(const AutoencoderSpec& s) {
  if (s.kind == "patch") return std::make_shared<const PatchAutoencoder>(static_cast<int>(s.factor), s.scale, s.shift);
  if (s.kind != "torchscript") throw SpecError("autoencoder.kind", "unknown autoencoder '" + s.kind + "'");
  auto ae = std::make_shared<const TorchScriptAutoencoder>(s.path);
  if (ae->downsampling_factor() != s.factor)
    throw SpecError("autoencoder.factor", std::to_string(s.factor) + " but " + s.path + " down-samples by " +
                                              std::to_string(ae->downsampling_factor()));
  return ae;
}

std::shared_ptr<const TextEncoder> make_text_encoder(const TextEncoderSpec& s) {
  if (s.kind == "precomputed") return nullptr;
  // Seeded from a constant, not the experiment seed: experiments that differ only in their seed
  // must see the same caption features.
  if (s.kind == "builtin")
    return std::make_shared<const BuiltinTextEncoder>(static_cast<int>(s.dim), static_cast<int>(s.max_tokens), 0);
  if (s.kind != "torchscript") throw SpecError("text_encoder.kind", "unknown text encoder '" + s.kind + "'");
  auto te = std::make_shared<const TorchScriptTextEncoder>(s.path, s.tokenizer, static_cast<int>(s.max_tokens));
  if (te->dim() != s.dim)
    throw SpecError("text_encoder.dim",
                    std::to_string(s.dim) + " but " + s.path + " has hidden size " + std::to_string(te->dim()));
  return te;
}

}  // namespace ldm::data
