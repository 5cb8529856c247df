// Staged experiments in the TOML front end: init_from forms a DAG, stages override experiment
// settings with the experiment's own keys, and every mistake is an error at file:line:column.
#include <doctest/doctest.h>

#include <string>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "shared/core/spec_json.h"
#include "shared/spec_toml/spec_toml.h"
#include "tests/shared/spec_toml/toml_error.h"

using ldm::ExperimentSpec;
using ldm::SpecError;
using ldm::testing::toml_error;

namespace {

// Pre-training at 16 px on 10 classes, then 32 px on 20 classes with its own resampling and
// schedule reference, and a from-scratch stage beside them.
const char* const kTwoStage = R"(name = "transfer"

[dataset]
classes = 10

[recipe]
family = "dit"
preset = "tiny/2"

[[stage]]
name = "pre"
resolution = 16

[[stage]]
name = "fine"
init_from = "pre"
resolution = 32
classes = "reinit"
lr = 5e-4
[stage.dataset]
classes = 20
[stage.recipe]
pos_embed_resampling = "rectified_grid"
[stage.recipe.diffusion]
reference_resolution = 8

[[stage]]
name = "scratch"
resolution = 32
)";

// kTwoStage with `from` replaced by `to` (which must occur).
std::string edited(const std::string& from, const std::string& to) {
  std::string text = kTwoStage;
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// The line:column a key's error points at: the value of the `needle` line ("key = value") in `text`.
std::string where(const std::string& text, const std::string& needle) {
  const auto line_at = text.find(needle);
  REQUIRE(line_at != std::string::npos);
  const auto at = text.find(" = ", line_at) + 3;
  int line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < at; ++i)
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  return "exp.toml:" + std::to_string(line) + ":" + std::to_string(at - line_start + 1);
}

}  // namespace

TEST_CASE("a stage's overrides change only its own view of the experiment") {
  const ExperimentSpec s = ldm::parse_experiment_string(kTwoStage, "exp.toml");
  REQUIRE(s.stages.size() == 3);
  CHECK(s.stages[1].init_from == "pre");
  CHECK(s.stages[1].classes == "reinit");
  const ExperimentSpec fine = ldm::stage_view(s, 1);
  CHECK(fine.dataset.classes == 20);
  CHECK(fine.recipe.pos_embed_resampling == ldm::PosEmbedResampling::RectifiedGrid);
  CHECK(fine.recipe.diffusion.reference_resolution == 8);
  CHECK(fine.recipe.optimizer.beta2 == s.recipe.optimizer.beta2);  // everything else: the experiment's
  const ExperimentSpec pre = ldm::stage_view(s, 0);
  CHECK(pre.dataset.classes == 10);
  CHECK(pre.recipe.pos_embed_resampling == ldm::PosEmbedResampling::Interpolate);
  CHECK(s.dataset.classes == 10);
  // Shifts: "fine" has its own reference (32 / 8); "scratch" starts a chain of its own.
  CHECK(ldm::resolution_shift(fine, s.stages[1]) == 4.0);
  CHECK(ldm::resolution_shift(ldm::stage_view(s, 2), s.stages[2]) == 1.0);
}

TEST_CASE("staged specs survive JSON and the resolved TOML unchanged, and plain stages keep their JSON") {
  const ExperimentSpec s = ldm::parse_experiment_string(kTwoStage, "exp.toml");
  const nlohmann::json j = ldm::spec_to_json(s);
  CHECK(j["stage"][1]["recipe"]["diffusion"]["reference_resolution"] == 8);
  CHECK(j["stage"][1]["init_from"] == "pre");
  // Transfer keys at their defaults stay out of the JSON, so spec_hash of older files is unchanged.
  for (const char* key : {"init_from", "init_weights", "init_optimizer", "classes", "classes_map", "task", "recipe"})
    CHECK_FALSE(j["stage"][0].contains(key));
  CHECK(ldm::spec_to_json(ldm::spec_from_json(j)) == j);
  const ExperimentSpec again = ldm::parse_experiment_string(ldm::format_experiment_toml(s), "resolved.toml");
  CHECK(ldm::spec_to_json(again) == j);
  CHECK(ldm::spec_hash(again) == ldm::spec_hash(s));
}

