// Runs a Python reference script with Debian's python3-torch into a fresh temporary directory,
// for tests that compare our C++ with an independent Python computation. A missing python3-torch
// or a failing script becomes `error`, which the test must turn into a failure (never a pass).
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/source_path.h"

namespace ldm::testing {

inline const char* kReferencePython = "/usr/bin/python3";

// An inline reference script with its "__TOOLS__" placeholder replaced by the tools/export folder
// (a Python raw string literal), so it can import the export scripts.
inline std::string with_tools_dir(std::string script) {
  const std::string key = "__TOOLS__";
  const std::string tools = "r'" + source_path("tools/export").string() + "'";
  for (auto at = script.find(key); at != std::string::npos; at = script.find(key, at + tools.size()))
    script.replace(at, key.size(), tools);
  return script;
}

struct PythonReference {
  std::filesystem::path dir;  // the script's output directory (removed on destruction)
  std::string error;          // non-empty: why the reference could not be produced
  std::string log;            // the script's stdout and stderr

  // Runs `python3 SCRIPT DIR`. With `source` non-empty, SCRIPT is first written into DIR under
  // the name `script` (inline scripts); otherwise `script` is a path to an existing file.
  PythonReference(const std::string& tag, const std::filesystem::path& script, const std::string& source = "") {
    if (std::system((std::string(kReferencePython) + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0) {
      error =
          "python3-torch is required for this test: `/usr/bin/python3 -c 'import torch'` failed "
          "(install Debian's python3-torch)";
      return;
    }
    std::string pattern = "/tmp/" + tag + "-XXXXXX";
    if (!::mkdtemp(pattern.data())) {
      error = "mkdtemp failed for " + pattern;
      return;
    }
    dir = pattern;
    std::filesystem::path path = script;
    if (!source.empty()) {
      path = dir / script;
      std::ofstream(path) << source;
    } else if (!std::filesystem::exists(path)) {
      error = "reference script not found: " + path.string();
      return;
    }
    const std::filesystem::path log_path = dir / "reference.log";
    const std::string cmd =
        std::string(kReferencePython) + " " + path.string() + " " + dir.string() + " >" + log_path.string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream in(log_path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    log = s.str();
    if (rc != 0) error = "the reference script " + path.filename().string() + " failed:\n" + log;
  }
  ~PythonReference() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
  PythonReference(const PythonReference&) = delete;
  PythonReference& operator=(const PythonReference&) = delete;
};

}  // namespace ldm::testing
