#include "worker/trainer.h"

#include <signal.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "datasets/autoencoder.h"
#include "datasets/encoders.h"
#include "datasets/loader.h"
#include "datasets/synthetic.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec_json.h"
#include "shared/core/recipes/card.h"
#include "worker/checkpoint.h"
#include "worker/condition_builder.h"
#include "worker/diffusion_setup.h"
#include "worker/flat_params.h"
#include "worker/models/denoiser.h"
#include "worker/reporter.h"
#include "worker/weights.h"

namespace ldm::worker {
namespace {

volatile sig_atomic_t g_stop_requested = 0;
void on_sigusr1(int) { g_stop_requested = 1; }

at::Generator make_generator(const ExperimentSpec& spec, const std::string& purpose, int rank) {
  return at::detail::createCPUGenerator(derive_seed(static_cast<uint64_t>(spec.seed), purpose, rank));
}

std::string checksum(const torch::Tensor& flat) {
  auto c = flat.contiguous();
  return hex64(fnv1a64(c.data_ptr(), c.numel() * c.element_size()));
}

std::string dataset_dir(const StageContext& ctx, const data::SyntheticParams& params) {
  if (!ctx.spec.dataset.path.empty()) return ctx.spec.dataset.path;
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

// The bundle to continue from: the one asked for, or the run directory's newest on a later attempt.
std::string resume_bundle(const StageContext& ctx) {
  if (!ctx.resume_from.empty()) return ctx.resume_from;
  const std::string latest = ctx.run_dir + "/checkpoints/latest";
  if (ctx.attempt > 1 && path_exists(latest)) return ctx.run_dir + "/checkpoints";
  return "";
}

void copy_into(const std::map<std::string, torch::Tensor>& targets, const TensorMap& source, const std::string& what,
               const std::string& path) {
  for (const auto& [name, target] : targets) {
    auto it = source.find(name);
    if (it == source.end()) throw DataError(path + ": " + what + " has no tensor '" + name + "'");
    if (!it->second.sizes().equals(target.sizes()))
      throw DataError(path + ": " + what + " tensor '" + name + "' has another shape than the model's");
    torch::NoGradGuard no_grad;
    target.copy_(it->second);
  }
}

}  // namespace

void install_preemption_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
}

StageResult train_stage(const StageContext& ctx, Communicator& comm, Reporter* reporter) {
  const ExperimentSpec& spec = ctx.spec;
  const StageSpec& stage = spec.stages.at(static_cast<std::size_t>(ctx.stage_index));
  const int rank = comm.rank(), world = comm.size();
  if (stage.ranks != world)
    throw Error("stage '" + stage.name + "' asks for " + std::to_string(stage.ranks) + " ranks but the job has " +
                std::to_string(world));
  at::set_num_threads(static_cast<int>(stage.threads_per_rank));
  const auto t_start = std::chrono::steady_clock::now();

  // ---- data: rank 0 renders (or reuses) the synthetic dataset, the others wait for it ----
  data::SyntheticParams sp;
  sp.records = spec.dataset.records;
  sp.classes = spec.dataset.classes;
  sp.resolution = stage.resolution;
  sp.seed = spec.seed;
  sp.shard_records = spec.dataset.shard_records;
  const std::string ddir = dataset_dir(ctx, sp);
  if (spec.dataset.kind == "shards") {
    if (!path_exists(ddir))
      throw DataError("dataset.path '" + ddir + "' does not exist (experiment '" + spec.name + "')");
  } else if (rank == 0) {
    log::info("dataset: " + ddir);
    data::ensure_synthetic_dataset(sp, ddir, [](int64_t done, int64_t total) {
      log::info("rendering synthetic data: " + std::to_string(done) + "/" + std::to_string(total));
    });
  }
  comm.barrier();
  auto dataset = std::make_shared<const data::ShardDataset>(ddir);
  const auto ae = data::make_autoencoder(spec.autoencoder);
  const auto process = make_process(spec, stage);
  const ConditionBuilder conditions(spec, resolution_shift(spec, stage));
  check_dataset(*dataset, spec, stage, *ae, conditions.text_encoder());
  data::LoaderOptions loader_options;
  loader_options.prefetch = 2;  // background readers stay two steps ahead
  loader_options.text_tokens = static_cast<int>(spec.text_encoder.max_tokens);
  data::RankLoader loader(dataset, ae, static_cast<uint64_t>(spec.seed), stage.batch_size, rank, world, loader_options);
  if (rank == 0 && loader.plan().bucketed())
    log::info("aspect-ratio buckets: " + std::to_string(dataset->buckets().size()) + " shapes, " +
              std::to_string(loader.plan().batches_per_epoch()) + " batches per epoch");

  // ---- model and optimiser: identical initialisation on every rank (same seed, no rank) ----
  const int64_t side = latent_side(spec, stage);
  auto init_gen = make_generator(spec, "init", 0);
  auto model = models::build_denoiser(spec.recipe, conditions.geometry(ae->latent_channels(), side, side), init_gen);
  model->train();
  const auto& o = spec.recipe.optimizer;
  FlatParams flat(*model, o.decay_norms_and_biases);
  std::unique_ptr<FlatOptimizer> optimizer;
  if (o.name == OptimizerKind::Adan)
    optimizer = std::make_unique<FlatAdan>(flat, FlatAdan::Options{o.beta1, o.beta2, o.beta3, o.eps, o.weight_decay});
  else optimizer = std::make_unique<FlatAdamW>(flat, FlatAdamW::Options{o.beta1, o.beta2, o.eps, o.weight_decay});
  FlatEma ema(flat, spec.recipe.ema.decay, spec.recipe.ema.warmup);
  const diffusion::LossOptions loss_opts = loss_options(spec.recipe);
  auto gen_t = make_generator(spec, "timesteps", rank);
  auto gen_noise = make_generator(spec, "noise", rank);
  auto gen_drop = make_generator(spec, "semantic-dropout", rank);
  auto gen_control_drop = make_generator(spec, "control-dropout", rank);
  auto gen_pad = make_generator(spec, "padding-noise", rank);
  auto gen_mask = make_generator(spec, "mask", rank);
  const ConditionGenerators cond_gens{&gen_drop, &gen_control_drop, &gen_pad};
  if (rank == 0)
    log::info("model " + spec.recipe.family + " " + spec.recipe.preset + ": " + std::to_string(flat.numel()) +
              " trainable parameters in " + std::to_string(flat.buckets().size()) + " flat bucket(s); latent " +
              std::to_string(ae->latent_channels()) + "x" + std::to_string(side) + "x" + std::to_string(side) + "; " +
              std::to_string(dataset->size()) + " records; " + std::to_string(world) + " rank(s)");

  // ---- resume: weights, EMA, optimiser moments, every generator and the data cursor ----
  int64_t first_step = 1;
  if (const std::string from = resume_bundle(ctx); !from.empty()) {
    const CheckpointBundle b = read_checkpoint(from);
    const auto& m = b.manifest;
    if (m.value("spec_hash", std::string()) != spec_hash(spec))
      throw DataError(from + ": written for another experiment spec (spec_hash " +
                      m.value("spec_hash", std::string("?")) + ", this run's is " + spec_hash(spec) +
                      "); cannot resume from it");
    if (m.value("world_size", -1) != world)
      throw DataError(from + ": written by " + std::to_string(m.value("world_size", -1)) + " ranks, this job has " +
                      std::to_string(world) + " (the data order and generators are per rank)");
    const int64_t done = m.at("step").get<int64_t>();
    if (m.value("data_cursor", int64_t{-1}) != done * stage.batch_size)
      throw DataError(from + ": data cursor " + std::to_string(m.value("data_cursor", int64_t{-1})) +
                      " does not match step " + std::to_string(done) + " x global batch " +
                      std::to_string(stage.batch_size));
    if (m.value("threads_per_rank", int64_t{0}) != stage.threads_per_rank && rank == 0)
      log::warn(from + ": written with " + std::to_string(m.value("threads_per_rank", int64_t{0})) +
                " threads per rank, resuming with " + std::to_string(stage.threads_per_rank) + ": not bit-exact");
    copy_into(flat.unflatten(flat.param_buffers()), b.model, "model", from);
    copy_into(flat.unflatten(ema.buffers()), b.ema, "ema", from);
    copy_into(optimizer->state(), b.optimizer, "optimizer", from);
    optimizer->set_steps_taken(b.optimizer.at("step").item<int64_t>());
    const auto& mine = b.generators.at("rank" + std::to_string(rank));
    int64_t offset = 0;
    for (auto* g : {&gen_t, &gen_noise, &gen_drop, &gen_control_drop, &gen_pad, &gen_mask}) {
      const int64_t n = g->get_state().numel();
      if (offset + n > mine.numel())
        throw DataError(from + ": generator state of rank " + std::to_string(rank) + " is too short");
      g->set_state(mine.narrow(0, offset, n).clone());
      offset += n;
    }
    first_step = done + 1;
    if (rank == 0)
      log::info("resuming from " + from + " at step " + std::to_string(first_step) + " (data cursor " +
                std::to_string(done * stage.batch_size) + " records)");
  }

  const std::string logs = ctx.run_dir + "/logs";
  make_dirs(logs);
  // A resumed run appends: the log's last entry for a step is the batch that step trained on.
  std::ofstream records_log(logs + "/records-rank-" + std::to_string(rank) + ".jsonl",
                            first_step > 1 ? std::ios::app : std::ios::trunc);

  // A full state dict (trainable views + fixed tensors) with the trainable part taken from `flats`.
  auto state_dict = [&](const std::vector<torch::Tensor>& flats) {
    TensorMap out = model_state(*model);  // buffers too (PixArt's null caption, mDT's indices)
    for (auto& [name, view] : flat.unflatten(flats)) out[name] = view;
    return out;
  };

  auto save_checkpoint = [&](int64_t step) -> std::string {
    // Every rank's generator states travel to rank 0 so a resume can restore them exactly.
    std::string mine;
    for (auto* g : {&gen_t, &gen_noise, &gen_drop, &gen_control_drop, &gen_pad, &gen_mask}) {
      auto state = g->get_state();
      mine.append(static_cast<const char*>(state.data_ptr()), state.numel());
    }
    auto all = comm.gather(mine, 0);
    if (rank != 0) return "";
    CheckpointBundle b;
    b.manifest = {
        {"step", step},
        {"data_cursor", step * stage.batch_size},
        {"spec", spec_to_json(spec)},
        {"spec_hash", spec_hash(spec)},
        {"experiment", spec.name},
        {"stage", stage.name},
        {"stage_index", ctx.stage_index},
        {"attempt", ctx.attempt},
        {"world_size", world},
        {"threads_per_rank", stage.threads_per_rank},
        {"libtorch", TORCH_VERSION},
        {"recipe", spec.recipe.family + " " + spec.recipe.preset},
        {"autoencoder", ae->identity()},
        {"text_encoder",
         conditions.text_encoder() ? conditions.text_encoder()->identity() : dataset->header().text_encoder},
        {"dataset", {{"dir", ddir}, {"identity", dataset->header().dataset}, {"records", dataset->size()}}},
        {"generators", {"timesteps", "noise", "semantic-dropout", "control-dropout", "padding-noise", "mask"}}};
    b.model = state_dict(flat.param_buffers());
    b.ema = state_dict(ema.buffers());
    for (auto& [name, tensor] : optimizer->state()) b.optimizer[name] = tensor;
    b.optimizer["step"] = torch::tensor({optimizer->steps_taken()}, torch::kInt64);
    for (int r = 0; r < world; ++r) {
      const auto& bytes = all[static_cast<std::size_t>(r)];
      b.generators["rank" + std::to_string(r)] =
          torch::from_blob(const_cast<char*>(bytes.data()), {static_cast<int64_t>(bytes.size())}, torch::kUInt8)
              .clone();
    }
    // Every metric point up to `step` is in the store before the bundle exists: a later attempt that
    // resumes from it re-reports only the steps after it, so the stage's curves have no gap.
    if (reporter && !reporter->flush(step, 60.0))
      log::warn("the coordinator did not acknowledge the metric points up to step " + std::to_string(step) +
                " before this checkpoint; if a later attempt resumes from it, those points may be missing");
    auto dir = write_checkpoint(ctx.run_dir + "/checkpoints", b);
    if (reporter) reporter->send_event(protocol::Type::Checkpoint, {{"step", step}, {"path", dir}}, 30.0);
    return dir;
  };

  StageResult result;
  const int64_t local_b = loader.local_batch();
  const int64_t micro = stage.grad_accumulation;
  const int64_t micro_b = local_b / micro;
  double last_samples_per_s = 0;
  result.steps = first_step - 1;
  for (int64_t step = first_step; step <= stage.steps; ++step) {
    set_current_step(step);
    maybe_inject_fault(ctx.faults, {spec.name, stage.name, rank, step, ctx.attempt});
    if (comm.allreduce_max(g_stop_requested ? 1 : 0)) {  // all ranks stop at the same step
      result.checkpoint = save_checkpoint(step - 1);
      result.steps = step - 1;
      result.preempted = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    data::Batch batch = loader.batch_for_step(step - 1);
    // One vectorised check per batch; the per-record scan runs only to name the culprit.
    const auto bad = (batch.labels < 0).logical_or(batch.labels >= spec.dataset.classes);
    if (conditions.text_task() && batch.text.empty())
      for (std::size_t i = 0; i < batch.captions.size(); ++i)
        if (batch.captions[i].empty())
          throw DataError(ddir + ": record " + std::to_string(batch.ids[i]) + " has no caption (task = \"text\")");
    if (!conditions.text_task() && bad.any().item<bool>()) {
      const int64_t i = bad.nonzero()[0][0].item<int64_t>();
      throw DataError(ddir + ": record " + std::to_string(batch.ids[static_cast<std::size_t>(i)]) + " has label " +
                      std::to_string(batch.labels[i].item<int64_t>()) +
                      " outside [0, dataset.classes = " + std::to_string(spec.dataset.classes) + ")");
    }
    {
      nlohmann::json ids = batch.ids, epochs = batch.epochs;
      records_log << nlohmann::json{{"step", step}, {"ids", ids}, {"epochs", epochs}}.dump() << "\n";
    }
    auto t = process->sample_training_t(local_b, gen_t);  // [b] float64, continuous time
    // Semantic and control dropout (for guidance), caption padding, control weights' noise level.
    ConditionInputs inputs;
    if (conditions.text_task()) {
      inputs.captions = batch.captions;
      inputs.text = batch.text;  // stored caption features, when the shards have them
    } else inputs.labels.assign(batch.labels.data_ptr<int64_t>(), batch.labels.data_ptr<int64_t>() + local_b);
    if (conditions.uses_controls()) inputs.controls = batch.controls;
    const models::Condition cond = conditions.training(inputs, t, cond_gens);
    auto noise = torch::randn(batch.latents.sizes(), gen_noise);

    // Gradient accumulation: autograd sums the micro-batches' gradients into the flat buffers;
    // each micro-batch loss is scaled so the sum is the mean over the rank's batch.
    flat.zero_grad();
    double local_loss = 0;
    for (int64_t k = 0; k < micro; ++k) {
      auto x0 = batch.latents.narrow(0, k * micro_b, micro_b);
      auto tk = t.narrow(0, k * micro_b, micro_b);
      auto nk = noise.narrow(0, k * micro_b, micro_b);
      auto x_t = diffusion::add_noise(*process, x0, nk, tk);
      // mDT-v2 returns an unmasked and a masked prediction; their losses add up.
      auto outs = model->training_outputs(x_t, process->model_time(tk).to(torch::kFloat32),
                                          cond.narrow(k * micro_b, micro_b), gen_mask);
      torch::Tensor loss;
      for (const auto& out : outs) {
        auto l = diffusion::diffusion_loss(*process, loss_opts, out, x0, nk, tk).loss.mean();
        loss = loss.defined() ? loss + l : l;
      }
      (loss / double(micro)).backward();
      local_loss += loss.item<double>() / double(micro);
    }
    if (!std::isfinite(local_loss))
      throw Error("loss is not finite (" + std::to_string(local_loss) + ") at step " + std::to_string(step));
    // Average gradients (one all-reduce per bucket) and the loss over ranks.
    for (auto& b : flat.buckets()) {
      comm.allreduce_sum(b.grads.data_ptr<float>(), static_cast<std::size_t>(b.grads.numel()));
      b.grads.div_(world);
    }
    float loss_sum = static_cast<float>(local_loss);
    comm.allreduce_sum(&loss_sum, 1);
    const double mean_loss = loss_sum / world;
    const double grad_norm = flat.grad_norm();
    if (o.grad_clip > 0 && grad_norm > o.grad_clip) flat.scale_grads(o.grad_clip / (grad_norm + 1e-6));
    const double lr = learning_rate(stage, step);
    optimizer->step(lr);
    ema.update(step);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    last_samples_per_s = double(stage.batch_size) / std::max(dt, 1e-9);
    result.final_loss = mean_loss;
    result.steps = step;

    if (reporter) {
      if (step % stage.log_every == 0 || step == stage.steps) {
        reporter->add_point("loss", step, mean_loss);
        reporter->add_point("lr", step, lr);
        reporter->add_point("grad_norm", step, grad_norm);
        reporter->add_point("samples_per_s", step, last_samples_per_s);
      }
      reporter->pump(step);
    }
    if (rank == 0 && (step % 50 == 0 || step == stage.steps))
      log::info("step " + std::to_string(step) + "/" + std::to_string(stage.steps) + " loss " +
                std::to_string(mean_loss) + " grad_norm " + std::to_string(grad_norm) + " lr " + std::to_string(lr) +
                " " + std::to_string(static_cast<int>(last_samples_per_s)) + " samples/s");
    if (stage.checkpoint_every > 0 && step % stage.checkpoint_every == 0 && step != stage.steps)
      result.checkpoint = save_checkpoint(step);
  }
  if (!result.preempted) result.checkpoint = save_checkpoint(result.steps);

  {
    std::string bytes;  // checksum over every bucket, in order
    for (const auto& b : flat.buckets()) bytes += checksum(b.params);
    result.param_checksum = hex64(fnv1a64(bytes));
  }
  result.samples_per_s = last_samples_per_s;
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  log::info("rank " + std::to_string(rank) + " finished at step " + std::to_string(result.steps) +
            " param_checksum=" + result.param_checksum);
  write_file_atomic(logs + "/rank-" + std::to_string(rank) + ".json",
                    nlohmann::json{{"rank", rank},
                                   {"step", result.steps},
                                   {"param_checksum", result.param_checksum},
                                   {"final_loss", result.final_loss},
                                   {"preempted", result.preempted}}
                            .dump() +
                        "\n");
  return result;
}

}  // namespace ldm::worker
