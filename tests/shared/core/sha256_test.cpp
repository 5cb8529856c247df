#include "shared/core/sha256.h"

#include <doctest/doctest.h>

#include <fstream>

#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

TEST_CASE("sha256_file_hex matches known digests and names a missing file") {
  ldm::testing::TempDir tmp("ldm-sha256");
  std::ofstream(tmp.file("abc"), std::ios::binary) << "abc";
  std::ofstream(tmp.file("empty"), std::ios::binary);
  CHECK(ldm::sha256_file_hex(tmp.file("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(ldm::sha256_file_hex(tmp.file("empty")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string msg = ldm::testing::error_of([&] { ldm::sha256_file_hex(tmp.file("nope")); });
  CHECK(msg.find(tmp.file("nope")) != std::string::npos);
}
