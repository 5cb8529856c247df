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

}  // namespace ldm
