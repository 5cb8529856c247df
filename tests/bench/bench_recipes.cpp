// Forward+backward throughput of every recipe at its CPU presets, through the registry the trainer
// uses, printed as a table with parameters and analytic GFLOPs. A benchmark prints figures; it
// asserts nothing about speed.
//
//   build/bin/bench_recipes [--threads T] [--batch B] [--resolution R] [--seconds S] [--task class|text]
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

#include "shared/core/presets.h"
#include "worker/models/denoiser.h"

using namespace ldm;
using namespace ldm::models;

namespace {

struct Options {
  int threads = 1, batch = 8, resolution = 32;
  double seconds = 2.0;
  std::string task = "class";
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_recipes: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") o.threads = std::stoi(value());
    else if (a == "--batch") o.batch = std::stoi(value());
    else if (a == "--resolution") o.resolution = std::stoi(value());
    else if (a == "--seconds") o.seconds = std::stod(value());
    else if (a == "--task") o.task = value();
    else {
      std::fprintf(
          stderr,
          "usage: bench_recipes [--threads T] [--batch B] [--resolution R] [--seconds S] [--task class|text]\n");
      std::exit(a == "--help" || a == "-h" ? 0 : 2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  at::set_num_threads(o.threads);
  const int64_t channels = 12, side = o.resolution / 2, classes = 1000, text_dim = 64, text_tokens = 16;
  const bool text = o.task == "text";
  std::printf("forward+backward, batch %d, %dpx -> latent %lldx%lldx%lld, task %s, %d thread(s), >= %.1f s each\n",
              o.batch, o.resolution, (long long)channels, (long long)side, (long long)side, o.task.c_str(), o.threads,
              o.seconds);
  std::printf("%-9s %-8s %-9s %10s %9s %12s %10s\n", "family", "preset", "controls", "params", "GFLOPs", "samples/s",
              "GFLOP/s");
  for (const std::string& family : recipe_families()) {
    for (const std::string& preset : preset_names(family)) {
      if (preset.rfind("tiny", 0) != 0 && preset.rfind("small", 0) != 0) continue;
      if (preset == "tiny/1" || preset == "tiny/4" || preset == "small/1" || preset == "small/4") continue;
      for (const char* controls : {"none", "proposed"}) {
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
        std::printf("%-9s %-8s %-9s %10lld %9.3f %12.1f %10.2f\n", family.c_str(), preset.c_str(), controls,
                    (long long)params, gflops, samples_per_s, 3 * gflops * samples_per_s);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
