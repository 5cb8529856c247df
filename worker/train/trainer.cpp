#include "worker/train/trainer.h"

#include <signal.h>
#include <sys/resource.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>

#include "datasets/import/synthetic.h"
#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/encoders.h"
#include "datasets/tensor/loader.h"
#include "shared/core/checkpoint_dir.h"
#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/progress.h"
#include "shared/core/recipes/card.h"
#include "shared/core/safe_file.h"
#include "shared/core/seeds.h"
#include "shared/core/sha256.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"
#include "worker/diffusion/setup.h"
#include "worker/hardware.h"
#include "worker/io/checkpoint.h"
#include "worker/models/denoiser.h"
#include "worker/optim/flat_params.h"
#include "worker/train/condition_builder.h"
#include "worker/train/grad_reducer.h"
#include "worker/train/reporter.h"
#include "worker/train/state.h"
#include "worker/train/step.h"
#include "worker/train/step_dump.h"

namespace ldm::worker {
namespace {

volatile sig_atomic_t g_stop_requested = 0;
void on_sigusr1(int) { g_stop_requested = 1; }

// The stage's dataset (its overrides applied: `spec` is the stage view).
std::string dataset_dir(const StageContext& ctx, const ExperimentSpec& spec, const data::SyntheticParams& params) {
  if (!spec.dataset.path.empty()) return spec.dataset.path;
  return ctx.data_dir + "/" + data::synthetic_identity(params);
}

// Shards made elsewhere must match what the stage builds the model for, and latents or caption
// features must come from the experiment's own encoders.
void check_dataset(const data::ShardDataset& data, const ExperimentSpec& spec, const StageSpec& stage,
                   const data::Autoencoder& ae, const data::TextEncoder* text_encoder) {
  const data::ShardHeader& h = data.header();
  const data::Record first = data.read(0);
  const bool images = h.kind == data::PayloadKind::ImageU8;
  if (!images && h.encoder != ae.identity())
    throw DataError(data.dir() + ": the shards' latents were made by encoder '" + h.encoder +
                    "', but the experiment's autoencoder is '" + ae.identity() +
                    "' (re-encode the shards, or set [autoencoder] to the encoder they were made with)");
  if (!images && first.shape[0] != ae.latent_channels())
    throw DataError(data.dir() + ": record " + std::to_string(first.id) + " has " + std::to_string(first.shape[0]) +
                    " latent channels, the autoencoder makes " + std::to_string(ae.latent_channels()));
  const auto buckets = data.buckets();
  if (buckets.size() > 1 && !recipe_card(spec.recipe.family).capabilities.buckets)
    throw DataError(data.dir() + ": " + std::to_string(buckets.size()) + " aspect-ratio buckets, but recipe family '" +
                    spec.recipe.family + "' cannot train on other latent grids than its own yet");
  const int64_t factor = images ? 1 : ae.downsampling_factor();
  if (buckets.size() <= 1) {
    const data::RecordShape shape = data::payload_shape(h.kind, first.shape);
    if (shape.height * factor != stage.resolution || shape.width * factor != stage.resolution)
      throw DataError(data.dir() + ": record " + std::to_string(first.id) + " is " +
                      std::to_string(shape.height * factor) + "x" + std::to_string(shape.width * factor) +
                      " pixels but stage '" + stage.name + "' has resolution " + std::to_string(stage.resolution));
  }
  if (spec.task == "text") {
    if (spec.text_encoder.kind == "precomputed" && h.text_encoder.empty())
      throw DataError(data.dir() +
                      ": text_encoder.kind = \"precomputed\" but the shards hold no caption features "
                      "(import with --text-encoder or --text-embeddings)");
    if (!h.text_encoder.empty() && text_encoder && h.text_encoder != text_encoder->identity())
      throw DataError(data.dir() + ": the shards' caption features were made by '" + h.text_encoder +
                      "', but the experiment's text encoder is '" + text_encoder->identity() +
                      "' (set [text_encoder] to the one they were made with, or kind = \"precomputed\")");
    if (!h.text_encoder.empty() && first.text_dim != spec.text_encoder.dim)
      throw DataError(data.dir() + ": record " + std::to_string(first.id) + " has caption features of width " +
                      std::to_string(first.text_dim) +
                      " but text_encoder.dim = " + std::to_string(spec.text_encoder.dim));
  }
}

// Whether a bundle's spec (its manifest's JSON) is `spec` but for [hardware].
bool same_except_hardware(const nlohmann::json& written, const ExperimentSpec& spec) {
  nlohmann::json a = written, b = spec_to_json(spec);
  a.erase("hardware");
  b.erase("hardware");
  return a == b;
}

// The bundle to continue from: the one asked for, or the run directory's newest complete one on a
// later attempt (by name: `latest` is for people, and a kill can leave it behind or missing).
std::string resume_bundle(const StageContext& ctx) {
  if (!ctx.resume_from.empty()) return ctx.resume_from;
  if (ctx.attempt > 1)
    if (const auto newest = newest_bundle(ctx.run_dir + "/checkpoints")) return newest->dir;
  return "";
}

// The experiment as the stage trains it: its overrides applied, and the schedule reference the
// coordinator resolved for it.
ExperimentSpec training_view(const StageContext& ctx) {
  ExperimentSpec view = stage_view(ctx.spec, static_cast<std::size_t>(ctx.stage_index));
  if (view.recipe.diffusion.reference_resolution == 0 && ctx.reference_resolution > 0)
    view.recipe.diffusion.reference_resolution = ctx.reference_resolution;
  return view;
}

std::string printf_mib(double mib) {
  if (mib <= 0) return std::string("one flat buffer each");
  char text[32];
  std::snprintf(text, sizeof text, "%g MiB", mib);
  return text;
}

// The peak resident set of this process so far, in MiB.
double peak_rss_mb() {
  struct rusage u {};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux: KiB
}

struct StepStats {
  double loss = 0, grad_norm = 0, lr = 0, samples_per_s = 0;
  // The loss or the gradient norm was not finite: nothing was updated. `fault` says what and, on
  // rank 0, on which ranks.
  bool nonfinite = false;
  std::string fault;
  // System figures of this rank (seconds): the whole step, waiting for the batch, in collectives,
  // and the part of the collectives that ran while backward was still running; forward (with the
  // loss), backward, and the update (clipping, optimiser, EMA). On a GPU the phases are host times
  // (the device runs behind) unless LDM_PROFILE_SYNC=1 synchronises at each boundary.
  double step_s = 0, data_wait_s = 0, comm_s = 0, comm_hidden_s = 0;
  double forward_s = 0, backward_s = 0, update_s = 0;
};

// This rank's system figures averaged over the steps since the last report.
class SystemWindow {
 public:
  void add(const StepStats& s) {
    ++steps_;
    step_s_ += s.step_s;
    data_wait_s_ += s.data_wait_s;
    comm_s_ += s.comm_s;
    hidden_s_ += s.comm_hidden_s;
    forward_s_ += s.forward_s;
    backward_s_ += s.backward_s;
    update_s_ += s.update_s;
  }
  nlohmann::json take(int rank) {
    const double n = std::max<int64_t>(steps_, 1);
    nlohmann::json out = {{"rank", rank},
                          {"step_s", step_s_ / n},
                          {"data_wait_s", data_wait_s_ / n},
                          {"comm_s", comm_s_ / n},
                          {"comm_hidden_s", hidden_s_ / n},
                          {"forward_s", forward_s_ / n},
                          {"backward_s", backward_s_ / n},
                          {"update_s", update_s_ / n},
                          {"peak_rss_mb", peak_rss_mb()}};
    *this = SystemWindow();
    return out;
  }

