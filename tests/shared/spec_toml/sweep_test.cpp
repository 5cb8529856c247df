// Sweep expansion: product and zip axes, seeds, family defaults re-applied, cell names, bad cells
// named with file:line:column.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "shared/core/error.h"
#include "shared/core/recipes/card.h"
#include "shared/core/spec_json.h"
#include "shared/spec_toml/spec_toml.h"
#include "shared/spec_toml/sweep.h"

using ldm::SpecError;
using ldm::SweepSpec;
using nlohmann::json;

namespace {

const std::string kBase = R"(name = "grid"
seed = 3

[dataset]
classes = 4

[recipe]
family = "dit"
preset = "tiny/2"
[recipe.diffusion]
shift = 2.0

[[stage]]
name = "pre"
resolution = 16
steps = 10

[[stage]]
name = "fine"
init_from = "pre"
resolution = 32
steps = 5
)";

SweepSpec sweep(const std::string& sweep_table) { return ldm::parse_sweep_string(kBase + sweep_table, "s.toml"); }

SpecError sweep_error(const std::string& sweep_table) {
  try {
    sweep(sweep_table);
  } catch (const SpecError& e) {
    return e;
  }
  FAIL("no SpecError for:\n" << sweep_table);
  throw std::logic_error("unreachable");
}

std::vector<std::string> names(const SweepSpec& s) {
  std::vector<std::string> out;
  for (const auto& c : s.cells) out.push_back(c.name);
  return out;
}

}  // namespace

TEST_CASE("grid axes multiply in file order, the last turning fastest, seeds last; values reach each cell") {
  const SweepSpec s = sweep(R"(
[sweep]
seeds = [1, 2]
[sweep.grid]
"recipe.conditioning.alpha" = [0.5, 2]
"stage.1.lr" = [1e-3, 5e-4, 2e-4]
)");
  CHECK(s.name == "grid");
  CHECK(s.axes == std::vector<std::string>{"recipe.conditioning.alpha", "stage.1.lr", "seed"});
  REQUIRE(s.cells.size() == 12);
  CHECK(s.cells[0].name == "grid-alpha0p5-lr0p001-s1");
  CHECK(s.cells[1].name == "grid-alpha0p5-lr0p001-s2");
  CHECK(s.cells[2].name == "grid-alpha0p5-lr0p0005-s1");
  CHECK(s.cells[11].name == "grid-alpha2-lr0p0002-s2");
  CHECK(s.cells[11].values == json{{"recipe.conditioning.alpha", 2}, {"stage.1.lr", 2e-4}, {"seed", 2}});
  const ldm::ExperimentSpec& last = s.cells[11].spec;
  CHECK(last.name == "grid-alpha2-lr0p0002-s2");
  CHECK(last.seed == 2);
  CHECK(last.recipe.conditioning.alpha == 2.0);
  CHECK(last.stages[1].lr == 2e-4);
  CHECK(last.stages[0].lr == ldm::StageSpec().lr);  // untouched stage
  CHECK(last.recipe.diffusion.shift == 2.0);        // the base file's keys apply when the family is not swept
  const std::vector<std::string> all = names(s);
  const std::set<std::string> unique(all.begin(), all.end());
  CHECK(unique.size() == 12);
}

TEST_CASE("zipped keys vary together; sweeping the family restarts [recipe] from that family's card") {
  const SweepSpec s = sweep(R"(
[sweep]
name = "fam"
[sweep.zip]
"recipe.family" = ["unet", "mdt"]
"recipe.preset" = ["tiny", "tiny/2"]
[sweep.common.recipe.ema]
warmup = true
)");
  CHECK(s.axes == std::vector<std::string>{"recipe.family", "recipe.preset"});
  REQUIRE(s.cells.size() == 2);
  CHECK(names(s) == std::vector<std::string>{"fam-unet-tiny", "fam-mdt-tiny_2"});
  for (const auto& cell : s.cells) {
    CAPTURE(cell.name);
    const ldm::RecipeSpec card = ldm::recipe_defaults(cell.values["recipe.family"].get<std::string>());
    CHECK(cell.spec.recipe.family == cell.values["recipe.family"].get<std::string>());
    CHECK(cell.spec.recipe.preset == cell.values["recipe.preset"].get<std::string>());
    CHECK(cell.spec.recipe.ema.warmup);                               // [sweep.common]
    CHECK(cell.spec.recipe.diffusion.shift == card.diffusion.shift);  // the base's shift = 2 did not leak
    CHECK(cell.spec.recipe.optimizer.name == card.optimizer.name);    // the family's own optimiser
    CHECK(cell.spec.dataset.classes == 4);                            // other tables still apply
  }
}

