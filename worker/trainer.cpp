#include "worker/trainer.h"

#include <signal.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "datasets/autoencoder.h"
#include "datasets/loader.h"
#include "datasets/synthetic.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec_json.h"
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

// Shards made elsewhere must match what the stage builds the model for.
void check_dataset(const data::ShardDataset& data, const StageSpec& stage) {
  const data::Record first = data.read(0);
  if (data.header().kind != data::PayloadKind::ImageU8)
    throw DataError(data.dir() + ": " + data::to_string(data.header().kind) +
                    " shards are not supported by the trainer yet (image shards only)");
  if (first.shape.size() != 3 || first.shape[0] != stage.resolution || first.shape[1] != stage.resolution)
    throw DataError(data.dir() + ": record " + std::to_string(first.id) + " is " +
                    (first.shape.size() == 3 ? std::to_string(first.shape[0]) + "x" + std::to_string(first.shape[1]) : std::string("not an image")) +
                    " but stage '" + stage.name + "' has resolution " + std::to_string(stage.resolution));
}

}  // namespace

void install_preemption_handler() {
  struct sigaction sa{};
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
  check_dataset(*dataset, stage);
  auto ae = std::make_shared<const data::PatchAutoencoder>(
      static_cast<int>(spec.autoencoder.factor), spec.autoencoder.scale, spec.autoencoder.shift);
  data::RankLoader loader(dataset, ae, static_cast<uint64_t>(spec.seed), stage.batch_size, rank, world);

  // ---- model and optimiser: identical initialisation on every rank (same seed, no rank) ----
  const int64_t side = latent_side(spec, stage);
  const auto process = make_process(spec, stage);
  const ConditionBuilder conditions(spec, resolution_shift(spec, stage));
  auto init_gen = make_generator(spec, "init", 0);
  auto model = models::build_denoiser(spec.recipe, conditions.geometry(ae->latent_channels(), side, side), init_gen);
  model->train();
  const auto& o = spec.recipe.optimizer;
  FlatParams flat(*model, o.decay_norms_and_biases);
  std::unique_ptr<FlatOptimizer> optimizer;
  if (o.name == "adan") optimizer = std::make_unique<FlatAdan>(flat, FlatAdan::Options{o.beta1, o.beta2, o.beta3, o.eps, o.weight_decay});
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

  const std::string logs = ctx.run_dir + "/logs";
  make_dirs(logs);
  std::ofstream records_log(logs + "/records-rank-" + std::to_string(rank) + ".jsonl", std::ios::trunc);

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
    b.manifest = {{"step", step}, {"data_cursor", step * stage.batch_size}, {"spec", spec_to_json(spec)},
                  {"spec_hash", spec_hash(spec)}, {"experiment", spec.name}, {"stage", stage.name},
                  {"stage_index", ctx.stage_index}, {"attempt", ctx.attempt}, {"world_size", world},
                  {"threads_per_rank", stage.threads_per_rank}, {"libtorch", TORCH_VERSION},
                  {"recipe", spec.recipe.family + " " + spec.recipe.preset}, {"autoencoder", ae->identity()},
                  {"generators", {"timesteps", "noise", "semantic-dropout", "control-dropout", "padding-noise", "mask"}}};
    b.model = state_dict(flat.param_buffers());
    b.ema = state_dict(ema.buffers());
    for (auto& [name, tensor] : optimizer->state()) b.optimizer[name] = tensor;
    b.optimizer["step"] = torch::tensor({optimizer->steps_taken()}, torch::kInt64);
    for (int r = 0; r < world; ++r) {
      const auto& bytes = all[static_cast<std::size_t>(r)];
      b.generators["rank" + std::to_string(r)] =
          torch::from_blob(const_cast<char*>(bytes.data()), {static_cast<int64_t>(bytes.size())}, torch::kUInt8).clone();
    }
    auto dir = write_checkpoint(ctx.run_dir + "/checkpoints", b);
    if (reporter) reporter->send_event(protocol::Type::Checkpoint, {{"step", step}, {"path", dir}}, 30.0);
    return dir;
  };

  StageResult result;
  const int64_t local_b = loader.local_batch();
  const int64_t micro = stage.grad_accumulation;
  const int64_t micro_b = local_b / micro;
  double last_samples_per_s = 0;
  for (int64_t step = 1; step <= stage.steps; ++step) {
    set_current_step(step);
    maybe_inject_fault(ctx.fault, rank, step);
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
    if (conditions.text_task())
      for (std::size_t i = 0; i < batch.captions.size(); ++i)
        if (batch.captions[i].empty())
          throw DataError(ddir + ": record " + std::to_string(batch.ids[i]) + " has no caption (task = \"text\")");
    if (!conditions.text_task() && bad.any().item<bool>()) {
      const int64_t i = bad.nonzero()[0][0].item<int64_t>();
      throw DataError(ddir + ": record " + std::to_string(batch.ids[static_cast<std::size_t>(i)]) + " has label " +
                      std::to_string(batch.labels[i].item<int64_t>()) + " outside [0, dataset.classes = " +
                      std::to_string(spec.dataset.classes) + ")");
    }
    {
      nlohmann::json ids = batch.ids, epochs = batch.epochs;
      records_log << nlohmann::json{{"step", step}, {"ids", ids}, {"epochs", epochs}}.dump() << "\n";
    }
    auto t = process->sample_training_t(local_b, gen_t);  // [b] float64, continuous time
    // Semantic and control dropout (for guidance), caption padding, control weights' noise level.
    ConditionInputs inputs;
    if (conditions.text_task()) inputs.captions = batch.captions;
    else inputs.labels.assign(batch.labels.data_ptr<int64_t>(), batch.labels.data_ptr<int64_t>() + local_b);
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
                    nlohmann::json{{"rank", rank}, {"step", result.steps}, {"param_checksum", result.param_checksum},
                                   {"final_loss", result.final_loss}, {"preempted", result.preempted}}
                            .dump() + "\n");
  return result;
}

}  // namespace ldm::worker