 private:
  int64_t steps_ = 0;
  double step_s_ = 0, data_wait_s_ = 0, comm_s_ = 0, hidden_s_ = 0, forward_s_ = 0, backward_s_ = 0, update_s_ = 0;
};

// One stage on this rank, from setting up its data and training state to the last checkpoint.
class StageRun {
 public:
  StageRun(const StageContext& ctx, Communicator& comm, Reporter* reporter);
  StageResult train();

 private:
  void open_data();
  int64_t resume();  // the first step to train
  void initialize_from_parent();
  std::string save_checkpoint(int64_t step);
  void prune_old_checkpoints(int64_t also_keep = -1);  // rank 0, keep_checkpoints > 0
  std::vector<int64_t> evaluated_steps() const;
  int64_t batch_index(int64_t step) const;
  std::string nonfinite_ranks(bool local_bad);
  int64_t on_nonfinite(int64_t step, const StepStats& s);
  int64_t roll_back(int64_t first_bad);
  void log_nonfinite(int64_t step, const StepStats& s, const std::string& action);
  void check_batch(const data::Batch& batch) const;
  models::Condition condition(const data::Batch& batch, const at::Tensor& t);
  double forward_backward(const data::Batch& batch, const at::Tensor& t, const models::Condition& cond,
                          const at::Tensor& noise, StepTimes& times);
  StepStats step(int64_t step, bool poison_loss = false);
  void report(int64_t step, const StepStats& s);
  void report_system(int64_t step);
  void finish(StageResult& result);

