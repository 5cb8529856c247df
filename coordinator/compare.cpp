#include "coordinator/compare.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>

#include "coordinator/report.h"
#include "shared/core/error.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

using nlohmann::json;

std::string number(double v, const char* format = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string json_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return number(v.get<double>(), "%.6g");
  if (v.is_null()) return "";
  return v.dump();
}

// The node at a dotted path of a spec's JSON ("stage.0.lr": arrays by index), or nullptr.
const json* spec_path(const json& spec, const std::string& key) {
  const json* cur = &spec;
  for (const std::string& part : split(key, '.')) {
    if (cur->is_object()) {
      const auto it = cur->find(part);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      std::size_t i = 0;
      const auto r = std::from_chars(part.data(), part.data() + part.size(), i);
      if (r.ec != std::errc() || r.ptr != part.data() + part.size() || i >= cur->size()) return nullptr;
      cur = &(*cur)[i];
    } else {
      return nullptr;
    }
  }
  return cur;
}

// The metric's value at the last step the stage has it.
std::optional<double> final_value(const ResultCell& cell, const std::string& stage, const std::string& metric) {
  const auto it = cell.points.find(stage);
  if (it == cell.points.end()) return std::nullopt;
  std::optional<double> value;
  std::int64_t step = -1;
  for (const MetricPoint& p : it->second)
    if (p.metric == metric && p.step >= step) {
      step = p.step;
      value = p.value;
    }
  return value;
}

// The first value of `metric` in any stage (the model's params and gflops, reported at step 0).
std::optional<double> any_value(const ResultCell& cell, const std::string& metric) {
  for (const StageRecord& s : cell.view.stages)
    if (const auto v = final_value(cell, s.name, metric)) return v;
  return std::nullopt;
}

bool stage_diverged(const ResultCell& cell, const std::string& stage) {
  for (const StageRecord& s : cell.view.stages)
    if (s.name == stage) return s.state == RunState::Diverged;
  return false;
}

double images_seen(const ResultCell& cell) {
  const json& spec = cell.view.experiment.spec;
  const json stages = spec.is_object() ? spec.value("stage", json::array()) : json::array();
  double images = 0;
  for (const StageRecord& s : cell.view.stages) {
    if (static_cast<std::size_t>(s.index) >= stages.size()) continue;
    const json& st = stages[static_cast<std::size_t>(s.index)];
    if (st.value("kind", std::string("train")) != "train") continue;
    images += static_cast<double>(s.step) * st.value("batch_size", 0.0);
  }
  return images;
}

double rank_seconds(const ResultCell& cell, double now) {
  double total = 0;
  for (const RunRecord& r : cell.view.runs) {
    if (r.started_at <= 0) continue;
    const double end = r.finished_at > 0 ? r.finished_at : (now > 0 ? now : r.last_heartbeat);
    total += std::max(0.0, end - r.started_at) * r.ranks;
  }
  return total;
}

bool higher_is_better(const std::string& metric) {
  return metric.find("clip") != std::string::npos || metric.find("score") != std::string::npos;
}

std::string si(double v) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (std::fabs(v) >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return number(v, u == 0 ? "%.0f" : "%.3g") + units[u];
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

struct Aggregate {
  std::vector<double> values;
  bool diverged = false;
  bool present = false;  // some experiment of the row has this column
  double mean() const {
    double s = 0;
    for (double v : values) s += v;
    return values.empty() ? 0 : s / static_cast<double>(values.size());
  }
  double std() const {
    if (values.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double v : values) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(values.size() - 1));
  }
  bool usable() const { return !diverged && !values.empty(); }
};

struct Row {
  std::string label;
  std::vector<const ResultCell*> cells;
  std::vector<Aggregate> columns;
  std::optional<double> params, gflops;
  double images = 0, rank_seconds = 0;
};

}  // namespace

std::string cell_key_text(const ResultCell& cell, const std::string& key) {
  if (key == "experiment") return cell.view.experiment.name;
  if (cell.values.contains(key)) return json_text(cell.values[key]);
  if (cell.view.experiment.spec.is_object())
    if (const json* v = spec_path(cell.view.experiment.spec, key)) return json_text(*v);
  return "";
}

