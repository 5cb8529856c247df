// The experiment TOML front end: every error names file:line:column and the key path; missing keys
// take their declared defaults; format_experiment_toml writes every key and parses back equal.
#include "shared/spec_toml/spec_toml.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <unistd.h>

#include "shared/core/error.h"
#include "shared/core/spec_json.h"
#include "tests/shared/spec_toml/toml_error.h"

using ldm::ExperimentSpec;
using ldm::SpecError;
using ldm::testing::toml_error;

namespace {

// The smallest valid experiment: a name and one stage, everything else defaulted.
const char* const kMinimal = R"(name = "exp"

[[stage]]
steps = 10
)";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A spec where every field that may differ from its default does, so a key the formatter
// forgot would read back as the default and break equality.
ExperimentSpec everything_non_default() {
  ExperimentSpec s;
  s.name = "round-trip_1";
  s.description = "quotes \" and \\ backslash,\nnew line, \ttab, \x01 control, UTF-8: \xC3\xA9 \xE2\x9C\x93";
  s.seed = 9007199254740991;
  s.dataset.path = "cache/dir";
  s.dataset.records = 77;
  s.dataset.classes = 1000;
  s.dataset.shard_records = 32;
  s.autoencoder.factor = 4;
  s.autoencoder.scale = 0.18215;
  s.autoencoder.shift = -0.5;
  s.recipe.preset = "XL/2";
  s.recipe.learn_sigma = true;
  s.recipe.conditioning.semantic_dropout = 1.0 / 3.0;
  s.recipe.diffusion.timesteps = 500;
  s.recipe.diffusion.beta_start = 1.5e-4;
  s.recipe.diffusion.beta_end = 0.0195;
  s.recipe.optimizer.beta1 = 0.8;
  s.recipe.optimizer.beta2 = 0.95;
  s.recipe.optimizer.eps = 1e-10;
  s.recipe.optimizer.weight_decay = 0.03;
  s.recipe.optimizer.grad_clip = 1.0;
  ldm::StageSpec st;
  st.name = "s64";
  st.resolution = 64;  // divisible by factor 4 * patch 2
  st.steps = 7;
  st.batch_size = 12;
  st.lr = 2.0;  // integral: must still be written as a TOML float
  st.ranks = 4;
  st.threads_per_rank = 2;
  st.log_every = 3;
  st.checkpoint_every = 5;
  s.stages = {st};
  return s;
}

// Splits TOML text into its sections: "" (before any header), "recipe.diffusion", "stage", ...
// mapped to the "key = value" lines under that header.
std::map<std::string, std::string> sections(const std::string& text) {
  std::map<std::string, std::string> out;
  std::string current;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("[[", 0) == 0) {
      current = line.substr(2, line.size() - 4);
    } else if (line.rfind("[", 0) == 0) {
      current = line.substr(1, line.size() - 2);
    } else if (!line.empty() && line[0] != '#') {
      out[current] += line + "\n";
    }
  }
  return out;
}

// Checks that every key of the JSON form of the spec has a line in the matching TOML section.
void check_every_key_written(const nlohmann::json& j, const std::string& section,
                             const std::map<std::string, std::string>& toml_sections) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string child = section.empty() ? it.key() : section + "." + it.key();
    if (it->is_object()) {
      check_every_key_written(*it, child, toml_sections);
    } else if (it->is_array() && !it->empty() && (*it)[0].is_object()) {
      check_every_key_written((*it)[0], child, toml_sections);
    } else {
      INFO("section [" << section << "] key " << it.key());
      auto s = toml_sections.find(section);
      REQUIRE(s != toml_sections.end());
      CHECK(contains("\n" + s->second, "\n" + it.key() + " = "));
    }
  }
}

}  // namespace

