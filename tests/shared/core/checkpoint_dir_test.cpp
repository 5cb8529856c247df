#include <doctest/doctest.h>

#include "shared/core/checkpoint_dir.h"
#include "shared/core/safe_file.h"
#include "tests/support/temp_dir.h"

using namespace ldm;

TEST_CASE("only canonical step directory names are bundles") {
  CHECK(parse_step_dir_name("step-0000042") == 42);
  CHECK(parse_step_dir_name("step-12345678") == 12345678);  // past seven digits
  CHECK_FALSE(parse_step_dir_name(".tmp-step-0000042"));
  CHECK_FALSE(parse_step_dir_name(".del-step-0000042"));
  CHECK_FALSE(parse_step_dir_name("step-42"));  // not how the worker spells it
  CHECK_FALSE(parse_step_dir_name("step-00000x2"));
  CHECK_FALSE(parse_step_dir_name("latest"));
  CHECK_FALSE(parse_step_dir_name("step-"));
}

TEST_CASE("the newest complete bundle is found by name, skipping partial and foreign directories") {
  testing::TempDir tmp;
  const std::string dir = tmp.path() + "/checkpoints";
  CHECK_FALSE(newest_bundle(dir));  // no directory at all
  for (const char* name : {"step-0000100", "step-0000020", "step-0000300"}) {
    make_dirs(dir + "/" + name);
    write_file_atomic(dir + "/" + name + "/manifest.json", "{}");
  }
  make_dirs(dir + "/step-0000400");  // no manifest: not complete
  make_dirs(dir + "/.tmp-step-0000500");
  const auto all = list_bundles(dir);
  REQUIRE(all.size() == 3);
  CHECK(all[0].step == 20);
  CHECK(all[2].step == 300);
  CHECK(newest_bundle(dir)->dir == dir + "/step-0000300");
  CHECK(resolve_bundle_dir(tmp.path()) == dir + "/step-0000300");
  CHECK(resolve_bundle_dir(dir + "/step-0000020") == dir + "/step-0000020");
  CHECK(resolve_bundle_dir(tmp.path() + "/nothing").empty());
}