  const StageContext& ctx_;
  const ExperimentSpec view_;
  const ExperimentSpec& spec_;  // view_
  const StageSpec& stage_;
  Communicator& comm_;
  Reporter* reporter_;
  const int rank_, world_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::string data_dir_, logs_;
  std::shared_ptr<const data::ShardDataset> dataset_;
  std::shared_ptr<const data::Autoencoder> ae_;
  std::unique_ptr<diffusion::NoiseProcess> process_;
  std::unique_ptr<ConditionBuilder> conditions_;
  std::unique_ptr<data::RankLoader> loader_;
  std::unique_ptr<TrainingState> state_;
  std::unique_ptr<GradReducer> reducer_;  // after state_: it hooks the model's parameters
  SystemWindow system_;
  diffusion::LossOptions loss_;
  std::ofstream records_log_;
  models::ModelGeometry geometry_{};
  Hardware hardware_;               // where and in which precision
  bool profile_sync_ = false;       // LDM_PROFILE_SYNC=1: phase times synchronise the device
  std::unique_ptr<StepDump> dump_;  // LDM_DUMP_STEPS: the first steps' inputs for a reference
  // Numerical faults: the batches stepped past after rollbacks (global batch positions, ascending,
  // with the step that met each), the bad steps since the last good one, and rollbacks so far.
  struct SkippedBatch {
    int64_t index = 0, step = 0;
  };
  std::vector<SkippedBatch> skipped_;
  std::vector<SkippedBatch> bad_run_;
  int64_t rollbacks_ = 0;
};

StageRun::StageRun(const StageContext& ctx, Communicator& comm, Reporter* reporter)
    : ctx_(ctx),
      view_(training_view(ctx)),
      spec_(view_),
      stage_(ctx.spec.stages.at(static_cast<std::size_t>(ctx.stage_index))),
      comm_(comm),
      reporter_(reporter),
      rank_(comm.rank()),
      world_(comm.size()) {
  const int64_t ranks = ctx.ranks > 0 ? ctx.ranks : stage_.ranks;
  if (ranks != world_)
    throw Error("stage '" + stage_.name + "' asks for " + std::to_string(ranks) + " ranks but the job has " +
                std::to_string(world_));
  if (stage_.batch_size % world_ != 0)
    throw Error("stage '" + stage_.name + "': its global batch_size " + std::to_string(stage_.batch_size) +
                " does not split over " + std::to_string(world_) + " ranks");
  at::set_num_threads(static_cast<int>(stage_.threads_per_rank));
  hardware_ = resolve_hardware(spec_.hardware);
  apply_numerics(hardware_);
  if (const char* p = std::getenv("LDM_PROFILE_SYNC")) profile_sync_ = std::string(p) == "1";
  dump_ = StepDump::from_environment(rank_, world_);
  // Gradient buffers live on the device: the backend must read them there (Debian's Open MPI is not
  // CUDA-aware). NCCL reads GPU buffers, and stages host ones through its GPU.
  if (world_ > 1 && hardware_.device.is_cuda() && comm_.backend() != "nccl")
    throw Error("stage '" + stage_.name + "': " + std::to_string(world_) + " ranks train on " + hardware_.device.str() +
                " but communicate over '" + comm_.backend() +
                "', which cannot all-reduce GPU buffers; run `ldm-worker train --comm nccl` (auto picks it in a "
                "build with NCCL), or set [hardware] device = \"cpu\"");
  open_data();
  // Identical initialisation on every rank (same seed, no rank); generators per rank.
  const int64_t side = latent_side(spec_, stage_);
  const models::ModelGeometry geometry = conditions_->geometry(ae_->latent_channels(), side, side);
  geometry_ = geometry;
  state_ = std::make_unique<TrainingState>(spec_, geometry, rank_, hardware_.device);
  reducer_ = std::make_unique<GradReducer>(state_->flat(), comm_,
                                           static_cast<int64_t>(stage_.comm_bucket_mb * 1024.0 * 1024.0));
  if (reporter_) {
    // The model's size, as points of the stage (step 0), so that comparisons read it from the store:
    // trainable parameters as built, and the card's analytic forward GFLOPs per sample.
    const PresetInfo& preset = recipe_preset(spec_.recipe.family, spec_.recipe.preset);
    reporter_->add_point("params", 0, static_cast<double>(state_->flat().numel()));
    reporter_->add_point("gflops", 0, analytic_gflops(preset, models::model_shape(geometry, spec_.recipe)));
  }
  loss_ = loss_options(spec_.recipe);
  if (rank_ == 0)
    log::info("model " + spec_.recipe.family + " " + spec_.recipe.preset + ": " +
              std::to_string(state_->flat().numel()) + " trainable parameters in " +
              std::to_string(state_->flat().buckets().size()) + " flat bucket(s); latent " +
              std::to_string(ae_->latent_channels()) + "x" + std::to_string(side) + "x" + std::to_string(side) + "; " +
              std::to_string(dataset_->size()) + " records; " + hardware_.summary() + "; " + std::to_string(world_) +
              " rank(s) over " + comm_.backend() +
              (reducer_->active()
                   ? ", gradients all-reduced in " + std::to_string(reducer_->buckets().size()) +
                         " bucket(s) of at most " + printf_mib(stage_.comm_bucket_mb) + " overlapped with backward"
                   : std::string()));
}

// Rank 0 renders (or reuses) the synthetic dataset while the others wait; then every rank opens the
// shards, checks them against the experiment and builds its loader.
void StageRun::open_data() {
  data::SyntheticParams sp;
  sp.records = spec_.dataset.records;
  sp.classes = spec_.dataset.classes;
  sp.resolution = stage_.resolution;
  sp.seed = spec_.seed;
  sp.shard_records = spec_.dataset.shard_records;
  data_dir_ = dataset_dir(ctx_, spec_, sp);
  if (spec_.dataset.kind == "shards") {
    if (!path_exists(data_dir_))
      throw DataError("dataset.path '" + data_dir_ + "' does not exist (experiment '" + spec_.name + "')");
  } else if (rank_ == 0) {
    log::info("dataset: " + data_dir_);
    data::ensure_synthetic_dataset(sp, data_dir_, [](int64_t done, int64_t total) {
      log::info("rendering synthetic data: " + std::to_string(done) + "/" + std::to_string(total));
    });
  }
  comm_.barrier();
  dataset_ = std::make_shared<const data::ShardDataset>(data_dir_);
  ae_ = data::make_autoencoder(spec_.autoencoder);
  process_ = make_process(spec_, stage_);
  conditions_ = std::make_unique<ConditionBuilder>(spec_, resolution_shift(spec_, stage_));
  check_dataset(*dataset_, spec_, stage_, *ae_, conditions_->text_encoder());
  data::LoaderOptions options;
  options.prefetch = 2;  // background readers stay two steps ahead
  options.text_tokens = static_cast<int>(spec_.text_encoder.max_tokens);
  loader_ = std::make_unique<data::RankLoader>(dataset_, ae_, static_cast<uint64_t>(spec_.seed), stage_.batch_size,
                                               rank_, world_, options);
  if (rank_ == 0 && loader_->plan().bucketed())
    log::info("aspect-ratio buckets: " + std::to_string(dataset_->buckets().size()) + " shapes, " +
              std::to_string(loader_->plan().batches_per_epoch()) + " batches per epoch");
}

// Weights, EMA, optimiser moments, every generator and the data cursor, from the bundle to continue.
int64_t StageRun::resume() {
  const std::string from = resume_bundle(ctx_);
  if (from.empty()) {
    if (!ctx_.init.empty()) initialize_from_parent();
    return 1;
  }
  const CheckpointBundle b = read_checkpoint(from);
  const auto& m = b.manifest;
  if (m.value("spec_hash", std::string()) != spec_hash(ctx_.spec)) {
    // [hardware] says where and in which precision, not what is trained: a run goes on from a bundle
    // written on another device or in another precision (a GPU run continued on a CPU, say).
    const bool hardware_only = m.contains("spec") && same_except_hardware(m.at("spec"), ctx_.spec);
    if (!hardware_only)
      throw DataError(from + ": written for another experiment spec (spec_hash " +
                      m.value("spec_hash", std::string("?")) + ", this run's is " + spec_hash(ctx_.spec) +
                      "); cannot resume from it");
    if (rank_ == 0)
      log::warn(from + ": written with another [hardware] (" +
                m.at("spec").value("hardware", nlohmann::json::object()).dump() + "); resuming on " +
                hardware_.summary() + ": not bit-exact");
  }
  const int64_t done = m.at("step").get<int64_t>();
  const int written_by = m.value("world_size", -1);
  if (written_by != world_ && !ctx_.allow_world_size_change)
    throw DataError(from + ": written by " + std::to_string(written_by) + " ranks, this job has " +
                    std::to_string(world_) +
                    " (each rank's generators are in it); `ldm-coord resume EXPERIMENT --ranks N "
                    "--allow-world-size-change` goes on at another world size, not bit-exactly");
  // Batches stepped past after numerical faults move the cursor on (DESIGN.md "Checkpoint bundle").
  skipped_.clear();
  for (const auto& b : m.value("skipped_batches", nlohmann::json::array()))
    skipped_.push_back({b.at("index").get<int64_t>(), b.at("step").get<int64_t>()});
  rollbacks_ = m.value("nonfinite_rollbacks", int64_t{0});
  const int64_t cursor = batch_index(done + 1) * stage_.batch_size;
  if (m.value("data_cursor", int64_t{-1}) != cursor)
    throw DataError(from + ": data cursor " + std::to_string(m.value("data_cursor", int64_t{-1})) +
                    " does not match step " + std::to_string(done) + " x global batch " +
                    std::to_string(stage_.batch_size) +
                    (skipped_.empty() ? std::string()
                                      : " + " + std::to_string(skipped_.size()) + " skipped batch(es) x global batch"));
  if (m.value("threads_per_rank", int64_t{0}) != stage_.threads_per_rank && rank_ == 0)
    log::warn(from + ": written with " + std::to_string(m.value("threads_per_rank", int64_t{0})) +
              " threads per rank, resuming with " + std::to_string(stage_.threads_per_rank) + ": not bit-exact");
  // The data cursor counts records of the global batch, which every world size slices the same
  // way (datasets/tensor/loader.h): a new rank layout goes on with the next record.
  state_->restore(b, rank_, world_, from);
  if (rank_ == 0 && written_by != world_)
    log::warn(from + ": written by " + std::to_string(written_by) + " ranks, resuming with " + std::to_string(world_) +
              " (--allow-world-size-change): the same global batch of " + std::to_string(stage_.batch_size) +
              " and data order, new generator streams from step " + std::to_string(done + 1) + "; not bit-exact");
  if (rank_ == 0)
    log::info("resuming from " + from + " at step " + std::to_string(done + 1) + " (data cursor " +
              std::to_string(cursor) + " records)");
  return done + 1;
}

// The parent's final checkpoint, checked against the manifest hash the coordinator recorded as
// this run's lineage, transferred into this stage's network (DESIGN.md "Stages form a DAG").
void StageRun::initialize_from_parent() {
  const std::string bundle = ctx_.init.at("bundle").get<std::string>();
  const std::string expected = ctx_.init.value("manifest_sha256", std::string());
  const std::string actual = sha256_file_hex(bundle + "/manifest.json");
  if (!expected.empty() && actual != expected)
    throw DataError(bundle + "/manifest.json: SHA-256 " + actual + " is not the " + expected +
                    " recorded when this stage's lineage was resolved (the bundle changed since)");
  const CheckpointBundle parent = read_checkpoint(bundle);
  const ExperimentSpec parent_spec = spec_from_json(parent.manifest.at("spec"));
  const std::size_t pi = parent.manifest.value("stage_index", std::size_t{0});
  const ExperimentSpec parent_view = stage_view(parent_spec, pi);
  if (parent_view.recipe.family != spec_.recipe.family || parent_view.recipe.preset != spec_.recipe.preset)
    throw DataError(bundle + ": holds a " + parent_view.recipe.family + " " + parent_view.recipe.preset +
                    " network; stage '" + stage_.name + "' trains " + spec_.recipe.family + " " + spec_.recipe.preset);
  const PresetInfo* preset = find_preset(spec_.recipe.family, spec_.recipe.preset);
  const int64_t patch = preset && preset->patch > 0 ? preset->patch : 1;
  const int64_t side0 = latent_side(parent_view, parent_spec.stages.at(pi)) / patch,
                side1 = latent_side(spec_, stage_) / patch;
  InitTransfer t;
  t.ema = ctx_.init.value("weights", std::string("ema")) == "ema";
  t.keep_optimizer = ctx_.init.value("optimizer", std::string("reset")) == "keep";
  t.load.grid = {side0, side0, side1, side1, spec_.recipe.pos_embed_resampling, spec_.recipe.pos_embed_grid};
  t.load.conditioning_swap = parent_view.task != spec_.task;
  const std::string classes = ctx_.init.value("classes", std::string("keep"));
  if (classes == "remap")
    t.load.classes = read_class_map(ctx_.init.at("classes_map").get<std::string>(), parent_view.dataset.classes,
                                    spec_.dataset.classes);
  else if (classes == "reinit")
    t.load.classes = {ClassTransfer::Mode::Reinit, parent_view.dataset.classes, spec_.dataset.classes, {}};
  const LoadReport report = state_->initialize_from(parent, t, bundle);
  if (rank_ != 0) return;
  log::info("initialised from " + bundle + " (step " + std::to_string(parent.manifest.value("step", 0)) + ", " +
            (t.ema ? "EMA" : "raw") + " weights, optimiser " + (t.keep_optimizer ? "kept" : "fresh") +
            "; latent grid " + std::to_string(side0) + " -> " + std::to_string(side1) +
            " tokens a side): " + report.summary());
  make_dirs(ctx_.run_dir + "/logs");
  write_file_atomic(ctx_.run_dir + "/logs/transfer.json", nlohmann::json{{"bundle", bundle},
                                                                         {"manifest_sha256", actual},
                                                                         {"copied", report.copied},
                                                                         {"resampled", report.resampled},
                                                                         {"class_tables", report.classes},
                                                                         {"fresh", report.fresh},
                                                                         {"dropped", report.dropped}}
                                                                  .dump(2) +
                                                              "\n");
}

// Every rank's generator states travel to rank 0, which writes the bundle; returns its directory
// (on rank 0; "" elsewhere).
std::string StageRun::save_checkpoint(int64_t step) {
  note_progress("writing a checkpoint");
  const std::vector<std::string> generators = comm_.gather(state_->generator_bytes(), 0);
  if (rank_ != 0) return "";
  nlohmann::json manifest = {
      {"step", step},
      {"data_cursor", batch_index(step + 1) * stage_.batch_size},
      {"spec", spec_to_json(ctx_.spec)},
      {"spec_hash", spec_hash(ctx_.spec)},
      {"reference_resolution", spec_.recipe.diffusion.reference_resolution > 0
                                   ? spec_.recipe.diffusion.reference_resolution
                                   : chain_root(spec_, stage_).resolution},
      {"resolution_shift", resolution_shift(spec_, stage_)},
      {"init", ctx_.init},
      {"experiment", spec_.name},
      {"stage", stage_.name},
      {"stage_index", ctx_.stage_index},
      {"attempt", ctx_.attempt},
      {"world_size", world_},
      {"threads_per_rank", stage_.threads_per_rank},
      {"libtorch", TORCH_VERSION},
      {"recipe", spec_.recipe.family + " " + spec_.recipe.preset},
      {"autoencoder", ae_->identity()},
      {"text_encoder",
       conditions_->text_encoder() ? conditions_->text_encoder()->identity() : dataset_->header().text_encoder},
      {"dataset", {{"dir", data_dir_}, {"identity", dataset_->header().dataset}, {"records", dataset_->size()}}}};
  if (!skipped_.empty()) {
    nlohmann::json skipped = nlohmann::json::array();
    for (const SkippedBatch& b : skipped_) skipped.push_back({{"index", b.index}, {"step", b.step}});
    manifest["skipped_batches"] = skipped;
    manifest["nonfinite_rollbacks"] = rollbacks_;
  }
  const CheckpointBundle b = state_->save(manifest, generators);
  // Every metric point up to `step` is in the store before the bundle exists: a later attempt that
  // resumes from it re-reports only the steps after it, so the stage's curves have no gap.
  if (reporter_ && !reporter_->flush(step, 60.0))
    log::warn("the coordinator did not acknowledge the metric points up to step " + std::to_string(step) +
              " before this checkpoint; if a later attempt resumes from it, those points may be missing");
  auto dir = write_checkpoint(ctx_.run_dir + "/checkpoints", b);
  if (reporter_) reporter_->send_event(protocol::Type::Checkpoint, {{"step", step}, {"path", dir}}, 30.0);
  prune_old_checkpoints();
  return dir;
}

// Keeps the newest keep_checkpoints bundles (and the protected ones). After each write, and when an
// attempt starts: an attempt killed between its write and the prune leaves one bundle too many,
// and without the second call a run of such kills would pile them up.
void StageRun::prune_old_checkpoints(int64_t also_keep) {
  if (stage_.keep_checkpoints <= 0 || rank_ != 0) return;
  note_progress("removing old checkpoints");
  std::vector<int64_t> protected_steps = evaluated_steps();
  if (also_keep >= 0) protected_steps.push_back(also_keep);
  const std::vector<int64_t> removed =
      prune_checkpoints(ctx_.run_dir + "/checkpoints", stage_.keep_checkpoints, protected_steps);
  if (removed.empty()) return;
  std::vector<std::string> steps;
  for (int64_t r : removed) steps.push_back(std::to_string(r));
  log::info("removed the checkpoint(s) of step " + join(steps, ", ") +
            " (keep_checkpoints = " + std::to_string(stage_.keep_checkpoints) + ")");
}

// The steps whose bundles an evaluation stage of the experiment reads (they outlive keep_checkpoints).
std::vector<int64_t> StageRun::evaluated_steps() const {
  std::vector<int64_t> steps = {stage_.steps};
  for (const StageSpec& other : ctx_.spec.stages)
    if (other.kind == "eval" && other.after == stage_.name)
      steps.insert(steps.end(), other.eval.at_steps.begin(), other.eval.at_steps.end());
  return steps;
}

// The global batch position that `step` trains on: step - 1, moved past the skipped batches.
int64_t StageRun::batch_index(int64_t step) const {
  int64_t index = step - 1;
  for (const SkippedBatch& b : skipped_)  // ascending: each one at or before the position pushes it on
    if (b.index <= index) ++index;
  return index;
}

// One vectorised label check per batch; the per-record scan runs only to name the culprit.
void StageRun::check_batch(const data::Batch& batch) const {
  if (conditions_->text_task()) {
    if (batch.text.empty())
      for (std::size_t i = 0; i < batch.captions.size(); ++i)
        if (batch.captions[i].empty())
          throw DataError(data_dir_ + ": record " + std::to_string(batch.ids[i]) + " has no caption (task = \"text\")");
    return;
  }
  const auto bad = (batch.labels < 0).logical_or(batch.labels >= spec_.dataset.classes);
  if (!bad.any().item<bool>()) return;
  const int64_t i = bad.nonzero()[0][0].item<int64_t>();
  throw DataError(data_dir_ + ": record " + std::to_string(batch.ids[static_cast<std::size_t>(i)]) + " has label " +
                  std::to_string(batch.labels[i].item<int64_t>()) +
                  " outside [0, dataset.classes = " + std::to_string(spec_.dataset.classes) + ")");
}

// Semantic and control dropout (for guidance), caption padding, the control weights' noise level.
models::Condition StageRun::condition(const data::Batch& batch, const at::Tensor& t) {
  ConditionInputs inputs;
  if (conditions_->text_task()) {
    inputs.captions = batch.captions;
    inputs.text = batch.text;  // stored caption features, when the shards have them
  } else {
    const int64_t n = batch.labels.size(0);
    inputs.labels.assign(batch.labels.data_ptr<int64_t>(), batch.labels.data_ptr<int64_t>() + n);
  }
  if (conditions_->uses_controls()) inputs.controls = batch.controls;
  const ConditionGenerators gens{&state_->generator(Purpose::SemanticDropout),
                                 &state_->generator(Purpose::ControlDropout),
                                 &state_->generator(Purpose::PaddingNoise)};
  return conditions_->training(inputs, t, gens);
}

// Gradient accumulation: autograd sums the micro-batches' gradients into the flat buffers; each
// micro-batch loss is scaled so the sum is the mean over the rank's batch. Returns that mean loss.
double StageRun::forward_backward(const data::Batch& batch, const at::Tensor& t, const models::Condition& cond,
                                  const at::Tensor& noise, StepTimes& times) {
  const int64_t micro = stage_.grad_accumulation;
  times.sync_device = profile_sync_;
  return worker::forward_backward(
      *state_, *process_, loss_, hardware_, {batch.latents, t, noise, cond}, micro,
      [&](int64_t k) {
        reducer_->begin_backward(k == micro - 1);  // only the last micro-step's gradients are communicated
      },
      &times);
}

StepStats StageRun::step(int64_t step, bool poison_loss) {
  const auto t0 = std::chrono::steady_clock::now();
  note_progress("loading a batch");
  const double wait0 = comm_clock();
  data::Batch batch = loader_->batch_for_step(batch_index(step));
  const double data_wait_s = comm_clock() - wait0;
  check_batch(batch);
  {
    nlohmann::json ids = batch.ids, epochs = batch.epochs;
    // Flushed at once (one small write per step): a crashed or killed attempt keeps its lines.
    records_log_ << nlohmann::json{{"step", step}, {"ids", ids}, {"epochs", epochs}, {"attempt", ctx_.attempt}}.dump()
                 << "\n"
                 << std::flush;
  }
  auto t = process_->sample_training_t(loader_->local_batch(), state_->generator(Purpose::Timesteps));  // [b] f64
  const models::Condition cond = condition(batch, t);
  auto noise = torch::randn(batch.latents.sizes(), state_->generator(Purpose::Noise));
  if (dump_ && dump_->wants(step)) dump_->inputs(step, batch.latents, t, noise, cond, learning_rate(stage_, step));
  note_progress("forward and backward");
  StepTimes times;
  double local_loss = forward_backward(batch, t, cond, noise, times);
  if (poison_loss) local_loss = std::numeric_limits<double>::quiet_NaN();  // LDM_FAULT nan (tests)
  // The gradients' buckets started during backward; wait for them, then average the loss.
  note_progress("gradient all-reduce");
  const StepComm grads = reducer_->finish();
  FlatParams& flat = state_->flat();
  // The loss and how many ranks' own losses are not finite, in one all-reduce.
  const bool local_bad = !std::isfinite(local_loss);
  float sums[2] = {static_cast<float>(local_loss), local_bad ? 1.0f : 0.0f};
  const double loss0 = comm_clock();
  comm_.allreduce_sum(sums, 2);
  StepStats s;
  s.data_wait_s = data_wait_s;
  s.comm_s = grads.comm_s + (comm_clock() - loss0);
  s.comm_hidden_s = grads.hidden_s;
  s.forward_s = times.forward_s;
  s.backward_s = times.backward_s;
  s.loss = sums[0] / world_;
  // The norm of the all-reduced gradients (the host reads it anyway, for clipping and the log) is
  // equal on every rank, as is the loss: all ranks skip, roll back or stop at the same step.
  s.grad_norm = flat.grad_norm();
  if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm) || sums[1] > 0) {
    s.nonfinite = true;
    const std::string ranks = nonfinite_ranks(local_bad);  // a collective, on this rare path only
    s.fault = "the loss averaged over " + std::to_string(world_) + " rank(s) is " + std::to_string(s.loss) +
              " and the gradient norm " + std::to_string(s.grad_norm) +
              (ranks.empty() ? std::string(" (every rank's own loss is finite: the gradients overflowed)")
                             : " (not finite on rank " + ranks + ")");
    return s;  // parameters, optimiser moments and EMA stay as they were
  }
  const double clip = spec_.recipe.optimizer.grad_clip;
  if (clip > 0 && s.grad_norm > clip) flat.scale_grads(clip / (s.grad_norm + 1e-6));
  note_progress("optimizer step");
  const double update0 = comm_clock();
  s.lr = learning_rate(stage_, step);
  state_->optimizer().step(s.lr);
  state_->ema().update(step);
  if (profile_sync_) synchronize_device(hardware_.device);
  s.update_s = comm_clock() - update0;
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.samples_per_s = double(stage_.batch_size) / std::max(dt, 1e-9);
  return s;
}

