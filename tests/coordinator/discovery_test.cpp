// Finding a running coordinator: --coord, then LDM_COORD, then <state>/coord.json.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "coordinator/discovery.h"
#include "tests/coordinator/test_support.h"

using namespace ldm;
using namespace ldm::coord;
using namespace ldm::coord::testing;

namespace {
long dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}
}  // namespace

TEST_CASE("--coord wins over LDM_COORD, which wins over the discovery file") {
  TempDir dir;
  write_discovery_file(dir.path(), {"http://127.0.0.1:3", "tcp://127.0.0.1:4", ::getpid()});
  ::setenv("LDM_COORD", "http://127.0.0.1:2", 1);
  CHECK(locate_coordinator("http://127.0.0.1:1", dir.path()).url == "http://127.0.0.1:1");
  CHECK(locate_coordinator("", dir.path()).via == "LDM_COORD");
  ::unsetenv("LDM_COORD");
  const LocatedCoordinator found = locate_coordinator("", dir.path());
  CHECK(found.url == "http://127.0.0.1:3");
  CHECK(found.via == dir.path() + "/coord.json");
}

TEST_CASE("no coordinator, or one that has exited, is an error saying where it looked") {
  TempDir dir;
  ::unsetenv("LDM_COORD");
  CHECK_THROWS_WITH_AS(locate_coordinator("", dir.path()),
                       doctest::Contains(("no " + dir.path() + "/coord.json").c_str()), Error);
  write_discovery_file(dir.path(), {"http://127.0.0.1:3", "", dead_pid()});
  CHECK_THROWS_WITH_AS(locate_coordinator("", dir.path()), doctest::Contains("which has exited"), Error);
  write_file_atomic(discovery_file_path(dir.path()), "garbage");
  CHECK_THROWS_WITH_AS(locate_coordinator("", dir.path()), doctest::Contains("not a coordinator discovery file"),
                       Error);
}
