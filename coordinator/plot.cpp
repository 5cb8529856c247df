#include "coordinator/plot.h"

#include <algorithm>
#include <map>
#include <set>

#include "coordinator/svg_chart.h"
#include "shared/core/error.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

using nlohmann::json;

// Where each stage's steps start on the cell's x axis, and what one step is worth there.
struct StageAxis {
  double offset = 0;    // x of the stage's step 0
  double per_step = 1;  // x per step: 1 (steps) or the stage's batch (images)
  std::string parent;   // an evaluation stage: the stage whose steps its points carry
};

std::map<std::string, StageAxis> stage_axes(const ResultCell& cell, bool images) {
  std::map<std::string, StageAxis> out;
  const json& spec = cell.view.experiment.spec;
  if (!spec.is_object() || !spec.contains("stage")) return out;
  std::map<std::string, double> end;  // x at each training stage's last step
  double furthest = 0;                // the end of every stage so far
  for (const json& st : spec["stage"]) {
    const std::string name = st.value("name", std::string());
    StageAxis a;
    if (st.value("kind", std::string("train")) == "eval") {
      a.parent = st.value("after", std::string());
      out[name] = a;
      continue;
    }
    // After its parent's end; a stage with no parent here (from scratch, or from another experiment
    // or a bundle) after every stage before it, so that independent stages never overlap.
    const std::string parent = st.value("init_from", std::string());
    a.offset = end.count(parent) ? end[parent] : furthest;
    a.per_step = images ? double(st.value("batch_size", std::int64_t{1})) : 1.0;
    end[name] = a.offset + a.per_step * double(st.value("steps", std::int64_t{0}));
    furthest = std::max(furthest, end[name]);
    out[name] = a;
  }
  for (auto& [name, a] : out)  // evaluation points sit on their parent's axis
    if (!a.parent.empty() && out.count(a.parent)) {
      a.offset = out[a.parent].offset;
      a.per_step = out[a.parent].per_step;
    }
  return out;
}

bool is_eval_stage(const ResultCell& cell, const std::string& stage) {
  const json& spec = cell.view.experiment.spec;
  if (!spec.is_object() || !spec.contains("stage")) return false;
  for (const json& st : spec["stage"])
    if (st.value("name", std::string()) == stage) return st.value("kind", std::string("train")) == "eval";
  return false;
}

std::string file_name(const std::string& metric) {
  std::string out;
  for (char c : metric) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return out + ".svg";
}

}  // namespace

std::string cell_label(const ResultCell& cell) {
  std::string out;
  for (const auto& [key, value] : cell.values.items())
    out += (out.empty() ? "" : " ") + key.substr(key.rfind('.') + 1) + "=" +
           (value.is_string() ? value.get<std::string>() : value.dump());
  return out.empty() ? cell.view.experiment.name : out;
}

std::vector<Figure> plot_curves(const std::vector<ResultCell>& cells, const PlotOptions& o) {
  if (o.x != "step" && o.x != "images") throw Error("unknown --x '" + o.x + "' (choices: step, images)");
  std::vector<std::string> metrics = o.metrics;
  if (metrics.empty()) {  // loss, then what the evaluation stages measured
    std::set<std::string> seen;
    metrics.push_back("loss");
    for (const ResultCell& c : cells)
      for (const auto& [stage, points] : c.points)
        if (is_eval_stage(c, stage))
          for (const MetricPoint& p : points)
            if (seen.insert(p.metric).second) metrics.push_back(p.metric);
  }
  std::vector<Figure> out;
  for (const std::string& metric : metrics) {
    LineChart chart;
    chart.title = metric + (cells.size() > 1 ? " of " + std::to_string(cells.size()) + " experiments" : "");
    chart.x_label = o.x == "step" ? "optimiser steps (stages end to end)" : "images seen (samples, stages end to end)";
    chart.y_label = metric;
    std::vector<double> all;
    for (const ResultCell& c : cells) {
      const std::map<std::string, StageAxis> axes = stage_axes(c, o.x == "images");
      std::vector<std::pair<double, double>> xy;
      for (const auto& [stage, points] : c.points) {
        const auto axis = axes.find(stage);
        const StageAxis a = axis == axes.end() ? StageAxis{} : axis->second;
        for (const MetricPoint& p : points)
          if (p.metric == metric) xy.emplace_back(a.offset + a.per_step * double(p.step), p.value);
      }
      if (xy.empty()) continue;
      std::stable_sort(xy.begin(), xy.end(), [](const auto& l, const auto& r) { return l.first < r.first; });
      Series s;
      s.label = cell_label(c);
      for (const auto& [x, y] : xy) {
        s.x.push_back(x);
        s.y.push_back(y);
        all.push_back(y);
      }
      if (o.smoothing > 0 && s.y.size() >= 20) s.smooth_y = smooth(s.y, o.smoothing);
      chart.series.push_back(std::move(s));
    }
    if (chart.series.empty()) continue;
    chart.log_y = wants_log_axis(all);
    if (chart.log_y) chart.y_label += " (log scale)";
    out.push_back({file_name(metric), render_svg(chart), chart.series.size()});
  }
  if (out.empty()) throw Error("no experiment has a point of " + join(metrics, ", "));
  return out;
}

Figure plot_comparison(const json& cmp) {
  BarChart chart;
  const std::string metric = cmp.value("metric", std::string());
  chart.title = metric + " by " + cmp.value("rows_key", std::string()) + " (mean ± std over experiments)";
  chart.y_label = metric;
  chart.groups = cmp.value("columns", std::vector<std::string>());
  for (const json& row : cmp.value("rows", json::array())) {
    chart.series.push_back(row.value("row", std::string()));
    std::vector<double> value, err;
    std::vector<bool> present;
    for (const std::string& col : chart.groups) {
      const json cell = row["cells"].value(col, json());
      const bool has = cell.is_object() && cell.contains("mean") && !cell.value("diverged", false);  // ✗: no bar
      present.push_back(has);
      value.push_back(has ? cell["mean"].get<double>() : 0.0);
      err.push_back(has && cell.value("n", 0) > 1 ? cell["std"].get<double>() : 0.0);
    }
    chart.value.push_back(value);
    chart.err.push_back(err);
    chart.present.push_back(present);
  }
  return {file_name(metric + "-compare"), render_svg(chart), chart.series.size()};
}

}  // namespace ldm::coord
