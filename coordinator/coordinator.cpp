#include "coordinator/coordinator.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <utility>

#include "coordinator/lineage.h"
#include "shared/core/ids.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

using protocol::Message;
using protocol::Type;

constexpr std::size_t kTokenBytes = 16;

bool is_active(RunState s) { return s == RunState::Pending || s == RunState::Running; }

// Compares secrets in time independent of where they differ.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

Message error_reply(const std::string& run, const std::string& message) {
  return protocol::make(Type::Error, run, "", {{"message", message}});
}

// A training stage's steps; an evaluation stage's last evaluated step (its metric points' steps).
std::int64_t total_steps(const ExperimentSpec& spec, const StageSpec& stage) {
  if (stage.kind != "eval") return stage.steps;
  if (!stage.eval.at_steps.empty()) return *std::max_element(stage.eval.at_steps.begin(), stage.eval.at_steps.end());
  const StageSpec* parent = find_stage(spec, stage.after);
  return parent ? parent->steps : 0;
}

// The world size a stage's attempts run at: what `resume --ranks` gave it, else the spec's.
int stage_world(const StageSpec& spec, const StageRecord& stage) {
  return stage.ranks > 0 ? stage.ranks : static_cast<int>(spec.ranks);
}

// Slots a stage takes: ranks x threads_per_rank.
int slots_needed(const ExperimentSpec& spec, const StageRecord& stage) {
  const StageSpec& stage_spec = spec.stages.at(static_cast<std::size_t>(stage.index));
  return static_cast<int>(stage_world(stage_spec, stage) * stage_spec.threads_per_rank);
}

RunOutcome cancelled_outcome() { return {RunState::Cancelled, "cancelled by request", false}; }

WorkerReportInfo report_of(const RunRecord& run) {
  WorkerReportInfo info;
  info.kind = worker_report_from_string(run.report);
  info.step = run.step;
  if (info.kind == WorkerReport::Failed || info.kind == WorkerReport::Diverged) info.message = run.error;
  return info;
}

Message ack(const RunRecord& run, std::int64_t seq) {
  return protocol::make(Type::Ack, run.id, run.token, {{"seq", seq}});
}

// The ack of an event (checkpoint, done, failed, preempted) names it, so that a worker waiting for
// one event's ack never takes a late ack of an earlier, re-sent event for it.
Message event_ack(const RunRecord& run, Type event) {
  return protocol::make(Type::Ack, run.id, run.token, {{"seq", 0}, {"event", protocol::to_string(event)}});
}

// Reads an optional number from a free-form object (the worker's done summary).
void read_number(const nlohmann::json& obj, const char* key, double& out) {
  auto it = obj.find(key);
  if (it != obj.end() && it->is_number()) out = it->get<double>();
}

}  // namespace

Coordinator::Coordinator(ExperimentStore& store, Executor& executor, CoordinatorOptions options)
    : store_(store), executor_(executor), options_(std::move(options)) {
  std::lock_guard<std::mutex> lock(mu_);
  recover();
}

Coordinator::~Coordinator() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [pid, run] : jobs_)
    log::warn("run " + run + ": leaving mpirun (pid " + std::to_string(pid) +
              ") running; a coordinator restarted on this state directory re-attaches it");
}

double Coordinator::now() const { return options_.clock ? options_.clock() : log::now_seconds(); }

void Coordinator::recover() {
  for (RunRecord run : store_.list_runs()) {
    if (!is_active(run.state)) continue;
    if (starts_with(run.job, "pull:")) {  // its worker reconnects on its own, or falls silent
      pulled_.insert(run.id);
      last_seen_[run.id] = liveness_now();
      unconfirmed_.insert(run.id);
      log::info("run " + run.id + ": trained by a pull worker (" + run.job.substr(5) +
                "); its next message confirms it, or it is lost after the heartbeat timeout");
      continue;
    }
    if (reattach(run)) continue;
    if (run.pid > 0 && run.job.empty()) {
      // No identity recorded (a run from before schema 4): its job may still run, and a new attempt
      // beside it would share the run directory. Lost, not retried, as before: resume it by hand.
      log::warn("run " + run.id + ": was " + to_string(run.state) +
                " when the coordinator stopped; its job (mpirun pid " + std::to_string(run.pid) +
                ") cannot be re-attached (no identity recorded); marking it lost");
      finish_run(std::move(run), RunState::Lost,
                 "coordinator restarted while the run was active, and its job could not be re-attached; "
                 "`ldm-coord resume` continues it once that job has stopped");
      continue;
    }
    // Gone: it ends as its worker reported before the restart, or LOST (retried) when it did not.
    RunOutcome outcome = decide_run_outcome(report_of(run), ProcessExit{run.pid, -1, 0, false}, run.run_dir);
    if (run.cancel_requested_at > 0 && outcome.state != RunState::Done) outcome = cancelled_outcome();
    log::warn("run " + run.id + ": was " + to_string(run.state) + " when the coordinator stopped and its job" +
              (run.pid ? " (mpirun pid " + std::to_string(run.pid) + ")" : "") + " is gone; it ends " +
              to_string(outcome.state) + (run.report.empty() ? "" : " (its worker reported " + run.report + ")"));
    finish_run(std::move(run), outcome.state, outcome.error, outcome.retryable);
  }
  for (const ExperimentRecord& e : store_.list_experiments())
    if (is_active(e.state)) to_schedule_.insert(e.name);
}

bool Coordinator::reattach(const RunRecord& run) {
  if (run.pid <= 0 || run.job.empty() || !executor_.adopt(run.pid, run.job)) return false;
  const auto e = store_.get_experiment(run.experiment);
  const auto stage = store_.get_stage(run.experiment, run.stage);
  jobs_[run.pid] = run.id;
  if (e && stage) running_slots_[run.id] = slots_needed(spec_from_json(e->spec), *stage);
  last_seen_[run.id] = liveness_now();
  unconfirmed_.insert(run.id);
  if (run.cancel_requested_at > 0)  // its cancellation goes on: SIGKILL when the grace period ends
    cancelling_[run.id] = {run.pid, run.cancel_requested_at + options_.cancel_grace_s, false};
  log::info("run " + run.id + ": re-attached its job (mpirun pid " + std::to_string(run.pid) +
            "), still running; its worker's next message confirms it");
  if (!run.coord.empty() && run.coord != options_.zmq_endpoint)
    log::warn("run " + run.id + ": its worker reports to " + run.coord + " but this coordinator listens on " +
              options_.zmq_endpoint + "; unless it is reached, the job is killed after " +
              std::to_string(static_cast<int>(options_.heartbeat_timeout_s)) + " s of silence and retried");
  return true;
}