TEST_CASE("init_from errors: unknown parents, cycles and malformed sources, at the key's line and column") {
  SUBCASE("unknown stage, with a suggestion") {
    const std::string text = edited("init_from = \"pre\"", "init_from = \"pree\"");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.1.init_from");
    CHECK(e.location() == where(text, "init_from = \"pree\""));
    CHECK(e.detail().find("no stage named 'pree'") != std::string::npos);
    CHECK(e.detail().find("did you mean 'pre'") != std::string::npos);
  }
  SUBCASE("a cycle") {
    const std::string text =
        edited("name = \"pre\"\nresolution = 16", "name = \"pre\"\nresolution = 16\ninit_from = \"fine\"");
    const SpecError e = toml_error(text);
    CHECK(e.detail().find("cycle") != std::string::npos);
    CHECK(e.detail().find("pre -> fine -> pre") != std::string::npos);
    CHECK(e.location() == where(text, "init_from = \"fine\""));
  }
  SUBCASE("itself") {
    const std::string text = edited("init_from = \"pre\"", "init_from = \"fine\"");
    CHECK(toml_error(text).detail().find("cannot start from itself") != std::string::npos);
  }
  SUBCASE("EXPERIMENT:STAGE needs two names") {
    const std::string text = edited("init_from = \"pre\"", "init_from = \"other:\"");
    CHECK(toml_error(text).detail().find("EXPERIMENT:STAGE") != std::string::npos);
  }
  SUBCASE("another experiment's stage and bundle paths are accepted here (checked when the stage starts)") {
    const ExperimentSpec a =
        ldm::parse_experiment_string(edited("init_from = \"pre\"", "init_from = \"imnet:pre-256\""), "a");
    CHECK(ldm::parse_init_source(a.stages[1].init_from).kind == ldm::InitSource::Kind::OtherExperiment);
    const ExperimentSpec b = ldm::parse_experiment_string(
        edited("init_from = \"pre\"", "init_from = \"runs/x/pre/checkpoints/step-0000100\""), "b");
    CHECK(ldm::parse_init_source(b.stages[1].init_from).kind == ldm::InitSource::Kind::Bundle);
  }
}

TEST_CASE("transfers the network cannot do are errors that say why") {
  SUBCASE("another class count with the label table kept") {
    const std::string text = edited("classes = \"reinit\"\n", "");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.1.classes");
    CHECK(e.detail().find("20 classes and its parent 'pre' 10") != std::string::npos);
  }
  SUBCASE("another preset") {
    const std::string text = edited("[stage.recipe]\n", "[stage.recipe]\npreset = \"tiny/4\"\n");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.1.recipe.preset");
    CHECK(e.location() == where(text, "preset = \"tiny/4\""));
  }
  SUBCASE("keeping an optimiser state of another kind") {
    std::string text = edited("lr = 5e-4\n", "lr = 5e-4\ninit_optimizer = \"keep\"\n");
    text.replace(text.find("[stage.recipe]\n"), 15, "[stage.recipe]\noptimizer = { name = \"adan\" }\n");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.1.init_optimizer");
    CHECK(e.detail().find("adamw") != std::string::npos);
  }
  SUBCASE("a family whose weights cannot change resolution") {
    ldm::RecipeCard card = ldm::recipe_card("dit");
    card.family = "dit-fixed-grid";
    card.capabilities.resolution_change = false;
    REQUIRE(ldm::register_recipe_card(card));
    const std::string text = edited("family = \"dit\"", "family = \"dit-fixed-grid\"");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.1.resolution");
    CHECK(e.detail().find("cannot move to another resolution (16 in 'pre', 32 here)") != std::string::npos);
  }
}

