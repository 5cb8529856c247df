// Files of this repository from tests, wherever the build directory is.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace ldm::testing {

// A file of this repository by its path from the root (e.g. "tools/export/export_lpips.py"): found
// from this header's own location, else under $LDM_SOURCE_DIR (a build whose sources moved).
inline std::filesystem::path source_path(const std::string& relative) {
  const std::filesystem::path here =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / relative;
  if (std::filesystem::exists(here)) return here;
  if (const char* root = std::getenv("LDM_SOURCE_DIR")) return std::filesystem::path(root) / relative;
  return here;
}

}  // namespace ldm::testing