double Coordinator::liveness_now() const {
  if (options_.clock) return options_.clock();  // tests: one fake clock
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Coordinator::check_liveness(double t) {
  // A coordinator that was itself stopped (suspended, SIGSTOPped, starved) for a good part of the
  // timeout has not been listening: nothing it did not receive counts as silence.
  if (last_liveness_check_ > 0 && t - last_liveness_check_ > options_.heartbeat_timeout_s / 2)
    for (auto& [id, seen] : last_seen_) seen = std::max(seen, t);
  last_liveness_check_ = t;
  for (const auto& [pid, id] : jobs_) {
    if (silent_.count(id) || cancelling_.count(id)) continue;
    // A worker that reported completion may be quiet in MPI_Finalize: its job is not silent.
    if (const auto run = store_.get_run(id); run && run->report == "done") continue;
    const auto seen = last_seen_.find(id);
    if (seen == last_seen_.end()) {
      last_seen_[id] = t;
      continue;
    }
    if (t - seen->second < options_.heartbeat_timeout_s) continue;
    log::error("run " + id + ": no message from its worker for " + std::to_string(static_cast<int>(t - seen->second)) +
               " s (heartbeat timeout " + std::to_string(static_cast<int>(options_.heartbeat_timeout_s)) +
               " s); SIGKILL to mpirun (pid " + std::to_string(pid) + ")");
    executor_.signal(pid, SIGKILL);
    silent_.insert(id);
  }
  // A pull worker's run has no job to kill: silence ends it (lost, retried), and its worker, if it
  // is only slow, is refused from then on.
  for (const std::string& id : std::vector<std::string>(pulled_.begin(), pulled_.end())) {
    const auto seen = last_seen_.find(id);
    if (seen == last_seen_.end() || t - seen->second < options_.heartbeat_timeout_s) continue;
    auto run = store_.get_run(id);
    pulled_.erase(id);
    if (!run || !is_active(run->state)) continue;
    const std::string error = "its pull worker (" + run->job.substr(5) + ") sent nothing for " +
                              std::to_string(static_cast<int>(t - seen->second)) + " s (heartbeat timeout)";
    log::error("run " + id + ": " + error);
    finish_run(std::move(*run), RunState::Lost, error, true);
  }
}

// ---- submissions and scheduling ----------------------------------------------------------------

SubmitResult Coordinator::submit(const Submission& submission) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string name = submission.name.empty() ? submission.spec.value("name", std::string()) : submission.name;
  if (store_.get_sweep(name)) throw NameTakenError("a sweep is named '" + name + "' (submit with --name NEW)");
  const ExperimentStore::Submission s = prepare(submission, now());
  store_.put_submission(s.experiment, s.stages);
  log::info("experiment " + s.experiment.name + ": submitted from " +
            (submission.source.empty() ? std::string("(no file)") : submission.source) + " with " +
            std::to_string(s.stages.size()) + " stage(s)");
  return {s.experiment.name, launch_ready_stages(s.experiment.name)};
}

SweepSubmitResult Coordinator::submit_sweep(const SweepSubmission& submission) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!valid_name(submission.name))
    throw SpecError("sweep.name", "'" + submission.name + "' must be 1-64 characters of [A-Za-z0-9_-]");
  if (store_.get_sweep(submission.name) || store_.get_experiment(submission.name))
    throw NameTakenError("a sweep or experiment named '" + submission.name + "' exists (submit with --name NEW)");
  if (submission.cells.empty()) throw SpecError("sweep", "a sweep needs at least one cell");
  SweepRecord sweep;
  sweep.name = submission.name;
  sweep.source = submission.source;
  sweep.axes = submission.axes;
  sweep.submitted_at = now();
  std::vector<ExperimentStore::Submission> cells;
  std::set<std::string> names;
  for (std::size_t i = 0; i < submission.cells.size(); ++i) {
    const SweepSubmission::Cell& c = submission.cells[i];
    if (!names.insert(c.name).second) throw SpecError("sweep", "two cells are named '" + c.name + "'");
    if (store_.get_sweep(c.name))
      throw NameTakenError("sweep cell " + c.name + ": a sweep has that name (submit with --name NEW)");
    Submission one{submission.source, c.spec, c.name, submission.priority};
    try {
      // Cells queue in sweep order: each is submitted a microsecond after the one before.
      cells.push_back(prepare(one, sweep.submitted_at + 1e-6 * static_cast<double>(i)));
    } catch (const SpecError& e) {
      throw SpecError(e.key_path(), "sweep cell " + c.name + ": " + e.detail(), e.location());
    }
    sweep.cells.push_back({{"experiment", c.name}, {"values", c.values}});
  }
  store_.put_sweep(sweep, cells);
  log::info("sweep " + sweep.name + ": submitted from " + sweep.source + " with " + std::to_string(cells.size()) +
            " cell(s) over " + join(sweep.axes, ", "));
  SweepSubmitResult result{sweep.name, {}, {}};
  for (const auto& cell : cells) {
    result.experiments.push_back(cell.experiment.name);
    for (std::string& run : launch_ready_stages(cell.experiment.name)) result.runs.push_back(std::move(run));
  }
  return result;
}

ExperimentStore::Submission Coordinator::prepare(const Submission& submission, double submitted_at) const {
  ExperimentSpec spec = spec_from_json(submission.spec);
  if (!submission.name.empty()) {
    if (!valid_name(submission.name))
      throw SpecError("name", "'" + submission.name + "' must be 1-64 characters of [A-Za-z0-9_-]");
    spec.name = submission.name;
  }
  if (store_.get_experiment(spec.name))
    throw NameTakenError("experiment '" + spec.name + "' already exists (submit with --name NEW)");
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const StageSpec& st = spec.stages[i];
    if (parse_init_source(stage_parent(st)).kind == InitSource::Kind::Stage) continue;  // checked by validate()
    const ParentStatus parent = parent_status(store_, spec.name, st, submission.source);
    if (parent.state == ParentState::Failed) throw SpecError("stage." + std::to_string(i) + ".init_from", parent.why);
  }
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {  // an evaluation stage's files exist before training
    if (spec.stages[i].kind != "eval") continue;
    const nlohmann::json paths = eval_paths(spec.stages[i], submission.source);  // outlives the loop
    for (const auto& [key, path] : paths.items())
      if (!path_exists(path.get<std::string>()))
        throw SpecError(
            "stage." + std::to_string(i) + ".eval." + key,
            path.get<std::string>() + " does not exist (relative paths are relative to the experiment file)");
  }

  ExperimentStore::Submission out;
  ExperimentRecord& e = out.experiment;
  e.name = spec.name;
  e.source = submission.source;
  e.spec = spec_to_json(spec);
  e.spec_hash = spec_hash(spec);
  e.submitted_at = submitted_at;
  e.priority = submission.priority;
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    StageRecord s;
    s.experiment = e.name;
    s.name = spec.stages[i].name;
    s.index = static_cast<int>(i);
    s.total_steps = total_steps(spec, spec.stages[i]);
    out.stages.push_back(std::move(s));
  }
  return out;
}

std::string Coordinator::resume(const std::string& experiment, const ResumeOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  return resume_locked(experiment, options);
}

