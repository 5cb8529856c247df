#include "coordinator/api_json.h"

#include "shared/core/error.h"

namespace ldm::coord {
namespace {

using nlohmann::json;

// Each stage with the lineage of its latest run ({} = from scratch), so one read shows the DAG.
json stages_json(const ExperimentView& v) {
  json out = json::array();
  for (const StageRecord& s : v.stages) {
    json j = s;
    j["lineage"] = json::object();
    for (const RunRecord& r : v.runs)
      if (r.id == s.current_run) j["lineage"] = r.init;
    if (auto it = v.evaluations.find(s.name); it != v.evaluations.end()) j["results"] = it->second;
    if (auto it = v.waiting.find(s.name); it != v.waiting.end()) j["waiting"] = it->second;
    out.push_back(std::move(j));
  }
  return out;
}

json runs_json(const ExperimentView& v) {
  json out = json::array();
  for (const RunRecord& r : v.runs) {
    json j = r;
    j.erase("token");  // the secret stays between the coordinator and the run's worker
    if (auto it = v.system.find(r.id); it != v.system.end()) j["system"] = it->second;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

json experiment_to_api_json(const ExperimentView& v) {
  return {{"experiment", v.experiment}, {"stages", stages_json(v)}, {"runs", runs_json(v)}};
}

json experiment_list_item_json(const ExperimentView& v) {
  json j = v.experiment;
  j.erase("spec");
  j["stages"] = stages_json(v);
  j["runs"] = runs_json(v);
  return j;
}

ExperimentView experiment_from_api_json(const json& j) {
  if (!j.is_object()) throw Error("experiment JSON is not an object");
  try {
    ExperimentView v;
    const json& record = j.contains("experiment") ? j.at("experiment") : j;
    v.experiment = record.get<ExperimentRecord>();
    for (const auto& s : j.value("stages", json::array())) {
      v.stages.push_back(s.get<StageRecord>());
      if (s.contains("results")) v.evaluations[v.stages.back().name] = s["results"].get<std::vector<MetricPoint>>();
      if (s.contains("waiting") && s["waiting"].is_string()) v.waiting[v.stages.back().name] = s["waiting"];
    }
    for (const auto& r : j.value("runs", json::array())) {
      v.runs.push_back(r.get<RunRecord>());
      if (r.contains("system") && r["system"].is_object()) v.system[v.runs.back().id] = r["system"];
    }
    return v;
  } catch (const json::exception& ex) {
    throw Error(std::string("unexpected experiment JSON from the coordinator: ") + ex.what());
  }
}

json sweep_to_api_json(const SweepView& v) {
  json cells = json::array();
  for (std::size_t i = 0; i < v.cells.size(); ++i) {
    json item = experiment_list_item_json(v.cells[i]);
    item["values"] = i < v.sweep.cells.size() ? v.sweep.cells[i].value("values", json::object()) : json::object();
    cells.push_back(std::move(item));
  }
  return {{"sweep", v.sweep}, {"cells", std::move(cells)}};
}

SweepView sweep_from_api_json(const json& j) {
  if (!j.is_object() || !j.contains("sweep")) throw Error("sweep JSON from the coordinator has no 'sweep'");
  SweepView v;
  try {
    v.sweep = j.at("sweep").get<SweepRecord>();
  } catch (const json::exception& ex) {
    throw Error(std::string("unexpected sweep JSON from the coordinator: ") + ex.what());
  }
  for (const auto& cell : j.value("cells", json::array())) v.cells.push_back(experiment_from_api_json(cell));
  return v;
}

}  // namespace ldm::coord
