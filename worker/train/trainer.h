// Trains one stage of an experiment on this rank: data-parallel over the communicator, metrics
// through the reporter (rank 0), checkpoints into the run directory.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/spec.h"
#include "worker/comm/comm.h"
#include "worker/train/fault.h"

namespace ldm::worker {

class Reporter;

struct StageContext {
  ExperimentSpec spec;  // the whole experiment; the stage trains stage_view(spec, stage_index)
  int stage_index = 0;
  int attempt = 1;
  std::string run_dir;   // <runs>/<experiment>/<stage>
  std::string data_dir;  // cache of rendered synthetic datasets
  // A checkpoint bundle to continue from (model, EMA, optimiser, generators and the data cursor,
  // so the run goes on with exactly the batch it would have had). "" = the newest bundle of
  // run_dir when attempt > 1, else a fresh start.
  std::string resume_from;
  // The world size the coordinator launched this attempt with, when `resume --ranks N` set one
  // (0 = the stage's `ranks`), and whether a checkpoint of another world size may be resumed: not
  // bit-exact (new generator streams), the data cursor is global so the data order goes on.
  int ranks = 0;
  bool allow_world_size_change = false;
  // A stage with init_from, when it does not resume: the parent's bundle and how to take it, as the
  // coordinator resolved it ({bundle, manifest_sha256, weights, optimizer, classes[, classes_map]};
  // empty = from scratch).
  nlohmann::json init = nlohmann::json::object();
  // The resolution at which the stage's shift is 1, when the coordinator resolved it (its chain may
  // start in another experiment); 0 = the spec's own rule.
  int64_t reference_resolution = 0;
  std::vector<FaultPlan> faults;  // LDM_FAULT's plans (tests)
};

struct StageResult {
  int64_t steps = 0;
  double final_loss = 0;
  double samples_per_s = 0;
  double wall_s = 0;
  std::string param_checksum;  // hex FNV-1a of the trainable parameters' bytes (equal on all ranks)
  std::string checkpoint;      // directory of the last bundle
  bool preempted = false;
};

// The training diverged: the loss averaged over the ranks is not finite (every rank throws it at the
// same step). Reported as a `diverged` run, which is not retried.
class DivergedError : public Error {
 public:
  using Error::Error;
};

// `reporter` is non-null on rank 0 only. Throws on any error (the caller reports it).
StageResult train_stage(const StageContext& ctx, Communicator& comm, Reporter* reporter);

// Set by SIGUSR1: the ranks agree to stop, checkpoint and report "preempted" at the next step.
void install_preemption_handler();
bool preemption_requested();  // SIGUSR1 arrived

}  // namespace ldm::worker
