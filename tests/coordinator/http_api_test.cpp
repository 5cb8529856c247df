// The HTTP API's routes and JSON, called without sockets.
#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <memory>

#include "coordinator/http_api.h"
#include "tests/coordinator/test_support.h"

using namespace ldm;
using namespace ldm::coord;
using namespace ldm::coord::testing;
using nlohmann::json;

namespace {

struct Api {
  TempDir dir;
  std::unique_ptr<ExperimentStore> store = ExperimentStore::open(dir.path() + "/db");
  FakeExecutor executor;
  Coordinator coord{*store, executor, {dir.path() + "/runs", "tcp://127.0.0.1:5999", {}}};

  HttpResponse call(const std::string& method, const std::string& target, const std::string& body = "") {
    return handle_api_request(coord, {method, target, body});
  }
  json call_json(const std::string& method, const std::string& target, int expected_status,
                 const std::string& body = "") {
    const HttpResponse r = call(method, target, body);
    CAPTURE(r.body);
    CHECK(r.status == expected_status);
    return json::parse(r.body);
  }
  void submit(const std::string& name) {
    call_json("POST", "/api/v1/experiments", 201, json{{"source", "/x.toml"}, {"spec", small_spec(name)}}.dump());
  }
};

}  // namespace

TEST_CASE("health reports ok, the worker endpoint and the pid") {
  Api api;
  const json j = api.call_json("GET", "/api/v1/health", 200);
  CHECK(j.at("ok") == true);
  CHECK(j.at("zmq") == "tcp://127.0.0.1:5999");
  CHECK(j.at("pid") == ::getpid());
}

TEST_CASE("a submission returns 201 with the experiment and its runs, and launches it") {
  Api api;
  const json j = api.call_json("POST", "/api/v1/experiments", 201,
                               json{{"source", "/x.toml"}, {"spec", small_spec("exp1")}, {"name", "other"}}.dump());
  CHECK(j.at("experiment") == "other");
  CHECK(j.at("runs") == json::array({"other.train.a1"}));
  REQUIRE(api.executor.launches.size() == 1);
}

TEST_CASE("the API takes no fault injection (a test tool, not data) nor any other unknown field") {
  Api api;
  const json fault =
      api.call_json("POST", "/api/v1/experiments", 400,
                    json{{"source", "/x.toml"}, {"spec", small_spec("exp1")}, {"fault", "abort@step:1,rank:0"}}.dump());
  CHECK(fault.at("error").get<std::string>().find("set LDM_FAULT in the coordinator's environment") !=
        std::string::npos);
  const json typo =
      api.call_json("POST", "/api/v1/experiments", 400, json{{"spec", small_spec("exp1")}, {"nmae", "x"}}.dump());
  CHECK(typo.at("error").get<std::string>().find("did you mean 'name'") != std::string::npos);
  CHECK(api.executor.launches.empty());
}

TEST_CASE("malformed submissions are 400 with a clear message and the API keeps serving") {
  Api api;
  CHECK(api.call_json("POST", "/api/v1/experiments", 400, "{not json")
            .at("error")
            .get<std::string>()
            .find("JSON object") != std::string::npos);
  CHECK(api.call_json("POST", "/api/v1/experiments", 400, "{}").at("error").get<std::string>().find("'spec'") !=
        std::string::npos);
  CHECK(api.call_json("POST", "/api/v1/experiments", 400, json{{"spec", small_spec("a")}, {"name", 5}}.dump())
            .at("error") == "'name' must be a string");
  json bad = small_spec("a");
  bad["recipe"]["presett"] = "x";
  const std::string error =
      api.call_json("POST", "/api/v1/experiments", 400, json{{"source", "/e.toml"}, {"spec", bad}}.dump()).at("error");
  CHECK(error.find("/e.toml: ") == 0);
  CHECK(error.find("recipe.presett") != std::string::npos);
  api.call_json("GET", "/api/v1/health", 200);
}

TEST_CASE("a taken experiment name is 409 and suggests --name") {
  Api api;
  api.submit("exp1");
  const json j = api.call_json("POST", "/api/v1/experiments", 409, json{{"spec", small_spec("exp1")}}.dump());
  CHECK(j.at("error") == "experiment 'exp1' already exists (submit with --name NEW)");
}

