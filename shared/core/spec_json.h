// JSON codec of the experiment spec (how the coordinator stores it and sends it to workers).
// Decoding is as strict as the TOML front end: unknown keys, wrong types and out-of-range values
// are SpecErrors naming the key path.
#pragma once

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

}  // namespace ldm