std::string Coordinator::resume_locked(const std::string& experiment, const ResumeOptions& options) {
  if (options.ranks < 0) throw InvalidRequestError("ranks must be >= 1, got " + std::to_string(options.ranks));
  if (options.ranks > 0 && !options.allow_world_size_change)
    throw InvalidRequestError("resuming at " + std::to_string(options.ranks) +
                              " ranks is not bit-exact (each rank's generators start again); say so with "
                              "--allow-world-size-change");
  if (options.ranks == 0 && (options.allow_world_size_change || !options.stage.empty()))
    throw InvalidRequestError("--allow-world-size-change and --stage go with --ranks N (the new world size)");
  auto e = store_.get_experiment(experiment);
  if (!e) throw NotFoundError("no experiment named '" + experiment + "'");
  if (is_active(e->state))
    throw ConflictError("experiment " + experiment + " is " + to_string(e->state) + ": nothing to resume");
  if (e->state == RunState::Done) throw ConflictError("experiment " + experiment + " is done: nothing to resume");
  const ExperimentSpec spec = spec_from_json(e->spec);
  std::vector<StageRecord> stopped;
  for (const StageRecord& stage : store_.list_stages(experiment))
    if (stage.state != RunState::Done && stage.state != RunState::Pending) stopped.push_back(stage);
  if (stopped.empty()) throw ConflictError("experiment " + experiment + " has no stopped stage to resume");
  // Every stage that changes world size is checked before any record changes.
  const auto changes_world = [&](const StageRecord& stage) {
    return options.ranks > 0 && (options.stage.empty() || options.stage == stage.name);
  };
  if (!options.stage.empty() &&
      std::none_of(stopped.begin(), stopped.end(), [&](const StageRecord& s) { return s.name == options.stage; }))
    throw ConflictError("experiment " + experiment + " has no stopped stage '" + options.stage + "' to resume");
  for (const StageRecord& stage : stopped) {
    const StageSpec& stage_spec = spec.stages.at(static_cast<std::size_t>(stage.index));
    if (changes_world(stage) && stage_spec.kind != "eval" && stage_spec.batch_size % options.ranks != 0)
      throw InvalidRequestError("stage '" + stage.name + "': its global batch_size " +
                                std::to_string(stage_spec.batch_size) + " does not split over " +
                                std::to_string(options.ranks) + " ranks");
  }
  std::vector<std::string> resumed;
  for (StageRecord stage : stopped) {
    const StageSpec& stage_spec = spec.stages.at(static_cast<std::size_t>(stage.index));
    if (changes_world(stage)) {
      if (options.ranks != stage_world(stage_spec, stage))
        log::warn("experiment " + experiment + ": stage " + stage.name + " goes on at " +
                  std::to_string(options.ranks) + " ranks instead of " +
                  std::to_string(stage_world(stage_spec, stage)) +
                  " (--allow-world-size-change): same global batch and data order, new generator streams, "
                  "not bit-exact");
      stage.ranks = options.ranks;  // set (even to the spec's): its workers accept a checkpoint of another size
    }
    log::info("experiment " + experiment + ": resumed by request at stage " + stage.name + " (after " +
              std::to_string(stage.attempts) + " attempt(s))");
    stage.state = RunState::Pending;
    store_.put_stage(stage);
    resumed.push_back(stage.name);
  }
  e->state = RunState::Running;
  e->error.clear();
  e->finished_at = 0;
  store_.put_experiment(*e);
  const std::vector<std::string> runs = launch_ready_stages(experiment);
  if (!runs.empty()) return runs.front();
  // Nothing started: the resumed stages wait for parents in another experiment, or failed again.
  for (const std::string& name : resumed)
    if (auto stage = store_.get_stage(experiment, name); stage && stage->state == RunState::Pending) {
      log::info("experiment " + experiment + ": stage " + name + " waits for its parent");
      return "";
    }
  throw ConflictError("experiment " + experiment + ": none of its stopped stages (" + join(resumed, ", ") +
                      ") can start: " + store_.get_experiment(experiment)->error);
}

std::vector<std::string> Coordinator::cancel(const std::string& experiment, const std::string& stage) {
  std::lock_guard<std::mutex> lock(mu_);
  return cancel_locked(experiment, stage);
}

std::vector<std::string> Coordinator::cancel_sweep(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto sweep = store_.get_sweep(name);
  if (!sweep) throw NotFoundError("no sweep named '" + name + "'");
  std::vector<std::string> signalled;
  std::size_t cancelled = 0;
  for (const auto& cell : sweep->cells) {
    const std::string experiment = cell.value("experiment", std::string());
    const auto e = store_.get_experiment(experiment);
    if (!e || !is_active(e->state)) continue;
    try {  // one cell that cannot be cancelled (already cancelling) must not stop the others
      for (std::string& run : cancel_locked(experiment, "")) signalled.push_back(std::move(run));
      ++cancelled;
    } catch (const ConflictError& ex) {
      log::info("sweep " + name + ": " + ex.what());
    }
  }
  if (cancelled == 0) throw ConflictError("sweep " + name + " has no running or waiting cell left to cancel");
  return signalled;
}

std::vector<std::string> Coordinator::resume_sweep(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto sweep = store_.get_sweep(name);
  if (!sweep) throw NotFoundError("no sweep named '" + name + "'");
  std::vector<std::string> resumed;
  for (const auto& cell : sweep->cells) {
    const std::string experiment = cell.value("experiment", std::string());
    const auto e = store_.get_experiment(experiment);
    if (!e || is_active(e->state) || e->state == RunState::Done) continue;
    try {  // a cell that cannot start again must not keep the others stopped
      resume_locked(experiment);
      resumed.push_back(experiment);
    } catch (const ConflictError& ex) {
      log::warn("sweep " + name + ": " + ex.what());
    }
  }
  if (resumed.empty()) throw ConflictError("sweep " + name + " has no stopped cell that can resume");
  return resumed;
}

void Coordinator::remove(const std::string& name, bool files) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto sweep = store_.get_sweep(name);
  std::vector<std::string> experiments;
  if (sweep) {
    for (const auto& cell : sweep->cells) experiments.push_back(cell.value("experiment", std::string()));
  } else if (store_.get_experiment(name)) {
    for (const SweepRecord& s : store_.list_sweeps())  // a sweep's cells go with their sweep
      for (const auto& cell : s.cells)
        if (cell.value("experiment", std::string()) == name)
          throw ConflictError("experiment " + name + " is a cell of sweep " + s.name + "; delete the sweep");
    experiments.push_back(name);
  } else {
    throw NotFoundError("no experiment or sweep named '" + name + "'");
  }
  // Each experiment's stage directories (runs/<experiment>/<stage>), named from the store: never
  // anything else under runs/ (runs/data holds every experiment's shared data).
  std::map<std::string, std::vector<std::string>> stage_dirs;
  for (const std::string& experiment : experiments) {
    if (const auto e = store_.get_experiment(experiment); e && is_active(e->state))
      throw ConflictError("experiment " + experiment + " is " + to_string(e->state) + "; cancel it first");
    if (!valid_name(experiment)) continue;
    for (const StageRecord& s : store_.list_stages(experiment))
      if (valid_name(s.name)) stage_dirs[experiment].push_back(options_.runs_root + "/" + experiment + "/" + s.name);
  }
  if (sweep) store_.delete_sweep(name);
  else store_.delete_experiment(name);
  for (const auto& [experiment, dirs] : stage_dirs) {
    std::error_code ec;
    for (const std::string& dir : dirs)
      if (files && !ec) std::filesystem::remove_all(dir, ec);
    if (files && !ec) std::filesystem::remove(options_.runs_root + "/" + experiment, ec);  // only if now empty
    if (ec && ec != std::errc::directory_not_empty)
      log::warn("experiment " + experiment + ": cannot remove its run directories: " + ec.message());
    log::info("experiment " + experiment + ": deleted from the store" + (files ? " with its run directories" : ""));
  }
}

