// `ldm-worker sample`: a PNG grid of images from a checkpoint.
#include <ATen/Parallel.h>

#include <iostream>
#include <string>

#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "worker/cli/commands.h"
#include "worker/diffusion/sampling.h"
#include "worker/diffusion/setup.h"
#include "worker/io/safetensors.h"

namespace ldm::worker {
namespace {

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
  ControlMeta control;
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

}  // namespace

cli::Command sample_command() {
  const cli::Option threads = cli::integer("threads", "T", "intra-op threads (default 1)", 1, 1024);
  return {"sample",
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
           cli::integer("resolution", "R", "sample at R pixels (positional embeddings resampled as the recipe says)", 1,
                        65536),
           cli::number("shift", "S", "resolution shift of the schedule (default: the trained stage's)", 1e-6, 1e3)},
          cmd_sample};
}

}  // namespace ldm::worker
