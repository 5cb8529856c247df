// Recipe cards (shared/core/recipes/): one card per family in one table, looked up by validation,
// the spec readers (family defaults) and the tools; a card registered from a test is a family like
// the built-in ones.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "shared/core/spec.h"
#include "shared/core/spec_json.h"

using namespace ldm;

namespace {

// A toy family: one preset, a patch of 2, its own recipe default and its own check.
RecipeCard toy_card(const std::string& family) {
  RecipeCard c;
  c.family = family;
  c.title = "toy";
  c.default_preset = "one";
  PresetInfo p;
  p.name = "one";
  p.patch = 2;
  p.width = 8;
  c.presets = {p};
  c.tasks = {"class"};
  c.capabilities.resolution_change = false;
  c.param_count = [](const PresetInfo& p, const ModelShape& s) { return std::int64_t{p.width} * s.in_channels; };
  c.gflops = [](const PresetInfo&, const ModelShape&) { return 0.5; };
  c.latent_grid = [](const PresetInfo& p) { return LatentGrid{p.patch, "patch"}; };
  c.size_text = [](const PresetInfo& p) { return "w" + std::to_string(p.width); };
  c.defaults = {{"recipe.ema.decay", 0.5, "the toy card"}, {"stage.lr", 0.25, "the toy card"}};
  c.validate = [](const ExperimentSpec& s) {
    if (s.seed == 13) throw SpecError("seed", "the toy family refuses seed 13");
  };
  return c;
}

ExperimentSpec toy_spec(const std::string& family) {
  ExperimentSpec s;
  s.name = "toy";
  s.recipe = recipe_defaults(family);
  s.recipe.preset = "one";
  s.stages.emplace_back();
  s.stages[0].resolution = 16;
  return s;
}

}  // namespace

TEST_CASE("the built-in cards: six families in the table's order, each with a default preset of its own") {
  const std::vector<std::string> expected = {"unet", "dit", "mdt", "pixart", "mmdit", "proposed"};
  const std::vector<std::string> families = recipe_families();
  REQUIRE(families.size() >= expected.size());
  CHECK(std::vector<std::string>(families.begin(), families.begin() + 6) == expected);
  for (const std::string& family : expected) {
    CAPTURE(family);
    const RecipeCard& card = recipe_card(family);
    CHECK(!card.title.empty());
    CHECK(find_preset(family, card.default_preset) != nullptr);
    for (const PresetInfo& p : card.presets) CHECK(p.family == family);
  }
  CHECK(recipe_card("unet").default_preset == "LDM-4-G");
  CHECK(recipe_card("dit").default_preset == "XL/2");
  // mDT-v2's learned tables are resampled between resolutions, but one model has one grid.
  CHECK(recipe_card("mdt").capabilities.resolution_change);
  CHECK_FALSE(recipe_card("mdt").capabilities.buckets);
  CHECK(recipe_card("dit").capabilities.buckets);
  CHECK(recipe_card("dit").weights_block_prefix == "blocks.");
}

TEST_CASE("an unknown family or preset is a SpecError that lists what exists") {
  try {
    recipe_card("ditt");
    FAIL("expected SpecError");
  } catch (const SpecError& e) {
    CHECK(e.key_path() == "recipe.family");
    CHECK(e.detail().find("known: unet, dit, mdt, pixart, mmdit, proposed") != std::string::npos);
    CHECK(e.detail().find("(did you mean 'dit'?)") != std::string::npos);
  }
  try {
    recipe_preset("unet", "XL/2");
    FAIL("expected SpecError");
  } catch (const SpecError& e) {
    CHECK(e.key_path() == "recipe.preset");
    CHECK(e.detail() == "unknown preset 'XL/2' for family 'unet'; known: LDM-4-G, tiny, small");
  }
}

TEST_CASE("each family's recipe defaults come from its card") {
  CHECK(recipe_defaults("mdt").optimizer.name == OptimizerKind::Adan);
  CHECK(recipe_defaults("mdt").optimizer.beta1 == 0.98);
  CHECK(recipe_defaults("unet").optimizer.weight_decay == 0.01);
  CHECK(recipe_defaults("pixart").optimizer.eps == 1e-10);
  CHECK(recipe_defaults("mmdit").diffusion.process == ProcessKind::Flow);
  CHECK(recipe_defaults("mmdit").sampler.name == Sampler::Euler);
  const RecipeSpec proposed = recipe_defaults("proposed");
  CHECK(proposed.diffusion.objective == Objective::Flow);
  CHECK(proposed.conditioning.controls == ControlMode::Proposed);
  CHECK(proposed.conditioning.text_padding == TextPadding::NoisyReplicate);
  CHECK(proposed.optimizer.beta2 == 0.95);
  // Switching optimiser brings that optimiser's own betas, not the family's.
  const RecipeSpec mdt_adamw = recipe_defaults("mdt", "adamw");
  CHECK(mdt_adamw.optimizer.name == OptimizerKind::AdamW);
  CHECK(mdt_adamw.optimizer.beta1 == 0.9);
  CHECK(mdt_adamw.optimizer.beta2 == 0.999);
}