TEST_CASE("experiments are listed without specs and shown in full, never with run tokens") {
  Api api;
  api.submit("exp1");
  api.submit("exp2");
  const json list = api.call_json("GET", "/api/v1/experiments", 200);
  REQUIRE(list.at("experiments").size() == 2);
  const json& item = list.at("experiments")[0];
  CHECK(item.at("name") == "exp1");
  CHECK_FALSE(item.contains("spec"));
  CHECK(item.at("stages").size() == 1);
  REQUIRE(item.at("runs").size() == 1);
  CHECK_FALSE(item.at("runs")[0].contains("token"));

  const json one = api.call_json("GET", "/api/v1/experiments/exp2", 200);
  CHECK(one.at("experiment").at("spec").at("name") == "exp2");
  CHECK(one.at("stages")[0].at("name") == "train");
  CHECK_FALSE(one.at("runs")[0].contains("token"));
  CHECK(one.dump().find(api.store->get_run("exp2.train.a1")->token) == std::string::npos);
  CHECK(api.call_json("GET", "/api/v1/experiments/nope", 404).at("error") == "no experiment named 'nope'");
}

TEST_CASE("metrics are served per stage and metric, with 404 for unknown names") {
  Api api;
  api.submit("exp1");
  const RunRecord r = *api.store->get_run("exp1.train.a1");
  api.coord.handle(protocol::make(
      protocol::Type::Metrics, r.id, r.token,
      {{"attempt", 1},
       {"seq", 1},
       {"points",
        {{{"metric", "loss"}, {"step", 1}, {"value", 2.0}}, {{"metric", "lr"}, {"step", 1}, {"value", 1e-4}}}}}));
  CHECK(api.call_json("GET", "/api/v1/experiments/exp1/metrics", 200).at("points").size() == 2);
  const json loss = api.call_json("GET", "/api/v1/experiments/exp1/metrics?stage=train&metric=loss", 200);
  REQUIRE(loss.at("points").size() == 1);
  CHECK(loss.at("points")[0].at("value") == 2.0);
  api.call_json("GET", "/api/v1/experiments/exp1/metrics?stage=nope", 404);
  api.call_json("GET", "/api/v1/experiments/nope/metrics", 404);
  // max_points thins each curve (the store's step buckets); a bad value is a 400 naming it.
  CHECK(api.call_json("GET", "/api/v1/experiments/exp1/metrics?max_points=1", 200).at("points").size() == 2);
  CHECK(api.call_json("GET", "/api/v1/experiments/exp1/metrics?max_points=x", 400)
            .at("error")
            .get<std::string>()
            .find("max_points") != std::string::npos);
  api.call_json("GET", "/api/v1/experiments/exp1/metrics?max_points=-3", 400);
}

TEST_CASE("unknown paths are 404 and wrong methods 405, naming the request") {
  Api api;
  CHECK(api.call_json("GET", "/", 404).at("error") == "no such endpoint: GET /");
  api.call_json("GET", "/api/v2/health", 404);
  api.call_json("GET", "/api/v1/experiments/a/b", 404);
  api.call_json("GET", "/api/v1/experiments/a/metrics/x", 404);
  CHECK(api.call_json("DELETE", "/api/v1/experiments", 405).at("error") ==
        "method not allowed: DELETE /api/v1/experiments");
  api.call_json("POST", "/api/v1/health", 405);
}

TEST_CASE("bytes that are not UTF-8 in a path or a name get a 404 whose JSON names them, not a 500") {
  // Found by tests/fuzz/fuzz_http: the reply quoted the path, and dumping it threw.
  Api api;
  const std::string bad = "/api/v1/experim\xff\xfents";
  const json j = api.call_json("GET", bad, 404);
  CHECK(j.at("error") == "no such endpoint: GET /api/v1/experim\xEF\xBF\xBD\xEF\xBF\xBDnts");  // U+FFFD twice
  api.call_json("GET", "/api/v1/experiments/exp\xc3", 404);
  api.call_json("POST", "/api/v1/experiments/\xff/cancel", 404);
}

TEST_CASE("POST .../resume starts a new attempt of a stopped experiment: 409 while running, 404 unknown") {
  Api api;
  api.call_json("POST", "/api/v1/experiments", 201,
                json{{"source", "/x.toml"}, {"spec", small_spec("exp1", 20, 1, 1)}}.dump());
  const json running = api.call_json("POST", "/api/v1/experiments/exp1/resume", 409, "{}");
  CHECK(running.at("error").get<std::string>().find("nothing to resume") != std::string::npos);
  api.call_json("POST", "/api/v1/experiments/nope/resume", 404, "{}");
  CHECK(api.call("GET", "/api/v1/experiments/exp1/resume").status == 405);
  REQUIRE(api.executor.launches.size() == 1);
  api.executor.kill(1000, 9);  // the fake executor's first pid
  api.coord.tick();
  REQUIRE(api.store->get_experiment("exp1")->state == RunState::Failed);  // max_attempts 1
  // The world-size fields: malformed or unknown ones, and a change without its acknowledgement, are 400.
  for (const char* body : {R"({"ranks": 0, "allow_world_size_change": true})", R"({"ranks": "2"})", R"({"rank": 2})",
                           R"({"allow_world_size_change": 1})", R"({"ranks": 2})"})
    CHECK(api.call_json("POST", "/api/v1/experiments/exp1/resume", 400, body).at("error").get<std::string>().size() >
          0);
  CHECK(api.executor.launches.size() == 1);
  const json resumed = api.call_json("POST", "/api/v1/experiments/exp1/resume", 200,
                                     R"({"ranks": 2, "allow_world_size_change": true, "stage": "train"})");
  CHECK(resumed.at("run") == "exp1.train.a2");
  REQUIRE(api.executor.launches.size() == 2);
  CHECK(api.executor.launches.back().ranks == 2);
  CHECK(api.store->get_experiment("exp1")->state == RunState::Running);
}

