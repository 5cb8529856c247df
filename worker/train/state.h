// The state of one rank's training run: everything that carries from step to step and that a
// checkpoint bundle holds. The model (its trainable tensors live in flat buffers), the EMA, the
// optimiser, the rank's named generators (shared/core/seeds.h kTrainingGenerators) and the step,
// which with the global batch is the data cursor. Saving and restoring go through this one object,
// so a new part of the state cannot be trained with and forgotten by checkpoints.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shared/core/seeds.h"
#include "shared/core/spec.h"
#include "worker/io/checkpoint.h"
#include "worker/io/weights.h"
#include "worker/models/denoiser.h"
#include "worker/optim/flat_params.h"

namespace ldm::worker {

// How a stage takes its parent's weights (the resolved init_* keys of its StageSpec).
struct InitTransfer {
  bool ema = true;              // the parent's EMA weights (else its raw weights)
  bool keep_optimizer = false;  // the parent's optimiser moments and step count (else a fresh optimiser)
  LoadOptions load;             // token grid, class table, conditioning swap
};

class TrainingState {
 public:
  // Builds the recipe's model for `geometry`, initialised identically on every rank (the init
  // generator has no rank), its flat parameters, the recipe's optimiser and EMA, and this rank's
  // training generators, all seeded from spec.seed.
  // The model is built on the CPU (the same initial weights on every device) and then moved to
  // `device`, with the flat buffers, optimiser moments and EMA; generators stay on the CPU.
  TrainingState(const ExperimentSpec& spec, const models::ModelGeometry& geometry, int rank,
                torch::Device device = torch::kCPU);

  models::Denoiser& model() { return *model_; }
  FlatParams& flat() { return *flat_; }
  FlatOptimizer& optimizer() { return *optimizer_; }
  FlatEma& ema() { return *ema_; }
  at::Generator& generator(Purpose purpose);  // one of kTrainingGenerators

  // This rank's generator states, concatenated in kTrainingGenerators order (what rank 0 gathers).
  std::string generator_bytes();
  // Saves the model, EMA and optimiser into a bundle (host copies of every tensor), with `rank_generators[r]` from
  // generator_bytes() of rank r, and `manifest`.
  CheckpointBundle save(nlohmann::json manifest, const std::vector<std::string>& rank_generators) const;
  // Restores the model, EMA, optimiser and this rank's generators from a bundle read from `source`;
  // a tensor missing or of another shape is a DataError naming `source` and the tensor. A bundle
  // written by another number of ranks than `world` (a resume at another world size: its streams
  // belong to another rank layout) gives fresh streams instead, derive_seed(seed, purpose, rank,
  // bundle step + 1), so every rank has its own and a later resume repeats them.
  void restore(const CheckpointBundle& b, int rank, int world, const std::string& source);

  // Starts from a parent stage's bundle (read from `source`): the model from the parent's EMA or
  // raw weights moved across `transfer`, the EMA equal to those weights, and the optimiser fresh
  // or, with keep_optimizer, the parent's (a DataError when a trainable tensor changed shape, as
  // the moments then have nowhere to go). The generators stay as seeded. Returns what loading did.
  LoadReport initialize_from(const CheckpointBundle& parent, const InitTransfer& transfer, const std::string& source);

  // Hex FNV-1a of the trainable parameters' bytes, bucket by bucket (equal on all ranks).
  std::string param_checksum() const;

 private:
  // A full state dict (trainable views and fixed tensors) whose trainable part comes from `flats`.
  TensorMap state_dict(const std::vector<torch::Tensor>& flats) const;

  std::shared_ptr<models::Denoiser> model_;
  std::unique_ptr<FlatParams> flat_;
  std::unique_ptr<FlatOptimizer> optimizer_;
  std::unique_ptr<FlatEma> ema_;
  std::vector<at::Generator> generators_;  // kTrainingGenerators order
  std::uint64_t seed_ = 0;                 // the spec's
};

}  // namespace ldm::worker