std::string format_comparison(const std::vector<ResultCell>& cells, const CompareOptions& o) {
  const std::vector<std::string> formats = {"table", "md", "csv", "json"};
  if (std::find(formats.begin(), formats.end(), o.format) == formats.end())
    throw Error("unknown format '" + o.format + "' (formats: " + join(formats, ", ") + ")" +
                did_you_mean(o.format, formats));
  if (cells.empty()) throw Error("nothing to compare");
  std::string metric = o.metric;
  if (metric.empty()) {
    metric = "loss";
    for (const ResultCell& c : cells)
      for (const auto& [stage, points] : c.points)
        for (const MetricPoint& p : points)
          if (p.metric == "fid") metric = "fid";
  }
  std::string rows_key = o.rows;
  if (rows_key.empty()) {
    rows_key = "experiment";
    for (auto it = cells.front().values.begin(); it != cells.front().values.end(); ++it)
      if (it.key() != "seed") {
        rows_key = it.key();
        break;
      }
  }
  // Columns: the stages (in file order) that have the metric somewhere, or the values of a key.
  const bool by_stage = o.cols.empty() || o.cols == "stage";
  std::vector<std::string> columns;
  const auto add_column = [&](const std::string& c) {
    if (std::find(columns.begin(), columns.end(), c) == columns.end()) columns.push_back(c);
  };
  for (const ResultCell& c : cells) {
    if (!by_stage) {
      add_column(cell_key_text(c, o.cols));
      continue;
    }
    for (const StageRecord& s : c.view.stages)
      if (final_value(c, s.name, metric)) add_column(s.name);
  }
  if (by_stage && columns.empty())
    throw Error("no stage of these experiments has the metric '" + metric + "' (try --metric loss)");
  // Rows, in order of first appearance.
  std::vector<Row> rows;
  for (const ResultCell& c : cells) {
    const std::string label = cell_key_text(c, rows_key);
    auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.label == label; });
    if (it == rows.end()) {
      rows.push_back({label, {}, std::vector<Aggregate>(columns.size()), std::nullopt, std::nullopt, 0, 0});
      it = rows.end() - 1;
    }
    it->cells.push_back(&c);
  }
  for (Row& row : rows) {
    for (const ResultCell* c : row.cells) {
      const bool diverged = c->view.experiment.state == RunState::Diverged;
      for (std::size_t k = 0; k < columns.size(); ++k) {
        Aggregate& a = row.columns[k];
        if (by_stage) {
          const bool has_stage = std::any_of(c->view.stages.begin(), c->view.stages.end(),
                                             [&](const StageRecord& s) { return s.name == columns[k]; });
          if (!has_stage) continue;
          a.present = true;
          const auto v = final_value(*c, columns[k], metric);
          if (stage_diverged(*c, columns[k]) || (!v && diverged)) a.diverged = true;
          else if (v) a.values.push_back(*v);
        } else if (cell_key_text(*c, o.cols) == columns[k]) {
          a.present = true;
          std::optional<double> v;
          for (const StageRecord& s : c->view.stages)
            if (const auto x = final_value(*c, s.name, metric)) v = x;
          if (v && !diverged) a.values.push_back(*v);
          else if (diverged) a.diverged = true;
        }
      }
      if (!row.params) row.params = any_value(*c, "params");
      if (!row.gflops) row.gflops = any_value(*c, "gflops");
      row.images += images_seen(*c) / static_cast<double>(row.cells.size());
      row.rank_seconds += rank_seconds(*c, o.now) / static_cast<double>(row.cells.size());
    }
  }
  // Best per column; the reference row of --relative-to.
  const bool higher = higher_is_better(metric);
  std::vector<std::optional<std::size_t>> best(columns.size());
  for (std::size_t k = 0; k < columns.size(); ++k)
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (!rows[r].columns[k].usable()) continue;
      const double m = rows[r].columns[k].mean();
      if (!best[k] || (higher ? m > rows[*best[k]].columns[k].mean() : m < rows[*best[k]].columns[k].mean()))
        best[k] = r;
    }
  const Row* reference = nullptr;
  if (!o.relative_to.empty()) {
    std::vector<std::string> labels;
    for (const Row& r : rows) labels.push_back(r.label);
    for (const Row& r : rows)
      if (r.label == o.relative_to) reference = &r;
    if (!reference)
      throw Error("--relative-to: no row '" + o.relative_to + "' (rows by " + rows_key + ": " + join(labels, ", ") +
                  ")" + did_you_mean(o.relative_to, labels));
  }
  const auto relative = [&](const Row& row, std::size_t k) -> std::optional<double> {
    if (!reference || &row == reference || !row.columns[k].usable() || !reference->columns[k].usable())
      return std::nullopt;
    const double ref = reference->columns[k].mean();
    if (ref == 0) return std::nullopt;
    return (row.columns[k].mean() - ref) / std::fabs(ref) * 100.0;
  };
  const auto cell_text = [&](const Row& row, std::size_t k) -> std::string {
    const Aggregate& a = row.columns[k];
    if (a.diverged) return "✗";
    if (a.values.empty()) return "—";
    std::string s = number(a.mean());
    if (a.values.size() > 1) s += " ± " + number(a.std(), "%.2g");
    if (const auto pct = relative(row, k)) s += " (" + number(*pct, "%+.1f") + "%)";
    return s;
  };

  if (o.format == "json") {
    json out = {{"metric", metric},   {"rows_key", rows_key},       {"cols", by_stage ? "stage" : o.cols},
                {"columns", columns}, {"higher_is_better", higher}, {"rows", json::array()}};
    if (reference) out["relative_to"] = reference->label;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const Row& row = rows[r];
      json cols = json::object();
      for (std::size_t k = 0; k < columns.size(); ++k) {
        const Aggregate& a = row.columns[k];
        if (!a.present) {
          cols[columns[k]] = nullptr;
          continue;
        }
        json c = {{"n", a.values.size()}, {"diverged", a.diverged}, {"best", best[k] == r}};
        if (!a.values.empty()) {
          c["mean"] = a.mean();
          c["std"] = a.std();
          c["values"] = a.values;
        }
        if (const auto pct = relative(row, k)) c["relative_pct"] = *pct;
        cols[columns[k]] = std::move(c);
      }
      json item = {{"row", row.label},
                   {"experiments", json::array()},
                   {"cells", std::move(cols)},
                   {"images", row.images},
                   {"rank_seconds", row.rank_seconds}};
      for (const ResultCell* c : row.cells) item["experiments"].push_back(c->view.experiment.name);
      item["params"] = row.params ? json(*row.params) : json(nullptr);
      item["gflops"] = row.gflops ? json(*row.gflops) : json(nullptr);
      out["rows"].push_back(std::move(item));
    }
    return out.dump(2) + "\n";
  }
  if (o.format == "csv") {
    std::vector<std::string> header = {rows_key};
    for (const std::string& c : columns)
      for (const char* part : {"", " std", " n"}) header.push_back(c + part);
    if (reference)
      for (const std::string& c : columns) header.push_back(c + " %");
    for (const char* c : {"params", "gflops", "images", "rank_seconds"}) header.push_back(c);
    std::string out;
    for (std::size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + csv_field(header[i]);
    out += "\n";
    for (const Row& row : rows) {
      std::vector<std::string> f = {row.label};
      for (const Aggregate& a : row.columns) {
        f.push_back(a.diverged ? "x" : a.values.empty() ? "" : number(a.mean(), "%.9g"));
        f.push_back(a.values.size() > 1 ? number(a.std(), "%.9g") : "");
        f.push_back(std::to_string(a.values.size()));
      }
      if (reference)
        for (std::size_t k = 0; k < columns.size(); ++k) {
          const auto pct = relative(row, k);
          f.push_back(pct ? number(*pct, "%.6g") : "");
        }
      f.push_back(row.params ? number(*row.params, "%.0f") : "");
      f.push_back(row.gflops ? number(*row.gflops, "%.6g") : "");
      f.push_back(number(row.images, "%.0f"));
      f.push_back(number(row.rank_seconds, "%.1f"));
      for (std::size_t i = 0; i < f.size(); ++i) out += (i ? "," : "") + csv_field(f[i]);
      out += "\n";
    }
    return out;
  }
  std::vector<std::vector<std::string>> table = {{rows_key}};
  for (const std::string& c : columns) table[0].push_back(c);
  for (const char* c : {"PARAMS", "GFLOPS", "IMAGES", "RANK-S"}) table[0].push_back(c);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::vector<std::string> line = {rows[r].label};
    for (std::size_t k = 0; k < columns.size(); ++k) {
      std::string t = cell_text(rows[r], k);
      if (best[k] == r && rows.size() > 1) t = o.format == "md" ? "**" + t + "**" : t + " *";
      line.push_back(t);
    }
    line.push_back(rows[r].params ? si(*rows[r].params) : "—");
    line.push_back(rows[r].gflops ? number(*rows[r].gflops, "%.3g") : "—");
    line.push_back(si(rows[r].images));
    line.push_back(number(rows[r].rank_seconds, "%.0f"));
    table.push_back(std::move(line));
  }
  std::size_t grouped = 0;
  for (const Row& r : rows) grouped = std::max(grouped, r.cells.size());
  const std::string legend = metric + " at the end of each " + (by_stage ? std::string("stage") : "experiment") +
                             (grouped > 1 ? " (mean ± std over the experiments of a row)" : "") + "; " +
                             (higher ? "higher" : "lower") + " is better" +
                             (rows.size() > 1 ? ", best per column marked" : "") + "; ✗ diverged, — not applicable" +
                             (reference ? "; % change against " + reference->label : "") + ".\n";
  if (o.format == "md") {
    std::string out;
    for (std::size_t i = 0; i < table.size(); ++i) {
      out += "|";
      for (const std::string& f : table[i]) out += " " + f + " |";
      out += "\n";
      if (i == 0) {
        out += "|";
        for (std::size_t k = 0; k < table[0].size(); ++k) out += k == 0 ? " --- |" : " ---: |";
        out += "\n";
      }
    }
    return out + "\n" + legend;
  }
  return format_table(table) + legend;
}

