#include <torch/torch.h>
#include <doctest/doctest.h>

#include "datasets/images/image_io.h"
#include "datasets/import/synthetic.h"
#include "datasets/tensor/loader.h"
#include "shared/core/ids.h"
#include "shared/core/seeds.h"
#include "shared/core/spec_json.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/diffusion/loss.h"
#include "worker/diffusion/sampling.h"
#include "worker/diffusion/setup.h"
#include "worker/io/checkpoint.h"
#include "worker/train/trainer.h"

using namespace ldm;
using namespace ldm::worker;
using ldm::testing::TempDir;

namespace {

ExperimentSpec tiny_spec() {
  ExperimentSpec s;
  s.name = "unit";
  s.seed = 5;
  s.dataset.records = 64;
  s.dataset.classes = 4;
  s.dataset.shard_records = 64;
  s.recipe.preset = "tiny/4";
  s.recipe.conditioning.semantic_dropout = 0.1;
  s.stages.emplace_back();
  s.stages[0].resolution = 32;
  s.stages[0].steps = 40;
  s.stages[0].batch_size = 16;
  s.stages[0].lr = 2e-3;
  s.stages[0].log_every = 1000;
  validate(s);
  return s;
}

// Writes a bundle whose EMA is the model plus `ema_offset` on every trainable tensor.
std::string write_bundle(const ExperimentSpec& spec, const std::string& dir, double ema_offset) {
  auto gen = at::detail::createCPUGenerator(11);
  auto model = models::build_denoiser(spec.recipe, {12, 16, 16, spec.dataset.classes}, gen);
  CheckpointBundle b;
  b.manifest = {{"step", 7}, {"spec", spec_to_json(spec)}, {"stage_index", 0}};
  torch::NoGradGuard g;
  for (const auto& item : model->named_parameters(true)) {
    b.model[item.key()] = item.value().detach().clone();
    b.ema[item.key()] =
        item.value().requires_grad() ? item.value().detach() + ema_offset : item.value().detach().clone();
  }
  return write_checkpoint(dir, b);
}

SampleRequest request(uint64_t seed, int n = 3) {
  SampleRequest r;
  for (int i = 0; i < n; ++i) r.labels.push_back(i % 4);
  r.sampler.method = ldm::Sampler::Ddim;
  r.sampler.steps = 4;
  r.seed = seed;
  return r;
}

// Mean loss of `model` on a fixed validation set (x0, t, noise) built from the first records.
double validation_loss(const ExperimentSpec& spec, models::Denoiser& model, const std::string& data_dir) {
  torch::NoGradGuard g;
  auto data = std::make_shared<const data::ShardDataset>(data_dir);
  data::RankLoader loader(data, std::make_shared<const data::PatchAutoencoder>(2), 999, 32, 0, 1);
  auto batch = loader.batch_for_step(0);
  auto process = make_process(spec, spec.stages[0]);
  auto gen = at::detail::createCPUGenerator(1234);
  auto t = process->sample_training_t(32, gen);
  auto noise = torch::randn(batch.latents.sizes(), gen);
  auto x_t = diffusion::add_noise(*process, batch.latents, noise, t);
  auto out = model.forward(x_t, process->model_time(t).to(torch::kFloat32), batch.labels);
  return diffusion::diffusion_loss(*process, loss_options(spec.recipe), out, batch.latents, noise, t)
      .loss.mean()
      .item<double>();
}

}  // namespace

TEST_CASE("a checkpoint whose EMA differs from its model samples with the EMA weights by default") {
  TempDir tmp("ldm-sampling");
  const auto spec = tiny_spec();
  write_bundle(spec, tmp.file("checkpoints"), 0.01);
  auto ema = load_sampling_model(tmp.file("checkpoints"));
  auto raw = load_sampling_model(tmp.file("checkpoints"), /*use_ema=*/false);
  CHECK(ema.ema);
  auto bundle = read_checkpoint(tmp.file("checkpoints"));
  const std::string key = "blocks.0.attn.qkv.weight";
  CHECK(torch::equal(ema.model->named_parameters()[key], bundle.ema.at(key)));
  CHECK(torch::equal(raw.model->named_parameters()[key], bundle.model.at(key)));
  CHECK(!torch::equal(sample_latents(ema, request(1)), sample_latents(raw, request(1))));
}

TEST_CASE("the same seed gives the same samples, another seed different ones, whatever the batch") {
  TempDir tmp("ldm-sampling");
  write_bundle(tiny_spec(), tmp.file("checkpoints"), 0.01);
  auto m = load_sampling_model(tmp.file("checkpoints"));
  auto a = sample_latents(m, request(1, 3));
  CHECK(torch::equal(a, sample_latents(m, request(1, 3))));
  CHECK(!torch::equal(a, sample_latents(m, request(2, 3))));
  // sample i depends on (seed, i) only: the first two of a batch of 3 equal a batch of 2
  const double diff = (a.narrow(0, 0, 2) - sample_latents(m, request(1, 2))).abs().max().item<double>();
  CAPTURE(diff);
  CHECK(diff < 1e-4);  // float round-off of batch-size-dependent BLAS blocking, amplified by 1/α(t_max)
  auto guided = request(1, 3);
  guided.cfg = 4.0;
  const auto constant = sample_latents(m, guided);
  CHECK(!torch::equal(a, constant));
  // The recipe's power-cosine schedule (MDT) guides less than the constant scale: between the two.
  m.spec.recipe.sampler.cfg_schedule = ldm::GuidanceSchedule::PowerCosine;
  const auto ramped = sample_latents(m, guided);
  CHECK(!torch::equal(ramped, constant));
  CHECK(!torch::equal(ramped, a));
  CHECK((ramped - a).abs().max().item<double>() < (constant - a).abs().max().item<double>());
}