TEST_CASE("a swept family without a preset gets its card's default preset") {
  const SweepSpec s = sweep("\n[sweep.grid]\n\"recipe.family\" = [\"pixart\"]\n");
  REQUIRE(s.cells.size() == 1);
  CHECK(s.cells[0].spec.recipe.preset == ldm::find_recipe_card("pixart")->default_preset);
  CHECK(s.cells[0].name == "grid-pixart");
}

TEST_CASE("unquoted dotted keys in [sweep.grid] are the same dotted key") {
  const SweepSpec s = sweep("\n[sweep.grid]\nrecipe.conditioning.alpha = [0.5, 2]\n");
  CHECK(s.axes == std::vector<std::string>{"recipe.conditioning.alpha"});
  REQUIRE(s.cells.size() == 2);
  CHECK(s.cells[1].spec.recipe.conditioning.alpha == 2.0);
}

TEST_CASE("cell names too long for 64 characters keep a readable prefix and a hash of the values") {
  const std::string long_name(60, 'x');
  const std::string a = ldm::sweep_cell_name(long_name, {"alpha0p5"}, json{{"a", 0.5}});
  const std::string b = ldm::sweep_cell_name(long_name, {"alpha0p5"}, json{{"a", 0.25}});
  CHECK(a.size() <= 64);
  CHECK(a.rfind(std::string(55, 'x') + "-", 0) == 0);
  CHECK(a != b);
  CHECK(ldm::valid_name(a));
  const SweepSpec s = sweep("\n[sweep.grid]\n\"stage.0.dataset.path\" = [\"/data/a b\", \"/data/a:b\"]\n");
  REQUIRE(s.cells.size() == 2);  // both sanitise to the same text: the second gets a hash suffix
  CHECK(s.cells[0].name == "grid-path_data_a_b");
  CHECK(s.cells[1].name.rfind("grid-path_data_a_b-", 0) == 0);
  for (const auto& c : s.cells) CHECK(ldm::valid_name(c.name));
}

TEST_CASE("a bad cell rejects the sweep, naming the cell, its values, the key and where it was written") {
  const SpecError bad = sweep_error("\n[sweep.grid]\n\"recipe.conditioning.alpha\" = [0.5, -3]\n");
  CHECK(bad.key_path() == "recipe.conditioning.alpha");
  CHECK(std::string(bad.what()).find("sweep cell grid-alpha-3") != std::string::npos);
  CHECK(bad.location() == "s.toml:25:31");
  const SpecError typo = sweep_error("\n[sweep.grid]\n\"recipe.famly\" = [\"dit\"]\n");
  CHECK(std::string(typo.what()).find("did you mean 'family'") != std::string::npos);
  const SpecError stage = sweep_error("\n[sweep.grid]\n\"stage.2.lr\" = [0.1]\n");
  CHECK(std::string(stage.what()).find("'stage.2' does not exist (stage has 2 entries") != std::string::npos);
  CHECK(stage.location() == "s.toml:25:16");
}

TEST_CASE("malformed [sweep] tables are errors at their line") {
  CHECK(std::string(sweep_error("\n[sweep]\nseed = [1]\n").what()).find("did you mean 'seeds'") != std::string::npos);
  CHECK(std::string(sweep_error("\n[sweep]\n").what()).find("needs seeds, [sweep.grid] or [sweep.zip]") !=
        std::string::npos);
  CHECK(std::string(sweep_error("\n[sweep]\nseeds = [1, 1]\n").what()).find("distinct integers") != std::string::npos);
  CHECK(std::string(sweep_error("\n[sweep.grid]\nname = [\"a\"]\n").what()).find("cannot be swept") !=
        std::string::npos);
  CHECK(std::string(sweep_error("\n[sweep.zip]\n\"seed\" = [1, 2]\n\"stage.0.lr\" = [0.1]\n").what())
            .find("equally many values") != std::string::npos);
  CHECK(std::string(sweep_error("\n[sweep]\nseeds = [1]\n[sweep.grid]\nseed = [2]\n").what()).find("is swept twice") !=
        std::string::npos);
  CHECK(std::string(sweep_error("\n[sweep.grid]\n\"seed\" = []\n").what()).find("non-empty array") !=
        std::string::npos);
}

TEST_CASE("an experiment reader refuses a sweep file, pointing at the sweep tools") {
  try {
    ldm::parse_experiment_string(kBase + "\n[sweep]\nseeds = [1]\n", "s.toml");
    FAIL("no error");
  } catch (const SpecError& e) {
    CHECK(std::string(e.what()).find("this file is a sweep") != std::string::npos);
    CHECK(e.location() == "s.toml:24:1");
  }
}
