#include "coordinator/report.h"

#include "shared/core/ids.h"

#include <algorithm>
#include <cstdio>

#include "shared/core/recipes/card.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

std::string printf_string(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::string out;
  for (const std::string& line : split(text, '\n')) out += prefix + line + "\n";
  return out;
}

const RunRecord* current_run(const ExperimentView& v, const StageRecord& stage) {
  for (const RunRecord& r : v.runs)
    if (r.id == stage.current_run) return &r;
  return nullptr;
}

std::string steps(const StageRecord& s) { return std::to_string(s.step) + "/" + std::to_string(s.total_steps); }

// Loss and throughput exist once the run has reported a metric batch.
std::string loss_text(const RunRecord* r) { return r && r->last_seq > 0 ? printf_string("%.4g", r->last_loss) : "-"; }
std::string rate_text(const RunRecord* r) {
  return r && r->samples_per_s > 0 ? printf_string("%.1f", r->samples_per_s) : "-";
}

std::string duration_text(double seconds) {
  if (seconds <= 0) return "-";
  if (seconds < 60) return printf_string("%.1fs", seconds);
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s < 3600) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  return buf;
}

std::string wall_text(const RunRecord* r) {
  if (!r || r->started_at <= 0) return "-";
  return duration_text((r->finished_at > 0 ? r->finished_at : r->started_at) - r->started_at);
}

std::string params_text(std::int64_t n) {
  if (n >= 1000000000) return printf_string("%.2fB", n / 1e9);
  if (n >= 1000000) return printf_string("%.1fM", n / 1e6);
  return printf_string("%.1fK", n / 1e3);
}

}  // namespace

namespace {
// Columns a UTF-8 string takes on a terminal ("±", "✗" and "—" take one): its code points.
std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
}  // namespace

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], display_width(row[c]));
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - display_width(row[c]) + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string format_sweep_status(const SweepView& v, double now) {
  std::string out = "sweep " + v.sweep.name + " over " + join(v.sweep.axes, ", ") + " (" + v.sweep.source + ")\n\n";
  std::vector<std::vector<std::string>> rows = {{"CELL", "VALUES", "STATE", "STAGE", "STEP", "ETA"}};
  std::map<std::string, int> counts;
  for (std::size_t i = 0; i < v.cells.size(); ++i) {
    const ExperimentView& e = v.cells[i];
    ++counts[to_string(e.experiment.state)];
    std::string values;
    const nlohmann::json cell_values =  // a named copy: items() of a temporary would dangle
        i < v.sweep.cells.size() ? v.sweep.cells[i].value("values", nlohmann::json::object())
                                 : nlohmann::json::object();
    for (const auto& [key, value] : cell_values.items())
      values += (values.empty() ? "" : " ") + key.substr(key.rfind('.') + 1) + "=" +
                (value.is_string() ? value.get<std::string>() : value.dump());
    // The stage to show: the first running one, else the first not done, else the last.
    const StageRecord* shown = e.stages.empty() ? nullptr : &e.stages.back();
    for (const StageRecord& s : e.stages)
      if (s.state == RunState::Running) {
        shown = &s;
        break;
      }
    if (shown && shown->state != RunState::Running)
      for (const StageRecord& s : e.stages)
        if (s.state != RunState::Done) {
          shown = &s;
          break;
        }
    std::string eta = "-";
    if (shown && shown->state == RunState::Running)
      for (const RunRecord& r : e.runs)
        if (r.id == shown->current_run && r.started_at > 0 && r.step > r.resume_step) {
          const double per_step = (now - r.started_at) / static_cast<double>(r.step - r.resume_step);
          eta = printf_string("%.0fs",
                              per_step * static_cast<double>(std::max<std::int64_t>(0, shown->total_steps - r.step)));
        }
    rows.push_back({e.experiment.name, values, to_string(e.experiment.state), shown ? shown->name : "-",
                    shown ? steps(*shown) : "-", eta});
  }
  out += format_table(rows) + "\n";
  std::string tally;
  for (const auto& [state, n] : counts) tally += (tally.empty() ? "" : ", ") + std::to_string(n) + " " + state;
  return out + std::to_string(v.cells.size()) + " cells: " + tally + "\n";
}

