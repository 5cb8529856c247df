// The results report and its verdicts, from hand-built results (tests/e2e/test_repro_e2e.py runs a
// real sweep through `ldm-coord report`).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "coordinator/results_report.h"
#include "shared/core/error.h"

using namespace ldm;
using namespace ldm::coord;
using nlohmann::json;

namespace {

// A cell of sweep "st": arm `mode` (swept key recipe.conditioning.controls), seed `seed`; a training
// stage "train" and an evaluation stage "eval" with disentanglement `d` and adherence `a` at step 100.
ResultCell arm_cell(const std::string& mode, int seed, double d, double a) {
  ResultCell c;
  c.view.experiment.name = "st-" + mode + "-s" + std::to_string(seed);
  c.view.experiment.state = RunState::Done;
  c.view.experiment.spec_hash = "hash-" + mode + std::to_string(seed);
  c.view.experiment.source = "experiments/repro/st.toml";
  c.view.experiment.spec = {
      {"description", "a study"},
      {"stage", json::array({{{"name", "train"}, {"batch_size", 8}},
                             {{"name", "eval"},
                              {"kind", "eval"},
                              {"eval", {{"metrics", json::array({"disentanglement", "control_adherence"})}}}}})}};
  StageRecord train, eval;
  train.name = "train";
  train.step = 100;
  train.state = eval.state = RunState::Done;
  eval.name = "eval";
  eval.index = 1;
  eval.current_run = c.view.experiment.name + "-eval-a1";
  c.view.stages = {train, eval};
  RunRecord tr, ev;
  tr.id = c.view.experiment.name + "-train-a1";
  tr.stage = "train";
  tr.started_at = 1000;
  tr.finished_at = 1060;
  ev.id = eval.current_run;
  ev.stage = "eval";
  ev.run_dir = "/runs/" + c.view.experiment.name + "/eval";
  ev.started_at = 1060;
  ev.finished_at = 1070;
  c.view.runs = {tr, ev};
  c.values = {{"recipe.conditioning.controls", mode}, {"seed", seed}};
  c.points["train"] = {{"loss", 50, 0.5, 1, 0}, {"loss", 100, 0.4, 1, 0}};
  c.points["eval"] = {{"disentanglement", 100, d, 1, 0}, {"control_adherence", 100, a, 1, 0}};
  return c;
}

ReportSweep study() {
  ReportSweep s;
  s.name = "st";
  s.source = "experiments/repro/st.toml";
  s.axes = {"recipe.conditioning.controls", "seed"};
  // proposed: disentanglement 0.10 +- 0.01, sdxl 0.30 +- 0.01: clearly lower; adherence equal within noise.
  for (int seed = 1; seed <= 3; ++seed) {
    s.cells.push_back(arm_cell("sdxl", seed, 0.30 + 0.01 * (seed - 2), 0.5 + 0.2 * (seed - 2)));
    s.cells.push_back(arm_cell("proposed", seed, 0.10 + 0.01 * (seed - 2), 0.5 - 0.2 * (seed - 2)));
  }
  return s;
}

Claim claim(const std::string& metric, const std::string& better) {
  Claim c;
  c.id = "x";
  c.sweep = "st";
  c.title = "t";
  c.paper = "p";
  c.metric = metric;
  c.better = better;
  c.treatment_row = "controls=proposed";
  c.baseline_row = "controls=sdxl";
  c.treatment_stage = c.baseline_stage = "eval";
  return c;
}

}  // namespace

TEST_CASE("arm labels: swept values but the seed; 'all' for a seeds-only sweep; the name outside a sweep") {
  ResultCell c = arm_cell("sdxl", 1, 0, 0);
  CHECK(arm_label(c) == "controls=sdxl");
  CHECK(cell_key_text(c, "arm") == "controls=sdxl");
  c.values = {{"seed", 2}};
  CHECK(arm_label(c) == "all");
  c.values = json::object();
  CHECK(arm_label(c) == "st-sdxl-s1");
}