std::vector<std::string> Coordinator::cancel_locked(const std::string& experiment, const std::string& stage) {
  const auto e = store_.get_experiment(experiment);
  if (!e) throw NotFoundError("no experiment named '" + experiment + "'");
  std::vector<StageRecord> stages = store_.list_stages(experiment);
  if (!stage.empty() && !store_.get_stage(experiment, stage)) {
    std::vector<std::string> names;
    for (const StageRecord& s : stages) names.push_back(s.name);
    throw NotFoundError("experiment '" + experiment + "' has no stage '" + stage + "'" + did_you_mean(stage, names));
  }
  std::vector<std::string> signalled;
  bool changed = false;
  const double t = now();
  for (StageRecord& s : stages) {
    if (!stage.empty() && s.name != stage) continue;
    if (s.state != RunState::Pending && s.state != RunState::Running) continue;
    auto run = s.current_run.empty() ? std::nullopt : store_.get_run(s.current_run);
    if (run && is_active(run->state) && pulled_.count(run->id)) {
      // No job to signal: the run ends now, and its worker's next message is refused.
      const std::string id = run->id;
      pulled_.erase(id);
      log::info("run " + id + ": cancelled by request; its pull worker is refused from now on");
      finish_run(std::move(*run), RunState::Cancelled, "cancelled by request");
      signalled.push_back(id);
      continue;
    }
    if (run && is_active(run->state)) {
      for (const auto& [pid, id] : jobs_)
        if (id == run->id && !cancelling_.count(id)) {
          run->cancel_requested_at = t;  // a restarted coordinator still ends it cancelled
          store_.put_run(*run);
          executor_.signal(pid, SIGUSR1);
          cancelling_[id] = {pid, t + options_.cancel_grace_s, false};
          signalled.push_back(id);
          log::info("run " + id + ": cancelled by request; SIGUSR1 to mpirun (pid " + std::to_string(pid) +
                    "), SIGKILL in " + std::to_string(static_cast<int>(options_.cancel_grace_s)) + " s");
        }
      continue;
    }
    s.state = RunState::Cancelled;  // not started: nothing to stop
    store_.put_stage(s);
    changed = true;
    log::info("experiment " + experiment + ": stage " + s.name + " cancelled before it started");
  }
  if (signalled.empty() && !changed)
    throw ConflictError("experiment " + experiment + (stage.empty() ? "" : " stage " + stage) +
                        " has nothing running or waiting to cancel");
  if (changed) settle_experiment(experiment, t);
  return signalled;
}

void Coordinator::tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const double t = now();
  // Exits first, so that no signal below goes to a job that has already ended. One failure (a
  // store or file error) must not strand the other exits of the batch.
  for (const ProcessExit& exit : executor_.poll_exits()) {
    try {
      reap(exit);
    } catch (const std::exception& ex) {
      log::error("mpirun pid " + std::to_string(exit.pid) +
                 " ended, but recording its run's outcome failed: " + ex.what());
    }
  }
  for (auto& [id, c] : cancelling_) {  // the grace period of a cancellation is over: SIGKILL
    const auto job = jobs_.find(c.pid);
    if (c.killed || t < c.kill_at || job == jobs_.end() || job->second != id) continue;
    log::warn("run " + id + ": still running " + std::to_string(static_cast<int>(options_.cancel_grace_s)) +
              " s after SIGUSR1; SIGKILL to mpirun (pid " + std::to_string(c.pid) + ")");
    executor_.signal(c.pid, SIGKILL);
    c.killed = true;
  }
  check_liveness(liveness_now());
  // Experiments by priority, then in submission order, so that slots go to them in that order.
  for (const QueueKey& key : queued_) to_schedule_.insert(std::get<2>(key));
  std::vector<QueueKey> pending;
  for (const std::string& name : to_schedule_)
    if (const auto e = store_.get_experiment(name)) pending.push_back(queue_key(*e, 0));
  std::sort(pending.begin(), pending.end());
  for (const QueueKey& key : pending) {
    const std::string& name = std::get<2>(key);
    try {
      launch_ready_stages(name);
    } catch (const std::exception& ex) {
      log::error("experiment " + name + ": cannot schedule its stages (tried again next tick): " + ex.what());
      to_schedule_.insert(name);
    }
  }
}

Coordinator::QueueKey Coordinator::queue_key(const ExperimentRecord& e, int stage_index) {
  return {-e.priority, e.submitted_at, e.name, stage_index};
}

int Coordinator::slots_in_use() const {
  int used = 0;
  for (const auto& [run, slots] : running_slots_) used += slots;
  return used;
}

std::vector<std::string> Coordinator::launch_ready_stages(const std::string& experiment, const PullWorker* pull,
                                                          int* waiting) {
  if (!pull) {
    to_schedule_.erase(experiment);
    for (auto it = queued_.begin(); it != queued_.end();)  // re-queued below while still waiting
      it = std::get<2>(*it) == experiment ? queued_.erase(it) : std::next(it);
  }
  const auto e = store_.get_experiment(experiment);
  if (!e || !is_active(e->state)) return {};
  const ExperimentSpec spec = spec_from_json(e->spec);
  std::vector<std::string> started;
  bool stopped_one = false;
  // Every pending stage whose parent has finished starts now: independent stages run side by side.
  for (StageRecord stage : store_.list_stages(experiment)) {
    if (stage.state != RunState::Pending) continue;
    // A pending stage whose latest attempt is still active has been launched already.
    if (!stage.current_run.empty())
      if (auto current = store_.get_run(stage.current_run); current && is_active(current->state)) continue;
    const StageSpec& stage_spec = spec.stages.at(static_cast<std::size_t>(stage.index));
    if (pull && stage_world(stage_spec, stage) != pull->world) continue;  // another worker's shape
    const ParentStatus parent = parent_status(store_, experiment, stage_spec, e->source);
    if (pull && parent.state == ParentState::Waiting && waiting) ++*waiting;
    if (parent.state == ParentState::Waiting) {
      // A parent in another experiment finishes out of this experiment's sight: look again next tick.
      if (parse_init_source(stage_parent(stage_spec)).kind != InitSource::Kind::Stage) to_schedule_.insert(experiment);
      continue;
    }
    if (parent.state == ParentState::Failed) {
      // A parent inside the experiment that stopped blocks its children until it is resumed; one
      // outside it (another experiment, a bundle) fails this stage (settle_experiment).
      stopped_one = stopped_one || parse_init_source(stage_parent(stage_spec)).kind != InitSource::Kind::Stage;
      continue;
    }
    if (pull) {
      const std::string id = start_attempt(*e, stage, pull);
      started.push_back(id);
      if (const auto run = store_.get_run(id); run && is_active(run->state)) break;  // one stage per worker
      continue;
    }
    if (!options_.launch_jobs) continue;  // pull workers only: the stage waits for a claim
    const int need = slots_needed(spec, stage);
    const QueueKey key = queue_key(*e, stage.index);
    const bool earlier_waits = !queued_.empty() && *queued_.begin() < key;
    const int used = slots_in_use();
    if (options_.slots > 0 && (earlier_waits || (used > 0 && used + need > options_.slots))) {
      queued_.insert(key);  // tick() looks again when a job ends
      continue;
    }
    if (options_.slots > 0 && need > options_.slots)
      log::warn("experiment " + experiment + ": stage " + stage.name + " takes " + std::to_string(need) +
                " slots (ranks x threads_per_rank), more than the " + std::to_string(options_.slots) +
                " this coordinator has; it runs alone, oversubscribed");
    const std::string id = start_attempt(*e, stage);
    if (const auto run = store_.get_run(id); run && is_active(run->state)) running_slots_[id] = need;
    started.push_back(id);
  }
  if (stopped_one) settle_experiment(experiment, now());
  return started;
}

