#include <doctest/doctest.h>

#include <cmath>

#include "shared/core/error.h"
#include "shared/core/spec.h"
#include "shared/core/spec_json.h"

using namespace ldm;

namespace {
ExperimentSpec one_stage() {
  ExperimentSpec s;
  s.name = "x";
  s.stages.emplace_back();
  return s;
}
std::string key_of_error(const ExperimentSpec& s) {
  try {
    validate(s);
  } catch (const SpecError& e) {
    return e.key_path();
  }
  return "";
}
}  // namespace

TEST_CASE("learning-rate schedules: constant, linear warm-up, cosine to min_lr") {
  StageSpec st;
  st.lr = 1e-3;
  st.steps = 100;
  CHECK(learning_rate(st, 1) == 1e-3);
  st.lr_schedule = "warmup";
  st.warmup_steps = 10;
  CHECK(learning_rate(st, 1) == doctest::Approx(1e-4));
  CHECK(learning_rate(st, 10) == doctest::Approx(1e-3));
  CHECK(learning_rate(st, 90) == doctest::Approx(1e-3));
  st.lr_schedule = "cosine";
  st.min_lr = 1e-5;
  CHECK(learning_rate(st, 5) == doctest::Approx(5e-4));
  CHECK(learning_rate(st, 10) == doctest::Approx(1e-3));
  CHECK(learning_rate(st, 55) == doctest::Approx(1e-5 + 0.5 * (1e-3 - 1e-5)));  // half way: cos = 0
  CHECK(learning_rate(st, 100) == doctest::Approx(1e-5));
  for (int s = 11; s < 100; ++s) CHECK(learning_rate(st, s + 1) <= learning_rate(st, s));
}

TEST_CASE("resolution shift: auto is the stage resolution over its init_from chain's first stage's, or a fixed value") {
  ExperimentSpec s = one_stage();
  s.stages[0].resolution = 256;
  StageSpec mid = s.stages[0];
  mid.name = "mid";
  mid.resolution = 384;
  mid.init_from = s.stages[0].name;
  StageSpec fine = s.stages[0];
  fine.name = "fine";
  fine.resolution = 512;
  fine.init_from = "mid";
  StageSpec scratch = fine;
  scratch.name = "scratch";
  scratch.init_from = "";
  s.stages.push_back(mid);
  s.stages.push_back(fine);
  s.stages.push_back(scratch);
  validate(s);
  CHECK(resolution_shift(s, s.stages[0]) == 1.0);
  CHECK(resolution_shift(s, fine) == 2.0);            // 512 / 256, through "mid"
  CHECK(resolution_shift(s, mid) == 1.5);             // 384 / 256
  CHECK(resolution_shift(s, scratch) == 1.0);         // no parent: its own resolution
  s.stages[1].init_from = "experiment-b:pre";         // a chain that starts in another experiment: the
  CHECK(resolution_shift(s, fine) == 512.0 / 384.0);  // coordinator passes reference_resolution
  s.recipe.diffusion.reference_resolution = 128;
  CHECK(resolution_shift(s, fine) == 4.0);
  s.recipe.diffusion.shift = 3.0;
  CHECK(resolution_shift(s, fine) == 3.0);
}

TEST_CASE("diffusion and optimiser combinations that do not exist are spec errors naming the key") {
  ExperimentSpec s = one_stage();
  s.recipe.diffusion.objective = ldm::Objective::Flow;
  CHECK(key_of_error(s) == "recipe.diffusion.objective");
  s = one_stage();
  s.recipe.diffusion.t_sampling = ldm::TimeSampling::LogitNormal;
  CHECK(key_of_error(s) == "recipe.diffusion.t_sampling");
  s = one_stage();
  s.recipe.diffusion.process = ldm::ProcessKind::Flow;
  s.recipe.learn_sigma = true;
  CHECK(key_of_error(s) == "recipe.learn_sigma");
  s = one_stage();
  s.recipe.conditioning.controls = ldm::ControlMode::Sdxl;
  s.recipe.conditioning.use_size = s.recipe.conditioning.use_crop = false;
  s.recipe.conditioning.use_flip = s.recipe.conditioning.use_aspect = false;
  CHECK(key_of_error(s) == "recipe.conditioning.controls");
  s = one_stage();
  s.stages[0].grad_accumulation = 3;  // 16 does not split into 3 micro-batches
  CHECK(key_of_error(s) == "stage.0.grad_accumulation");
  s = one_stage();
  s.stages[0].lr_schedule = "cosine";
  s.stages[0].warmup_steps = 1000;
  CHECK(key_of_error(s) == "stage.0.warmup_steps");
  s = one_stage();
  s.recipe.diffusion.process = ldm::ProcessKind::Flow;
  s.recipe.diffusion.objective = ldm::Objective::Flow;
  s.recipe.diffusion.t_sampling = ldm::TimeSampling::LogitNormal;
  CHECK(key_of_error(s) == "");
}

TEST_CASE("a family's recipe defaults are the starting point of a decoded spec") {
  nlohmann::json j = {
      {"name", "x"}, {"recipe", {{"family", "dit"}, {"preset", "tiny/2"}}}, {"stage", {nlohmann::json::object()}}};
  ExperimentSpec s = spec_from_json(j);
  const RecipeSpec dit = recipe_defaults("dit");
  CHECK(s.recipe.optimizer.beta2 == dit.optimizer.beta2);
  CHECK(s.recipe.ema.decay == dit.ema.decay);
  CHECK(s.recipe.sampler.steps == dit.sampler.steps);
  j["recipe"]["ema"] = {{"decay", 0.99}};
  CHECK(spec_from_json(j).recipe.ema.decay == 0.99);  // the document overrides the family default
}

TEST_CASE("family defaults: each family's optimiser and diffusion, switching the optimiser brings its own betas") {
  CHECK(recipe_defaults("mdt").optimizer.name == ldm::OptimizerKind::Adan);
  CHECK(recipe_defaults("mdt").optimizer.beta1 == 0.98);
  CHECK(recipe_defaults("mmdit").diffusion.process == ldm::ProcessKind::Flow);
  CHECK(recipe_defaults("proposed").conditioning.controls == ldm::ControlMode::Proposed);
  CHECK(recipe_defaults("proposed").conditioning.text_padding == ldm::TextPadding::NoisyReplicate);
  CHECK(recipe_defaults("dit").conditioning.controls == ldm::ControlMode::None);
  nlohmann::json j = {{"name", "x"},
                      {"recipe", {{"family", "mdt"}, {"preset", "tiny/2"}, {"optimizer", {{"name", "adamw"}}}}},
                      {"stage", {nlohmann::json::object()}}};
  ExperimentSpec s = spec_from_json(j);
  CHECK(s.recipe.optimizer.name == ldm::OptimizerKind::AdamW);
  CHECK(s.recipe.optimizer.beta1 == 0.9);
  CHECK(s.recipe.optimizer.beta2 == 0.999);
  j["recipe"]["family"] = "dit";
  j["recipe"]["optimizer"] = {{"name", "adan"}, {"beta3", 0.9}};
  s = spec_from_json(j);
  CHECK(s.recipe.optimizer.beta1 == 0.98);
  CHECK(s.recipe.optimizer.beta2 == 0.92);
  CHECK(s.recipe.optimizer.beta3 == 0.9);  // the document's own value still wins
}
