// The experiment's encoders, from its spec: the autoencoder (built-in patch or an exported
// TorchScript VAE) and the text encoder (built-in, exported TorchScript + SentencePiece, or none
// when the shards carry precomputed caption features).
#pragma once

#include <memory>

#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/text_encoder.h"
#include "shared/core/spec.h"

namespace ldm::data {

// Throws SpecError / DataError naming the key or file (missing file, factor that disagrees with the
// exported VAE's down-sampling factor).
std::shared_ptr<const Autoencoder> make_autoencoder(const AutoencoderSpec& spec);
// nullptr for kind = "precomputed". A TorchScript encoder whose feature width differs from
// text_encoder.dim is an error.
std::shared_ptr<const TextEncoder> make_text_encoder(const TextEncoderSpec& spec);

}  // namespace ldm::data
