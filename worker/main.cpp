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

#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/presets.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"
#include "worker/comm.h"
#include "worker/fault.h"
#include "worker/forward_cmd.h"
#include "worker/models/denoiser.h"
#include "worker/diffusion_setup.h"
#include "worker/eval/eval_cli.h"
#include "worker/reporter.h"
#include "worker/safetensors.h"
#include "worker/sampling.h"
#include "worker/trainer.h"

using namespace ldm;
using namespace ldm::worker;

namespace {

const char* kUsage =
    "usage: ldm-worker <command> [options]\n"
    "\n"
    "commands:\n"
    "  train --coord ENDPOINT --run RUN_ID   train one stage (launched by ldm-coord under mpirun;\n"
    "                                        reads the run token from LDM_RUN_TOKEN)\n"
    "  describe FAMILY [--preset P] [--resolution R] [--factor F] [--in-channels C] [--classes N]\n"
    "         [--task class|text] [--text-dim D] [--text-tokens L] [--controls none|sdxl|proposed]\n"
    "         [--learn-sigma] [--json]\n"
    "                                        build a model and print its parameter count (checked\n"
    "                                        against the analytic count) and forward GFLOPs\n"
    "  sample --checkpoint C [--class K | --caption TEXT] [--controls K=V,...] [--n N] [--sampler S]\n"
    "         [--steps K] [--spacing S] [--eta E] [--cfg S_SEM] [--cfg-control S_CTRL] [--seed X]\n"
    "         [--columns M] [--no-ema] [--latents FILE.safetensors] [--threads T] [--resolution R]\n"
    "         [--shift S]\n"
    "         --out grid.png\n"
    "                                        generate N images (default: the recipe's sampler, steps\n"
    "                                        and guidance; EMA weights; classes 0,1,2,... unless\n"
    "                                        --class). --controls sets the control metadata, keys\n"
    "                                        orig_h orig_w crop_top crop_left crop_h crop_w flip\n"
    "                                        (default: an uncropped, unflipped image of the stage's\n"
    "                                        resolution). --resolution samples at another size,\n"
    "                                        resampling positional embeddings as the recipe says;\n"
    "                                        the schedule keeps the trained shift unless --shift S\n"
    "  forward --recipe R [--preset P] --checkpoint C --inputs IN.npz --out OUT.npy [--ema]\n"
    "         [--learn-sigma] [--controls none|sdxl|proposed] [--classes N] [--threads T]\n"
    "                                        one forward pass of a recipe on given inputs, for checks\n"
    "                                        against reference implementations. IN.npz: x [N,C,H,W],\n"
    "                                        t [N], and y [N] or ctx [N,L,D] (+ ctx_mask, pooled);\n"
    "                                        optional controls [N,8], noise_level [N]. C: a bundle\n"
    "                                        directory, a PyTorch .pt or a safetensors file. --preset\n"
    "                                        is inferred for dit. Writes float32 OUT.npy\n"
    "  generate --checkpoint C --n N --out DIR [--seed X] [--sampler S] [--steps K] [--cfg S_SEM]\n"
    "         [--cfg-control S_CTRL] [--captions FILE] [--batch B] [--threads T] [--no-ema]\n"
    "                                        N evaluation samples as DIR/samples/NNNNNN.png (+ grid);\n"
    "                                        under mpirun each rank generates its share\n"
    "  disentanglement --checkpoint C [--sizes 64,128,...] [--lpips PATH] [--draws M] [--json] ...\n"
    "                                        the paper's size-condition disentanglement metric\n"
    "                                        (see 'ldm-worker generate|disentanglement --help')\n"
    "\n"
    "environment: LDM_FAULT=KIND@step:S,rank:R injects a fault (tests); LDM_LOG_LEVEL=debug|info|warn\n";

// LibTorch's errors carry a C++ backtrace in what(); people need the message.
std::string error_text(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "ldm-worker: " << msg << "\n\n" << kUsage;
  std::exit(2);
}

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  bool has(const std::string& k) const { return options.count(k) > 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = options.find(k);
    return it == options.end() ? def : it->second;
  }
};

Args parse_args(int argc, char** argv, int first, const std::vector<std::string>& flags,
                const std::vector<std::string>& valued) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (starts_with(s, "--")) {
      std::string key = s.substr(2);
      bool is_flag = std::find(flags.begin(), flags.end(), key) != flags.end();
      bool is_valued = std::find(valued.begin(), valued.end(), key) != valued.end();
      if (is_flag) a.options[key] = "1";
      else if (is_valued) {
        if (i + 1 >= argc) usage_error("option --" + key + " needs a value");
        a.options[key] = argv[++i];
      } else {
        std::vector<std::string> all = flags;
        all.insert(all.end(), valued.begin(), valued.end());
        usage_error("unknown option " + s + did_you_mean(key, all));
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

long long to_int(const std::string& s, const std::string& what) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end) usage_error(what + " must be an integer, got '" + s + "'");
  return v;
}

