#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>

#include "shared/core/credentials.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "tests/support/temp_dir.h"

using namespace ldm;

namespace {
std::string private_file(const testing::TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.path() + "/" + name;
  write_file_atomic(path, text);
  ::chmod(path.c_str(), 0600);
  return path;
}
}  // namespace

TEST_CASE("a token file is the coordinator's client JSON or one line of text, and must be private") {
  testing::TempDir dir;
  const std::string key(40, 'k');
  const ClientCredentials json =
      read_credentials(private_file(dir, "client.json",
                                    R"({"token": "t0k", "server_public": ")" + key + R"(", "client_public": ")" + key +
                                        R"(", "client_secret": ")" + key + R"("})"));
  CHECK(json.token == "t0k");
  CHECK(json.has_curve());
  const ClientCredentials plain = read_credentials(private_file(dir, "token", "  abc123\n"));
  CHECK(plain.token == "abc123");
  CHECK_FALSE(plain.has_curve());
  CHECK_THROWS_WITH_AS(read_credentials(private_file(dir, "empty", "\n")), doctest::Contains("holds no token"), Error);
  CHECK_THROWS_WITH_AS(read_credentials(private_file(dir, "short", R"({"token": "t", "server_public": "abc"})")),
                       doctest::Contains("40 characters"), Error);
  CHECK_THROWS_WITH_AS(
      read_credentials(private_file(dir, "half", R"({"token": "t", "server_public": ")" + key + R"("})")),
      doctest::Contains("client_public and client_secret"), Error);
  const std::string loose = private_file(dir, "loose", "abc\n");
  ::chmod(loose.c_str(), 0640);
  CHECK_THROWS_WITH_AS(read_credentials(loose), doctest::Contains("mode 0640; chmod 600"), Error);
  CHECK_THROWS_WITH_AS(read_credentials(dir.path() + "/missing"), doctest::Contains("missing"), Error);
}

TEST_CASE("the credentials a command uses: the flag, else LDM_TOKEN_FILE, else the state directory's") {
  testing::TempDir dir;
  ::unsetenv("LDM_TOKEN_FILE");
  CHECK(credentials_path("", dir.path()).empty());
  make_dirs(dir.path() + "/auth");
  private_file(dir, "auth/client.json", "x\n");
  CHECK(credentials_path("", dir.path()) == dir.path() + "/auth/client.json");
  ::setenv("LDM_TOKEN_FILE", "/from/env", 1);
  CHECK(credentials_path("", dir.path()) == "/from/env");
  CHECK(credentials_path("/from/flag", dir.path()) == "/from/flag");
  ::unsetenv("LDM_TOKEN_FILE");
}