TEST_CASE("stage keys that do nothing, and bad override keys, are errors at their line") {
  SUBCASE("transfer keys in a stage that starts from scratch") {
    const std::string text = edited("name = \"scratch\"", "name = \"scratch\"\ninit_weights = \"raw\"");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.2.init_weights");
    CHECK(e.location() == where(text, "init_weights = \"raw\""));
    CHECK(e.detail().find("starts from scratch") != std::string::npos);
  }
  SUBCASE("classes_map without remap, remap without a map") {
    CHECK(toml_error(edited("classes = \"reinit\"", "classes = \"reinit\"\nclasses_map = \"m.txt\"")).key_path() ==
          "stage.1.classes_map");
    CHECK(toml_error(edited("classes = \"reinit\"", "classes = \"remap\"")).key_path() == "stage.1.classes");
  }
  SUBCASE("an unknown key in an override table, with a suggestion") {
    const std::string text = edited("pos_embed_resampling =", "pos_embed_resample =");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.1.recipe.pos_embed_resample");
    CHECK(e.location() == where(text, "pos_embed_resample"));
    CHECK(e.detail().find("did you mean 'pos_embed_resampling'") != std::string::npos);
  }
  SUBCASE("an out-of-range override value") {
    const std::string text = edited("reference_resolution = 8", "shift = -1.0");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.1.recipe.diffusion.shift");
    CHECK(e.location() == where(text, "shift = -1.0"));
  }
  SUBCASE("an override that breaks a rule with the experiment's keys names the stage's key") {
    const std::string text = edited("[stage.recipe.diffusion]\n", "[stage.recipe.diffusion]\nobjective = \"flow\"\n");
    const SpecError e = toml_error(text);
    CHECK(e.key_path() == "stage.1.recipe.diffusion.objective");
    CHECK(e.location() == where(text, "objective = \"flow\""));
  }
  SUBCASE("the autoencoder is not a stage key: a stage changes the data, not the latent space") {
    const std::string text = edited("[stage.dataset]", "[stage.autoencoder]\nfactor = 4\n[stage.dataset]");
    CHECK(toml_error(text).key_path() == "stage.1.autoencoder");
  }
}

TEST_CASE("a stage that switches optimiser starts from that optimiser's defaults, not the other's betas") {
  const ExperimentSpec s = ldm::parse_experiment_string(
      edited("[stage.recipe]\n", "[stage.recipe]\noptimizer = { name = \"adan\" }\n"), "a");
  const ExperimentSpec fine = ldm::stage_view(s, 1);
  CHECK(fine.recipe.optimizer.name == ldm::OptimizerKind::Adan);
  CHECK(fine.recipe.optimizer.beta1 == ldm::recipe_defaults("dit", "adan").optimizer.beta1);
  CHECK(fine.recipe.optimizer.beta2 == ldm::recipe_defaults("dit", "adan").optimizer.beta2);
  CHECK(ldm::stage_view(s, 0).recipe.optimizer.name == ldm::OptimizerKind::AdamW);
}

TEST_CASE("overrides are stored in canonical form: the same values give the same spec_hash") {
  const ExperimentSpec a = ldm::parse_experiment_string(edited("reference_resolution = 8", "shift = 2"), "a");
  const ExperimentSpec b = ldm::parse_experiment_string(edited("reference_resolution = 8", "shift = 2.0"), "b");
  CHECK(ldm::spec_to_json(a)["stage"][1]["recipe"]["diffusion"]["shift"].is_number_float());
  CHECK(ldm::spec_hash(a) == ldm::spec_hash(b));
  CHECK(ldm::spec_hash(ldm::spec_from_json(ldm::spec_to_json(a))) == ldm::spec_hash(a));
}

