// Forward+backward throughput of every recipe at its CPU presets, through the registry the trainer
// uses, printed as a table with parameters and analytic GFLOPs. A benchmark prints figures; it
// asserts nothing about speed.
//
//   build/bin/bench_recipes [--threads T] [--batch B] [--resolution R] [--seconds S] [--task class|text]
//                           [--family F]
//
// e.g. mDT-v2's two training passes (masked + full) at tiny/2, batch 2, 8x8 latents (the case
// tests/worker/models/mdt_test.cpp checks for gradients; its time is measured here):
//   build/bin/bench_recipes --family mdt --batch 2 --resolution 16
//
// Latents come from the default patch autoencoder (f = 2, 12 channels) at R px; the text task uses
// the builtin text encoder's default width (64) and 16 token slots.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "shared/core/cli.h"
#include "shared/core/recipes/card.h"
#include "worker/models/denoiser.h"

using namespace ldm;
using namespace ldm::models;

namespace {

struct Options {
  int threads = 1, batch = 8, resolution = 32;
  double seconds = 2.0;
  std::string task = "class";
  std::string family;  // "" = every family
};

Options parse(const cli::Args& a) {
  Options o;
  o.threads = static_cast<int>(a.integer("threads", o.threads));
  o.batch = static_cast<int>(a.integer("batch", o.batch));
  o.resolution = static_cast<int>(a.integer("resolution", o.resolution));
  o.seconds = a.number("seconds", o.seconds);
  o.task = a.text("task", o.task);
  o.family = a.text("family", o.family);
  return o;
}

int run(const Options& o);

}  // namespace

int main(int argc, char** argv) {
  using namespace ldm::cli;
  const Program program{"bench_recipes",
                        "",
                        {{"",
                          {},
                          "Forward+backward throughput of every recipe at its CPU presets (prints figures).",
                          {integer("threads", "T", "intra-op threads (default 1)", 1, 1024),
                           integer("batch", "B", "samples per step (default 8)", 1, 100000),
                           integer("resolution", "R", "image side in pixels (default 32; latent R/2)", 2, 4096),
                           number("seconds", "S", "minimum measuring time per recipe (default 2)", 0.01, 3600),
                           choice("task", {"class", "text"}, "class labels or captions (default class)"),
                           choice("family", recipe_families(), "only this recipe family (default every family)")},
                          [](const Args& a) { return run(parse(a)); }}}};
  return ldm::cli::run(program, argc, argv);
}

namespace {

int run(const Options& o) {
  at::set_num_threads(o.threads);
  const int64_t channels = 12, side = o.resolution / 2, classes = 1000, text_dim = 64, text_tokens = 16;
  const bool text = o.task == "text";
  std::printf("forward+backward, batch %d, %dpx -> latent %lldx%lldx%lld, task %s, %d thread(s), >= %.1f s each\n",
              o.batch, o.resolution, (long long)channels, (long long)side, (long long)side, o.task.c_str(), o.threads,
              o.seconds);
  std::printf("%-9s %-8s %-9s %10s %9s %12s %10s\n", "family", "preset", "controls", "params", "GFLOPs", "samples/s",
              "GFLOP/s");
  for (const std::string& family : recipe_families()) {
    if (!o.family.empty() && family != o.family) continue;
    for (const std::string& preset : preset_names(family)) {
      if (preset.rfind("tiny", 0) != 0 && preset.rfind("small", 0) != 0) continue;
      if (preset == "tiny/1" || preset == "tiny/4" || preset == "small/1" || preset == "small/4") continue;
      for (ControlMode controls : {ControlMode::None, ControlMode::Proposed}) {
        RecipeSpec r = recipe_defaults(family);
        r.preset = preset;
        r.conditioning.controls = controls;
        ModelGeometry g{channels, side, side, text ? 0 : classes};
        if (text) g.text_channels = text_dim, g.text_tokens = text_tokens;
        auto gen = at::detail::createCPUGenerator(0);
        auto model = build_denoiser(r, g, gen);
        model->train();
        const double gflops = analytic_gflops(*find_preset(family, preset), model_shape(g, r));
        int64_t params = 0;
        for (const auto& t : model->parameters()) params += t.numel();

        auto x = torch::randn({o.batch, channels, side, side}, gen);
        auto t = torch::rand({o.batch}, gen) * 999;
        Condition cond;
        if (text) {
          cond.tokens = torch::randn({o.batch, text_tokens, text_dim}, gen);
          cond.token_mask = torch::ones({o.batch, text_tokens}, torch::kBool);
          cond.pooled = torch::randn({o.batch, text_dim}, gen);
        } else {
          cond.labels = torch::randint(0, classes, {o.batch}, gen, torch::kInt64);
        }
        cond.controls = torch::rand({o.batch, kControlColumns}, gen) * 256;
        cond.noise_level = t / 999;
        auto step = [&] {
          model->zero_grad();
          auto outs = model->training_outputs(x, t, cond, gen);
          torch::Tensor loss;
          for (const auto& out : outs) loss = loss.defined() ? loss + out.pow(2).mean() : out.pow(2).mean();
          loss.backward();
        };
        step();  // warm-up (allocations, first-call dispatch)
        int iterations = 0;
        const auto start = std::chrono::steady_clock::now();
        double elapsed = 0;
        while (elapsed < o.seconds || iterations < 3) {
          step();
          ++iterations;
          elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        const double samples_per_s = iterations * o.batch / elapsed;
        // forward+backward ~ 3x the forward's multiply-adds
        std::printf("%-9s %-8s %-9s %10lld %9.3f %12.1f %10.2f\n", family.c_str(), preset.c_str(),
                    choice_name(controls), (long long)params, gflops, samples_per_s, 3 * gflops * samples_per_s);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace
