#include "coordinator/results_report.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

using nlohmann::json;

std::string num(double v, const char* format = "%.4g") { return format_number(v, format); }

std::string location(const std::string& source, const toml::source_region& r) {
  return source + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

// The spec JSON of a cell's stage by name (null when it has none).
json stage_spec(const ResultCell& c, const std::string& stage) {
  const json& spec = c.view.experiment.spec;
  if (!spec.is_object() || !spec.contains("stage")) return nullptr;
  for (const json& s : spec["stage"])
    if (s.value("name", std::string()) == stage) return s;
  return nullptr;
}

bool is_eval_stage(const ResultCell& c, const std::string& stage) {
  const json s = stage_spec(c, stage);
  return s.is_object() && s.value("kind", std::string("train")) == "eval";
}

// Loss first, then the evaluation stages' metrics: those their files ask for (in that order), then
// what the worker added beside them (in name order).
std::vector<std::string> sweep_metrics(const std::vector<ResultCell>& cells) {
  std::vector<std::string> primary{"loss"};
  std::set<std::string> measured, secondary;
  for (const ResultCell& c : cells)
    for (const auto& [stage, points] : c.points) {
      if (!is_eval_stage(c, stage)) continue;
      for (const MetricPoint& p : points) measured.insert(p.metric);
      for (const json& m : stage_spec(c, stage).value("eval", json::object()).value("metrics", json::array()))
        if (std::find(primary.begin(), primary.end(), m.get<std::string>()) == primary.end())
          primary.push_back(m.get<std::string>());
    }
  std::vector<std::string> out;
  for (const std::string& m : primary)
    if (m == "loss" || measured.count(m)) out.push_back(m);
  for (const std::string& m : measured)
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  return out;
}

bool has_metric(const std::vector<ResultCell>& cells, const std::string& metric) {
  for (const ResultCell& c : cells)
    for (const auto& [stage, points] : c.points)
      for (const MetricPoint& p : points)
        if (p.metric == metric) return true;
  return false;
}

// A metric with more than one point in some evaluation stage of a cell: worth a curve.
bool has_curve(const std::vector<ResultCell>& cells, const std::string& metric) {
  for (const ResultCell& c : cells)
    for (const auto& [stage, points] : c.points)
      if (metric == "loss" ||
          (is_eval_stage(c, stage) &&
           std::count_if(points.begin(), points.end(), [&](const MetricPoint& p) { return p.metric == metric; }) > 1))
        return true;
  return false;
}

const RunRecord* current_run(const ResultCell& c, const std::string& stage) {
  for (const StageRecord& s : c.view.stages)
    if (s.name == stage)
      for (const RunRecord& r : c.view.runs)
        if (r.id == s.current_run) return &r;
  return nullptr;
}

std::string md_escape(const std::string& s) {
  std::string out;
  for (char ch : s) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return out;
}

std::string seed_of(const ResultCell& c) {
  if (c.values.contains("seed")) return c.values["seed"].dump();
  const json& spec = c.view.experiment.spec;
  return spec.is_object() && spec.contains("seed") ? spec["seed"].dump() : "";
}

std::string verdict_line(const Verdict& v) {
  const Claim& c = v.claim;
  const auto side = [&](const std::string& row, const std::string& stage) {
    std::string s = row.empty() ? std::string() : "`" + row + "`";
    if (stage != c.treatment_stage || stage != c.baseline_stage || row.empty())
      s += (s.empty() ? "" : " at ") + std::string("`") + stage + "`";
    return s;
  };
  const bool judged = !v.treatment.empty() && !v.baseline.empty();
  const auto stats = [&](double m, double s, std::size_t n) {
    return judged ? num(m) + " ± " + num(s, "%.2g") + " (n=" + std::to_string(n) + ")" : std::string("—");
  };
  return "| " + c.id + " | " + md_escape(c.title) + " | " + c.metric + " (" + c.better + " is better) | " +
         md_escape(side(c.treatment_row, c.treatment_stage)) + ": " +
         stats(v.treatment_mean, v.treatment_std, v.treatment.size()) + " | " +
         md_escape(side(c.baseline_row, c.baseline_stage)) + ": " +
         stats(v.baseline_mean, v.baseline_std, v.baseline.size()) + " | " +
         (judged
              ? num(v.effect, "%+.3g") + (std::isfinite(v.relative) ? " (" + num(100 * v.relative, "%+.0f") + "%)" : "")
              : "—") +
         " | " + (v.treatment.size() > 1 && v.baseline.size() > 1 ? num(v.t, "%.2f") : "—") + " | **" + v.verdict +
         "** |\n";
}

}  // namespace

std::vector<Claim> parse_claims(const std::string& text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw SpecError("", std::string(e.description()), location(source, e.source()));
  }
  for (const auto& [key, node] : root)
    if (key.str() != "claim")
      throw SpecError(std::string(key.str()), "unknown key (a claims file holds [[claim]] tables)",
                      location(source, node.source()));
  std::vector<Claim> claims;
  const toml::array* arr = root["claim"].as_array();
  if (!arr || arr->empty()) throw SpecError("claim", "no [[claim]] tables", source);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::table* t = (*arr)[i].as_table();
    const std::string path = "claim." + std::to_string(i);
    if (!t) throw SpecError(path, "expected a table", location(source, (*arr)[i].source()));
    Claim c;
    std::string stage;
    const std::map<std::string, std::string*> strings = {{"id", &c.id},
                                                         {"sweep", &c.sweep},
                                                         {"title", &c.title},
                                                         {"paper", &c.paper},
                                                         {"metric", &c.metric},
                                                         {"better", &c.better},
                                                         {"rows", &c.rows},
                                                         {"treatment_row", &c.treatment_row},
                                                         {"baseline_row", &c.baseline_row},
                                                         {"stage", &stage},
                                                         {"treatment_stage", &c.treatment_stage},
                                                         {"baseline_stage", &c.baseline_stage},
                                                         {"scale", &c.scale}};
    for (const auto& [key, node] : *t) {
      const std::string k(key.str());
      const std::string where = location(source, node.source());
      if (k == "t_min") {
        const auto v = node.value<double>();
        if (!v || *v <= 0) throw SpecError(path + ".t_min", "expected a positive number", where);
        c.t_min = *v;
        continue;
      }
      const auto it = strings.find(k);
      if (it == strings.end()) {
        std::vector<std::string> known{"t_min"};
        for (const auto& [name, field] : strings) known.push_back(name);
        throw SpecError(path + "." + k, "unknown key" + did_you_mean(k, known), where);
      }
      const auto v = node.value<std::string>();
      if (!v) throw SpecError(path + "." + k, "expected a string", where);
      *it->second = *v;
    }
    const std::string where = location(source, t->source());
    for (const char* required : {"id", "sweep", "title", "paper", "metric", "better"})
      if (strings.at(required)->empty()) throw SpecError(path + "." + required, "is required", where);
    if (c.better != "lower" && c.better != "higher")
      throw SpecError(path + ".better", "is '" + c.better + "', not one of: lower, higher", where);
    if (c.treatment_stage.empty()) c.treatment_stage = stage;
    if (c.baseline_stage.empty()) c.baseline_stage = stage;
    if (c.treatment_stage.empty() || c.baseline_stage.empty())
      throw SpecError(path + ".stage", "is required (or treatment_stage and baseline_stage)", where);
    if (!ids.insert(c.id).second) throw SpecError(path + ".id", "'" + c.id + "' is used twice", where);
    claims.push_back(std::move(c));
  }
  return claims;
}

Verdict judge_claim(const Claim& claim, const std::vector<ResultCell>& cells) {
  Verdict v;
  v.claim = claim;
  CompareOptions o;
  o.metric = claim.metric;
  o.rows = claim.rows.empty() ? "arm" : claim.rows;
  o.format = "json";
  if (!has_metric(cells, claim.metric)) {
    v.verdict = "not measured";
    v.reason = "no cell of " + claim.sweep + " has the metric " + claim.metric;
    return v;
  }
  const json cmp = json::parse(format_comparison(cells, o));
  std::vector<std::string> labels;
  for (const json& r : cmp["rows"]) labels.push_back(r["row"].get<std::string>());
  const auto values = [&](const std::string& row, const std::string& stage, const char* which) {
    const json* found = nullptr;
    for (const json& r : cmp["rows"])
      if (r["row"] == row || (row.empty() && cmp["rows"].size() == 1)) found = &r;
    if (!found)
      throw Error("claim " + claim.id + ": " + which + " row '" + row + "' is not a row of " + claim.sweep +
                  " (rows by " + o.rows + ": " + join(labels, ", ") + ")" + did_you_mean(row, labels));
    const json& col = (*found)["cells"].value(stage, json());
    if (!(*found)["cells"].contains(stage))
      throw Error("claim " + claim.id + ": " + which + " stage '" + stage + "' has no " + claim.metric + " in " +
                  claim.sweep + " (stages: " + join(cmp["columns"].get<std::vector<std::string>>(), ", ") + ")");
    return col.is_object() ? col.value("values", std::vector<double>{}) : std::vector<double>{};
  };
  v.treatment = values(claim.treatment_row, claim.treatment_stage, "treatment");
  v.baseline = values(claim.baseline_row, claim.baseline_stage, "baseline");
  v.treatment_mean = mean_of(v.treatment);
  v.treatment_std = std_of(v.treatment);
  v.baseline_mean = mean_of(v.baseline);
  v.baseline_std = std_of(v.baseline);
  const double diff = v.treatment_mean - v.baseline_mean;
  v.effect = claim.better == "lower" ? -diff : diff;
  v.relative = v.baseline_mean == 0 ? std::numeric_limits<double>::quiet_NaN() : v.effect / std::fabs(v.baseline_mean);
  if (v.treatment.size() < 2 || v.baseline.size() < 2) {
    v.verdict = "inconclusive";
    v.reason = "fewer than two seeds on a side (" + std::to_string(v.treatment.size()) + " vs " +
               std::to_string(v.baseline.size()) + "): no spread to judge the difference by";
    return v;
  }
  const double se = std::sqrt(v.treatment_std * v.treatment_std / double(v.treatment.size()) +
                              v.baseline_std * v.baseline_std / double(v.baseline.size()));
  v.t =
      se > 0 ? v.effect / se : (v.effect == 0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), v.effect));
  const std::string t_text = "Welch t = " + num(v.t, "%.2f") + " over " + std::to_string(v.treatment.size()) + " vs " +
                             std::to_string(v.baseline.size()) + " seeds";
  if (v.t >= claim.t_min) {
    v.verdict = "reproduced";
    v.reason =
        "the treatment is " + claim.better + " by " + num(std::fabs(diff)) + ", " + t_text + " ≥ " + num(claim.t_min);
  } else if (v.t <= -claim.t_min) {
    v.verdict = "contradicted";
    v.reason = "the treatment is worse by " + num(std::fabs(diff)) + ", " + t_text + " ≤ −" + num(claim.t_min);
  } else {
    v.verdict = "inconclusive";
    v.reason = "the difference (" + num(diff, "%+.3g") + ") is within the seeds' spread: " + t_text + ", |t| < " +
               num(claim.t_min);
  }
  return v;
}

namespace {

// The verdict table, then a line per claim with the paper's words, the reason and the scale caveat.
void render_verdicts(const std::vector<Verdict>& verdicts, std::string& md) {
  md +=
      "## Verdicts\n\n| claim | | metric | treatment | baseline | effect (paper's direction > 0) | t | verdict |\n"
      "|---|---|---|---|---|---|---|---|\n";
  for (const Verdict& v : verdicts) md += verdict_line(v);
  md += "\n";
  for (const Verdict& v : verdicts) {
    md += "- **" + v.claim.id + "** " + v.claim.title + ". The paper: " + v.claim.paper + ". Here: **" + v.verdict +
          "**: " + v.reason + ".";
    if (!v.claim.scale.empty()) md += " Scale: " + v.claim.scale;
    md += "\n";
  }
  md += "\n";
}

// A table and a bar chart per metric (rows by arm), then the curves of the loss and of evaluation
// metrics measured at several steps.
void render_metrics(const ReportSweep& s, const ReportOptions& options, ReportOutput& out) {
  std::string& md = out.markdown;
  for (const std::string& metric : sweep_metrics(s.cells)) {
    CompareOptions o;
    o.metric = metric;
    o.rows = "arm";
    o.format = "md";
    o.axes = s.axes;
    o.now = options.now;
    md += "### " + metric + "\n\n" + format_comparison(s.cells, o) + "\n";
    o.format = "json";
    const Figure bars = plot_comparison(json::parse(format_comparison(s.cells, o)));
    out.files.emplace_back(s.name + "/" + bars.file, bars.svg);
    md += "![" + metric + " by arm](" + s.name + "/" + bars.file + ")\n\n";
  }
  PlotOptions po;
  for (const std::string& metric : sweep_metrics(s.cells))
    if (has_curve(s.cells, metric)) po.metrics.push_back(metric);
  if (!po.metrics.empty()) {
    md += "### Curves\n\n";
    for (const Figure& f : plot_curves(s.cells, po)) {
      out.files.emplace_back(s.name + "/" + f.file, f.svg);
      md += "![" + f.file + "](" + s.name + "/" + f.file + ")\n";
    }
    md += "\n";
  }
}

// Sample grids: per evaluation stage, a row per arm, a column per seed.
void render_grids(const ReportSweep& s, const ReportOptions& options, ReportOutput& out) {
  std::string& md = out.markdown;
  std::vector<std::string> eval_stages;
  for (const StageRecord& st : s.cells.front().view.stages)
    if (is_eval_stage(s.cells.front(), st.name)) eval_stages.push_back(st.name);
  for (const std::string& stage : eval_stages) {
    std::vector<std::string> arms, seeds;
    std::map<std::pair<std::string, std::string>, std::string> image;
    for (const ResultCell& c : s.cells) {
      const RunRecord* run = current_run(c, stage);
      const auto pts = c.points.find(stage);
      if (!run || pts == c.points.end() || pts->second.empty()) continue;
      const std::string arm = arm_label(c), seed = seed_of(c);
      if (options.grid_seeds > 0 && std::count_if(image.begin(), image.end(), [&](const auto& kv) {
                                      return kv.first.first == arm;
                                    }) >= options.grid_seeds)
        continue;
      std::int64_t step = 0;
      for (const MetricPoint& p : pts->second) step = std::max(step, p.step);
      const std::string dst = s.name + "/grids/" + c.view.experiment.name + "-" + stage + ".png";
      out.copies.emplace_back(run->run_dir + "/" + step_dir_name(step) + "/grid.png", dst);
      if (std::find(arms.begin(), arms.end(), arm) == arms.end()) arms.push_back(arm);
      if (std::find(seeds.begin(), seeds.end(), seed) == seeds.end()) seeds.push_back(seed);
      image[{arm, seed}] = dst;
    }
    if (arms.empty()) continue;
    md += "### Samples of `" + stage + "` (the last evaluated checkpoint)\n\n| arm |";
    for (const std::string& seed : seeds) md += " seed " + seed + " |";
    md += "\n|---|";
    for (std::size_t k = 0; k < seeds.size(); ++k) md += "---|";
    md += "\n";
    for (const std::string& arm : arms) {
      md += "| " + md_escape(arm) + " |";
      for (const std::string& seed : seeds) {
        const auto it = image.find({arm, seed});
        md += it == image.end() ? " — |" : " ![](" + it->second + ") |";
      }
      md += "\n";
    }
    md += "\n";
  }
}

// The cells, their spec hashes and compute.
void render_cells(const ReportSweep& s, const ReportOptions& options, std::string& md) {
  md +=
      "### Cells and compute\n\n| experiment | arm | seed | state | spec_hash | rank-seconds "
      "|\n|---|---|---|---|---|---|\n";
  double total = 0, first = 0, last = 0;
  std::map<std::string, double> per_stage;
  std::vector<std::string> stage_order;
  for (const ResultCell& c : s.cells) {
    double cell_total = 0;
    for (const RunRecord& r : c.view.runs) {
      if (r.started_at <= 0) continue;
      const double end = r.finished_at > 0 ? r.finished_at : (options.now > 0 ? options.now : r.last_heartbeat);
      const double rs = std::max(0.0, end - r.started_at) * r.ranks;
      cell_total += rs;
      if (!per_stage.count(r.stage)) stage_order.push_back(r.stage);
      per_stage[r.stage] += rs / double(s.cells.size());
      first = first == 0 ? r.started_at : std::min(first, r.started_at);
      last = std::max(last, end);
    }
    total += cell_total;
    md += "| " + c.view.experiment.name + " | " + md_escape(arm_label(c)) + " | " + seed_of(c) + " | " +
          to_string(c.view.experiment.state) + " | `" + c.view.experiment.spec_hash + "` | " + num(cell_total, "%.0f") +
          " |\n";
  }
  md += "\nCompute: " + num(total, "%.0f") + " rank-seconds in all, " + num(last - first, "%.0f") +
        " s of wall time from the first start to the last end; per cell, by stage:";
  for (const std::string& st : stage_order) md += " " + st + " " + num(per_stage[st], "%.1f") + " s;";
  if (!stage_order.empty()) md.back() = '.';
  md += "\n\n";
}

}  // namespace

ReportOutput build_report(const std::vector<ReportSweep>& sweeps, const std::vector<Claim>& claims,
                          const ReportOptions& options) {
  ReportOutput out;
  std::string& md = out.markdown;
  md += "# Results report\n\nMade by `" + options.command + "` from the experiment store in `" + options.state +
        "`. Every table is the metric at the end of its stage, mean ± sample std over the seeds of a row (arm); "
        "**bold** is the best of a column, ✗ a diverged run, — a stage the row does not have.\n\n";
  // Verdicts first: what a reader came for.
  for (const Claim& c : claims) {
    const auto it = std::find_if(sweeps.begin(), sweeps.end(), [&](const ReportSweep& s) { return s.name == c.sweep; });
    if (it != sweeps.end()) {
      out.verdicts.push_back(judge_claim(c, it->cells));
      continue;
    }
    Verdict v;  // a study run in parts: say what is missing rather than refuse the rest
    v.claim = c;
    v.verdict = "not run";
    v.reason = "its sweep " + c.sweep + " is not in this report";
    out.verdicts.push_back(v);
  }
  if (!out.verdicts.empty()) render_verdicts(out.verdicts, md);
  for (const ReportSweep& s : sweeps) {
    md += "## " + s.name + "\n\n";
    if (s.cells.empty()) {
      md += "No cells.\n\n";
      continue;
    }
    const json& spec = s.cells.front().view.experiment.spec;
    if (spec.is_object() && !spec.value("description", std::string()).empty())
      md += spec["description"].get<std::string>() + ".\n\n";
    md += "Ran with `ldm-coord run " + s.source + "` (" + std::to_string(s.cells.size()) + " cells";
    if (!s.axes.empty()) md += ", axes " + join(s.axes, ", ");
    md += ").\n\n";
    render_metrics(s, options, out);
    render_grids(s, options, out);
    render_cells(s, options, md);
  }
  return out;
}

}  // namespace ldm::coord