TEST_CASE("keys missing from the TOML take the defaults declared in spec.h") {
  ExperimentSpec expected;
  expected.name = "exp";
  expected.stages.emplace_back();
  expected.stages[0].steps = 10;

  const ExperimentSpec parsed = ldm::parse_experiment_string(kMinimal, "exp.toml");
  CHECK(ldm::spec_to_json(parsed) == ldm::spec_to_json(expected));
  CHECK(parsed.stages.at(0).batch_size == 16);
  CHECK(parsed.recipe.diffusion.beta_start == 1e-4);
}

TEST_CASE("an unknown key is an error at its file:line:column suggesting the closest key") {
  const SpecError e = toml_error("name = \"exp\"\n[[stage]]\nstpes = 10\n");
  CHECK(e.location() == "exp.toml:3:1");
  CHECK(e.key_path() == "stage.0.stpes");
  CHECK(e.detail() == "unknown key 'stpes' (did you mean 'steps'?)");
  CHECK(std::string(e.what()) == "exp.toml:3:1: key 'stage.0.stpes': unknown key 'stpes' (did you mean 'steps'?)");
}

TEST_CASE("an unknown key in a nested table carries its dotted key path and column") {
  const SpecError e = toml_error("name = \"exp\"\n[recipe.diffusion]\n  timestep = 10\n[[stage]]\n");
  CHECK(e.location() == "exp.toml:3:3");
  CHECK(e.key_path() == "recipe.diffusion.timestep");
  CHECK(e.detail() == "unknown key 'timestep' (did you mean 'timesteps'?)");
}

TEST_CASE("an unknown key with no plausible match gets no suggestion") {
  const SpecError e = toml_error("name = \"exp\"\ncolour = \"red\"\n[[stage]]\n");
  CHECK(e.location() == "exp.toml:2:1");
  CHECK(e.detail() == "unknown key 'colour'");
}

TEST_CASE("of several unknown keys the one first in the file is reported") {
  // toml::table iterates alphabetically; the error must follow the file instead.
  const SpecError e = toml_error("name = \"exp\"\nzzz = 1\naaa = 2\n[[stage]]\n");
  CHECK(e.key_path() == "zzz");
  CHECK(e.location() == "exp.toml:2:1");
}

TEST_CASE("a value of the wrong type is an error at the value's position") {
  const SpecError e = toml_error("name = \"exp\"\n[[stage]]\nsteps = \"ten\"\n");
  CHECK(e.location() == "exp.toml:3:9");
  CHECK(e.key_path() == "stage.0.steps");
  CHECK(e.detail() == "expected an integer, got string");

  const SpecError b = toml_error("name = \"exp\"\n[recipe]\nlearn_sigma = 1\n[[stage]]\n");
  CHECK(b.location() == "exp.toml:3:15");
  CHECK(b.detail() == "expected a boolean, got integer");

  const SpecError s = toml_error("name = 5\n[[stage]]\n");
  CHECK(s.location() == "exp.toml:1:8");
  CHECK(s.detail() == "expected a string, got integer");
}

TEST_CASE("a float is rejected for an integer field") {
  const SpecError e = toml_error("name = \"exp\"\n[[stage]]\nsteps = 10.0\n");
  CHECK(e.location() == "exp.toml:3:9");
  CHECK(e.detail() == "expected an integer, got float");
}

TEST_CASE("an integer is accepted for a float field") {
  const ExperimentSpec s = ldm::parse_experiment_string("name = \"exp\"\n[[stage]]\nlr = 1\n", "exp.toml");
  CHECK(s.stages.at(0).lr == 1.0);
}

TEST_CASE("a scalar where a table or an array of tables belongs is a type error") {
  const SpecError t = toml_error("name = \"exp\"\ndataset = 5\n[[stage]]\n");
  CHECK(t.key_path() == "dataset");
  CHECK(t.location() == "exp.toml:2:11");
  CHECK(t.detail() == "expected a table, got integer");

  const SpecError a = toml_error("name = \"exp\"\n[stage]\nsteps = 3\n");
  CHECK(a.key_path() == "stage");
  CHECK(a.location() == "exp.toml:2:1");
  CHECK(a.detail() == "expected an array of tables ([[stage]]), got table");

  const SpecError el = toml_error("name = \"exp\"\nstage = [1]\n");
  CHECK(el.key_path() == "stage.0");
  CHECK(el.location() == "exp.toml:2:10");
  CHECK(el.detail() == "expected a table, got integer");
}

