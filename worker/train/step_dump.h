// What a training stage feeds its first steps, written out for a reference implementation to replay
// (tests/bench/train_step_reference.py, issue 27): `LDM_DUMP_STEPS=DIR[:N]` makes each rank write, for
// its first N steps (default 50) after the stage starts,
//   DIR/meta.json                 the model's shape, process, loss, optimiser and EMA
//   DIR/init.safetensors          the weights before the first step
//   DIR/step-NNNNNN.safetensors   x0, t (float64 process time), noise, labels (after dropout), lr
//   DIR/losses.jsonl              the step's loss (averaged over ranks) and gradient norm
// (DIR/rank-R/ instead of DIR/ when the job has several ranks). A debugging and benchmarking aid:
// nothing in a run reads it back.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "shared/core/spec.h"
#include "worker/io/safetensors.h"
#include "worker/models/denoiser.h"

namespace ldm::worker {

class StepDump {
 public:
  // nullptr when LDM_DUMP_STEPS is unset; an Error naming the variable when it is malformed.
  static std::unique_ptr<StepDump> from_environment(int rank, int world);
  StepDump(std::string dir, int64_t steps);

  const std::string& dir() const { return dir_; }
  // The stage's first step and the weights it starts from (call once, before it).
  void begin(const ExperimentSpec& spec, const StageSpec& stage, const models::ModelGeometry& geometry,
             int64_t first_step, const TensorMap& weights);
  bool wants(int64_t step) const { return step >= first_ && step < first_ + steps_; }
  void inputs(int64_t step, const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise,
              const models::Condition& cond, double lr);
  void outcome(int64_t step, double loss, double grad_norm, double lr);

 private:
  std::string dir_;
  int64_t steps_ = 0, first_ = 1;
};

}  // namespace ldm::worker