// Every rank's figures since the last report go to rank 0 (at the same steps on every rank), which
// stores their aggregate as points of the stage and hands the per-rank table to the heartbeat.
void StageRun::report_system(int64_t step) {
  note_progress("gathering the ranks' system figures");
  const std::vector<std::string> all = comm_.gather(system_.take(rank_).dump(), 0);
  if (!reporter_) return;
  nlohmann::json ranks = nlohmann::json::array();
  double step_s = 0, data_wait_s = 0, comm_s = 0, hidden_s = 0, rss = 0, forward_s = 0, backward_s = 0, update_s = 0;
  for (const std::string& text : all) {
    const nlohmann::json r = nlohmann::json::parse(text);
    step_s = std::max(step_s, r.at("step_s").get<double>());  // the slowest rank sets the pace
    forward_s = std::max(forward_s, r.at("forward_s").get<double>());
    backward_s = std::max(backward_s, r.at("backward_s").get<double>());
    update_s = std::max(update_s, r.at("update_s").get<double>());
    data_wait_s = std::max(data_wait_s, r.at("data_wait_s").get<double>());
    comm_s += r.at("comm_s").get<double>();
    hidden_s += r.at("comm_hidden_s").get<double>();
    rss = std::max(rss, r.at("peak_rss_mb").get<double>());
    ranks.push_back(r);
  }
  const double n = static_cast<double>(all.size());
  reporter_->add_point("sys_step_s", step, step_s);
  reporter_->add_point("sys_data_wait_s", step, data_wait_s);
  reporter_->add_point("sys_peak_rss_mb", step, rss);
  reporter_->add_point("sys_forward_s", step, forward_s);  // the slowest rank's, as step_s
  reporter_->add_point("sys_backward_s", step, backward_s);
  reporter_->add_point("sys_update_s", step, update_s);
  if (world_ > 1) {  // a world of one has nothing to communicate
    reporter_->add_point("sys_comm_s", step, comm_s / n);
    reporter_->add_point("sys_comm_hidden_frac", step, comm_s > 0 ? hidden_s / comm_s : 0.0);
  }
  reporter_->set_system({{"step", step}, {"ranks", ranks}});
}

