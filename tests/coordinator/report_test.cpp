// The CLI's human-readable text.
#include <doctest/doctest.h>

#include <algorithm>

#include "coordinator/report.h"

using namespace ldm;
using namespace ldm::coord;

namespace {
ExperimentView sample_view() {
  ExperimentView v;
  v.experiment.name = "quick";
  v.experiment.state = RunState::Failed;
  StageRecord s;
  s.experiment = "quick";
  s.name = "train";
  s.state = RunState::Failed;
  s.step = 5;
  s.total_steps = 20;
  s.current_run = "quick.train.a1";
  v.stages.push_back(s);
  RunRecord r;
  r.id = "quick.train.a1";
  r.stage = "train";
  r.state = RunState::Failed;
  r.step = 5;
  r.last_seq = 2;
  r.last_loss = 0.123456;
  r.samples_per_s = 42.25;
  r.started_at = 100;
  r.finished_at = 112.5;
  r.run_dir = "/runs/quick/train";
  r.error = "rank 1: crashed with signal 6 (SIGABRT) at step 5\nsecond line";
  v.runs.push_back(r);
  return v;
}
}  // namespace

TEST_CASE("the status table has one row per stage with progress, loss, throughput and error") {
  const std::string table = format_status_table({sample_view()});
  CHECK(table.find("EXPERIMENT  STATE   STAGE") == 0);
  CHECK(table.find("quick       failed  train (failed)  5/20  0.1235  42.2") != std::string::npos);
  CHECK(table.find("rank 1: crashed with signal 6 (SIGABRT) at step 5") != std::string::npos);
  CHECK(table.find("second line") == std::string::npos);  // tables show the first line only
  CHECK(format_status_table({}).find("no experiments") == 0);
}

TEST_CASE("the summary gives each stage's state, steps, loss, throughput, wall time, dir and error") {
  const std::string s = format_summary(sample_view());
  CHECK(s.find("experiment quick: failed\n") == 0);
  CHECK(s.find("stage train: failed, 5/20 steps, final loss 0.1235, 42.2 samples/s, wall 12.5s") != std::string::npos);
  CHECK(s.find("run dir:    /runs/quick/train") != std::string::npos);
  CHECK(s.find("      second line") != std::string::npos);
  CHECK(format_progress_line(sample_view()) == "quick/train: failed, step 5/20, loss 0.1235, 42.2 samples/s");
}

TEST_CASE("the detail view shows the experiment's priority when it has one, and each run's error in full") {
  ExperimentView v = sample_view();
  CHECK(format_experiment_detail(v).find("priority") == std::string::npos);
  v.experiment.priority = 3;
  const std::string detail = format_experiment_detail(v);
  CHECK(detail.find("  priority:  3\n") != std::string::npos);
  CHECK(detail.find("run quick.train.a1 error:\n  rank 1: crashed with signal 6 (SIGABRT) at step 5\n  second line") !=
        std::string::npos);
}

TEST_CASE("the detail view shows a running run's per-rank system figures, with the hidden share of comm") {
  ExperimentView v = sample_view();
  CHECK(format_system(v).empty());
  CHECK(format_experiment_detail(v).find("system (per rank") == std::string::npos);
  v.system["quick.train.a1"] = {{"step", 12},
                                {"ranks",
                                 {{{"rank", 0},
                                   {"step_s", 0.25},
                                   {"data_wait_s", 0.0125},
                                   {"comm_s", 0.1},
                                   {"comm_hidden_s", 0.075},
                                   {"peak_rss_mb", 512.4}},
                                  {{"rank", 1},
                                   {"step_s", 0.5},
                                   {"data_wait_s", 0.0},
                                   {"comm_s", 0.0},
                                   {"comm_hidden_s", 0.0},
                                   {"peak_rss_mb", 498.0}}}}};
  const std::string t = format_system(v);
  CHECK(t.find("RUN             STEP  RANK  STEP S  DATA WAIT S  COMM S  HIDDEN  PEAK RSS MIB") != std::string::npos);
  CHECK(t.find("quick.train.a1  12    0     0.2500  0.0125       0.1000  75%     512") != std::string::npos);
  CHECK(t.find("                      1     0.5000  0.0000       0.0000  -       498") != std::string::npos);
  CHECK(format_experiment_detail(v).find(t) != std::string::npos);
}

TEST_CASE("the presets table lists DiT-XL/2 with the paper's parameter count and GFLOPs") {
  const std::string t = format_presets_table();
  // DiT paper, Table 1: XL/2 has 675M parameters and 118.6 GFLOPs at 256x256.
  const auto row = t.find("\ndit       XL/2 ");  // at a line start: not mmdit's row
  REQUIRE(row != std::string::npos);
  const std::string line = t.substr(row + 1, t.find('\n', row + 1) - row - 1);
  CHECK(line.find("675.") != std::string::npos);
  CHECK(line.find("118.") != std::string::npos);
  CHECK(line.find(" 675M ") != std::string::npos);  // the published figure beside it
  CHECK(t.find("tiny/2") != std::string::npos);
  for (const char* family : {"\nunet ", "\nmdt ", "\npixart ", "\nmmdit ", "\nproposed "})
    CHECK_MESSAGE(t.find(family) != std::string::npos, family);
  CHECK(t.find("LDM-4-G") != std::string::npos);
  // The same rows as JSON (`ldm-coord presets --json`).
  const nlohmann::json j = presets_json();
  const auto xl = std::find_if(j.begin(), j.end(),
                               [](const nlohmann::json& p) { return p["family"] == "dit" && p["preset"] == "XL/2"; });
  REQUIRE(xl != j.end());
  CHECK((*xl)["parameters"] == 675129632);
  CHECK((*xl)["default"] == true);
  CHECK((*xl)["learn_sigma"] == true);
  CHECK((*xl)["published"]["parameters_m"] == 675);
  std::size_t rows = 0;
  for (std::size_t at = t.find('\n'); at != std::string::npos; at = t.find('\n', at + 1)) ++rows;
  CHECK(j.size() + 6 == rows);  // the table also has a title, a header and four footnote lines
}
