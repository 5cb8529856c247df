// Comparison tables and exports, from hand-built results (the e2e test fills them from a real sweep).
#include <doctest/doctest.h>

#include <algorithm>
#include <sstream>

#include "coordinator/compare.h"
#include "shared/core/error.h"

using namespace ldm;
using namespace ldm::coord;
using nlohmann::json;

namespace {

// One experiment of family `family` and seed `seed`: a training stage "pre" (loss at steps 1, 10)
// and an evaluation stage "fid" (fid at step 10), unless `diverged` (pre diverged, no fid).
ResultCell cell(const std::string& family, int seed, double final_loss, double fid, bool diverged = false) {
  ResultCell c;
  c.view.experiment.name = "s-" + family + "-s" + std::to_string(seed);
  c.view.experiment.state = diverged ? RunState::Diverged : RunState::Done;
  c.view.experiment.spec = {{"recipe", {{"family", family}}},
                            {"stage", json::array({{{"name", "pre"}, {"batch_size", 8}},
                                                   {{"name", "fid"}, {"kind", "eval"}, {"batch_size", 8}}})}};
  StageRecord pre, eval;
  pre.name = "pre";
  pre.index = 0;
  pre.step = 10;
  pre.state = diverged ? RunState::Diverged : RunState::Done;
  eval.name = "fid";
  eval.index = 1;
  eval.state = diverged ? RunState::Pending : RunState::Done;
  c.view.stages = {pre, eval};
  RunRecord run;
  run.ranks = 2;
  run.started_at = 100;
  run.finished_at = 110;
  c.view.runs = {run};
  c.values = {{"recipe.family", family}, {"seed", seed}};
  c.points["pre"] = {{"params", 0, 1.5e6, 1, 0}, {"gflops", 0, 0.25, 1, 0}, {"loss", 1, 9.0, 1, 0}};
  if (!diverged) {
    c.points["pre"].push_back({"loss", 10, final_loss, 1, 0});
    c.points["fid"] = {{"fid", 10, fid, 1, 0}};
  }
  return c;
}

std::vector<ResultCell> sample() {
  return {cell("dit", 1, 0.5, 40), cell("dit", 2, 0.7, 44), cell("unet", 1, 0.4, 30), cell("unet", 2, 0.4, 34),
          cell("mdt", 1, 0, 0, /*diverged=*/true)};
}

}  // namespace

TEST_CASE("compare: rows by the first swept key, fid by default, mean ± std over seeds, best marked, ✗ diverged") {
  CompareOptions o;
  const std::string table = format_comparison(sample(), o);
  CAPTURE(table);
  CHECK(table.find("recipe.family  fid") == 0);
  CHECK(table.find("dit            42 ± 2.8") != std::string::npos);  // mean 42, sample std 2.83
  CHECK(table.find("unet           32 ± 2.8 *") != std::string::npos);
  CHECK(table.find("mdt            ✗") != std::string::npos);
  CHECK(table.find("1.5M") != std::string::npos);  // params from the worker's point
  CHECK(table.find("fid at the end of each stage (mean ± std over the experiments of a row); lower is better") !=
        std::string::npos);
}

TEST_CASE("compare: loss per stage column, — where a row has no value, and % change against a row") {
  CompareOptions o;
  o.metric = "loss";
  o.relative_to = "dit";
  o.format = "json";
  const json j = json::parse(format_comparison(sample(), o));
  CHECK(j.at("metric") == "loss");
  CHECK(j.at("columns") == json::array({"pre"}));
  const json& rows = j.at("rows");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].at("row") == "dit");
  CHECK(rows[0].at("cells").at("pre").at("mean").get<double>() == doctest::Approx(0.6));
  CHECK(rows[0].at("cells").at("pre").at("values") == json::array({0.5, 0.7}));
  CHECK(rows[1].at("cells").at("pre").at("best") == true);
  CHECK(rows[1].at("cells").at("pre").at("relative_pct").get<double>() == doctest::Approx(-100.0 / 3));
  CHECK(rows[2].at("cells").at("pre").at("diverged") == true);
  CHECK(rows[0].at("params").get<double>() == 1.5e6);
  CHECK(rows[0].at("rank_seconds").get<double>() == doctest::Approx(20.0));  // 2 ranks x 10 s
  CHECK(rows[0].at("images").get<double>() == 80);  // 10 steps x batch 8 in the training stage only
  CHECK(rows[0].at("experiments") == json::array({"s-dit-s1", "s-dit-s2"}));
  o.format = "table";
  const std::string table = format_comparison(sample(), o);
  CAPTURE(table);
  CHECK(table.find("unet           0.4 ± 0 (-33.3%) *") != std::string::npos);
  CHECK_THROWS_WITH_AS(
      [&] {
        CompareOptions bad = o;
        bad.relative_to = "ditt";
        format_comparison(sample(), bad);
      }(),
      doctest::Contains("did you mean 'dit'"), Error);
}