void StageRun::report(int64_t step, const StepStats& s) {
  const bool due = step % stage_.log_every == 0 || step == stage_.steps;
  system_.add(s);
  if (due) report_system(step);
  if (reporter_) {
    if (due) {
      reporter_->add_point("loss", step, s.loss);
      reporter_->add_point("lr", step, s.lr);
      reporter_->add_point("grad_norm", step, s.grad_norm);
      reporter_->add_point("samples_per_s", step, s.samples_per_s);
    }
    reporter_->pump(step);
  }
  if (rank_ == 0 && (step % 50 == 0 || step == stage_.steps))
    log::info("step " + std::to_string(step) + "/" + std::to_string(stage_.steps) + " loss " + std::to_string(s.loss) +
              " grad_norm " + std::to_string(s.grad_norm) + " lr " + std::to_string(s.lr) + " " +
              std::to_string(static_cast<int>(s.samples_per_s)) + " samples/s");
}

StageResult StageRun::train() {
  const int64_t first_step = resume();
  if (first_step > 1) prune_old_checkpoints(first_step - 1);  // never the bundle resumed from
  if (dump_) dump_->begin(spec_, stage_, geometry_, first_step, model_state(state_->model()));
  logs_ = ctx_.run_dir + "/logs";
  make_dirs(logs_);
  // A resumed run appends: the log's last entry for a step is the batch that step trained on.
  records_log_.open(logs_ + "/records-rank-" + std::to_string(rank_) + ".jsonl",
                    first_step > 1 ? std::ios::app : std::ios::trunc);
  StageResult result;
  result.steps = first_step - 1;
  // An evaluation stage that evaluates this stage at step 0 needs the initial weights as a bundle.
  if (first_step == 1)
    for (const StageSpec& other : ctx_.spec.stages)
      if (other.kind == "eval" && other.after == stage_.name &&
          std::count(other.eval.at_steps.begin(), other.eval.at_steps.end(), 0) > 0) {
        save_checkpoint(0);
        break;
      }
  for (int64_t step = first_step; step <= stage_.steps; ++step) {
    set_current_step(step);
    const bool poison = maybe_inject_fault(ctx_.faults, {spec_.name, stage_.name, rank_, step, ctx_.attempt});
    note_progress("agreeing to go on (stop flag)");
    const double iteration0 = comm_clock();
    const bool stop = comm_.allreduce_max(g_stop_requested ? 1 : 0) != 0;  // all ranks stop at the same step
    const double stop_s = comm_clock() - iteration0;
    if (stop) {
      result.checkpoint = save_checkpoint(step - 1);
      result.steps = step - 1;
      result.preempted = true;
      break;
    }
    StepStats s = this->step(step, poison);
    if (s.nonfinite) {
      step = on_nonfinite(step, s);  // this step again (skipped), or the checkpoint rolled back to
      result.steps = step;
      continue;
    }
    bad_run_.clear();
    if (dump_ && dump_->wants(step)) dump_->outcome(step, s.loss, s.grad_norm, s.lr);
    s.comm_s += stop_s;
    s.step_s = comm_clock() - iteration0;
    result.final_loss = s.loss;
    result.samples_per_s = s.samples_per_s;
    result.steps = step;
    report(step, s);
    if (stage_.checkpoint_every > 0 && step % stage_.checkpoint_every == 0 && step != stage_.steps)
      result.checkpoint = save_checkpoint(step);
  }
  if (!result.preempted) result.checkpoint = save_checkpoint(result.steps);
  finish(result);
  return result;
}