std::string format_status_table(const std::vector<ExperimentView>& experiments) {
  if (experiments.empty()) return "no experiments (submit one with `ldm-coord submit FILE`)\n";
  std::vector<std::vector<std::string>> rows = {{"EXPERIMENT", "STATE", "STAGE", "STEP", "LOSS", "SAMPLES/S", "ERROR"}};
  for (const ExperimentView& v : experiments) {
    bool first = true;
    for (const StageRecord& s : v.stages) {
      const RunRecord* r = current_run(v, s);
      rows.push_back({first ? v.experiment.name : "", first ? to_string(v.experiment.state) : "",
                      s.name + " (" + to_string(s.state) + ")", steps(s), loss_text(r), rate_text(r),
                      r ? first_line(r->error) : ""});
      first = false;
    }
    if (v.stages.empty())
      rows.push_back(
          {v.experiment.name, to_string(v.experiment.state), "-", "-", "-", "-", first_line(v.experiment.error)});
  }
  return format_table(rows);
}

// "pre@40 (16->32 px, interpolate)" for a run started from a parent's checkpoint, "-" from scratch.
std::string lineage_text(const RunRecord& r) {
  if (r.init.empty()) return "-";
  if (r.init.contains("bundles")) {  // an evaluation stage: its parent's checkpoints
    std::vector<std::string> steps;
    for (const auto& b : r.init["bundles"]) steps.push_back(std::to_string(b.value("step", 0)));
    return r.init.value("from", std::string("?")) + "@" + join(steps, ",");
  }
  const nlohmann::json& t = r.init.value("transfer", nlohmann::json::object());
  std::string out = r.init.value("from", std::string("?")) + "@" + std::to_string(r.init.value("step", 0));
  const auto res = t.value("resolution", nlohmann::json::object());
  if (res.value("from", 0) != res.value("to", 0))
    out += " (" + std::to_string(res.value("from", 0)) + "->" + std::to_string(res.value("to", 0)) + " px, " +
           t.value("pos_embed_resampling", std::string("?")) + ")";
  return out;
}

// The running runs' per-rank system figures, as their latest heartbeat gave them ("" = none).
std::string format_system(const ExperimentView& v) {
  std::vector<std::vector<std::string>> rows = {
      {"RUN", "STEP", "RANK", "STEP S", "DATA WAIT S", "COMM S", "HIDDEN", "PEAK RSS MIB"}};
  for (const RunRecord& r : v.runs) {
    const auto it = v.system.find(r.id);
    if (it == v.system.end()) continue;
    const nlohmann::json& sys = it->second;
    bool first = true;
    for (const nlohmann::json& rank : sys.value("ranks", nlohmann::json::array())) {
      if (!rank.is_object()) continue;
      const double comm = rank.value("comm_s", 0.0), hidden = rank.value("comm_hidden_s", 0.0);
      rows.push_back({first ? r.id : "", first ? std::to_string(sys.value("step", int64_t{0})) : "",
                      std::to_string(rank.value("rank", -1)), printf_string("%.4f", rank.value("step_s", 0.0)),
                      printf_string("%.4f", rank.value("data_wait_s", 0.0)), printf_string("%.4f", comm),
                      comm > 0 ? printf_string("%.0f%%", 100.0 * hidden / comm) : "-",
                      printf_string("%.0f", rank.value("peak_rss_mb", 0.0))});
      first = false;
    }
  }
  if (rows.size() == 1) return "";
  return "\nsystem (per rank, mean per step since the last metric point; HIDDEN: the part of COMM that ran "
         "during backward):\n" +
         format_table(rows);
}