int cmd_describe(const Args& a) {
  if (a.positional.size() != 1) usage_error("describe needs exactly one FAMILY");
  RecipeSpec recipe;
  recipe.family = a.positional[0];
  recipe.preset = a.get("preset", "XL/2");
  recipe.learn_sigma = a.has("learn-sigma");
  const int64_t resolution = to_int(a.get("resolution", "256"), "--resolution");
  const int64_t factor = to_int(a.get("factor", "8"), "--factor");
  const int64_t in_channels = to_int(a.get("in-channels", "4"), "--in-channels");
  const std::string task = a.get("task", "class");
  if (task != "class" && task != "text") usage_error("--task must be class or text");
  const int64_t classes = task == "class" ? to_int(a.get("classes", "1000"), "--classes") : 0;
  const int64_t text_dim = to_int(a.get("text-dim", "4096"), "--text-dim");
  const int64_t text_tokens = to_int(a.get("text-tokens", "120"), "--text-tokens");
  recipe.conditioning.controls = a.get("controls", "none");
  if (recipe.conditioning.controls != "none" && recipe.conditioning.controls != "sdxl" &&
      recipe.conditioning.controls != "proposed")
    usage_error("--controls must be none, sdxl or proposed");
  const PresetInfo* preset = find_preset(recipe.family, recipe.preset);
  if (!is_known_family(recipe.family))
    throw SpecError("recipe.family",
                    "unknown family '" + recipe.family + "'" + did_you_mean(recipe.family, recipe_families()));
  if (!preset)
    throw SpecError("recipe.preset", "unknown preset '" + recipe.preset + "'" +
                                         did_you_mean(recipe.preset, preset_names(recipe.family)));
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
  const int64_t analytic = analytic_param_count(*preset, shape);
  const double gflops = analytic_gflops(*preset, shape);
  if (a.has("json")) {
    std::cout << nlohmann::json{{"family", recipe.family},
                                {"preset", recipe.preset},
                                {"task", task},
                                {"controls", recipe.conditioning.controls},
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
                (long long)(resolution / factor), cond.c_str(), recipe.conditioning.controls.c_str());
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

int cmd_sample(const Args& a) {
  if (!a.has("checkpoint") || !a.has("out")) usage_error("sample needs --checkpoint C and --out grid.png");
  at::set_num_threads(static_cast<int>(to_int(a.get("threads", "1"), "--threads")));
  SamplingModel m = load_sampling_model(a.get("checkpoint"), !a.has("no-ema"),
                                        a.has("resolution") ? to_int(a.get("resolution"), "--resolution") : 0,
                                        a.has("shift") ? std::stod(a.get("shift")) : 0.0);
  const bool controls = m.conditions->uses_controls(), text = m.conditions->text_task();
  for (const char* flag : {"controls", "cfg-control"})
    if (a.has(flag) && !controls)
      usage_error(std::string("--") + flag + ": this checkpoint's recipe has no control conditioning " +
                  "(recipe.conditioning.controls = \"none\")");
  if (a.has("caption") && !text) usage_error("--caption: this checkpoint is class-conditional (use --class)");
  if (a.has("class") && text) usage_error("--class: this checkpoint is text-to-image (use --caption)");
  if (text && !a.has("caption")) usage_error("this checkpoint is text-to-image: give --caption TEXT");
  SampleRequest r;
  r.sampler = sampler_options(m.spec.recipe.sampler);
  if (a.has("sampler")) r.sampler.method = a.get("sampler");
  if (a.has("steps")) r.sampler.steps = to_int(a.get("steps"), "--steps");
  if (a.has("spacing")) r.sampler.spacing = a.get("spacing");
  if (a.has("eta")) r.sampler.eta = std::stod(a.get("eta"));
  r.cfg = a.has("cfg") ? std::stod(a.get("cfg")) : m.spec.recipe.sampler.cfg;
  r.cfg_control = a.has("cfg-control") ? std::stod(a.get("cfg-control")) : m.spec.recipe.sampler.cfg_control;
  r.seed = static_cast<uint64_t>(to_int(a.get("seed", "0"), "--seed"));
  const int64_t n = to_int(a.get("n", "8"), "--n"), classes = m.spec.dataset.classes;
  if (n < 1) usage_error("--n must be at least 1");
  const int64_t resolution = m.spec.stages.at(static_cast<std::size_t>(m.stage_index)).resolution;
  data::ControlMeta control;
  try {
    control = parse_control_meta(a.get("controls"), resolution);
  } catch (const Error& e) {
    usage_error(e.what());
  }
  for (int64_t i = 0; i < n; ++i) {
    if (text) {
      r.captions.push_back(a.get("caption"));
    } else {
      const int64_t label = a.has("class") ? to_int(a.get("class"), "--class") : i % classes;
      if (label < 0 || label > classes)
        usage_error("--class must be in [0, " + std::to_string(classes) + "] (" + std::to_string(classes) +
                    " = unconditional)");
      r.labels.push_back(label);
    }
    if (controls) r.controls.push_back(control);
  }
  log::info("sampling " + std::to_string(n) + " images from " + m.spec.name + " step " + std::to_string(m.step) + " (" +
            (m.ema ? "EMA" : "raw") + " weights) with " + r.sampler.method + ", " + std::to_string(r.sampler.steps) +
            " steps, cfg " + std::to_string(r.cfg));
  auto latents = sample_latents(m, r);
  if (a.has("latents")) write_file_atomic(a.get("latents"), safetensors_encode({{"latents", latents}}));
  write_image_grid(decode_latents(m, latents), a.get("out"), to_int(a.get("columns", "8"), "--columns"));
  std::cout << "wrote " << a.get("out") << "\n";
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

int cmd_train(int argc, char** argv, const Args& a) {
  if (!a.has("coord") || !a.has("run")) usage_error("train needs --coord ENDPOINT and --run RUN_ID");
  auto comm = make_mpi_communicator(&argc, &argv);
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
    FaultPlan fault = fault_from_env();
    const char* token = std::getenv("LDM_RUN_TOKEN");
    if (!token || !*token) throw Error("LDM_RUN_TOKEN is not set (the coordinator passes the run's token in it)");
    std::string spec_text;
    if (rank == 0) {
      reporter = std::make_unique<Reporter>(a.get("coord"), a.get("run"), token);
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
    ctx.fault = fault;
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
        "rank " + std::to_string(rank) + ": error at step " + std::to_string(step) + ": " + error_text(e);
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage_error("missing command");
  const std::string cmd = argv[1];
  log::set_component("worker");
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::cout << kUsage;
      return 0;
    }
    if (cmd == "train") return cmd_train(argc, argv, parse_args(argc, argv, 2, {"no-redirect"}, {"coord", "run"}));
    if (cmd == "describe")
      return cmd_describe(parse_args(
          argc, argv, 2, {"json", "learn-sigma"},
          {"preset", "resolution", "factor", "in-channels", "classes", "task", "text-dim", "text-tokens", "controls"}));
    if (cmd == "sample")
      return cmd_sample(
          parse_args(argc, argv, 2, {"no-ema"},
                     {"checkpoint", "class", "caption", "controls", "n", "resolution", "shift", "sampler", "steps",
                      "spacing", "eta", "cfg", "cfg-control", "seed", "out", "latents", "columns", "threads"}));
    if (cmd == "generate") return ldm::eval::run_generate_cli(argc, argv);
    if (cmd == "disentanglement") return ldm::eval::run_disentanglement_cli(argc, argv);
    if (cmd == "forward") {
      const Args a = parse_args(argc, argv, 2, {"ema", "learn-sigma"},
                                {"recipe", "preset", "checkpoint", "inputs", "out", "controls", "classes", "threads"});
      if (!a.positional.empty()) usage_error("forward takes no positional arguments ('" + a.positional[0] + "')");
      for (const char* k : {"recipe", "checkpoint", "inputs", "out"})
        if (!a.has(k)) usage_error(std::string("forward needs --") + k);
      ForwardArgs f;
      f.recipe = a.get("recipe");
      f.preset = a.get("preset");
      f.checkpoint = a.get("checkpoint");
      f.inputs = a.get("inputs");
      f.out = a.get("out");
      f.ema = a.has("ema");
      f.learn_sigma = a.has("learn-sigma");
      f.controls = a.get("controls");
      f.classes = a.has("classes") ? to_int(a.get("classes"), "--classes") : 0;
      f.threads = static_cast<int>(to_int(a.get("threads", "0"), "--threads"));
      if (f.classes < 0 || f.threads < 0) usage_error("--classes and --threads must not be negative");
      return cmd_forward(f);
    }
    usage_error("unknown command '" + cmd + "'" +
                did_you_mean(cmd, {"train", "describe", "sample", "forward", "generate", "disentanglement"}));
  } catch (const std::exception& e) {
    std::cerr << "ldm-worker: error: " << error_text(e) << "\n";
    return 1;
  }
}
