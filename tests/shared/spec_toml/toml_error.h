// The SpecError an experiment text must raise, for the TOML front end's tests.
#pragma once

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "shared/core/error.h"
#include "shared/spec_toml/spec_toml.h"

namespace ldm::testing {

// Parses `text` as "exp.toml" and returns the SpecError it must raise.
inline ldm::SpecError toml_error(const std::string& text) {
  try {
    ldm::parse_experiment_string(text, "exp.toml");
  } catch (const ldm::SpecError& e) {
    return e;
  }
  FAIL("no SpecError for:\n" << text);
  throw std::logic_error("unreachable");  // FAIL throws; this satisfies the return type
}

}  // namespace ldm::testing