TEST_CASE("each built-in card states the published recipe: learned sigma, schedule, optimiser, lr, EMA, sampler") {
  // The settings the paper's "corresponding recipe" means; every card names a source for each.
  const std::vector<std::string> keys = {"recipe.learn_sigma",
                                         "recipe.diffusion.process",
                                         "recipe.diffusion.objective",
                                         "recipe.diffusion.t_sampling",
                                         "recipe.optimizer.name",
                                         "recipe.optimizer.weight_decay",
                                         "recipe.ema.decay",
                                         "recipe.sampler.name",
                                         "recipe.sampler.steps",
                                         "recipe.sampler.cfg",
                                         "stage.lr"};
  for (const std::string& family : {"unet", "dit", "mdt", "pixart", "mmdit", "proposed"}) {
    CAPTURE(family);
    const std::vector<DefaultOrigin> origins = recipe_default_origins(recipe_card(family));
    for (const std::string& key : keys) {
      CAPTURE(key);
      const auto it =
          std::find_if(origins.begin(), origins.end(), [&](const DefaultOrigin& o) { return o.key == key; });
      REQUIRE(it != origins.end());
      CHECK(it->from_card);
      CHECK(!it->source.empty());
    }
  }
  // Learned sigma where the reference learns it (DiT's hybrid loss), not for LDM or rectified flow.
  for (const char* family : {"dit", "mdt", "pixart"}) CHECK(recipe_defaults(family).learn_sigma);
  for (const char* family : {"unet", "mmdit", "proposed"}) CHECK_FALSE(recipe_defaults(family).learn_sigma);
  // LDM's betas are linear in sqrt(beta) from 0.0015 to 0.0195.
  const RecipeSpec unet = recipe_defaults("unet");
  CHECK(unet.diffusion.process == ProcessKind::VpScaledLinear);
  CHECK(unet.diffusion.beta_start == 0.0015);
  CHECK(unet.diffusion.beta_end == 0.0195);
  CHECK(unet.ema.warmup);  // LitEma
  CHECK(unet.sampler.name == Sampler::Ddim);
  CHECK(recipe_defaults("mdt").diffusion.min_snr_gamma == 5.0);
  CHECK(recipe_defaults("mdt").optimizer.grad_clip == 1.0);
  CHECK(recipe_defaults("pixart").optimizer.grad_clip == 0.01);
  CHECK(recipe_defaults("pixart").sampler.name == Sampler::DpmPP2M);
  CHECK(recipe_defaults("pixart").sampler.steps == 20);
  CHECK(recipe_defaults("dit").sampler.steps == 250);
  CHECK(recipe_defaults("proposed").sampler.steps == 250);
  // MDT ramps its guidance; a spec that turns the ramp off keeps it off through the JSON the store
  // and the workers read (the key is left out at its struct default, which is not MDT's).
  CHECK(recipe_defaults("mdt").sampler.cfg_schedule == GuidanceSchedule::PowerCosine);
  ExperimentSpec mdt;
  mdt.name = "m";
  mdt.recipe = recipe_defaults("mdt");
  mdt.recipe.preset = "tiny/2";
  mdt.stages.emplace_back();
  mdt.stages[0].resolution = 16;
  for (GuidanceSchedule schedule : {GuidanceSchedule::Constant, GuidanceSchedule::PowerCosine}) {
    mdt.recipe.sampler.cfg_schedule = schedule;
    mdt.recipe.sampler.cfg_power = schedule == GuidanceSchedule::Constant ? 4.0 : 2.0;
    const ExperimentSpec back = spec_from_json(spec_to_json(mdt));
    CHECK(back.recipe.sampler.cfg_schedule == schedule);
    CHECK(back.recipe.sampler.cfg_power == mdt.recipe.sampler.cfg_power);
    CHECK(spec_hash(back) == spec_hash(mdt));
  }
  // The stage keys of a card show with the value a stage gets, here PixArt-α's 2e-5.
  const std::vector<DefaultOrigin> pixart = recipe_default_origins(recipe_card("pixart"));
  const auto lr =
      std::find_if(pixart.begin(), pixart.end(), [](const DefaultOrigin& o) { return o.key == "stage.lr"; });
  REQUIRE(lr != pixart.end());
  CHECK(lr->value == 2e-5);
  // A key no card sets is the spec's default, with the spec's documentation as its source.
  const auto shift = std::find_if(pixart.begin(), pixart.end(),
                                  [](const DefaultOrigin& o) { return o.key == "recipe.diffusion.shift"; });
  REQUIRE(shift != pixart.end());
  CHECK_FALSE(shift->from_card);
  CHECK(shift->source.find("spec default: resolution shift") == 0);
}