std::set<std::string> Coordinator::live_pending_stages(const ExperimentRecord& e,
                                                       const std::vector<StageRecord>& stages) const {
  const ExperimentSpec spec = spec_from_json(e.spec);
  std::map<std::string, const StageRecord*> by_name;
  for (const StageRecord& s : stages) by_name[s.name] = &s;
  std::set<std::string> live;
  for (const StageRecord& s : stages)  // launched and not yet reported running
    if (s.state == RunState::Pending && !s.current_run.empty())
      if (auto run = store_.get_run(s.current_run); run && is_active(run->state)) live.insert(s.name);
  for (bool grew = true; grew;) {
    grew = false;
    for (const StageRecord& s : stages) {
      if (s.state != RunState::Pending || live.count(s.name)) continue;
      const StageSpec& stage_spec = spec.stages.at(static_cast<std::size_t>(s.index));
      const InitSource src = parse_init_source(stage_parent(stage_spec));
      bool will_start = false;
      if (src.kind == InitSource::Kind::Stage) {
        const StageRecord* parent = by_name.count(src.stage) ? by_name[src.stage] : nullptr;
        will_start = parent && (parent->state == RunState::Done || parent->state == RunState::Running ||
                                live.count(parent->name));
      } else {
        will_start = parent_status(store_, e.name, stage_spec, e.source).state != ParentState::Failed;
      }
      if (will_start) grew = live.insert(s.name).second || grew;
    }
  }
  return live;
}

void Coordinator::settle_experiment(const std::string& experiment, double t) {
  auto e = store_.get_experiment(experiment);
  if (!e) return;
  std::vector<StageRecord> stages = store_.list_stages(experiment);
  // A stage whose parent outside the experiment can no longer finish fails here, so that the
  // experiment stops with a stage `resume` can restart.
  const ExperimentSpec spec = spec_from_json(e->spec);
  for (StageRecord& s : stages) {
    const StageSpec& stage_spec = spec.stages.at(static_cast<std::size_t>(s.index));
    const InitSource::Kind kind = parse_init_source(stage_parent(stage_spec)).kind;
    if (s.state != RunState::Pending || kind == InitSource::Kind::Stage || kind == InitSource::Kind::None) continue;
    if (!s.current_run.empty())
      if (auto run = store_.get_run(s.current_run); run && is_active(run->state)) continue;
    const ParentStatus parent = parent_status(store_, experiment, stage_spec, e->source);
    if (parent.state != ParentState::Failed) continue;
    log::error("experiment " + experiment + ": stage " + s.name + " cannot start: " + parent.why);
    s.state = RunState::Failed;
    store_.put_stage(s);
    if (e->error.empty()) e->error = "stage " + s.name + ": " + parent.why;
  }
  bool all_done = true, running = false;
  const StageRecord* stopped = nullptr;  // the first stage (in file order) that stopped unfinished
  for (const StageRecord& s : stages) {
    all_done = all_done && s.state == RunState::Done;
    running = running || s.state == RunState::Running;
    if (!stopped && s.state != RunState::Done && s.state != RunState::Pending && s.state != RunState::Running)
      stopped = &s;
  }
  if (all_done) {
    e->state = RunState::Done;
    e->finished_at = t;
  } else if (running || !live_pending_stages(*e, stages).empty()) {
    e->state = RunState::Running;  // ready stages launch on the next tick
    to_schedule_.insert(e->name);
  } else {
    e->state = stopped ? stopped->state : RunState::Failed;
    if (is_terminal(e->state)) e->finished_at = t;
    if (e->error.empty() && !stopped) e->error = "no stage can start (every pending stage waits on a stopped one)";
  }
  store_.put_experiment(*e);
}

std::string Coordinator::start_attempt(const ExperimentRecord& e, StageRecord stage, const PullWorker* pull) {
  const ExperimentSpec spec = spec_from_json(e.spec);
  if (stage.index < 0 || static_cast<std::size_t>(stage.index) >= spec.stages.size())
    throw Error("experiment " + e.name + ": stage '" + stage.name + "' (index " + std::to_string(stage.index) +
                ") is not in its spec");
  const StageSpec& stage_spec = spec.stages[static_cast<std::size_t>(stage.index)];

  RunRecord run;
  run.attempt = stage.attempts + 1;
  run.id = make_run_id(e.name, stage.name, run.attempt);
  run.experiment = e.name;
  run.stage = stage.name;
  run.token = random_hex(kTokenBytes);
  run.run_dir = options_.runs_root + "/" + e.name + "/" + stage.name;
  run.ranks = stage_world(stage_spec, stage);
  // Lineage: the first attempt resolves the parent's final checkpoint; later ones keep it (their
  // weights descend from it, also when they resume from the stage's own checkpoint).
  try {
    if (auto previous = stage.current_run.empty() ? std::nullopt : store_.get_run(stage.current_run);
        previous && !previous->init.empty())
      run.init = previous->init;
    else if (stage_spec.kind == "eval")
      run.init = eval_lineage_json(store_, options_.runs_root, e.name, stage_spec, e.source);
    else if (!stage_spec.init_from.empty())
      run.init = lineage_json(spec, static_cast<std::size_t>(stage.index),
                              resolve_parent(store_, options_.runs_root, e.name, stage_spec, e.source), e.source);
  } catch (const std::exception& ex) {
    const std::string error = "cannot start run " + run.id + ": " + ex.what();
    return fail_before_launch(std::move(run), std::move(stage), error);
  }
  if (!run.init.empty())
    log::info("run " + run.id + ": starts from " + run.init.value("bundle", std::string()) + " (" +
              run.init.value("from", std::string()) + ", step " + std::to_string(run.init.value("step", 0)) + ")");
  stage.attempts = run.attempt;
  stage.current_run = run.id;
  stage.total_steps = total_steps(spec, stage_spec);
  if (run.attempt == 1) {
    store_.put_run(run);
  } else {
    // Continue from the newest checkpoint; the stage's curves lose the points after it in the same
    // write batch that records the run, so they never hold the abandoned attempt's tail.
    try {
      if (const auto from = newest_checkpoint(run.run_dir)) {
        run.resume_from = from->bundle;
        run.resume_step = from->step;
        run.step = from->step;
      }
    } catch (const std::exception& ex) {
      const std::string error = "cannot resume run " + run.id + ": " + ex.what();
      return fail_before_launch(std::move(run), std::move(stage), error);
    }
    store_.record_resume(run, run.resume_step);
    log::info("run " + run.id + ": attempt " + std::to_string(run.attempt) + " of stage " + stage.name + " " +
              (run.resume_from.empty()
                   ? std::string("starts from scratch (no checkpoint yet)")
                   : "resumes from step " + std::to_string(run.resume_step) + " (" + run.resume_from + ")"));
  }
  store_.put_stage(stage);
  clear_failure_notes(run.run_dir);  // notes of an earlier attempt must not explain this one

  if (pull) {  // nothing to launch: the worker that claimed the stage says hello next
    run.job = "pull:" + pull->host + " pid " + std::to_string(pull->pid);
    run.coord = options_.zmq_endpoint;
    store_.put_run(run);
    pulled_.insert(run.id);
    last_seen_[run.id] = liveness_now();
    log::info("run " + run.id + ": assigned to the pull worker on " + pull->host + " (pid " +
              std::to_string(pull->pid) + ", " + std::to_string(pull->world) + " ranks)");
    return run.id;
  }
  LaunchRequest request;
  request.run_id = run.id;
  request.token = run.token;
  request.ranks = run.ranks;
  request.threads_per_rank = static_cast<int>(stage_spec.threads_per_rank);
  request.executor = spec.executor;
  request.run_dir = run.run_dir;
  request.coord_endpoint = options_.zmq_endpoint;
  try {
    run.pid = executor_.launch(request);
  } catch (const std::exception& ex) {
    const std::string error = "cannot start run " + run.id + ": " + ex.what();
    log::error(error);
    finish_run(std::move(run), RunState::Failed, error);
    return request.run_id;
  }
  run.job = executor_.identity(run.pid);
  run.coord = options_.zmq_endpoint;
  store_.put_run(run);
  jobs_[run.pid] = run.id;
  last_seen_[run.id] = liveness_now();
  return run.id;
}

