// Every purpose a random stream serves, in one list (DESIGN.md "Randomness"): a generator is
// seeded by derive_seed(seed, purpose, rank or index), so two purposes never share a stream and a
// purpose's stream does not depend on which others exist. The names are part of the seeds: renaming
// one changes every stream of that purpose (and breaks bit-exact resumes of older checkpoints).
#pragma once

#include <cstdint>

#include "shared/core/choices.h"
#include "shared/core/ids.h"

namespace ldm {

enum class Purpose {
  // Training (per rank; kTrainingGenerators are saved in checkpoints).
  Init,             // model initialisation (rank-free: every rank builds the same weights)
  Timesteps,        // training timesteps
  Noise,            // training noise
  SemanticDropout,  // label/caption dropout for guidance
  ControlDropout,   // control-metadata dropout
  PaddingNoise,     // noisy-replicate caption padding (training, and `ldm-worker sample`)
  Mask,             // mDT-v2's token masks
  // Sampling (`ldm-worker sample`).
  SampleNoise,  // starting noise of sample i
  Sampler,      // stochastic samplers (DDPM, DDIM with eta > 0)
  // Evaluation (`ldm-worker generate`, `disentanglement`): per sample or per batch, never per rank.
  EvalSample,
  EvalSampler,
  EvalPaddingNoise,
  DisentanglementNoise,
  DisentanglementSampler,
  DisentanglementPadding,
  // Data.
  TextEncoderTable,  // the built-in text encoder's embedding table
  DataOrder,         // per-epoch record order
  View,              // which augmented view of a record an epoch uses
  BucketBatchOrder,  // order of the aspect-ratio buckets' batches
  SyntheticLabel,    // the synthetic dataset's renderer
  SyntheticCanvas,
  SyntheticObject,
  SyntheticCrop,
  SyntheticFlip,
  SyntheticCaption,
};

// The names that seed each purpose's streams ("semantic-dropout"): choice_name(purpose).
template <>
struct Choices<Purpose> {
  static constexpr const char* what = "random-stream purpose";
  static constexpr std::pair<Purpose, const char*> table[] = {
      {Purpose::Init, "init"},
      {Purpose::Timesteps, "timesteps"},
      {Purpose::Noise, "noise"},
      {Purpose::SemanticDropout, "semantic-dropout"},
      {Purpose::ControlDropout, "control-dropout"},
      {Purpose::PaddingNoise, "padding-noise"},
      {Purpose::Mask, "mask"},
      {Purpose::SampleNoise, "sample-noise"},
      {Purpose::Sampler, "sampler"},
      {Purpose::EvalSample, "eval-sample"},
      {Purpose::EvalSampler, "eval-sampler"},
      {Purpose::EvalPaddingNoise, "eval-padding-noise"},
      {Purpose::DisentanglementNoise, "disentanglement-noise"},
      {Purpose::DisentanglementSampler, "disentanglement-sampler"},
      {Purpose::DisentanglementPadding, "disentanglement-padding"},
      {Purpose::TextEncoderTable, "text-encoder-table"},
      {Purpose::DataOrder, "data-order"},
      {Purpose::View, "view"},
      {Purpose::BucketBatchOrder, "bucket-batch-order"},
      {Purpose::SyntheticLabel, "synthetic.label"},
      {Purpose::SyntheticCanvas, "synthetic.canvas"},
      {Purpose::SyntheticObject, "synthetic.object"},
      {Purpose::SyntheticCrop, "synthetic.crop"},
      {Purpose::SyntheticFlip, "synthetic.flip"},
      {Purpose::SyntheticCaption, "synthetic.caption"},
  };
};

// derive_seed_from_name(seed, choice_name(purpose), a, b).
inline std::uint64_t derive_seed(std::uint64_t seed, Purpose purpose, std::uint64_t a = 0, std::uint64_t b = 0) {
  return derive_seed_from_name(seed, choice_name(purpose), a, b);
}

// The per-rank training generators a checkpoint bundle holds, in the order their states are stored.
inline constexpr Purpose kTrainingGenerators[] = {Purpose::Timesteps,       Purpose::Noise,
                                                  Purpose::SemanticDropout, Purpose::ControlDropout,
                                                  Purpose::PaddingNoise,    Purpose::Mask};

}  // namespace ldm