TEST_CASE("a card registered at run time is a family: validation, defaults, the preset table and its checks") {
  REQUIRE(register_recipe_card(toy_card("toy-card")));
  CHECK(is_known_family("toy-card"));
  const std::vector<std::string> families = recipe_families();
  const auto at = std::find(families.begin(), families.end(), "toy-card");
  REQUIRE(at != families.end());
  CHECK(at - families.begin() >= 6);  // after the built-in table
  CHECK(preset_names("toy-card") == std::vector<std::string>{"one"});
  CHECK(find_preset("toy-card", "one")->family == "toy-card");  // the registry sets it

  ExperimentSpec s = toy_spec("toy-card");
  CHECK(s.recipe.ema.decay == 0.5);  // the card's defaults
  CHECK_NOTHROW(validate(s));
  CHECK(analytic_param_count(*find_preset("toy-card", "one"), ModelShape{}) == 8 * 4);
  CHECK(analytic_gflops(*find_preset("toy-card", "one"), ModelShape{}) == 0.5);

  ExperimentSpec text = s;
  text.task = "text";
  CHECK_THROWS_WITH_AS(validate(text), doctest::Contains("does not support task 'text' (supported: class)"), SpecError);
  ExperimentSpec odd = s;
  odd.stages[0].resolution = 18;  // factor 2 x patch 2 = 4
  CHECK_THROWS_WITH_AS(validate(odd), doctest::Contains("not divisible by autoencoder.factor * patch = 4"), SpecError);
  ExperimentSpec refused = s;
  refused.seed = 13;
  CHECK_THROWS_WITH_AS(validate(refused), doctest::Contains("the toy family refuses seed 13"), SpecError);

  // The family's defaults apply when a document names it, as for the built-in ones: the recipe's,
  // and the stage keys of every training stage that leaves them out.
  nlohmann::json j = spec_to_json(s);
  j["recipe"].erase("ema");
  j["stage"][0].erase("lr");
  j["stage"].push_back(j["stage"][0]);
  j["stage"][1]["name"] = "explicit";
  j["stage"][1]["lr"] = 0.125;
  const ExperimentSpec read = spec_from_json(j);
  CHECK(read.recipe.ema.decay == 0.5);
  CHECK(read.stages[0].lr == 0.25);
  CHECK(read.stages[1].lr == 0.125);
}

TEST_CASE("registering a family twice, or an incomplete card, is refused") {
  REQUIRE(register_recipe_card(toy_card("toy-twice")));
  CHECK_THROWS_WITH_AS(register_recipe_card(toy_card("toy-twice")), doctest::Contains("registered twice"), Error);
  CHECK_THROWS_WITH_AS(register_recipe_card(toy_card("dit")), doctest::Contains("registered twice"), Error);
  RecipeCard no_count = toy_card("toy-incomplete");
  no_count.param_count = nullptr;
  CHECK_THROWS_AS(register_recipe_card(no_count), Error);
  RecipeCard bad_default = toy_card("toy-bad-default");
  bad_default.default_preset = "two";
  CHECK_THROWS_WITH_AS(register_recipe_card(bad_default), doctest::Contains("default preset 'two'"), Error);
  CHECK_FALSE(is_known_family("toy-incomplete"));
  // Defaults: a source, a key of the file's recipe or stage table, a value that key accepts.
  RecipeCard unsourced = toy_card("toy-unsourced");
  unsourced.defaults.push_back({"recipe.ema.decay", 0.9, ""});
  CHECK_THROWS_WITH_AS(register_recipe_card(unsourced), doctest::Contains("names no source"), Error);
  RecipeCard typo = toy_card("toy-typo");
  typo.defaults.push_back({"recipe.optimiser.eps", 1e-9, "a card"});
  CHECK_THROWS_WITH_AS(register_recipe_card(typo), doctest::Contains("recipe.optimiser"), Error);
  RecipeCard out_of_range = toy_card("toy-range");
  out_of_range.defaults.push_back({"stage.lr", 11.0, "a card"});
  CHECK_THROWS_WITH_AS(register_recipe_card(out_of_range), doctest::Contains("stage.lr"), Error);
  RecipeCard elsewhere = toy_card("toy-elsewhere");
  elsewhere.defaults.push_back({"dataset.records", 5, "a card"});
  CHECK_THROWS_WITH_AS(register_recipe_card(elsewhere), doctest::Contains("start with 'recipe.' or 'stage.'"), Error);
  for (const char* name : {"toy-unsourced", "toy-typo", "toy-range", "toy-elsewhere"})
    CHECK_FALSE(is_known_family(name));
}