std::string format_experiment_detail(const ExperimentView& v) {
  const ExperimentRecord& e = v.experiment;
  std::string out = "experiment " + e.name + ": " + to_string(e.state) + "\n";
  if (!e.source.empty()) out += "  source:    " + e.source + "\n";
  out += "  spec hash: " + e.spec_hash + "\n";
  if (e.priority != 0) out += "  priority:  " + std::to_string(e.priority) + "\n";
  std::vector<std::vector<std::string>> stages = {{"STAGE", "STATE", "STEP", "ATTEMPTS", "RUN", "FROM", "WAITS FOR"}};
  for (const StageRecord& s : v.stages) {
    const RunRecord* r = current_run(v, s);
    const auto waits = v.waiting.find(s.name);
    stages.push_back({s.name, to_string(s.state), steps(s), std::to_string(s.attempts), s.current_run,
                      r ? lineage_text(*r) : "-", waits == v.waiting.end() ? "-" : waits->second});
  }
  out += "\n" + format_table(stages);
  std::vector<std::vector<std::string>> runs = {
      {"RUN", "STATE", "STEP", "LOSS", "SAMPLES/S", "WALL", "RANKS", "PID", "RUN DIR"}};
  for (const RunRecord& r : v.runs)
    runs.push_back({r.id, to_string(r.state), std::to_string(r.step), loss_text(&r), rate_text(&r), wall_text(&r),
                    std::to_string(r.ranks), r.pid ? std::to_string(r.pid) : "-", r.run_dir});
  out += "\n" + format_table(runs);
  out += format_system(v);
  std::string evaluations;
  for (const StageRecord& s : v.stages) evaluations += format_evaluation(v, s.name);
  if (!evaluations.empty()) out += "\nevaluations:\n" + evaluations;
  for (const RunRecord& r : v.runs)
    if (!r.error.empty()) out += "\nrun " + r.id + " error:\n" + indent(r.error, "  ");
  return out;
}

std::string format_progress_line(const ExperimentView& v) {
  for (const StageRecord& s : v.stages) {
    if (s.state == RunState::Done && &s != &v.stages.back()) continue;
    const RunRecord* r = current_run(v, s);
    if (v.evaluations.count(s.name))
      return v.experiment.name + "/" + s.name + ": " + to_string(s.state) + ", evaluating " +
             (r ? lineage_text(*r) : std::string("its parent's checkpoints"));
    return v.experiment.name + "/" + s.name + ": " + to_string(s.state) + ", step " + steps(s) + ", loss " +
           loss_text(r) + ", " + rate_text(r) + " samples/s";
  }
  return v.experiment.name + ": " + to_string(v.experiment.state);
}

std::string format_summary(const ExperimentView& v) {
  const ExperimentRecord& e = v.experiment;
  std::string out = "experiment " + e.name + ": " + to_string(e.state);
  if (e.finished_at > 0 && e.submitted_at > 0)
    out += " (" + duration_text(e.finished_at - e.submitted_at) + " after submission)";
  out += "\n";
  for (const StageRecord& s : v.stages) {
    const RunRecord* r = current_run(v, s);
    if (v.evaluations.count(s.name))
      out += "  stage " + s.name + ": " + to_string(s.state) + ", evaluation, wall " + wall_text(r) + "\n" +
             indent(format_evaluation(v, s.name), "  ");
    else
      out += "  stage " + s.name + ": " + to_string(s.state) + ", " + steps(s) + " steps, final loss " + loss_text(r) +
             ", " + rate_text(r) + " samples/s, wall " + wall_text(r) + "\n";
    if (!r) continue;
    out += "    run:        " + r->id + " (attempt " + std::to_string(r->attempt) +
           (r->resume_from.empty() ? std::string() : ", resumed from step " + std::to_string(r->resume_step)) + ")\n";
    out += "    run dir:    " + r->run_dir + "\n";
    if (r->init.contains("bundle"))
      out += "    from:       " + lineage_text(*r) + " (" + r->init.value("bundle", "") + ")\n";
    else if (!r->init.empty()) out += "    evaluated:  " + lineage_text(*r) + "\n";
    if (!r->checkpoint.empty()) out += "    checkpoint: " + r->checkpoint + "\n";
    if (!r->error.empty()) out += "    error:\n" + indent(r->error, "      ");
  }
  return out;
}

nlohmann::json presets_json() {
  ModelShape shape;  // as format_presets_table()
  nlohmann::json out = nlohmann::json::array();
  for (const RecipeCard* card : recipe_cards()) {
    shape.learn_sigma = recipe_defaults(card->family).learn_sigma;
    for (const PresetInfo& p : card->presets) {
      nlohmann::json item = {{"family", card->family},
                             {"preset", p.name},
                             {"default", p.name == card->default_preset},
                             {"tasks", card->tasks},
                             {"size", card->size_text(p)},
                             {"parameters", card->param_count(p, shape)},
                             {"gflops", card->gflops(p, shape)},
                             {"learn_sigma", shape.learn_sigma},
                             {"source", p.source}};
      if (p.published_params_m > 0)
        item["published"] = {{"parameters_m", p.published_params_m},
                             {"rounding_m", p.published_rounding_m},
                             {"source", p.published_source}};
      out.push_back(std::move(item));
    }
  }
  return out;
}

