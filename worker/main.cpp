// ldm-worker: one rank of a training job. Launched by the coordinator as
//   mpirun -n N ldm-worker train --coord tcp://HOST:PORT --run RUN_ID     (LDM_RUN_TOKEN in the env)
// and, for people, `ldm-worker describe RECIPE` to inspect a model without training it.
#include <fcntl.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "shared/core/cli.h"
#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/recipes/card.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec_json.h"
#include "worker/comm.h"
#include "worker/fault.h"
#include "worker/forward_cmd.h"
#include "worker/models/denoiser.h"
#include "worker/diffusion_setup.h"
#include "worker/eval/eval_cli.h"
#include "worker/reporter.h"
#include "worker/safetensors.h"
#include "worker/sampling.h"
#include "worker/torch_compat.h"
#include "worker/trainer.h"

using namespace ldm;
using namespace ldm::worker;

namespace {

int cmd_describe(const cli::Args& a) {
  RecipeSpec recipe;
  recipe.family = a.positional.at(0);
  const RecipeCard* card = nullptr;
  const PresetInfo* found = nullptr;
  try {  // a name typed on the command line: a usage error that lists what exists
    card = &recipe_card(recipe.family);
    recipe.preset = a.text("preset", card->default_preset);
    found = &recipe_preset(recipe.family, recipe.preset);
  } catch (const SpecError& e) {
    throw cli::UsageError(e.detail());
  }
  const PresetInfo& preset = *found;
  recipe.learn_sigma = a.has("learn-sigma");
  recipe.conditioning.controls = a.choice("controls", ControlMode::None);
  const int64_t resolution = a.integer("resolution", 256);
  const int64_t factor = a.integer("factor", 8);
  const int64_t in_channels = a.integer("in-channels", 4);
  const std::string task = a.text("task", "class");
  const int64_t classes = task == "class" ? a.integer("classes", 1000) : 0;
  const int64_t text_dim = a.integer("text-dim", 4096);
  const int64_t text_tokens = a.integer("text-tokens", 120);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(0);
  models::ModelGeometry g{in_channels, resolution / factor, resolution / factor, classes};
  if (task == "text") {
    g.text_channels = text_dim;
    g.text_tokens = text_tokens;
  }
  auto model = models::build_denoiser(recipe, g, gen);
  int64_t params = 0, trainable = 0;
  for (const auto& p : model->parameters()) {
    params += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  const ModelShape shape = models::model_shape(g, recipe);
  const int64_t analytic = card->param_count(preset, shape);
  const double gflops = card->gflops(preset, shape);
  if (a.has("json")) {
    std::cout << nlohmann::json{{"family", recipe.family},
                                {"preset", recipe.preset},
                                {"task", task},
                                {"controls", choice_name(recipe.conditioning.controls)},
                                {"resolution", resolution},
                                {"latent", {in_channels, resolution / factor, resolution / factor}},
                                {"parameters", params},
                                {"trainable", trainable},
                                {"analytic_parameters", analytic},
                                {"gflops", gflops}}
                     .dump(2)
              << "\n";
  } else {
    const std::string cond = task == "class"
                                 ? std::to_string(classes) + " classes"
                                 : "captions " + std::to_string(text_tokens) + "x" + std::to_string(text_dim);
    std::printf("%s %s at %lldpx (latent %lldx%lldx%lld, %s, controls %s)\n", recipe.family.c_str(),
                recipe.preset.c_str(), (long long)resolution, (long long)in_channels, (long long)(resolution / factor),
                (long long)(resolution / factor), cond.c_str(), choice_name(recipe.conditioning.controls));
    std::printf("  parameters  %lld (trainable %lld; analytic %lld)\n", (long long)params, (long long)trainable,
                (long long)analytic);
    std::printf("  forward     %.4g GFLOPs per sample (multiply-add = 1 FLOP)\n", gflops);
  }
  if (params != analytic) {
    std::cerr << "ldm-worker: error: built module has " << params << " parameters but the analytic count is "
              << analytic << "\n";
    return 1;
  }
  return 0;
}

int cmd_sample(const cli::Args& a) {
  at::set_num_threads(static_cast<int>(a.integer("threads", 1)));
  SamplingModel m =
      load_sampling_model(a.text("checkpoint"), !a.has("no-ema"), a.integer("resolution", 0), a.number("shift", 0.0));
  const bool controls = m.conditions->uses_controls(), text = m.conditions->text_task();
  for (const char* flag : {"controls", "cfg-control"})
    if (a.has(flag) && !controls)
      throw cli::UsageError(std::string("--") + flag + ": this checkpoint's recipe has no control conditioning " +
                            "(recipe.conditioning.controls = \"none\")");
  if (a.has("caption") && !text) throw cli::UsageError("--caption: this checkpoint is class-conditional (use --class)");
  if (a.has("class") && text) throw cli::UsageError("--class: this checkpoint is text-to-image (use --caption)");
  if (text && !a.has("caption")) throw cli::UsageError("this checkpoint is text-to-image: give --caption TEXT");
  SampleRequest r;
  r.sampler = sampler_options(m.spec.recipe.sampler);
  r.sampler.method = a.choice("sampler", r.sampler.method);
  r.sampler.steps = a.integer("steps", r.sampler.steps);
  r.sampler.spacing = a.choice("spacing", r.sampler.spacing);
  r.sampler.eta = a.number("eta", r.sampler.eta);
  r.cfg = a.number("cfg", m.spec.recipe.sampler.cfg);
  r.cfg_control = a.number("cfg-control", m.spec.recipe.sampler.cfg_control);
  r.seed = static_cast<uint64_t>(a.integer("seed", 0));
  const int64_t n = a.integer("n", 8), classes = m.spec.dataset.classes;
  const int64_t resolution = m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution;
  data::ControlMeta control;
  try {
    control = parse_control_meta(a.text("controls"), resolution);
  } catch (const Error& e) {
    throw cli::UsageError(e.what());
  }
  for (int64_t i = 0; i < n; ++i) {
    if (text) {
      r.captions.push_back(a.text("caption"));
    } else {
      const int64_t label = a.integer("class", i % classes);
      if (label < 0 || label > classes)
        throw cli::UsageError("--class must be in [0, " + std::to_string(classes) + "] (" + std::to_string(classes) +
                              " = unconditional)");
      r.labels.push_back(label);
    }
    if (controls) r.controls.push_back(control);
  }
  log::info("sampling " + std::to_string(n) + " images from " + m.spec.name + " step " + std::to_string(m.step) + " (" +
            (m.ema ? "EMA" : "raw") + " weights) with " + choice_name(r.sampler.method) + ", " +
            std::to_string(r.sampler.steps) + " steps, cfg " + std::to_string(r.cfg));
  auto latents = sample_latents(m, r);
  if (a.has("latents")) write_file_atomic(a.text("latents"), safetensors_encode({{"latents", latents}}));
  write_image_grid(decode_latents(m, latents), a.text("out"), a.integer("columns", 8));
  std::cout << "wrote " << a.text("out") << "\n";
  return 0;
}

// Per-rank log file in the run directory (the cwd the coordinator gave us).
void redirect_output(int rank) {
  make_dirs("logs");
  const std::string path = "logs/rank-" + std::to_string(rank) + ".log";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("cannot open", path);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  ::close(fd);
}

int cmd_train(const cli::Args& a) {
  auto comm = make_mpi_communicator(nullptr, nullptr);
  const int rank = comm->rank();
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) throw_errno("getcwd failed", ".");
  const std::string note = std::string(cwd) + "/failure-rank-" + std::to_string(rank) + ".txt";
  ::unlink(note.c_str());  // a note from an earlier attempt is not ours
  install_crash_handler(rank, note);
  install_preemption_handler();
  if (!a.has("no-redirect")) redirect_output(rank);
  log::set_component("worker r" + std::to_string(rank));

  std::unique_ptr<Reporter> reporter;
  try {
    const std::vector<FaultPlan> faults = faults_from_env();
    const char* token = std::getenv("LDM_RUN_TOKEN");
    if (!token || !*token) throw Error("LDM_RUN_TOKEN is not set (the coordinator passes the run's token in it)");
    std::string spec_text;
    if (rank == 0) {
      reporter = std::make_unique<Reporter>(a.text("coord"), a.text("run"), token);
      spec_text = reporter->fetch_spec(comm->size()).dump();
    }
    comm->broadcast(spec_text, 0);
    auto body = nlohmann::json::parse(spec_text);
    StageContext ctx;
    ctx.spec = spec_from_json(body.at("spec"));
    ctx.attempt = body.at("attempt").get<int>();
    ctx.run_dir = body.at("run_dir").get<std::string>();
    ctx.stage_index = body.value("stage_index", 0);
    ctx.data_dir = body.value("data_dir", ctx.run_dir + "/data");
    ctx.resume_from = body.value("resume_from", std::string());
    ctx.faults = faults;
    if (reporter) {
      reporter->set_attempt(ctx.attempt);
      reporter->set_sent_log(ctx.run_dir + "/sent.jsonl");
    }
    StageResult r = train_stage(ctx, *comm, reporter.get());
    if (reporter) {
      if (!reporter->flush(r.steps, 120.0))
        log::error("the coordinator did not acknowledge " + std::to_string(reporter->unacked_batches()) +
                   " metric batches; their points are in sent.jsonl");
      nlohmann::json summary = {{"final_loss", r.final_loss},
                                {"samples_per_s", r.samples_per_s},
                                {"wall_s", r.wall_s},
                                {"param_checksum", r.param_checksum},
                                {"checkpoint", r.checkpoint}};
      if (r.preempted)
        reporter->send_event(protocol::Type::Preempted, {{"step", r.steps}, {"checkpoint", r.checkpoint}}, 30.0);
      else reporter->send_event(protocol::Type::Done, {{"step", r.steps}, {"summary", summary}}, 30.0);
    }
    comm->barrier();
    return 0;
  } catch (const std::exception& e) {
    const int64_t step = current_step();
    const std::string msg =
        "rank " + std::to_string(rank) + ": error at step " + std::to_string(step) + ": " + torch_compat::error_text(e);
    log::error(msg);
    write_failure_note(note, msg);
    if (reporter) {
      try {
        reporter->send_event(protocol::Type::Failed, {{"step", step}, {"rank", rank}, {"message", msg}}, 5.0);
      } catch (const std::exception& e2) {
        log::error(std::string("could not report the failure: ") + e2.what());
      }
    }
    if (comm->size() > 1) comm->abort(1);  // the other ranks may be blocked in a collective
    return 1;
  }
}

int run_forward(const cli::Args& a) {
  ForwardArgs f;
  f.recipe = a.text("recipe");
  f.preset = a.text("preset");
  f.checkpoint = a.text("checkpoint");
  f.inputs = a.text("inputs");
  f.out = a.text("out");
  f.ema = a.has("ema");
  f.learn_sigma = a.has("learn-sigma");
  if (a.has("controls")) f.controls = a.choice("controls", ControlMode::None);
  f.classes = a.integer("classes", 0);
  f.threads = static_cast<int>(a.integer("threads", 0));
  return cmd_forward(f);
}

cli::Program program() {
  const cli::Option controls = cli::choice<ControlMode>("controls", "control conditioning of the model (default none)");
  const cli::Option threads = cli::integer("threads", "T", "intra-op threads (default 1)", 1, 1024);
  return {"ldm-worker",
          "One rank of a training job (launched by ldm-coord under mpirun), and the tools that build, sample and "
          "check models.",
          {{"train",
            {},
            "Train one stage (launched by ldm-coord under mpirun; the run token comes in LDM_RUN_TOKEN).",
            {cli::text("coord", "ENDPOINT", "the coordinator's ZeroMQ endpoint").required(),
             cli::text("run", "RUN_ID", "the run to train").required(),
             cli::flag("no-redirect", "keep stdout/stderr (default: logs/rank-N.log in the run directory)")},
            cmd_train},
           {"describe",
            {"FAMILY"},
            "Build a model and print its parameter count (checked against the analytic count) and forward GFLOPs.",
            {cli::text("preset", "P", "size preset (default: the family's own, see `ldm-coord presets`)"),
             cli::integer("resolution", "R", "image side in pixels (default 256)", 1, 65536),
             cli::integer("factor", "F", "autoencoder down-sampling factor (default 8)", 1, 64),
             cli::integer("in-channels", "C", "latent channels (default 4)", 1, 4096),
             cli::integer("classes", "N", "class task: number of classes (default 1000)", 1, 1000000),
             cli::choice("task", {"class", "text"}, "class-conditional or text-to-image (default class)"),
             cli::integer("text-dim", "D", "text task: token feature width (default 4096)", 1, 65536),
             cli::integer("text-tokens", "L", "text task: token slots (default 120)", 1, 4096), controls,
             cli::flag("learn-sigma", "learned-variance output channels"), cli::flag("json", "print JSON")},
            cmd_describe},
           {"sample",
            {},
            "Generate N images from a checkpoint into a PNG grid (default: the recipe's sampler, steps and guidance; "
            "EMA weights; classes 0,1,2,... unless --class).",
            {cli::text("checkpoint", "C", "a bundle or a checkpoints directory (its latest)").required(),
             cli::text("out", "grid.png", "the image grid to write").required(),
             cli::integer("class", "K", "class of every image (class task)"),
             cli::text("caption", "TEXT", "caption of every image (text task)"),
             cli::text("controls", "K=V,...",
                       "control metadata: orig_h orig_w crop_top crop_left crop_h crop_w flip\n"
                       "(default: an uncropped, unflipped image of the stage's resolution)"),
             cli::integer("n", "N", "number of images (default 8)", 1, 100000),
             cli::choice<Sampler>("sampler", "sampler (default: the recipe's)"),
             cli::integer("steps", "K", "sampling steps (default: the recipe's)", 1, 100000),
             cli::choice<Spacing>("spacing", "timestep spacing (default: the recipe's)"),
             cli::number("eta", "E", "DDIM stochasticity", 0, 1),
             cli::number("cfg", "S_SEM", "semantic guidance scale (default: the recipe's)", 0, 100),
             cli::number("cfg-control", "S_CTRL", "control guidance scale (default: the recipe's)", 0, 100),
             cli::integer("seed", "X", "noise seed (default 0)", 0),
             cli::integer("columns", "M", "images per grid row (default 8)", 1, 1024),
             cli::flag("no-ema", "the raw weights instead of the EMA"),
             cli::text("latents", "FILE.safetensors", "also write the sampled latents"), threads,
             cli::integer("resolution", "R", "sample at R pixels (positional embeddings resampled as the recipe says)",
                          1, 65536),
             cli::number("shift", "S", "resolution shift of the schedule (default: the trained stage's)", 1e-6, 1e3)},
            cmd_sample},
           {"forward",
            {},
            "One forward pass of a recipe on given inputs, for checks against reference implementations.",
            {cli::text("recipe", "FAMILY", "the model family").required(),
             cli::text("preset", "P", "size preset (inferred from DiT-layout weights when omitted)"),
             cli::text("checkpoint", "C", "a bundle directory, a PyTorch .pt or a safetensors file").required(),
             cli::text("inputs", "IN.npz",
                       "x [N,C,H,W], t [N], and y [N] or ctx [N,L,D] (+ ctx_mask, pooled);\n"
                       "optional controls [N,8], noise_level [N]")
                 .required(),
             cli::text("out", "OUT.npy", "float32 output").required(),
             cli::flag("ema", "the EMA weights (bundles and .pt training checkpoints)"),
             cli::flag("learn-sigma", "learned-variance output channels"), controls,
             cli::integer("classes", "N", "class task: number of classes (default: inferred from the weights)", 1),
             cli::integer("threads", "T", "intra-op threads (default: LibTorch's)", 1, 1024)},
            run_forward},
           eval::generate_command(),
           eval::disentanglement_command()},
          "environment: LDM_FAULT=KIND@step:S,rank:R[,attempt:A][,experiment:E][,stage:S] injects a fault (tests;\n"
      "several separated by ';'); LDM_LOG_LEVEL=debug|info|warn"};
}

}  // namespace

int main(int argc, char** argv) {
  log::set_component("worker");
  return cli::run(program(), argc, argv, torch_compat::error_text);
}