std::string Coordinator::fail_before_launch(RunRecord run, StageRecord stage, const std::string& error) {
  log::error(error);
  stage.attempts = run.attempt;
  stage.current_run = run.id;
  const std::string id = run.id;
  store_.put_run(run);
  store_.put_stage(stage);
  finish_run(std::move(run), RunState::Failed, error);
  return id;
}

void Coordinator::reap(const ProcessExit& exit) {
  const auto job = jobs_.find(exit.pid);
  if (job == jobs_.end()) return;
  const std::string run_id = job->second;
  // Everything this process kept about the job goes now, whatever happens below.
  jobs_.erase(job);
  cancelling_.erase(run_id);
  system_.erase(run_id);
  stored_ahead_.erase(run_id);
  last_seen_.erase(run_id);
  unconfirmed_.erase(run_id);
  const bool silent = silent_.erase(run_id) > 0;
  auto run = store_.get_run(run_id);
  if (!run || !is_active(run->state)) {
    running_slots_.erase(run_id);
    log::warn("run " + run_id + ": its job ended but the run is no longer active; ignored");
    return;
  }
  RunOutcome outcome = decide_run_outcome(report_of(*run), exit, run->run_dir);
  if (run->cancel_requested_at > 0 && outcome.state != RunState::Done)  // finished anyway: done stays done
    outcome = cancelled_outcome();
  else if (silent && run->report.empty())
    outcome = {RunState::Lost,
               "its worker sent nothing for " + std::to_string(static_cast<int>(options_.heartbeat_timeout_s)) +
                   " s (heartbeat timeout); the job was killed",
               true};
  const std::string how = describe_exit_status(exit);
  const std::string what = "run " + run_id + ": " + to_string(outcome.state) + " at step " + std::to_string(run->step);
  if (outcome.state != RunState::Failed) log::info(what + " (" + how + ")");
  else if (outcome.error.find(how) == std::string::npos) log::error(what + " (" + how + "): " + outcome.error);
  else log::error(what + ": " + outcome.error);
  finish_run(std::move(*run), outcome.state, outcome.error, outcome.retryable);
}

void Coordinator::finish_run(RunRecord run, RunState state, const std::string& error, bool retryable) {
  const double t = now();
  running_slots_.erase(run.id);
  last_seen_.erase(run.id);
  unconfirmed_.erase(run.id);
  system_.erase(run.id);
  stored_ahead_.erase(run.id);
  run.state = state;
  if (!error.empty()) run.error = error;
  run.finished_at = t;
  store_.put_run(run);

  auto stage = store_.get_stage(run.experiment, run.stage);
  auto e = store_.get_experiment(run.experiment);
  if (!stage || !e) {
    log::error("run " + run.id + ": its experiment or stage is missing from the store");
    return;
  }
  stage->step = std::max(stage->step, run.step);
  if (retryable) {
    const ExperimentSpec spec = spec_from_json(e->spec);
    const std::int64_t max_attempts =
        static_cast<std::size_t>(stage->index) < spec.stages.size() ? spec.stages[stage->index].max_attempts : 1;
    if (stage->attempts < max_attempts) {
      log::warn("run " + run.id + " ended " + to_string(state) + (run.error.empty() ? "" : " (" + run.error + ")") +
                "; stage " + stage->name + " gets attempt " + std::to_string(stage->attempts + 1) + " of " +
                std::to_string(max_attempts) + ", from its newest checkpoint");
      stage->state = RunState::Pending;  // launched on the next tick
      store_.put_stage(*stage);
      e->state = RunState::Running;
      store_.put_experiment(*e);
      to_schedule_.insert(e->name);
      return;
    }
  }
  stage->state = state;
  store_.put_stage(*stage);
  if (state != RunState::Done && e->error.empty()) {
    e->error = run.error;
    store_.put_experiment(*e);
  }
  settle_experiment(run.experiment, t);
}

// ---- worker messages ---------------------------------------------------------------------------

Message Coordinator::handle_frame(const std::string& frame) {
  Message message;
  try {
    message = protocol::decode(frame);
  } catch (const std::exception& ex) {
    log::warn(std::string("rejected a malformed worker message: ") + ex.what());
    return error_reply("", ex.what());
  }
  return handle(message);
}

Message Coordinator::handle(const Message& m) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = std::string("'") + protocol::to_string(m.type) + "' message for run '" + m.run + "'";
  try {
    if (m.type == Type::Claim) return on_claim(m);
    auto run = store_.get_run(m.run);
    if (!run || !same_secret(run->token, m.token)) {
      log::warn("rejected " + what + ": " + (run ? "wrong token" : "unknown run"));
      return error_reply(m.run, "unauthenticated");
    }
    if (!is_active(run->state)) {
      log::warn("rejected " + what + ": the run is already " + to_string(run->state));
      return error_reply(m.run,
                         "run " + run->id + " is already " + to_string(run->state) + " and accepts no more messages");
    }
    last_seen_[run->id] = liveness_now();
    if (unconfirmed_.erase(run->id))
      log::info("run " + run->id + ": a '" + protocol::to_string(m.type) +
                "' message from its worker confirms the re-attached job; accepting what it buffered");
    switch (m.type) {
      case Type::Hello:
        return on_hello(m, std::move(*run));
      case Type::Metrics:
        return on_metrics(m, std::move(*run));
      case Type::Heartbeat:
        return on_heartbeat(m, std::move(*run));
      case Type::Checkpoint:
        return on_checkpoint(m, std::move(*run));
      case Type::Done:
      case Type::Failed:
      case Type::Preempted:
        return on_report(m, std::move(*run));
      case Type::Spec:
      case Type::Ack:
      case Type::Error:
      case Type::Assign:
      case Type::Claim:
        break;
    }
    log::warn("rejected " + what + ": it is a coordinator-to-worker message");
    return error_reply(m.run,
                       std::string("'") + protocol::to_string(m.type) + "' is sent by the coordinator, not to it");
  } catch (const std::exception& ex) {
    log::error(what + " failed: " + ex.what());
    return error_reply(m.run, what + " failed: " + ex.what());
  }
}