TEST_CASE("verdicts: reproduced, contradicted and inconclusive from the effect and the seeds' spread") {
  const ReportSweep s = study();
  const Verdict lower = judge_claim(claim("disentanglement", "lower"), s.cells);
  CHECK(lower.verdict == "reproduced");
  REQUIRE(lower.treatment.size() == 3);
  CHECK(lower.treatment[0] == doctest::Approx(0.09));
  CHECK(lower.treatment[2] == doctest::Approx(0.11));
  CHECK(lower.effect == doctest::Approx(0.2));
  CHECK(lower.relative == doctest::Approx(0.2 / 0.3));
  CHECK(lower.t == doctest::Approx(0.2 / std::sqrt(2 * 0.0001 / 3)));
  // The same numbers read the other way round contradict the claim.
  const Verdict higher = judge_claim(claim("disentanglement", "higher"), s.cells);
  CHECK(higher.verdict == "contradicted");
  CHECK(higher.t == doctest::Approx(-lower.t));
  // Equal means with a wide spread: nothing can be said.
  const Verdict adherence = judge_claim(claim("control_adherence", "higher"), s.cells);
  CHECK(adherence.verdict == "inconclusive");
  CHECK(adherence.effect == doctest::Approx(0.0).epsilon(1e-12));
  // One seed a side: no spread, no verdict.
  std::vector<ResultCell> one{s.cells[0], s.cells[1]};
  const Verdict single = judge_claim(claim("disentanglement", "lower"), one);
  CHECK(single.verdict == "inconclusive");
  CHECK(single.reason.find("fewer than two seeds") != std::string::npos);
  // A metric nobody measured, and rows or stages the sweep does not have.
  CHECK(judge_claim(claim("fid", "lower"), s.cells).verdict == "not measured");
  Claim bad = claim("disentanglement", "lower");
  bad.baseline_row = "controls=sdxll";
  const std::string what = [&] {
    try {
      judge_claim(bad, s.cells);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  CHECK(what.find("did you mean 'controls=sdxl'") != std::string::npos);
  bad = claim("disentanglement", "lower");
  bad.treatment_stage = "fid";
  CHECK_THROWS_AS(judge_claim(bad, s.cells), Error);
}

TEST_CASE("claims files: keys, defaults and errors that name file, line and key") {
  const std::vector<Claim> claims = parse_claims(
      "[[claim]]\nid = \"a1\"\nsweep = \"st\"\ntitle = \"T\"\npaper = \"P\"\nmetric = \"fid\"\nbetter = \"lower\"\n"
      "stage = \"eval\"\ntreatment_row = \"controls=proposed\"\nbaseline_row = \"controls=sdxl\"\n"
      "[[claim]]\nid = \"b1\"\nsweep = \"st\"\ntitle = \"T\"\npaper = \"P\"\nmetric = \"fid\"\nbetter = \"higher\"\n"
      "treatment_stage = \"a\"\nbaseline_stage = \"b\"\nt_min = 2.0\n",
      "claims.toml");
  REQUIRE(claims.size() == 2);
  CHECK(claims[0].treatment_stage == "eval");
  CHECK(claims[0].baseline_stage == "eval");
  CHECK(claims[0].t_min == doctest::Approx(2.78));
  CHECK(claims[1].baseline_stage == "b");
  CHECK(claims[1].t_min == doctest::Approx(2.0));
  const auto error = [](const std::string& text) {
    try {
      parse_claims(text, "claims.toml");
    } catch (const SpecError& e) {
      return e;
    }
    FAIL("no error");
    return SpecError("", "");
  };
  const std::string base = "[[claim]]\nid = \"a\"\nsweep = \"s\"\ntitle = \"T\"\npaper = \"P\"\nmetric = \"fid\"\n";
  SpecError e = error(base + "better = \"smaller\"\nstage = \"eval\"\n");
  CHECK(e.key_path() == "claim.0.better");
  e = error(base + "better = \"lower\"\nstage = \"eval\"\nmetrc = \"x\"\n");
  CHECK(e.key_path() == "claim.0.metrc");
  CHECK(e.location() == "claims.toml:9:9");  // the value's position
  CHECK(e.detail().find("did you mean 'metric'") != std::string::npos);
  CHECK(error(base + "better = \"lower\"\n").key_path() == "claim.0.stage");
  CHECK(error("[[claim]]\nid = \"a\"\n").key_path() == "claim.0.sweep");
  CHECK(error("title = 3\n").key_path() == "title");
  CHECK(error("[[claim]\n").location().find("claims.toml:1") == 0);
}

TEST_CASE("the report: verdicts, a table and bar chart per metric, curves, grids per arm and seed, hashes, compute") {
  Claim c = claim("disentanglement", "lower");
  c.id = "a1";
  c.title = "weighting disentangles";
  c.scale = "tiny model.";
  ReportOptions o;
  o.command = "ldm-coord report st --out r";
  o.state = ".ldm";
  const ReportOutput r = build_report({study()}, {c}, o);
  const std::string& md = r.markdown;
  CAPTURE(md);
  REQUIRE(r.verdicts.size() == 1);
  CHECK(md.find("## Verdicts") != std::string::npos);
  CHECK(md.find("**reproduced**") != std::string::npos);
  CHECK(md.find("Scale: tiny model.") != std::string::npos);
  CHECK(md.find("Ran with `ldm-coord run experiments/repro/st.toml` (6 cells") != std::string::npos);
  // One table per metric, loss first, then the evaluation metrics in the file's order.
  const auto loss = md.find("### loss"), dis = md.find("### disentanglement"), adh = md.find("### control_adherence");
  REQUIRE(loss != std::string::npos);
  REQUIRE(dis != std::string::npos);
  REQUIRE(adh != std::string::npos);
  CHECK(loss < dis);
  CHECK(dis < adh);
  CHECK(md.find("| controls=proposed | **0.1 ± 0.01**") != std::string::npos);
  // Figures: bars per metric and the loss curve; each is linked from the markdown.
  std::size_t bars = 0;
  for (const auto& [path, svg] : r.files) {
    CHECK(svg.find("<svg") != std::string::npos);
    CHECK(md.find("(" + path + ")") != std::string::npos);
    bars += path.find("-compare.svg") != std::string::npos;
  }
  CHECK(bars == 3);
  CHECK(md.find("(st/loss.svg)") != std::string::npos);
  // A grid per cell, from its evaluation run's last evaluated step, in a row per arm and a column per seed.
  REQUIRE(r.copies.size() == 6);
  CHECK(r.copies[0].first == "/runs/st-sdxl-s1/eval/step-0000100/grid.png");
  CHECK(r.copies[0].second == "st/grids/st-sdxl-s1-eval.png");
  CHECK(md.find("| arm | seed 1 | seed 2 | seed 3 |") != std::string::npos);
  CHECK(md.find("| controls=sdxl | ![](st/grids/st-sdxl-s1-eval.png) | ![](st/grids/st-sdxl-s2-eval.png)") !=
        std::string::npos);
  // Spec hashes and compute: 70 s per cell (60 train + 10 eval), 6 cells.
  CHECK(md.find("`hash-proposed3`") != std::string::npos);
  CHECK(md.find("Compute: 420 rank-seconds in all") != std::string::npos);
  CHECK(md.find("train 60.0 s; eval 10.0 s.") != std::string::npos);
  // A claim on a sweep the report does not hold (a study run in parts).
  c.sweep = "other";
  const ReportOutput partial = build_report({study()}, {c}, o);
  CHECK(partial.verdicts.at(0).verdict == "not run");
  CHECK(partial.markdown.find("**not run**") != std::string::npos);
}