TEST_CASE("a stage started from another's weights keeps the settings that shape the network") {
  const std::string text = edited("[stage.recipe]\n", "[stage.recipe]\nconditioning = { use_flip = false }\n");
  // With controls off the flags shape nothing; with controls on they are part of the network.
  CHECK_NOTHROW(ldm::parse_experiment_string(text, "exp.toml"));
  std::string with_controls = text;
  with_controls.replace(with_controls.find("preset = \"tiny/2\"\n"), 18,
                        "preset = \"tiny/2\"\nconditioning = { controls = \"sdxl\" }\n");
  const SpecError e = toml_error(with_controls);
  CHECK(e.key_path() == "stage.1.recipe.conditioning.use_flip");
  CHECK(e.detail().find("differs from parent 'pre'") != std::string::npos);
  // A stage from scratch may change them.
  std::string scratch = with_controls;
  scratch.replace(scratch.find("init_from = \"pre\"\n"), 18, "");
  scratch.replace(scratch.find("classes = \"reinit\"\n"), 19, "");
  CHECK_NOTHROW(ldm::parse_experiment_string(scratch, "exp.toml"));
}

TEST_CASE("a malformed init_from reached through another stage's chain is still an error at its line") {
  const std::string text =
      edited("name = \"pre\"\nresolution = 16", "name = \"pre\"\nresolution = 16\ninit_from = \"x:\"");
  const SpecError e = toml_error(text);
  CHECK(e.key_path() == "stage.0.init_from");
  CHECK(e.location() == where(text, "init_from = \"x:\""));
}

namespace {
// kTwoStage plus an evaluation stage (appended) with `stage_keys` and the [stage.eval] `eval_keys`.
std::string with_eval(const std::string& stage_keys, const std::string& eval_keys = "metrics = [\"fid\"]\n") {
  return std::string(kTwoStage) + "\n[[stage]]\nname = \"fid\"\nkind = \"eval\"\n" + stage_keys +
         "[stage.eval]\nsamples = 64\n" + eval_keys;
}
}  // namespace

TEST_CASE("an evaluation stage reads its table, and the JSON of training stages does not change") {
  const ExperimentSpec s = ldm::parse_experiment_string(
      with_eval("after = \"fine\"\n", "metrics = [\"fid\"]\nat_steps = [0, 100]\n"), "exp.toml");
  const ldm::StageSpec& ev = s.stages.at(3);
  CHECK(ev.kind == "eval");
  CHECK(ev.after == "fine");
  CHECK(ev.eval.metrics == std::vector<std::string>{"fid"});
  CHECK(ev.eval.at_steps == std::vector<std::int64_t>{0, 100});
  CHECK(ev.eval.samples == 64);
  CHECK(ldm::stage_parent(ev) == "fine");
  const nlohmann::json j = ldm::spec_to_json(s);
  CHECK(j["stage"][3]["eval"]["at_steps"] == nlohmann::json::array({0, 100}));
  CHECK_FALSE(j["stage"][1].contains("eval"));  // training stages: no eval table, no kind
  CHECK_FALSE(j["stage"][1].contains("kind"));
  const ExperimentSpec again = ldm::parse_experiment_string(ldm::format_experiment_toml(s), "resolved.toml");
  CHECK(ldm::spec_to_json(again) == j);
}

