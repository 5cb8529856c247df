// Whole-file byte reads and writes for tests that inspect or damage files on purpose.
#pragma once

#include <fstream>
#include <iterator>
#include <string>

namespace ldm::testing {

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace ldm::testing