TEST_CASE("an image grid decodes through the autoencoder and is written as a PNG") {
  TempDir tmp("ldm-sampling");
  write_bundle(tiny_spec(), tmp.file("checkpoints"), 0.0);
  auto m = load_sampling_model(tmp.file("checkpoints"));
  auto images = decode_latents(m, sample_latents(m, request(3, 5)));
  CHECK(images.sizes() == torch::IntArrayRef({5, 3, 32, 32}));
  write_image_grid(images, tmp.file("grid.png"), 4);
  auto png = data::read_png(tmp.file("grid.png"));
  CHECK(png.width == 4 * 32 + 5 * 2);
  CHECK(png.height == 2 * 32 + 3 * 2);
}

TEST_CASE("training the tiny DiT lowers the loss on a fixed validation set for every objective") {
  struct Case {
    const char* process;
    const char* objective;
    bool learn_sigma;
  };
  for (const Case& c : {Case{"vp-linear", "eps", false}, Case{"vp-cosine", "v", false}, Case{"flow", "flow", false},
                        Case{"vp-linear", "eps", true}}) {
    CAPTURE(c.process);
    CAPTURE(c.objective);
    CAPTURE(c.learn_sigma);
    TempDir tmp("ldm-train");
    ExperimentSpec spec = tiny_spec();
    spec.recipe.diffusion.process = parse_choice<ProcessKind>(c.process, "process");
    spec.recipe.diffusion.objective = parse_choice<Objective>(c.objective, "objective");
    spec.recipe.learn_sigma = c.learn_sigma;
    validate(spec);
    StageContext ctx;
    ctx.spec = spec;
    ctx.run_dir = tmp.path();
    ctx.data_dir = tmp.file("data");
    auto comm = make_single_process_communicator();
    StageResult result = train_stage(ctx, *comm, nullptr);
    REQUIRE(result.steps == 40);
    // the model the trainer started from: same recipe, same "init" generator
    auto init_gen = at::detail::createCPUGenerator(derive_seed(static_cast<uint64_t>(spec.seed), Purpose::Init, 0));
    auto initial = models::build_denoiser(spec.recipe, {12, 16, 16, spec.dataset.classes}, init_gen);
    auto trained = load_sampling_model(result.checkpoint, /*use_ema=*/false);
    data::SyntheticParams sp{spec.dataset.records, spec.dataset.classes, 32, spec.seed, spec.dataset.shard_records};
    const std::string data_dir = ctx.data_dir + "/" + data::synthetic_identity(sp);
    const double before = validation_loss(spec, *initial, data_dir);
    const double after = validation_loss(spec, *trained.model, data_dir);
    CAPTURE(before);
    CAPTURE(after);
    CHECK(after < 0.8 * before);
  }
}

TEST_CASE("control metadata from --controls: defaults of an uncropped square image, named errors") {
  const ControlMeta d = parse_control_meta("", 256);
  CHECK(d.orig_h == 256);
  CHECK(d.orig_w == 256);
  CHECK(d.crop_h == 256);
  CHECK(d.crop_w == 256);
  CHECK(d.crop_top == 0);
  CHECK(d.crop_left == 0);
  CHECK_FALSE(d.flip);
  const ControlMeta c = parse_control_meta("orig_h=512,orig_w=384,crop_top=7,crop_left=9,flip=1", 64);
  CHECK(c.orig_h == 512);
  CHECK(c.orig_w == 384);
  CHECK(c.crop_top == 7);
  CHECK(c.crop_left == 9);
  CHECK(c.crop_h == 64);  // unnamed: the sampled resolution
  CHECK(c.flip);
  auto message = [](const std::string& text) {
    try {
      parse_control_meta(text, 32);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message("orig_hh=3").find("unknown key 'orig_hh'") != std::string::npos);
  CHECK(message("orig_hh=3").find("orig_h") != std::string::npos);  // the suggestion
  CHECK(message("orig_h").find("not KEY=VALUE") != std::string::npos);
  CHECK(message("orig_h=big").find("--controls orig_h: 'big' is not an integer") != std::string::npos);
  CHECK(message("crop_w=99999999999").find("not an integer") != std::string::npos);
}

TEST_CASE("every family samples at another resolution than it trained at, mDT-v2 included") {
  TempDir tmp("ldm-sample-resolution");
  for (const char* family : {"unet", "dit", "mdt", "pixart", "mmdit", "proposed"}) {
    CAPTURE(family);
    ExperimentSpec spec = tiny_spec();
    spec.recipe = recipe_defaults(family);
    spec.recipe.preset = std::string(family) == "unet" ? "tiny" : "tiny/2";
    validate(spec);
    write_bundle(spec, tmp.file(family), 0.0);
    CHECK(load_sampling_model(tmp.file(family)).latent_side == 16);
    const SamplingModel bigger = load_sampling_model(tmp.file(family), true, 64);
    CHECK(bigger.latent_side == 32);
    SampleRequest r;
    r.labels = {1};
    if (bigger.conditions->uses_controls()) r.controls = {parse_control_meta("", 64)};
    r.sampler = sampler_options(bigger.spec.recipe.sampler);
    r.sampler.steps = 2;
    const auto latents = sample_latents(bigger, r);
    CHECK(latents.sizes() == torch::IntArrayRef({1, 12, 32, 32}));
    CHECK(torch::isfinite(latents).all().item<bool>());
  }
}
