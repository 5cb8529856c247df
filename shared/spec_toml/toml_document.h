// The TOML document layer under spec_toml.h, shared by the experiment and sweep readers of this
// library only (it exposes toml++, which nothing outside shared/spec_toml includes).
#pragma once

#include <string>

#include <toml++/toml.h>

#include "shared/core/spec.h"

namespace ldm {

// The text of an experiment file. Throws SpecError "file:1:1" when it cannot be opened or read.
std::string read_experiment_text(const std::string& path);

// TOML text -> document. Throws SpecError at the syntax error's line:column.
toml::table parse_toml_text(const std::string& text, const std::string& source_name);

// A document -> validated spec: the family's recipe defaults first, then the document's keys.
// Errors name source_name:line:column of the key; a node that toml++ copied has no position (its
// copies drop it), and such errors point at source_name:1:1. A [sweep] table is an error.
ExperimentSpec parse_experiment_table(const toml::table& root, const std::string& source_name);

}  // namespace ldm
