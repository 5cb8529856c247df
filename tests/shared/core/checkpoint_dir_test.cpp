#include <doctest/doctest.h>

#include "shared/core/checkpoint_dir.h"
#include "shared/core/error.h"
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

TEST_CASE("a bundle manifest is checked once, naming the file and the key") {
  const std::string src = "b/manifest.json";
  const auto error = [&](const std::string& text) {
    try {
      parse_bundle_manifest(text, src);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error(R"({"step": 3})") == "no error");  // older bundles lack the other keys
  CHECK(error(R"({"step": 3, "world_size": 2, "data_cursor": 8, "skipped_batches": [{"index": 1, "step": 2}]})") ==
        "no error");
  CHECK(error("{step") == "b/manifest.json: not valid JSON");
  CHECK(error("[1]") == "b/manifest.json: not a JSON object");
  CHECK(error("{}") == "b/manifest.json: step: missing");
  CHECK(error(R"({"step": "3"})") == "b/manifest.json: step: expected an integer, got string");
  CHECK(error(R"({"step": -1})") == "b/manifest.json: step: expected 0 to 9223372036854775807, got -1");
  CHECK(error(R"({"step": 18446744073709551615})") == "b/manifest.json: step: out of range");
  // Read as int by the worker: 2^32 + 1 would wrap to 1.
  CHECK(error(R"({"step": 3, "world_size": 4294967297})") ==
        "b/manifest.json: world_size: expected 1 to 16777216, got 4294967297");
  CHECK(error(R"({"step": 3, "spec_hash": 7})") == "b/manifest.json: spec_hash: expected a string, got number");
  CHECK(error(R"({"step": 3, "skipped_batches": [{"index": 1}]})") ==
        "b/manifest.json: skipped_batches[0].step: missing");
  CHECK(error(R"({"step": 3, "stage_index": 1})") == "b/manifest.json: stage_index: given without a spec");
  CHECK(error(R"({"step": 3, "spec": {"stages": "x"}})").rfind("b/manifest.json: spec: ", 0) == 0);
  CHECK(error(R"({"step": 3, "dataset": {"dir": 5}})") == "b/manifest.json: dataset.dir: expected a string");
}
