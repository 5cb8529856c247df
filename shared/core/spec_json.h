// JSON codec of the experiment spec (how the coordinator stores it and sends it to workers).
// Decoding is as strict as the TOML front end: unknown keys, wrong types and out-of-range values
// are SpecErrors naming the key path.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/core/spec.h"

namespace ldm {

nlohmann::json spec_to_json(const ExperimentSpec& spec);
// Decodes and validates (validate()). Missing keys take their defaults.
ExperimentSpec spec_from_json(const nlohmann::json& j);

// Checks every stage's overrides against the tables they override and rewrites them in canonical
// form (each value as the table's own field writes it), so equal specs have equal spec_hash.
// Throws SpecError naming "stage.<i>.<key path>". Both readers call it before validate().
void normalise_stage_overrides(ExperimentSpec& spec);

// Reads a sparse JSON table of recipe keys ({"optimizer": {"eps": 1e-10}}) into `recipe`, checked
// like a file's keys; errors name "<path>.<key>".
void read_recipe_table(const nlohmann::json& table, const std::string& path, RecipeSpec& recipe);
// The same for one stage's keys ({"lr": 2e-5}).
void read_stage_table(const nlohmann::json& table, const std::string& path, StageSpec& stage);

// Gives every training stage the "stage.*" defaults of its family's recipe card (say "lr") that
// the document left out; `is_set(i, key)` tells whether stage i's document sets `key`. Both
// readers call it after reading, before validate().
void apply_stage_defaults(ExperimentSpec& spec, const std::function<bool(std::size_t, const std::string&)>& is_set);

}  // namespace ldm
