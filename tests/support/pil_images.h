// The reference images of the dataset tests: tests/datasets/reference/make_images.py, run once per
// fixture with Debian's python3-pil, writes real JPEG/PNG/WebP files and PIL's decoded pixels into
// a temporary directory. A missing python3-pil/numpy or a failing script becomes `error`, which the
// test must turn into a failure (never a silent pass).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace ldm::testing {

inline std::string pil_python() {
  const char* p = std::getenv("LDM_TEST_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

inline std::string slurp_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// make_images.py, found from this header's location or under $LDM_SOURCE_DIR.
inline std::filesystem::path make_images_script() {
  namespace fs = std::filesystem;
  const fs::path rel = "tests/datasets/reference/make_images.py";
  const fs::path here = fs::path(__FILE__).parent_path().parent_path() / "datasets" / "reference" / "make_images.py";
  if (fs::exists(here)) return here;
  if (const char* root = std::getenv("LDM_SOURCE_DIR"))
    if (fs::exists(fs::path(root) / rel)) return fs::path(root) / rel;
  return here;
}

struct PilImages {
  TempDir dir;
  std::string error;
  explicit PilImages(const std::string& tag = "ldm-pil-images") : dir(tag) {
    const std::string log = dir.file("make_images.log");
    if (std::system((pil_python() + " -c 'import PIL, numpy' >/dev/null 2>&1").c_str()) != 0) {
      error = "python3-pil and python3-numpy are required: `" + pil_python() +
              " -c 'import PIL, numpy'` failed (install Debian's python3-pil python3-numpy)";
      return;
    }
    const std::string cmd =
        pil_python() + " " + make_images_script().string() + " " + dir.path() + " >" + log + " 2>&1";
    if (std::system(cmd.c_str()) != 0) error = "make_images.py failed:\n" + slurp_file(log);
  }
};

}  // namespace ldm::testing