TEST_CASE("an out-of-range value is an error at the value's position") {
  const SpecError e = toml_error("name = \"exp\"\n[[stage]]\nlr = 20.0\n");
  CHECK(e.location() == "exp.toml:3:6");
  CHECK(e.key_path() == "stage.0.lr");
  CHECK(e.detail() == "value 20 is out of range [0, 10]");
}

TEST_CASE("an error inside an inline table keeps its position") {
  const SpecError e = toml_error("name = \"exp\"\nrecipe = { optimizer = { beta1 = 2.0 } }\n[[stage]]\n");
  CHECK(e.key_path() == "recipe.optimizer.beta1");
  CHECK(e.location() == "exp.toml:2:34");
}

TEST_CASE("a value outside the declared choices is an error suggesting the closest choice") {
  const SpecError e = toml_error("name = \"exp\"\n[dataset]\nkind = \"synthetc\"\n[[stage]]\n");
  CHECK(e.location() == "exp.toml:3:8");
  CHECK(e.key_path() == "dataset.kind");
  CHECK(e.detail() == "'synthetc' is not one of: synthetic, shards (did you mean 'synthetic'?)");
}

TEST_CASE("an unknown preset is reported at the recipe.preset line with the closest preset") {
  const SpecError e = toml_error("name = \"exp\"\n[recipe]\nfamily = \"dit\"\npreset = \"XL2\"\n[[stage]]\n");
  CHECK(e.key_path() == "recipe.preset");
  CHECK(e.location() == "exp.toml:4:10");
  CHECK(contains(e.detail(), "unknown preset 'XL2' for family 'dit'"));
  CHECK(contains(e.detail(), "(did you mean 'XL/2'?)"));
}

TEST_CASE("an unknown recipe family is reported at the recipe.family line with a suggestion") {
  const SpecError e = toml_error("name = \"exp\"\n[recipe]\nfamily = \"ditt\"\n[[stage]]\n");
  CHECK(e.key_path() == "recipe.family");
  CHECK(e.location() == "exp.toml:3:10");
  CHECK(contains(e.detail(), "unknown recipe family 'ditt'"));
  CHECK(contains(e.detail(), "(did you mean 'dit'?)"));
}

TEST_CASE("a global batch not divisible by the ranks is reported at batch_size") {
  const SpecError e = toml_error("name = \"exp\"\n[[stage]]\nbatch_size = 10\nranks = 3\n");
  CHECK(e.key_path() == "stage.0.batch_size");
  CHECK(e.location() == "exp.toml:3:14");
  CHECK(contains(e.detail(), "not divisible by ranks = 3"));
}

TEST_CASE("a validation error about an unwritten key points at its nearest written table") {
  // batch_size keeps its default 16, which 3 ranks cannot split: point at the [[stage]] header.
  const SpecError e = toml_error("name = \"exp\"\n\n[[stage]]\nranks = 3\n");
  CHECK(e.key_path() == "stage.0.batch_size");
  CHECK(e.location() == "exp.toml:3:1");

  // Nothing but the file itself encloses a missing top-level key.
  const SpecError n = toml_error("# no name\n[[stage]]\n");
  CHECK(n.key_path() == "name");
  CHECK(n.location() == "exp.toml:1:1");
}

TEST_CASE("a TOML syntax error is a SpecError at the parser's position") {
  const SpecError e = toml_error("name = \"exp\"\nseed = = 3\n");
  CHECK(e.location() == "exp.toml:2:8");
  CHECK(e.key_path().empty());
  CHECK(!e.detail().empty());
  CHECK(std::string(e.what()).rfind("exp.toml:2:8: ", 0) == 0);

  const SpecError dup = toml_error("name = \"exp\"\nname = \"again\"\n");
  CHECK(dup.location().rfind("exp.toml:2:", 0) == 0);
}

