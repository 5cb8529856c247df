// The JSON codec of the experiment spec: lossless round trip, and decoding as strict as the TOML
// front end (unknown keys, wrong types, out-of-range values, cross-field validation).
#include "shared/core/spec_json.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "shared/core/error.h"
#include "shared/core/text.h"

using ldm::ExperimentSpec;
using ldm::SpecError;
using nlohmann::json;

namespace {

// A valid spec's JSON: the object every test below perturbs.
json valid_json() {
  ExperimentSpec s;
  s.name = "json-exp";
  s.stages.emplace_back();
  return ldm::spec_to_json(s);
}

// Decodes `j` and returns the SpecError it must raise.
SpecError json_error(const json& j) {
  try {
    ldm::spec_from_json(j);
  } catch (const SpecError& e) {
    return e;
  }
  FAIL("no SpecError for " << j.dump());
  throw std::logic_error("unreachable");  // FAIL throws; this satisfies the return type
}

}  // namespace

TEST_CASE("spec_to_json then spec_from_json gives back an equal spec") {
  ExperimentSpec s;
  s.name = "rt";
  s.description = "text with \"quotes\" and UTF-8 \xC3\xA9";
  s.seed = 123456789;
  s.dataset.records = 99;
  s.autoencoder.scale = 0.18215;
  s.recipe.preset = "S/4";
  s.recipe.learn_sigma = true;
  s.recipe.diffusion.beta_start = 1.5e-4;
  s.recipe.optimizer.beta2 = 0.95;
  ldm::StageSpec st;
  st.name = "first";
  st.batch_size = 8;
  st.ranks = 2;
  st.lr = 3e-5;
  s.stages = {st};

  const json j = ldm::spec_to_json(s);
  const ExperimentSpec back = ldm::spec_from_json(j);
  CHECK(ldm::spec_to_json(back) == j);
  CHECK(back.recipe.diffusion.beta_start == 1.5e-4);
  CHECK(back.stages.at(0).ranks == 2);
  CHECK(back.description == s.description);
}

TEST_CASE("spec_to_json writes every declared key, nested tables and the stage array") {
  const json j = valid_json();
  CHECK(j.at("recipe").at("diffusion").at("beta_start") == 1e-4);
  CHECK(j.at("recipe").at("optimizer").at("beta2") == 0.999);
  CHECK(j.at("dataset").at("kind") == "synthetic");
  REQUIRE(j.at("stage").is_array());
  CHECK(j.at("stage").size() == 1);
  CHECK(j.at("stage")[0].at("checkpoint_every") == 0);
}

TEST_CASE("spec_from_json fills keys missing from the JSON with their defaults") {
  const ExperimentSpec s = ldm::spec_from_json(json{{"name", "x"}, {"stage", json::array({json::object()})}});
  const ExperimentSpec defaults;
  CHECK(s.seed == defaults.seed);
  CHECK(s.recipe.preset == defaults.recipe.preset);
  CHECK(s.stages.at(0).batch_size == ldm::StageSpec{}.batch_size);
}

TEST_CASE("spec_from_json rejects an unknown key and suggests the closest declared key") {
  json j = valid_json();
  j["recipe"]["presett"] = "XL/2";
  const SpecError e = json_error(j);
  CHECK(e.key_path() == "recipe.presett");
  CHECK(e.detail() == "unknown key (did you mean 'preset'?)");

  json top = valid_json();
  top["stages"] = json::array();
  CHECK(json_error(top).detail() == "unknown key (did you mean 'stage'?)");
}

