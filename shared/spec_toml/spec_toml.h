// Experiment TOML front end: TOML text -> ExperimentSpec, with errors that name
// "file:line:column" and the key path. Unknown keys are errors suggesting the closest valid key;
// wrong types and out-of-range values are errors; missing keys take the defaults declared in
// shared/core/spec.h. Coordinator only (links toml++).
#pragma once

#include <string>

#include "shared/core/spec.h"

namespace ldm {

// Parses and validates (ldm::validate). Throws SpecError whose location() is "file:line:column"
// (the key's position; for whole-file problems "file:1:1") and whose what() is the full message.
ExperimentSpec parse_experiment_file(const std::string& path);
ExperimentSpec parse_experiment_string(const std::string& text, const std::string& source_name);

// The fully resolved spec as TOML, defaults included, each key preceded by its documentation
// as a comment. Parsing the output gives back an equal spec.
std::string format_experiment_toml(const ExperimentSpec& spec);

}  // namespace ldm