TEST_CASE("POST .../cancel signals the running run (one stage with \"stage\"): 404 unknown, 409 nothing to cancel") {
  Api api;
  api.submit("exp1");
  const json unknown_stage = api.call_json("POST", "/api/v1/experiments/exp1/cancel", 404, R"({"stage": "trian"})");
  CHECK(unknown_stage.at("error").get<std::string>().find("did you mean 'train'") != std::string::npos);
  api.call_json("POST", "/api/v1/experiments/nope/cancel", 404, "{}");
  const json cancelled = api.call_json("POST", "/api/v1/experiments/exp1/cancel", 200, R"({"stage": "train"})");
  CHECK(cancelled.at("experiment") == "exp1");
  CHECK(cancelled.at("signalled") == json::array({"exp1.train.a1"}));
  REQUIRE(api.executor.signals.size() == 1);
  CHECK(api.executor.signals[0].second == SIGUSR1);
  api.call_json("POST", "/api/v1/experiments/exp1/cancel", 409, "{}");  // already cancelling
  CHECK(api.call("GET", "/api/v1/experiments/exp1/cancel").status == 405);
}

TEST_CASE("a submission's priority is stored; a priority that is not an integer is 400") {
  Api api;
  api.call_json("POST", "/api/v1/experiments", 201,
                json{{"source", "/x.toml"}, {"spec", small_spec("exp1")}, {"priority", 7}}.dump());
  CHECK(api.store->get_experiment("exp1")->priority == 7);
  CHECK(api.call_json("GET", "/api/v1/experiments/exp1", 200).at("experiment").at("priority") == 7);
  const json bad = api.call_json("POST", "/api/v1/experiments", 400,
                                 json{{"spec", small_spec("exp2")}, {"priority", "high"}}.dump());
  CHECK(bad.at("error").get<std::string>().find("'priority' must be an integer") != std::string::npos);
  CHECK(!api.store->get_experiment("exp2"));
}

TEST_CASE(
    "sweeps over HTTP: 201 with its experiments, listed and shown with cell values, cancel, 409 delete while running") {
  Api api;
  json cells = json::array();
  for (int seed : {1, 2})
    cells.push_back({{"name", "sw-s" + std::to_string(seed)},
                     {"values", {{"seed", seed}}},
                     {"spec", small_spec("sw-s" + std::to_string(seed))}});
  const json body = {{"source", "/x/sw.toml"}, {"name", "sw"}, {"axes", {"seed"}}, {"cells", cells}};
  const json created = api.call_json("POST", "/api/v1/sweeps", 201, body.dump());
  CHECK(created.at("experiments") == json::array({"sw-s1", "sw-s2"}));
  CHECK(created.at("runs").size() == 2);
  api.call_json("POST", "/api/v1/sweeps", 409, body.dump());
  CHECK(api.call_json("POST", "/api/v1/sweeps", 400, R"({"name": "x"})")
            .at("error")
            .get<std::string>()
            .find("malformed sweep submission") != std::string::npos);
  CHECK(api.call_json("GET", "/api/v1/sweeps", 200).at("sweeps").at(0).at("name") == "sw");
  const json shown = api.call_json("GET", "/api/v1/sweeps/sw", 200);
  CHECK(shown.at("sweep").at("axes") == json::array({"seed"}));
  CHECK(shown.at("cells").at(1).at("values").at("seed") == 2);
  CHECK(shown.at("cells").at(1).at("name") == "sw-s2");
  api.call_json("GET", "/api/v1/sweeps/nope", 404);
  api.call_json("POST", "/api/v1/sweeps/sw/delete", 409, "{}");
  const json cancelled = api.call_json("POST", "/api/v1/sweeps/sw/cancel", 200, "{}");
  CHECK(cancelled.at("signalled").size() == 2);
  CHECK(api.call("GET", "/api/v1/sweeps/sw/cancel").status == 405);
}
