#include <torch/torch.h>
#include <doctest/doctest.h>

#include <string>

#include "shared/core/error.h"
#include "worker/train/fault.h"

using namespace ldm::worker;

TEST_CASE("LDM_FAULT syntax parses kind, step and rank") {
  auto p = parse_fault("abort@step:5,rank:1");
  CHECK(p.kind == "abort");
  CHECK(p.step == 5);
  CHECK(p.rank == 1);
  CHECK(p.attempt == -1);  // every attempt
  CHECK(parse_fault("exit@step:2,rank:0,attempt:1").attempt == 1);
  CHECK(parse_fault("").kind.empty());
  CHECK(parse_fault("nan@step:3,rank:1").kind == "nan");
  CHECK(parse_fault("stop@step:25,rank:1,attempt:1").kind == "stop");
}

TEST_CASE("a nan plan asks the caller to poison the loss instead of failing") {
  const auto plans = parse_faults("nan@step:3,rank:1");
  CHECK(maybe_inject_fault(plans, {"e", "s", 1, 3, 1}));
  CHECK_FALSE(maybe_inject_fault(plans, {"e", "s", 0, 3, 1}));  // another rank
  CHECK_FALSE(maybe_inject_fault(plans, {"e", "s", 1, 4, 1}));  // another step
  CHECK_FALSE(maybe_inject_fault(plans, {"e", "s", 1, 3, 1}));  // once: the step re-run after a rollback is clean
}

TEST_CASE("a diverge plan poisons its step and every later one, re-runs included") {
  const auto plans = parse_faults("diverge@step:3,rank:1");
  CHECK_FALSE(maybe_inject_fault(plans, {"e", "s", 1, 2, 1}));
  CHECK(maybe_inject_fault(plans, {"e", "s", 1, 3, 1}));
  CHECK(maybe_inject_fault(plans, {"e", "s", 1, 3, 1}));
  CHECK(maybe_inject_fault(plans, {"e", "s", 1, 90, 1}));
  CHECK_FALSE(maybe_inject_fault(plans, {"e", "s", 0, 90, 1}));  // another rank
}

TEST_CASE("malformed LDM_FAULT values are errors that quote the value") {
  for (const char* bad : {"abort", "boom@step:1,rank:0", "abort@step:x,rank:0", "abort@rank:0", "abort@step:1,ranks:0",
                          "abort@step:1,rank:0,attempt:0"}) {
    try {
      parse_fault(bad);
      FAIL("expected an error for " << bad);
    } catch (const ldm::Error& e) {
      CHECK(std::string(e.what()).find(bad) != std::string::npos);
    }
  }
}

namespace fault_test {
// The site of `rank` at `step` of attempt `attempt` of experiment "e", stage "train".
FaultSite site(int rank, int64_t step, int attempt = 1, const std::string& experiment = "e",
               const std::string& stage = "train") {
  return {experiment, stage, rank, step, attempt};
}
}  // namespace fault_test
using fault_test::site;

TEST_CASE("a throw fault fires only on its rank and step") {
  auto p = parse_faults("throw@step:3,rank:1");
  CHECK_NOTHROW(maybe_inject_fault(p, site(0, 3)));
  CHECK_NOTHROW(maybe_inject_fault(p, site(1, 2)));
  CHECK_THROWS_WITH(maybe_inject_fault(p, site(1, 3)), doctest::Contains("rank 1 at step 3"));
}

TEST_CASE("a fault with attempt:A fires only in that attempt, one without in every attempt") {
  auto once = parse_faults("throw@step:3,rank:0,attempt:1");
  CHECK_THROWS_WITH(maybe_inject_fault(once, site(0, 3, 1)), doctest::Contains("rank 0 at step 3"));
  CHECK_NOTHROW(maybe_inject_fault(once, site(0, 3, 2)));
  auto always = parse_faults("throw@step:3,rank:0");
  CHECK_THROWS(maybe_inject_fault(always, site(0, 3, 1)));
  CHECK_THROWS(maybe_inject_fault(always, site(0, 3, 4)));
}

TEST_CASE("experiment: and stage: select where a fault fires, and ';' separates several plans") {
  const auto plans = parse_faults("throw@experiment:faulty,step:3,rank:0;throw@stage:finetune,step:5,rank:1");
  REQUIRE(plans.size() == 2);
  CHECK(plans[0].experiment == "faulty");
  CHECK(plans[1].stage == "finetune");
  CHECK_THROWS(maybe_inject_fault(plans, site(0, 3, 1, "faulty")));
  CHECK_NOTHROW(maybe_inject_fault(plans, site(0, 3, 1, "healthy")));  // another experiment
  CHECK_THROWS(maybe_inject_fault(plans, site(1, 5, 1, "any", "finetune")));
  CHECK_NOTHROW(maybe_inject_fault(plans, site(1, 5, 1, "any", "train")));  // another stage
  CHECK(parse_faults("").empty());
  CHECK_THROWS_WITH(parse_faults("throw@step:1,rank:0;abort@experiment:,step:1,rank:0"),
                    doctest::Contains("experiment needs a name"));
}