Message Coordinator::on_hello(const Message& m, RunRecord run) {
  const auto& b = m.body;
  const std::int64_t world = b.at("world_size").get<std::int64_t>();
  log::info("run " + run.id + ": hello from rank " + std::to_string(b.at("rank").get<std::int64_t>()) + " of " +
            std::to_string(world) + " on " + b.value("host", std::string("?")) + " (pid " +
            std::to_string(b.value("pid", std::int64_t{0})) + ")");
  if (world != run.ranks)
    log::warn("run " + run.id + ": worker reports world size " + std::to_string(world) + ", the stage asked for " +
              std::to_string(run.ranks) + " ranks");
  const double t = now();
  if (run.state != RunState::Running) {
    run.state = RunState::Running;
    if (run.started_at == 0) run.started_at = t;
  }
  run.last_heartbeat = t;
  store_.put_run(run);

  auto stage = store_.get_stage(run.experiment, run.stage);
  auto e = store_.get_experiment(run.experiment);
  if (!stage || !e) throw StoreError("the experiment or stage of run " + run.id + " is missing");
  if (stage->state != RunState::Running) {
    stage->state = RunState::Running;
    store_.put_stage(*stage);
  }
  if (e->state != RunState::Running) {
    e->state = RunState::Running;
    store_.put_experiment(*e);
  }
  const std::int64_t reference =
      run.init.contains("transfer")
          ? run.init["transfer"].at("reference_resolution").get<std::int64_t>()
          : reference_resolution(spec_from_json(e->spec), static_cast<std::size_t>(stage->index), nullptr);
  return protocol::make(Type::Spec, run.id, run.token,
                        {{"spec", e->spec},
                         {"attempt", run.attempt},
                         {"resume_from", run.resume_from},
                         {"ranks", run.ranks},
                         {"allow_world_size_change", stage->ranks > 0},
                         {"run_dir", run.run_dir},
                         {"stage_index", stage->index},
                         {"data_dir", options_.runs_root + "/data"},
                         {"init", worker_init_json(run.init)},
                         {"reference_resolution", reference}});
}

Message Coordinator::on_metrics(const Message& m, RunRecord run) {
  const auto& b = m.body;
  const std::int64_t attempt = b.at("attempt").get<std::int64_t>();
  const std::int64_t seq = b.at("seq").get<std::int64_t>();
  if (attempt != run.attempt)
    return error_reply(run.id, "run " + run.id + " is attempt " + std::to_string(run.attempt) +
                                   "; metrics of attempt " + std::to_string(attempt) + " rejected");
  if (seq < 1) return error_reply(run.id, "run " + run.id + ": metric batch seq must be >= 1");
  // Batches may arrive out of order (a re-sent one overtaking a later one): run.last_seq is the
  // watermark below which every batch is stored; the ones stored above it wait in stored_ahead_
  // until the gap closes. A batch already stored is acknowledged again, not written again.
  const auto useq = static_cast<std::uint64_t>(seq);
  std::set<std::uint64_t>& ahead = stored_ahead_[run.id];
  if (useq <= run.last_seq || ahead.count(useq)) return ack(run, seq);  // re-sent: stored
  const bool newest = ahead.empty() || useq > *ahead.rbegin();          // the latest progress of the run

  std::vector<MetricPoint> points;
  std::int64_t loss_step = -1, rate_step = -1;
  const double t = now();
  for (const auto& p : b.at("points")) {
    MetricPoint point = p.get<MetricPoint>();
    point.attempt = static_cast<std::uint32_t>(attempt);
    if (point.time <= 0) point.time = t;
    run.step = std::max(run.step, point.step);
    if (newest && point.metric == "loss" && point.step >= loss_step) {
      loss_step = point.step;
      run.last_loss = point.value;
    } else if (newest && point.metric == "samples_per_s" && point.step >= rate_step) {
      rate_step = point.step;
      run.samples_per_s = point.value;
    }
    points.push_back(std::move(point));
  }
  ahead.insert(useq);
  while (!ahead.empty() && *ahead.begin() == run.last_seq + 1) {
    ahead.erase(ahead.begin());
    ++run.last_seq;
  }
  store_.append_metrics(run.experiment, run.stage, points, run);
  return ack(run, seq);
}

Message Coordinator::on_heartbeat(const Message& m, RunRecord run) {
  run.step = std::max(run.step, m.body.at("step").get<std::int64_t>());
  run.last_heartbeat = now();
  if (const auto s = m.body.find("system"); s != m.body.end() && s->is_object()) system_[run.id] = *s;
  store_.put_run(run);
  return ack(run, 0);
}

Message Coordinator::on_checkpoint(const Message& m, RunRecord run) {
  const std::int64_t step = m.body.at("step").get<std::int64_t>();
  run.step = std::max(run.step, step);
  run.checkpoint = m.body.at("path").get<std::string>();
  store_.put_run(run);
  log::info("run " + run.id + ": checkpoint at step " + std::to_string(step) + ": " + run.checkpoint);
  return event_ack(run, Type::Checkpoint);
}