std::string export_points(const std::vector<ResultCell>& cells, const std::vector<std::string>& axes,
                          const std::string& format) {
  if (format != "csv" && format != "jsonl") throw Error("unknown export format '" + format + "' (formats: csv, jsonl)");
  std::string out;
  if (format == "csv") {
    std::vector<std::string> header = {"experiment"};
    header.insert(header.end(), axes.begin(), axes.end());
    for (const char* c : {"stage", "metric", "step", "value", "attempt", "time"}) header.push_back(c);
    for (std::size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + csv_field(header[i]);
    out += "\n";
  }
  for (const ResultCell& c : cells)
    for (const StageRecord& s : c.view.stages) {
      const auto it = c.points.find(s.name);
      if (it == c.points.end()) continue;
      for (const MetricPoint& p : it->second) {
        if (format == "jsonl") {
          out += json{{"experiment", c.view.experiment.name},
                      {"values", c.values},
                      {"stage", s.name},
                      {"metric", p.metric},
                      {"step", p.step},
                      {"value", p.value},
                      {"attempt", p.attempt},
                      {"time", p.time}}
                     .dump() +
                 "\n";
          continue;
        }
        std::vector<std::string> f = {c.view.experiment.name};
        for (const std::string& axis : axes) f.push_back(c.values.contains(axis) ? json_text(c.values[axis]) : "");
        f.insert(f.end(), {s.name, p.metric, std::to_string(p.step), number(p.value, "%.17g"),
                           std::to_string(p.attempt), number(p.time, "%.6f")});
        for (std::size_t i = 0; i < f.size(); ++i) out += (i ? "," : "") + csv_field(f[i]);
        out += "\n";
      }
    }
  return out;
}

}  // namespace ldm::coord
