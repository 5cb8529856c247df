// Small helpers for tests that check error messages.
#pragma once

#include <functional>
#include <string>

#include "shared/core/error.h"

namespace ldm::testing {

// The message of the ldm::Error that `f` throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ldm::Error& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace ldm::testing