// Rank 0 gets the ranks whose own loss was not finite ("1, 3"; "" when none); "" on the others.
std::string StageRun::nonfinite_ranks(bool local_bad) {
  const std::vector<std::string> flags = comm_.gather(local_bad ? "1" : "0", 0);
  std::vector<std::string> bad;
  for (std::size_t r = 0; r < flags.size(); ++r)
    if (flags[r] == "1") bad.push_back(std::to_string(r));
  return join(bad, ", ");
}

void StageRun::log_nonfinite(int64_t step, const StepStats& s, const std::string& action) {
  if (rank_ != 0) return;
  std::ofstream out(logs_ + "/nonfinite.jsonl", std::ios::app);
  out << nlohmann::json{{"step", step},
                        {"batch", batch_index(step)},
                        {"fault", s.fault},
                        {"action", action},
                        {"rollbacks", rollbacks_},
                        {"attempt", ctx_.attempt},
                        {"time", log::now_seconds()}}
             .dump()
      << "\n";
}

// A step whose loss or gradient norm was not finite (nothing was updated): skipped; after
// nonfinite_skip_limit in a row, the run rolls back to its newest checkpoint before them and steps
// past their batches; after nonfinite_rollback_limit rollbacks it ends diverged. Returns the step
// the training loop continues after.
int64_t StageRun::on_nonfinite(int64_t step, const StepStats& s) {
  bad_run_.push_back({batch_index(step), step});
  const int64_t limit = stage_.nonfinite_skip_limit, n = static_cast<int64_t>(bad_run_.size());
  const std::string what = "step " + std::to_string(step) + ": " + s.fault;
  if (limit == 0) {
    log_nonfinite(step, s, "diverged");
    throw DivergedError("the training diverged: " + what + " (nonfinite_skip_limit = 0)");
  }
  if (n < limit) {
    log_nonfinite(step, s, "skipped");
    if (rank_ == 0)
      log::warn(what + "; the step is skipped, weights, optimiser and EMA untouched (" + std::to_string(n) + " of " +
                std::to_string(limit) + " in a row before a rollback)");
    return step;
  }
  const std::string steps = "steps " + std::to_string(bad_run_.front().step) + "-" + std::to_string(step);
  if (rollbacks_ >= stage_.nonfinite_rollback_limit) {
    log_nonfinite(step, s, "diverged");
    throw DivergedError(
        "the training diverged: " + std::to_string(n) + " steps in a row with a non-finite loss or gradient norm (" +
        steps + "; last, " + what + ") after " + std::to_string(rollbacks_) +
        " rollback(s) (nonfinite_rollback_limit = " + std::to_string(stage_.nonfinite_rollback_limit) + ")");
  }
  ++rollbacks_;
  log_nonfinite(step, s, "rolled back");
  const int64_t first_bad = bad_run_.front().step;
  for (const SkippedBatch& b : bad_run_) skipped_.push_back(b);
  std::sort(skipped_.begin(), skipped_.end(),
            [](const SkippedBatch& a, const SkippedBatch& b) { return a.index < b.index; });
  bad_run_.clear();
  const int64_t back_to = roll_back(first_bad);
  if (rank_ == 0)
    log::warn(what + "; " + std::to_string(n) + " steps in a row were not finite (" + steps + "): rolled back to " +
              (back_to > 0 ? "the checkpoint of step " + std::to_string(back_to) : std::string("the stage's start")) +
              " (rollback " + std::to_string(rollbacks_) + " of at most " +
              std::to_string(stage_.nonfinite_rollback_limit) + "); their " + std::to_string(n) +
              " batch(es) are skipped from now on (recorded in the next checkpoint's manifest)");
  return back_to;
}