TEST_CASE("format_experiment_toml output parses back to an equal spec") {
  const ExperimentSpec spec = everything_non_default();
  ldm::validate(spec);  // the fixture itself must be a valid experiment
  const std::string text = ldm::format_experiment_toml(spec);
  INFO(text);
  const ExperimentSpec back = ldm::parse_experiment_string(text, "formatted.toml");
  CHECK(ldm::spec_to_json(back) == ldm::spec_to_json(spec));

  // Defaults survive too, and the output is stable under a second round.
  ExperimentSpec defaults = ldm::parse_experiment_string(kMinimal, "exp.toml");
  const std::string once = ldm::format_experiment_toml(defaults);
  CHECK(ldm::format_experiment_toml(ldm::parse_experiment_string(once, "once.toml")) == once);
}

TEST_CASE("format_experiment_toml writes every key, defaults included, under its table") {
  const ExperimentSpec spec = ldm::parse_experiment_string(kMinimal, "exp.toml");
  const std::string text = ldm::format_experiment_toml(spec);
  INFO(text);
  const auto toml_sections = sections(text);
  check_every_key_written(ldm::spec_to_json(spec), "", toml_sections);
  CHECK(toml_sections.count("recipe.diffusion") == 1);
  CHECK(toml_sections.count("stage") == 1);
}

TEST_CASE("format_experiment_toml precedes keys and tables with their documentation") {
  const std::string text = ldm::format_experiment_toml(ldm::parse_experiment_string(kMinimal, "exp.toml"));
  INFO(text);
  CHECK(contains(text, "# where records come from; one of: synthetic, shards\nkind = \"synthetic\"\n"));
  CHECK(contains(text, "# optimiser steps; range [1, 1000000000]\nsteps = 10\n"));
  CHECK(contains(text, "# noise process and training objective\n[recipe.diffusion]\n"));
  CHECK(contains(
      text,
      "# training stages; a stage with init_from starts after its parent, the others start at once\n[[stage]]\n"));
}

TEST_CASE("format_experiment_toml writes floats so they read back as floats") {
  const std::string text = ldm::format_experiment_toml(ldm::parse_experiment_string(kMinimal, "exp.toml"));
  CHECK(contains(text, "\nscale = 1.0\n"));  // integral double keeps a fraction
  CHECK(contains(text, "\nweight_decay = 0.0\n"));
  CHECK(contains(text, "\nbeta_start = 1e-04\n"));
  CHECK(contains(text, "\nbeta_end = 0.02\n"));
}

TEST_CASE("parse_experiment_file reports locations with the file's path") {
  char dir_template[] = "/tmp/spec_toml_test.XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  const std::string path = dir + "/exp.toml";
  {
    std::ofstream out(path);
    out << kMinimal;
  }
  CHECK(ldm::parse_experiment_file(path).stages.at(0).steps == 10);
  {
    std::ofstream out(path);
    out << "name = \"exp\"\n[[stage]]\nstpes = 10\n";
  }
  try {
    ldm::parse_experiment_file(path);
    FAIL("no SpecError");
  } catch (const SpecError& e) {
    CHECK(e.location() == path + ":3:1");
  }
  // A directory opens but cannot be read: still an error naming it.
  CHECK_THROWS_WITH_AS(ldm::parse_experiment_file(dir), doctest::Contains(dir.c_str()), SpecError);
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

TEST_CASE("a missing experiment file is an error naming the file") {
  const std::string path = "/nonexistent-dir/missing.toml";
  try {
    ldm::parse_experiment_file(path);
    FAIL("no SpecError");
  } catch (const SpecError& e) {
    CHECK(contains(e.what(), "'" + path + "'"));
    CHECK(contains(e.what(), "No such file or directory"));
    CHECK(e.location() == path + ":1:1");
  }
}