Message Coordinator::on_report(const Message& m, RunRecord run) {
  const auto& b = m.body;
  WorkerReportInfo info;
  info.step = b.at("step").get<std::int64_t>();
  run.step = std::max(run.step, info.step);
  // A failure stays reported even if the worker later claims completion.
  const WorkerReport earlier = worker_report_from_string(run.report);
  const bool keep_earlier = earlier == WorkerReport::Failed || earlier == WorkerReport::Diverged;
  const std::string where = "run " + run.id + ": ";
  if (m.type == Type::Done) {
    info.kind = WorkerReport::Done;
    const nlohmann::json summary = b.value("summary", nlohmann::json::object());
    if (summary.is_object()) {
      read_number(summary, "final_loss", run.last_loss);
      read_number(summary, "loss", run.last_loss);
      read_number(summary, "samples_per_s", run.samples_per_s);
      if (summary.contains("checkpoint") && summary["checkpoint"].is_string())
        run.checkpoint = summary["checkpoint"].get<std::string>();
    }
    log::info(where + "worker reports completion at step " + std::to_string(info.step) +
              (summary.empty() ? "" : ": " + summary.dump()));
  } else if (m.type == Type::Failed) {
    info.kind = b.value("diverged", false) ? WorkerReport::Diverged : WorkerReport::Failed;
    info.message = b.at("message").get<std::string>();
    if (!keep_earlier) run.error = info.message;
    log::error(where + "rank " + std::to_string(b.at("rank").get<std::int64_t>()) + " reports failure at step " +
               std::to_string(info.step) + ": " + info.message);
  } else {
    info.kind = WorkerReport::Preempted;
    run.checkpoint = b.at("checkpoint").get<std::string>();
    log::info(where + "worker stopped for preemption at step " + std::to_string(info.step) + ", checkpoint " +
              run.checkpoint);
  }
  if (!keep_earlier) run.report = to_string(info.kind);
  store_.put_run(run);
  const Message ack = event_ack(run, m.type);
  if (pulled_.erase(run.id)) {  // no job whose exit would end it: the report does
    RunOutcome outcome = decide_run_outcome(report_of(run), ProcessExit{0, -1, 0, false}, run.run_dir);
    if (run.cancel_requested_at > 0 && outcome.state != RunState::Done) outcome = cancelled_outcome();
    log::info("run " + run.id + ": " + to_string(outcome.state) + " at step " + std::to_string(run.step) +
              " (its pull worker's report)");
    finish_run(std::move(run), outcome.state, outcome.error, outcome.retryable);
  }
  return ack;
}

Message Coordinator::on_claim(const Message& m) {
  PullWorker worker;
  worker.world = m.body.at("world_size").get<std::int64_t>();
  worker.host = m.body.value("host", std::string("?"));
  worker.pid = m.body.value("pid", std::int64_t{0});
  // Experiments by priority, then in submission order: the order in which local slots go too.
  std::vector<QueueKey> order;
  for (const ExperimentRecord& e : store_.list_experiments())
    if (is_active(e.state)) order.push_back(queue_key(e, 0));
  std::sort(order.begin(), order.end());
  int waiting = 0;
  for (const QueueKey& key : order) {
    for (const std::string& id : launch_ready_stages(std::get<2>(key), &worker, &waiting))
      if (const auto run = store_.get_run(id); run && is_active(run->state))
        return protocol::make(Type::Assign, "", "", {{"run", run->id}, {"token", run->token}});
  }
  log::info(
      "claim from a pull worker on " + worker.host + " (pid " + std::to_string(worker.pid) + ", " +
      std::to_string(worker.world) + " ranks): nothing ready" +
      (waiting ? ", " + std::to_string(waiting) + " stage(s) of its size wait for their parents" : std::string()));
  return protocol::make(Type::Assign, "", "", {{"run", ""}, {"token", ""}, {"pending", waiting}});
}

// ---- queries -----------------------------------------------------------------------------------

ExperimentView Coordinator::view_locked(const ExperimentRecord& e) const {
  ExperimentView v{e, store_.list_stages(e.name), store_.list_runs(e.name), {}, {}};
  waiting_reasons(e, v);
  const nlohmann::json& stage_specs = e.spec.value("stage", nlohmann::json::array());
  for (const StageRecord& stage : v.stages)
    if (static_cast<std::size_t>(stage.index) < stage_specs.size() &&
        stage_specs[static_cast<std::size_t>(stage.index)].value("kind", std::string("train")) == "eval")
      v.evaluations[stage.name] = store_.metrics(e.name, stage.name, "");
  for (StageRecord& stage : v.stages)  // progress lives on the run until the run ends
    for (const RunRecord& run : v.runs)
      if (run.id == stage.current_run) stage.step = std::max(stage.step, run.step);
  for (const RunRecord& run : v.runs)
    if (const auto s = system_.find(run.id); s != system_.end() && is_active(run.state)) v.system[run.id] = s->second;
  std::map<std::string, int> stage_index;
  for (const StageRecord& stage : v.stages) stage_index[stage.name] = stage.index;
  std::sort(v.runs.begin(), v.runs.end(), [&](const RunRecord& a, const RunRecord& b) {
    return std::make_pair(stage_index[a.stage], a.attempt) < std::make_pair(stage_index[b.stage], b.attempt);
  });
  return v;
}

void Coordinator::waiting_reasons(const ExperimentRecord& e, ExperimentView& v) const {
  if (!is_active(e.state)) return;
  const ExperimentSpec spec = spec_from_json(e.spec);
  for (const StageRecord& stage : v.stages) {
    if (stage.state != RunState::Pending) continue;
    if (!stage.current_run.empty())
      if (auto run = store_.get_run(stage.current_run); run && is_active(run->state)) continue;
    const StageSpec& stage_spec = spec.stages.at(static_cast<std::size_t>(stage.index));
    if (queued_.count(queue_key(e, stage.index))) {
      v.waiting[stage.name] = "slots: needs " + std::to_string(slots_needed(spec, stage)) + ", " +
                              std::to_string(slots_in_use()) + " of " + std::to_string(options_.slots) + " in use";
      continue;
    }
    const ParentStatus parent = parent_status(store_, e.name, stage_spec, e.source);
    if (parent.state != ParentState::None && parent.state != ParentState::Ready) v.waiting[stage.name] = parent.why;
  }
}

std::optional<ExperimentView> Coordinator::experiment(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto e = store_.get_experiment(name);
  if (!e) return std::nullopt;
  return view_locked(*e);
}

std::optional<SweepView> Coordinator::sweep(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto sweep = store_.get_sweep(name);
  if (!sweep) return std::nullopt;
  // sweep.cells[i] and cells[i] stay paired: a cell whose experiment is missing is left out of both.
  SweepView v{*sweep, {}};
  v.sweep.cells = nlohmann::json::array();
  for (const auto& cell : sweep->cells)
    if (const auto e = store_.get_experiment(cell.value("experiment", std::string()))) {
      v.sweep.cells.push_back(cell);
      v.cells.push_back(view_locked(*e));
    }
  return v;
}

std::vector<SweepRecord> Coordinator::sweeps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.list_sweeps();
}

std::vector<ExperimentView> Coordinator::experiments() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ExperimentView> out;
  for (const ExperimentRecord& e : store_.list_experiments()) out.push_back(view_locked(e));
  return out;
}

std::vector<MetricPoint> Coordinator::metrics(const std::string& experiment, const std::string& stage,
                                              const std::string& metric, std::size_t max_points) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!store_.get_experiment(experiment)) throw NotFoundError("no experiment named '" + experiment + "'");
  const std::vector<StageRecord> stages = store_.list_stages(experiment);
  std::string chosen = stage;
  if (chosen.empty()) {
    if (stages.empty()) throw NotFoundError("experiment '" + experiment + "' has no stages");
    chosen = stages.front().name;
  } else if (!store_.get_stage(experiment, chosen)) {
    std::vector<std::string> names;
    for (const auto& s : stages) names.push_back(s.name);
    throw NotFoundError("experiment '" + experiment + "' has no stage '" + chosen + "' (stages: " + join(names, ", ") +
                        ")");
  }
  return store_.metrics(experiment, chosen, metric, max_points);
}

std::size_t Coordinator::running_jobs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size() + pulled_.size();
}

std::size_t Coordinator::unconfirmed_jobs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unconfirmed_.size();
}

}  // namespace ldm::coord