// Restores the newest checkpoint before step `first_bad` (or the stage's initial state when there is
// none) and removes the bundles of the abandoned steps. Returns the restored step.
int64_t StageRun::roll_back(int64_t first_bad) {
  note_progress("rolling back to a checkpoint");
  const std::string dir = ctx_.run_dir + "/checkpoints";
  std::optional<BundleRef> target;
  for (const BundleRef& b : list_bundles(dir))
    if (b.step < first_bad) target = b;
  comm_.barrier();  // every rank has chosen before rank 0 removes the abandoned bundles
  if (rank_ == 0) {
    const auto removed = remove_checkpoints_after(dir, target ? target->step : -1);
    if (!removed.empty())
      log::info("removed " + std::to_string(removed.size()) + " checkpoint(s) of the abandoned steps");
  }
  if (target) {
    // (A bundle from before a resume at another world size gets fresh generator streams.)
    state_->restore(read_checkpoint(target->dir), rank_, world_, target->dir);
    return target->step;
  }
  reducer_.reset();  // it hooks the old model's parameters
  state_ = std::make_unique<TrainingState>(spec_, geometry_, rank_, hardware_.device);
  reducer_ = std::make_unique<GradReducer>(state_->flat(), comm_,
                                           static_cast<int64_t>(stage_.comm_bucket_mb * 1024.0 * 1024.0));
  if (!ctx_.init.empty()) initialize_from_parent();
  return 0;
}

void StageRun::finish(StageResult& result) {
  result.param_checksum = state_->param_checksum();
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  log::info("rank " + std::to_string(rank_) + " finished at step " + std::to_string(result.steps) +
            " param_checksum=" + result.param_checksum);
  write_file_atomic(logs_ + "/rank-" + std::to_string(rank_) + ".json",
                    nlohmann::json{{"rank", rank_},
                                   {"step", result.steps},
                                   {"param_checksum", result.param_checksum},
                                   {"final_loss", result.final_loss},
                                   {"preempted", result.preempted}}
                            .dump() +
                        "\n");
}

}  // namespace

void install_preemption_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool preemption_requested() { return g_stop_requested != 0; }

StageResult train_stage(const StageContext& ctx, Communicator& comm, Reporter* reporter) {
  StageRun run(ctx, comm, reporter);
  return run.train();
}

}  // namespace ldm::worker