TEST_CASE("compare: columns by a key, md and csv that parse back, clear errors") {
  CompareOptions o;
  o.rows = "recipe.family";
  o.cols = "seed";
  o.format = "csv";
  const std::string csv = format_comparison(sample(), o);
  std::istringstream in(csv);
  std::string header, line;
  std::getline(in, header);
  CHECK(header == "recipe.family,1,1 std,1 n,2,2 std,2 n,params,gflops,images,rank_seconds");
  std::getline(in, line);
  CHECK(line.rfind("dit,40,,1,44,,1,1500000,0.25,", 0) == 0);
  std::getline(in, line);
  std::getline(in, line);
  CHECK(line.rfind("mdt,x,,0,,,0,", 0) == 0);  // diverged at seed 1; no seed-2 experiment
  o.format = "md";
  const std::string md = format_comparison(sample(), o);
  CHECK(md.find("| recipe.family | 1 | 2 | PARAMS | GFLOPS | IMAGES | RANK-S |\n| --- | ---: |") == 0);
  CHECK(md.find("| unet | **30** | **34** |") != std::string::npos);
  o.format = "xml";
  CHECK_THROWS_WITH_AS(format_comparison(sample(), o), doctest::Contains("unknown format 'xml'"), Error);
  CompareOptions none;
  none.metric = "clip_score";
  CHECK_THROWS_WITH_AS(format_comparison(sample(), none), doctest::Contains("has the metric 'clip_score'"), Error);
}

TEST_CASE("compare: rows default to the sweep's first non-seed axis; a key no experiment has is refused") {
  CompareOptions o;
  o.format = "json";
  o.axes = {"seed", "stage.0.batch_size"};  // not the values' alphabetical first key, recipe.family
  CHECK(json::parse(format_comparison(sample(), o)).at("rows_key") == "stage.0.batch_size");
  CompareOptions typo;
  typo.rows = "recipe.famly";
  CHECK_THROWS_WITH_AS(format_comparison(sample(), typo), doctest::Contains("--rows recipe.famly: no experiment has"),
                       Error);
  typo.rows = "";
  typo.cols = "nope";
  CHECK_THROWS_WITH_AS(format_comparison(sample(), typo), doctest::Contains("--cols nope"), Error);
}

TEST_CASE("export: every point once, with experiment, values, stage, attempt and step, as csv and jsonl") {
  const std::vector<ResultCell> cells = sample();
  std::size_t total = 0;
  for (const ResultCell& c : cells)
    for (const auto& [stage, points] : c.points) total += points.size();
  const std::string jsonl = export_points(cells, {"recipe.family", "seed"}, "jsonl");
  std::istringstream in(jsonl);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const json p = json::parse(line);
    CHECK(p.contains("experiment"));
    CHECK(p.at("values").contains("seed"));
  }
  CHECK(n == total);
  const std::string csv = export_points(cells, {"recipe.family", "seed"}, "csv");
  CHECK(csv.rfind("experiment,recipe.family,seed,stage,metric,step,value,attempt,time\n", 0) == 0);
  CHECK(csv.find("s-unet-s2,unet,2,fid,fid,10,34,1,") != std::string::npos);
  CHECK(static_cast<std::size_t>(std::count(csv.begin(), csv.end(), '\n')) == total + 1);
  CHECK_THROWS_AS(export_points(cells, {}, "parquet"), Error);
}