std::string format_presets_table() {
  const ModelShape shape;  // presets_json()'s: the DiT paper's ImageNet 256x256, 32x32x4 latents
  std::string out = "Analytic size at latent " + std::to_string(shape.latent_size) + "x" +
                    std::to_string(shape.latent_size) + "x" + std::to_string(shape.in_channels) +
                    " (256x256 images through an f=8 VAE), " + std::to_string(shape.num_classes) +
                    " classes, each family's learned sigma, no controls (class task):\n";
  std::vector<std::vector<std::string>> rows = {
      {"FAMILY", "PRESET", "TASKS", "SIZE", "PARAMS", "GFLOPS", "PUBLISHED", "SOURCE"}};
  for (const nlohmann::json& p : presets_json())  // the same rows as `presets --json`
    rows.push_back({p["family"], p["preset"], join(p["tasks"].get<std::vector<std::string>>(), ","), p["size"],
                    params_text(p["parameters"].get<std::int64_t>()), printf_string("%.2f", p["gflops"].get<double>()),
                    p.contains("published") ? printf_string("%gM", p["published"]["parameters_m"].get<double>()) : "-",
                    p["source"]});
  return out + format_table(rows) +
         "SIZE: d depth, w width, h heads, p patch, dec mDT decoder blocks; UNet: ch base channels, x channel\n"
         "multipliers per level, res ResBlocks per level, attn@ down-sampling factors with attention.\n"
         "PUBLISHED: the figure its paper gives, for the model as published (`ldm-worker describe FAMILY --preset P`\n"
         "names the source; tests/shared/core/recipes/presets_test.cpp reconciles each with the analytic count).\n";
}

namespace {

std::string metric_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

std::string format_evaluation(const ExperimentView& view, const std::string& stage) {
  const auto it = view.evaluations.find(stage);
  if (it == view.evaluations.end() || it->second.empty()) return "";
  std::map<std::int64_t, std::vector<std::string>> by_step;
  for (const MetricPoint& p : it->second) by_step[p.step].push_back(p.metric + " " + metric_text(p.value));
  // Where each result came from: the evaluated checkpoint (the run's lineage) and the samples.
  const RunRecord* run = nullptr;
  for (const StageRecord& s : view.stages)
    if (s.name == stage) run = current_run(view, s);
  std::string out;
  for (const auto& [step, items] : by_step) {
    out += "  " + stage + " @ step " + std::to_string(step) + ": " + join(items, ", ") + "\n";
    if (!run) continue;
    for (const auto& b : run->init.value("bundles", nlohmann::json::array()))
      if (b.value("step", std::int64_t{-1}) == step) out += "    checkpoint " + b.value("bundle", std::string()) + "\n";
    out += "    samples    " + run->run_dir + "/" + step_dir_name(step) + "/samples\n";
  }
  return out;
}

std::string format_final_metrics(const ExperimentView& view) {
  std::vector<std::string> metrics = {"loss"};
  std::map<std::string, std::map<std::string, std::string>> cells;  // stage -> metric -> value
  for (const StageRecord& s : view.stages) {
    if (const RunRecord* r = current_run(view, s); r && r->last_loss != 0) cells[s.name]["loss"] = loss_text(r);
    const auto it = view.evaluations.find(s.name);
    if (it == view.evaluations.end()) continue;
    std::map<std::string, std::int64_t> last_step;
    for (const MetricPoint& p : it->second) {
      if (std::find(metrics.begin(), metrics.end(), p.metric) == metrics.end()) metrics.push_back(p.metric);
      if (!last_step.count(p.metric) || p.step >= last_step[p.metric]) {
        last_step[p.metric] = p.step;
        cells[s.name][p.metric] = metric_text(p.value) + " @" + std::to_string(p.step);
      }
    }
  }
  std::vector<std::vector<std::string>> rows = {{"STAGE"}};
  for (const std::string& m : metrics) rows[0].push_back(m == "loss" ? "FINAL LOSS" : m);
  for (const StageRecord& s : view.stages) {
    rows.push_back({s.name});
    for (const std::string& m : metrics) rows.back().push_back(cells[s.name].count(m) ? cells[s.name][m] : "-");
  }
  return format_table(rows);
}

}  // namespace ldm::coord
