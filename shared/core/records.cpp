#include "shared/core/records.h"

#include "shared/core/error.h"

namespace ldm {

namespace {
struct StateName {
  RunState state;
  const char* name;
};
const StateName kStates[] = {
    {RunState::Pending, "pending"}, {RunState::Running, "running"},     {RunState::Preempted, "preempted"},
    {RunState::Lost, "lost"},       {RunState::Cancelled, "cancelled"}, {RunState::Diverged, "diverged"},
    {RunState::Done, "done"},       {RunState::Failed, "failed"},
};

template <class T>
void get_opt(const nlohmann::json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) out = it->get<T>();
}
}  // namespace

const char* to_string(RunState s) {
  for (const auto& e : kStates)
    if (e.state == s) return e.name;
  return "unknown";
}

RunState run_state_from_string(const std::string& s) {
  for (const auto& e : kStates)
    if (s == e.name) return e.state;
  throw Error("unknown run state '" + s + "'");
}

bool is_terminal(RunState s) {
  return s == RunState::Cancelled || s == RunState::Diverged || s == RunState::Done || s == RunState::Failed;
}

const std::vector<RunState>& all_run_states() {
  static const std::vector<RunState> v = {RunState::Pending, RunState::Running,   RunState::Preempted,
                                          RunState::Lost,    RunState::Cancelled, RunState::Diverged,
                                          RunState::Done,    RunState::Failed};
  return v;
}

void to_json(nlohmann::json& j, const ExperimentRecord& r) {
  j = {{"name", r.name},
       {"source", r.source},
       {"spec", r.spec},
       {"spec_hash", r.spec_hash},
       {"state", to_string(r.state)},
       {"submitted_at", r.submitted_at},
       {"finished_at", r.finished_at},
       {"error", r.error},
       {"priority", r.priority}};
}
void from_json(const nlohmann::json& j, ExperimentRecord& r) {
  get_opt(j, "name", r.name);
  get_opt(j, "source", r.source);
  if (j.contains("spec")) r.spec = j.at("spec");
  get_opt(j, "spec_hash", r.spec_hash);
  r.state = run_state_from_string(j.value("state", "pending"));
  get_opt(j, "submitted_at", r.submitted_at);
  get_opt(j, "finished_at", r.finished_at);
  get_opt(j, "error", r.error);
  get_opt(j, "priority", r.priority);
}

void to_json(nlohmann::json& j, const StageRecord& r) {
  j = {{"experiment", r.experiment},
       {"name", r.name},
       {"index", r.index},
       {"state", to_string(r.state)},
       {"attempts", r.attempts},
       {"current_run", r.current_run},
       {"step", r.step},
       {"total_steps", r.total_steps},
       {"ranks", r.ranks}};
}
void from_json(const nlohmann::json& j, StageRecord& r) {
  get_opt(j, "experiment", r.experiment);
  get_opt(j, "name", r.name);
  get_opt(j, "index", r.index);
  r.state = run_state_from_string(j.value("state", "pending"));
  get_opt(j, "attempts", r.attempts);
  get_opt(j, "current_run", r.current_run);
  get_opt(j, "step", r.step);
  get_opt(j, "total_steps", r.total_steps);
  get_opt(j, "ranks", r.ranks);
}

void to_json(nlohmann::json& j, const RunRecord& r) {
  j = {{"id", r.id},
       {"experiment", r.experiment},
       {"stage", r.stage},
       {"attempt", r.attempt},
       {"state", to_string(r.state)},
       {"token", r.token},
       {"run_dir", r.run_dir},
       {"ranks", r.ranks},
       {"pid", r.pid},
       {"job", r.job},
       {"coord", r.coord},
       {"report", r.report},
       {"cancel_requested_at", r.cancel_requested_at},
       {"step", r.step},
       {"last_loss", r.last_loss},
       {"samples_per_s", r.samples_per_s},
       {"last_seq", r.last_seq},
       {"started_at", r.started_at},
       {"finished_at", r.finished_at},
       {"last_heartbeat", r.last_heartbeat},
       {"error", r.error},
       {"checkpoint", r.checkpoint},
       {"resume_from", r.resume_from},
       {"resume_step", r.resume_step},
       {"init", r.init}};
}
void from_json(const nlohmann::json& j, RunRecord& r) {
  get_opt(j, "id", r.id);
  get_opt(j, "experiment", r.experiment);
  get_opt(j, "stage", r.stage);
  get_opt(j, "attempt", r.attempt);
  r.state = run_state_from_string(j.value("state", "pending"));
  get_opt(j, "token", r.token);
  get_opt(j, "run_dir", r.run_dir);
  get_opt(j, "ranks", r.ranks);
  get_opt(j, "pid", r.pid);
  get_opt(j, "job", r.job);
  get_opt(j, "coord", r.coord);
  get_opt(j, "report", r.report);
  get_opt(j, "cancel_requested_at", r.cancel_requested_at);
  get_opt(j, "step", r.step);
  get_opt(j, "last_loss", r.last_loss);
  get_opt(j, "samples_per_s", r.samples_per_s);
  get_opt(j, "last_seq", r.last_seq);
  get_opt(j, "started_at", r.started_at);
  get_opt(j, "finished_at", r.finished_at);
  get_opt(j, "last_heartbeat", r.last_heartbeat);
  get_opt(j, "error", r.error);
  get_opt(j, "checkpoint", r.checkpoint);
  get_opt(j, "resume_from", r.resume_from);
  get_opt(j, "resume_step", r.resume_step);
  if (j.contains("init") && j["init"].is_object()) r.init = j["init"];
}

void to_json(nlohmann::json& j, const SweepRecord& r) {
  j = {{"name", r.name}, {"source", r.source}, {"axes", r.axes}, {"cells", r.cells}, {"submitted_at", r.submitted_at}};
}
void from_json(const nlohmann::json& j, SweepRecord& r) {
  get_opt(j, "name", r.name);
  get_opt(j, "source", r.source);
  if (j.contains("axes") && j["axes"].is_array()) r.axes = j["axes"].get<std::vector<std::string>>();
  if (j.contains("cells") && j["cells"].is_array()) r.cells = j["cells"];
  get_opt(j, "submitted_at", r.submitted_at);
}

void to_json(nlohmann::json& j, const MetricPoint& p) {
  j = {{"metric", p.metric}, {"step", p.step}, {"value", p.value}, {"attempt", p.attempt}, {"time", p.time}};
}
void from_json(const nlohmann::json& j, MetricPoint& p) {
  p.metric = j.at("metric").get<std::string>();
  p.step = j.at("step").get<std::int64_t>();
  p.value = j.at("value").get<double>();
  get_opt(j, "attempt", p.attempt);
  get_opt(j, "time", p.time);
}

}  // namespace ldm