TEST_CASE("evaluation stage errors: parent, metrics the parent cannot give, steps it does not write, idle keys") {
  auto error = [](const std::string& stage_keys, const std::string& extra = "") {
    return toml_error(with_eval(stage_keys, extra));
  };
  CHECK(error("").key_path() == "stage.3.after");
  SpecError e = error("after = \"fin\"\n");
  CHECK(e.key_path() == "stage.3.after");
  CHECK(e.detail().find("did you mean 'fine'") != std::string::npos);
  CHECK(error("after = \"fine\"\nlr = 0.5\n").key_path() == "stage.3.lr");
  CHECK(error("after = \"fine\"\ninit_from = \"pre\"\n").key_path() == "stage.3.init_from");
  CHECK(error("after = \"fine\"\n", "at_steps = [5]\n").key_path() == "stage.3.eval.at_steps.0");
  CHECK(error("after = \"fine\"\n", "at_steps = [100, 100]\n").key_path() == "stage.3.eval.at_steps.1");
  CHECK(error("after = \"fine\"\n", "captions = \"c.txt\"\n").key_path() == "stage.3.eval.captions");
  CHECK(error("after = \"fine\"\n", "metrics = [\"fid\", \"clip_score\"]\n").key_path() == "stage.3.eval.metrics");
  // The caption classifier reads synthetic captions: a text parent and a captions file.
  e = error("after = \"fine\"\n", "metrics = [\"caption_adherence\"]\n");
  CHECK(e.key_path() == "stage.3.eval.metrics");
  CHECK(e.detail().find("class-conditional") != std::string::npos);
  // A parent without controls has a size effect of 0 by construction: a sweep with a no-controls arm
  // compares it (the worker stores 0 without sampling), so the metric is accepted there.
  const ExperimentSpec no_controls = ldm::parse_experiment_string(
      with_eval("after = \"fine\"\n", "metrics = [\"disentanglement\", \"control_adherence\"]\n"), "exp.toml");
  CHECK(no_controls.stages.at(3).eval.metrics.size() == 2);
  e = error("after = \"fine\"\n", "metrics = [\"fidd\"]\n");
  CHECK(e.key_path() == "stage.3.eval.metrics");
  CHECK(e.detail().find("'fidd' is not one of: fid, clip_score, disentanglement") != std::string::npos);
  // Training stages: no eval keys, and nothing starts from an evaluation stage.
  std::string text = with_eval("after = \"fine\"\n");
  text.replace(text.find("name = \"scratch\"\n"), 17, "name = \"scratch\"\nafter = \"pre\"\n");
  CHECK(toml_error(text).key_path() == "stage.2.after");
  text = with_eval("after = \"fine\"\n");
  text.replace(text.find("name = \"scratch\"\n"), 17, "name = \"scratch\"\ninit_from = \"fid\"\n");
  CHECK(toml_error(text).detail().find("is an evaluation stage") != std::string::npos);
}

TEST_CASE("a family's published learning rate is every training stage's default, a stage's own lr wins") {
  const char* const text = R"(name = "pixart-lr"

[recipe]
family = "pixart"
preset = "tiny/2"

[[stage]]
name = "pre"
resolution = 16

[[stage]]
name = "fine"
init_from = "pre"
resolution = 16
lr = 5e-4

[[stage]]
name = "fid"
kind = "eval"
after = "fine"
)";
  const ExperimentSpec spec = ldm::parse_experiment_string(text, "pixart-lr.toml");
  CHECK(spec.stages[0].lr == 2e-5);  // PixArt-α's constant 2e-5 (its card)
  CHECK(spec.stages[1].lr == 5e-4);
  CHECK(spec.stages[2].lr == ldm::StageSpec{}.lr);  // evaluation stages train nothing
  // The JSON the store keeps spells every stage's lr out, and reads back the same.
  const nlohmann::json j = ldm::spec_to_json(spec);
  CHECK(j["stage"][0]["lr"] == 2e-5);
  CHECK(ldm::spec_hash(ldm::spec_from_json(j)) == ldm::spec_hash(spec));
  // The same document as JSON gets the same defaults.
  nlohmann::json sparse = j;
  sparse["stage"][0].erase("lr");
  CHECK(ldm::spec_from_json(sparse).stages[0].lr == 2e-5);
  // A family whose published rate equals the struct default leaves a DiT file's hash alone.
  CHECK(ldm::parse_experiment_string(kTwoStage, "transfer.toml").stages[0].lr == 1e-4);
}
