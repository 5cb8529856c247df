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

std::string number(double v, const char* format = "%.4g") { return format_number(v, format); }

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

// CLIP score, and the adherence metrics (control_gain too: the size condition's effect, 0 when it
// does nothing) and classifier accuracies of evaluation stages.
bool higher_is_better(const std::string& metric) {
  for (const char* word : {"clip", "score", "adherence", "accuracy", "gain"})
    if (metric.find(word) != std::string::npos) return true;
  return false;
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

std::string format_number(double v, const char* format) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string arm_label(const ResultCell& cell) {
  std::string out;
  for (const auto& [key, value] : cell.values.items())
    if (key != "seed") out += (out.empty() ? "" : " ") + key.substr(key.rfind('.') + 1) + "=" + json_text(value);
  if (out.empty()) return cell.values.empty() ? cell.view.experiment.name : "all";  // a seeds-only sweep: one arm
  return out;
}

std::string cell_key_text(const ResultCell& cell, const std::string& key) {
  if (key == "experiment") return cell.view.experiment.name;
  if (key == "arm") return arm_label(cell);
  if (cell.values.contains(key)) return json_text(cell.values[key]);
  if (cell.view.experiment.spec.is_object())
    if (const json* v = spec_path(cell.view.experiment.spec, key)) return json_text(*v);
  return "";
}

namespace {

// A comparison computed once, rendered in any format.
struct Comparison {
  std::string metric, rows_key;
  bool by_stage = true, higher = false;
  std::vector<std::string> columns;
  std::vector<Row> rows;
  std::vector<std::optional<std::size_t>> best;  // per column: the best row
  std::optional<std::size_t> reference;          // --relative-to's row

  // % change of a row's column against the reference row's.
  std::optional<double> relative(std::size_t r, std::size_t k) const {
    if (!reference || r == *reference || !rows[r].columns[k].usable() || !rows[*reference].columns[k].usable())
      return std::nullopt;
    const double ref = rows[*reference].columns[k].mean();
    if (ref == 0) return std::nullopt;
    return (rows[r].columns[k].mean() - ref) / std::fabs(ref) * 100.0;
  }
  std::string cell_text(std::size_t r, std::size_t k) const {
    const Aggregate& a = rows[r].columns[k];
    if (a.diverged) return "✗";
    if (a.values.empty()) return "—";
    std::string s = number(a.mean());
    if (a.values.size() > 1) s += " ± " + number(a.std(), "%.2g");
    if (const auto pct = relative(r, k)) s += " (" + number(*pct, "%+.1f") + "%)";
    return s;
  }
};

std::string default_metric(const std::vector<ResultCell>& cells) {
  for (const ResultCell& c : cells)
    for (const auto& [stage, points] : c.points)
      for (const MetricPoint& p : points)
        if (p.metric == "fid") return "fid";
  return "loss";
}

// The first swept key that is not the seed (the values' own order is alphabetical, not the sweep's).
std::string default_rows_key(const ResultCell& first, const std::vector<std::string>& axes) {
  for (const std::string& axis : axes)
    if (axis != "seed") return axis;
  for (auto it = first.values.begin(); it != first.values.end(); ++it)
    if (it.key() != "seed") return it.key();
  return "experiment";
}

// A --rows / --cols key no experiment has would group everything under "": refuse it.
void check_key(const std::vector<ResultCell>& cells, const std::string& key, const char* option) {
  for (const ResultCell& c : cells)
    if (!cell_key_text(c, key).empty()) return;
  throw Error(std::string(option) + " " + key +
              ": no experiment has this key (use a swept key, a spec key such as recipe.family, or experiment)");
}

// One experiment's contribution to its row's columns.
void add_to_row(const Comparison& cmp, const ResultCell& c, const CompareOptions& o, Row& row) {
  const bool diverged = c.view.experiment.state == RunState::Diverged;
  for (std::size_t k = 0; k < cmp.columns.size(); ++k) {
    Aggregate& a = row.columns[k];
    if (cmp.by_stage) {
      const bool has_stage = std::any_of(c.view.stages.begin(), c.view.stages.end(),
                                         [&](const StageRecord& s) { return s.name == cmp.columns[k]; });
      if (!has_stage) continue;
      a.present = true;
      const auto v = final_value(c, cmp.columns[k], cmp.metric);
      if (stage_diverged(c, cmp.columns[k]) || (!v && diverged)) a.diverged = true;
      else if (v) a.values.push_back(*v);
    } else if (cell_key_text(c, o.cols) == cmp.columns[k]) {
      a.present = true;
      std::optional<double> v;  // at the last stage that has the metric
      for (const StageRecord& s : c.view.stages)
        if (const auto x = final_value(c, s.name, cmp.metric)) v = x;
      if (diverged) a.diverged = true;
      else if (v) a.values.push_back(*v);
    }
  }
  if (!row.params) row.params = any_value(c, "params");
  if (!row.gflops) row.gflops = any_value(c, "gflops");
  row.images += images_seen(c) / static_cast<double>(row.cells.size());
  row.rank_seconds += rank_seconds(c, o.now) / static_cast<double>(row.cells.size());
}

Comparison compare(const std::vector<ResultCell>& cells, const CompareOptions& o) {
  if (cells.empty()) throw Error("nothing to compare");
  Comparison cmp;
  cmp.metric = o.metric.empty() ? default_metric(cells) : o.metric;
  cmp.rows_key = o.rows.empty() ? default_rows_key(cells.front(), o.axes) : o.rows;
  cmp.by_stage = o.cols.empty() || o.cols == "stage";
  check_key(cells, cmp.rows_key, "--rows");
  if (!cmp.by_stage) check_key(cells, o.cols, "--cols");
  cmp.higher = higher_is_better(cmp.metric);
  // Columns: the stages (in file order) that have the metric somewhere, or the values of a key.
  const auto add_column = [&](const std::string& c) {
    if (std::find(cmp.columns.begin(), cmp.columns.end(), c) == cmp.columns.end()) cmp.columns.push_back(c);
  };
  for (const ResultCell& c : cells) {
    if (!cmp.by_stage) add_column(cell_key_text(c, o.cols));
    else
      for (const StageRecord& s : c.view.stages)
        if (final_value(c, s.name, cmp.metric)) add_column(s.name);
  }
  if (cmp.by_stage && cmp.columns.empty())
    throw Error("no stage of these experiments has the metric '" + cmp.metric + "' (try --metric loss)");
  for (const ResultCell& c : cells) {  // rows, in order of first appearance
    const std::string label = cell_key_text(c, cmp.rows_key);
    auto it = std::find_if(cmp.rows.begin(), cmp.rows.end(), [&](const Row& r) { return r.label == label; });
    if (it == cmp.rows.end())
      it = cmp.rows.insert(cmp.rows.end(),
                           {label, {}, std::vector<Aggregate>(cmp.columns.size()), std::nullopt, std::nullopt, 0, 0});
    it->cells.push_back(&c);
  }
  for (Row& row : cmp.rows)
    for (const ResultCell* c : row.cells) add_to_row(cmp, *c, o, row);
  cmp.best.resize(cmp.columns.size());
  for (std::size_t k = 0; k < cmp.columns.size(); ++k)
    for (std::size_t r = 0; r < cmp.rows.size(); ++r) {
      if (!cmp.rows[r].columns[k].usable()) continue;
      const double m = cmp.rows[r].columns[k].mean(), b = cmp.best[k] ? cmp.rows[*cmp.best[k]].columns[k].mean() : 0;
      if (!cmp.best[k] || (cmp.higher ? m > b : m < b)) cmp.best[k] = r;
    }
  if (!o.relative_to.empty()) {
    std::vector<std::string> labels;
    for (std::size_t r = 0; r < cmp.rows.size(); ++r) {
      labels.push_back(cmp.rows[r].label);
      if (cmp.rows[r].label == o.relative_to) cmp.reference = r;
    }
    if (!cmp.reference)
      throw Error("--relative-to: no row '" + o.relative_to + "' (rows by " + cmp.rows_key + ": " + join(labels, ", ") +
                  ")" + did_you_mean(o.relative_to, labels));
  }
  return cmp;
}

std::string render_json(const Comparison& cmp) {
  json out = {{"metric", cmp.metric},
              {"rows_key", cmp.rows_key},
              {"columns", cmp.columns},
              {"higher_is_better", cmp.higher},
              {"rows", json::array()}};
  if (cmp.reference) out["relative_to"] = cmp.rows[*cmp.reference].label;
  for (std::size_t r = 0; r < cmp.rows.size(); ++r) {
    const Row& row = cmp.rows[r];
    json cols = json::object();
    for (std::size_t k = 0; k < cmp.columns.size(); ++k) {
      const Aggregate& a = row.columns[k];
      if (!a.present) {
        cols[cmp.columns[k]] = nullptr;
        continue;
      }
      json c = {{"n", a.values.size()}, {"diverged", a.diverged}, {"best", cmp.best[k] == r}};
      if (!a.values.empty()) {
        c["mean"] = a.mean();
        c["std"] = a.std();
        c["values"] = a.values;
      }
      if (const auto pct = cmp.relative(r, k)) c["relative_pct"] = *pct;
      cols[cmp.columns[k]] = std::move(c);
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

std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
  return out + "\n";
}

std::string render_csv(const Comparison& cmp) {
  std::vector<std::string> header = {cmp.rows_key};
  for (const std::string& c : cmp.columns)
    for (const char* part : {"", " std", " n"}) header.push_back(c + part);
  if (cmp.reference)
    for (const std::string& c : cmp.columns) header.push_back(c + " %");
  for (const char* c : {"params", "gflops", "images", "rank_seconds"}) header.push_back(c);
  std::string out = csv_line(header);
  for (std::size_t r = 0; r < cmp.rows.size(); ++r) {
    const Row& row = cmp.rows[r];
    std::vector<std::string> f = {row.label};
    for (const Aggregate& a : row.columns) {
      f.push_back(a.diverged ? "x" : a.values.empty() ? "" : number(a.mean(), "%.9g"));
      f.push_back(a.values.size() > 1 ? number(a.std(), "%.9g") : "");
      f.push_back(std::to_string(a.values.size()));
    }
    if (cmp.reference)
      for (std::size_t k = 0; k < cmp.columns.size(); ++k) {
        const auto pct = cmp.relative(r, k);
        f.push_back(pct ? number(*pct, "%.6g") : "");
      }
    f.push_back(row.params ? number(*row.params, "%.0f") : "");
    f.push_back(row.gflops ? number(*row.gflops, "%.6g") : "");
    f.push_back(number(row.images, "%.0f"));
    f.push_back(number(row.rank_seconds, "%.1f"));
    out += csv_line(f);
  }
  return out;
}

// The aligned text table, or (md) a Markdown table; then a legend line.
std::string render_text(const Comparison& cmp, bool md) {
  std::vector<std::vector<std::string>> table = {{cmp.rows_key}};
  for (const std::string& c : cmp.columns) table[0].push_back(c);
  for (const char* c : {"PARAMS", "GFLOPS", "IMAGES", "RANK-S"}) table[0].push_back(c);
  std::size_t grouped = 0;
  for (std::size_t r = 0; r < cmp.rows.size(); ++r) {
    const Row& row = cmp.rows[r];
    grouped = std::max(grouped, row.cells.size());
    std::vector<std::string> line = {row.label};
    for (std::size_t k = 0; k < cmp.columns.size(); ++k) {
      std::string t = cmp.cell_text(r, k);
      if (cmp.best[k] == r && cmp.rows.size() > 1) t = md ? "**" + t + "**" : t + " *";
      line.push_back(t);
    }
    line.push_back(row.params ? si(*row.params) : "—");
    line.push_back(row.gflops ? number(*row.gflops, "%.3g") : "—");
    line.push_back(si(row.images));
    line.push_back(number(row.rank_seconds, "%.0f"));
    table.push_back(std::move(line));
  }
  const std::string legend =
      cmp.metric + " at the end of each " + (cmp.by_stage ? std::string("stage") : "experiment") +
      (grouped > 1 ? " (mean ± std over the experiments of a row)" : "") + "; " + (cmp.higher ? "higher" : "lower") +
      " is better" + (cmp.rows.size() > 1 ? ", best per column marked" : "") + "; ✗ diverged, — not applicable" +
      (cmp.reference ? "; % change against " + cmp.rows[*cmp.reference].label : "") + ".\n";
  if (!md) return format_table(table) + legend;
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

}  // namespace

std::string format_comparison(const std::vector<ResultCell>& cells, const CompareOptions& o) {
  const std::vector<std::string> formats = {"table", "md", "csv", "json"};
  if (std::find(formats.begin(), formats.end(), o.format) == formats.end())
    throw Error("unknown format '" + o.format + "' (formats: " + join(formats, ", ") + ")" +
                did_you_mean(o.format, formats));
  const Comparison cmp = compare(cells, o);
  if (o.format == "json") return render_json(cmp);
  if (o.format == "csv") return render_csv(cmp);
  return render_text(cmp, o.format == "md");
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
        out += csv_line(f);
      }
    }
  return out;
}

}  // namespace ldm::coord