TEST_CASE("spec_from_json rejects values of the wrong type") {
  struct Case {
    const char* what;
    json j;
    const char* path;
    const char* detail;
  };
  json seed = valid_json(), steps = valid_json(), lr = valid_json(), sigma = valid_json(), name = valid_json(),
       recipe = valid_json(), stage = valid_json(), element = valid_json();
  seed["seed"] = "7";
  steps["stage"][0]["steps"] = 1.5;
  lr["stage"][0]["lr"] = "fast";
  sigma["recipe"]["learn_sigma"] = 1;
  name["name"] = 3;
  recipe["recipe"] = 3;
  stage["stage"] = json::object();
  element["stage"][0] = 5;
  const Case cases[] = {
      {"string for integer", seed, "seed", "expected an integer, got string"},
      {"float for integer", steps, "stage.0.steps", "expected an integer, got number"},
      {"string for float", lr, "stage.0.lr", "expected a number, got string"},
      {"integer for boolean", sigma, "recipe.learn_sigma", "expected a boolean, got number"},
      {"integer for string", name, "name", "expected a string, got number"},
      {"scalar for table", recipe, "recipe", "expected a table"},
      {"object for array", stage, "stage", "expected an array of tables"},
      {"scalar array element", element, "stage.0", "expected a table"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const SpecError e = json_error(c.j);
    CHECK(e.key_path() == c.path);
    CHECK(e.detail() == c.detail);
  }
}

TEST_CASE("spec_from_json accepts an integer for a float field") {
  json j = valid_json();
  j["stage"][0]["lr"] = 1;
  CHECK(ldm::spec_from_json(j).stages.at(0).lr == 1.0);
}

TEST_CASE("spec_from_json rejects out-of-range values and unknown choices") {
  json range = valid_json();
  range["recipe"]["conditioning"]["semantic_dropout"] = 1.5;
  const SpecError r = json_error(range);
  CHECK(r.key_path() == "recipe.conditioning.semantic_dropout");
  CHECK(r.detail() == "value 1.5 is out of range [0, 1]");

  json choice = valid_json();
  choice["task"] = "clas";
  const SpecError c = json_error(choice);
  CHECK(c.key_path() == "task");
  CHECK(c.detail() == "'clas' is not one of: class, text (did you mean 'class'?)");
}

TEST_CASE("typed choices: every enum field reads and writes its table's names and rejects others with them") {
  struct Field {
    std::vector<const char*> path;
    std::vector<std::string> names;
  };
  const Field fields[] = {
      {{"recipe", "sampler", "name"}, ldm::choice_names<ldm::Sampler>()},
      {{"recipe", "sampler", "spacing"}, ldm::choice_names<ldm::Spacing>()},
      {{"recipe", "conditioning", "controls"}, ldm::choice_names<ldm::ControlMode>()},
      {{"recipe", "conditioning", "text_padding"}, ldm::choice_names<ldm::TextPadding>()},
      {{"recipe", "diffusion", "process"}, ldm::choice_names<ldm::ProcessKind>()},
      {{"recipe", "diffusion", "objective"}, ldm::choice_names<ldm::Objective>()},
      {{"recipe", "diffusion", "t_sampling"}, ldm::choice_names<ldm::TimeSampling>()},
      {{"recipe", "optimizer", "name"}, ldm::choice_names<ldm::OptimizerKind>()},
      {{"recipe", "pos_embed_resampling"}, ldm::choice_names<ldm::PosEmbedResampling>()},
      {{"recipe", "pos_embed_grid"}, ldm::choice_names<ldm::GridConvention>()},
  };
  const ExperimentSpec spec = ldm::spec_from_json(valid_json());
  const json written = ldm::spec_to_json(spec);
  for (const Field& f : fields) {
    std::string key;
    for (const char* part : f.path) key += (key.empty() ? "" : ".") + std::string(part);
    CAPTURE(key);
    REQUIRE(f.names.size() >= 2);
    // Written as a name of the table.
    const json* node = &written;
    for (const char* part : f.path) node = &node->at(part);
    CHECK(std::find(f.names.begin(), f.names.end(), node->get<std::string>()) != f.names.end());
    // A misspelt name is refused with the table's names, in table order, and a suggestion.
    json bad = valid_json();
    json* slot = &bad;
    for (const char* part : f.path) slot = &(*slot)[part];
    *slot = f.names[1] + "x";
    const SpecError e = json_error(bad);
    CHECK(e.key_path() == key);
    CHECK(e.detail() ==
          "'" + f.names[1] + "x' is not one of: " + ldm::join(f.names, ", ") + " (did you mean '" + f.names[1] + "'?)");
    *slot = 3;
    CHECK(json_error(bad).detail() == "expected a string, got number");
  }
}

TEST_CASE("spec_from_json runs the cross-field validation") {
  json j = valid_json();
  j["stage"][0]["batch_size"] = 10;
  j["stage"][0]["ranks"] = 4;
  const SpecError e = json_error(j);
  CHECK(e.key_path() == "stage.0.batch_size");
  CHECK(e.location().empty());  // JSON has no source positions

  json no_stage = valid_json();
  no_stage["stage"] = json::array();
  CHECK(json_error(no_stage).key_path() == "stage");
}

TEST_CASE("spec_hash is equal for equal specs and changes with any field") {
  const ExperimentSpec a = ldm::spec_from_json(valid_json());
  ExperimentSpec b = a;
  CHECK(ldm::spec_hash(a) == ldm::spec_hash(b));
  b.stages[0].lr = 2e-4;
  CHECK(ldm::spec_hash(a) != ldm::spec_hash(b));
}
