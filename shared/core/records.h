// What the experiment store holds, and what the HTTP API returns. JSON via to_json/from_json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ldm {

// Run (attempt) states, DESIGN.md "A run". Terminal: cancelled, diverged, done, failed;
// a preempted, lost or crashed attempt gets a new one while the stage's max_attempts allow.
enum class RunState { Pending, Running, Preempted, Lost, Cancelled, Diverged, Done, Failed };

const char* to_string(RunState s);
RunState run_state_from_string(const std::string& s);  // throws Error on an unknown name
bool is_terminal(RunState s);
const std::vector<RunState>& all_run_states();

struct ExperimentRecord {
  std::string name;
  std::string source;   // the file it was submitted from (for messages)
  nlohmann::json spec;  // resolved spec (spec_to_json)
  std::string spec_hash;
  RunState state = RunState::Pending;  // aggregate of its stages
  double submitted_at = 0;
  double finished_at = 0;
  std::string error;  // first error, for status
  // Scheduling priority (`ldm-coord submit --priority`): ready stages of a higher-priority
  // experiment take free slots first; equal priorities go first come, first served.
  int priority = 0;
};

struct StageRecord {
  std::string experiment;
  std::string name;
  int index = 0;
  RunState state = RunState::Pending;
  int attempts = 0;         // attempts started so far
  std::string current_run;  // run id of the latest attempt ("" before the first)
  std::int64_t step = 0;    // last step reported
  std::int64_t total_steps = 0;
  // The world size its attempts run at once `resume --ranks N --allow-world-size-change` set it
  // (their workers then accept a checkpoint of another world size); 0 = the spec's `ranks`. Kept
  // for the later attempts (retries too) until set again.
  int ranks = 0;
};

struct RunRecord {
  std::string id;  // make_run_id(experiment, stage, attempt)
  std::string experiment;
  std::string stage;
  int attempt = 1;
  RunState state = RunState::Pending;
  std::string token;  // secret that the worker must present in every message
  std::string run_dir;
  int ranks = 1;
  std::int64_t pid = 0;  // mpirun's pid while running (local executor)
  // The executor's proof that `pid` is still this run's job (local: "<boot id>/<start time in clock
  // ticks>"), so that a restarted coordinator re-attaches the job and never a recycled pid.
  std::string job;
  std::string coord;  // the ZeroMQ endpoint its worker reports to (a restart binds it again)
  // The worker's terminal report, kept across a coordinator restart: "" (none yet), "done",
  // "failed", "diverged" or "preempted". A failure stays even if the worker later claims completion.
  std::string report;
  double cancel_requested_at = 0;  // when `cancel` signalled its job (0 = never): it ends cancelled
  std::int64_t step = 0;           // last step reported
  double last_loss = 0;
  double samples_per_s = 0;
  std::uint64_t last_seq = 0;  // last metric batch sequence number stored
  double started_at = 0;
  double finished_at = 0;
  double last_heartbeat = 0;
  std::string error;             // why it failed, naming rank and step where known
  std::string checkpoint;        // last checkpoint directory reported
  std::string resume_from;       // the checkpoint bundle this attempt continues from ("" = from scratch)
  std::int64_t resume_step = 0;  // its step (the stage's metric points after it were deleted)
  // Lineage of a stage with init_from ({} = from scratch): {"from": init_from as written, "run":
  // the parent's run id ("" for a bundle path), "bundle", "step", "manifest_sha256", "transfer":
  // {...the resolved transfer: weights, optimizer, classes, resolution, task, pos_embed_resampling,
  // shift, reference_resolution...}}. Set when the run is created; a later attempt that resumes
  // from the stage's own checkpoint keeps it (the weights still descend from that parent).
  nlohmann::json init = nlohmann::json::object();
};

// A sweep: one experiment file expanded over a grid (shared/spec_toml/sweep.h). Its cells are
// ordinary experiments; this record keeps which, with each cell's value of every axis.
struct SweepRecord {
  std::string name;
  std::string source;                              // the file it came from
  std::vector<std::string> axes;                   // swept keys in label order ("seed" for seeds)
  nlohmann::json cells = nlohmann::json::array();  // [{"experiment": name, "values": {key: value}}], in order
  double submitted_at = 0;
};

// One metric point. Keyed in the store by (experiment, stage, metric, step); attempt in the value.
struct MetricPoint {
  std::string metric;
  std::int64_t step = 0;
  double value = 0;
  std::uint32_t attempt = 1;
  double time = 0;  // wall time when measured (seconds since epoch)
};

void to_json(nlohmann::json& j, const ExperimentRecord& r);
void from_json(const nlohmann::json& j, ExperimentRecord& r);
void to_json(nlohmann::json& j, const StageRecord& r);
void from_json(const nlohmann::json& j, StageRecord& r);
void to_json(nlohmann::json& j, const RunRecord& r);
void from_json(const nlohmann::json& j, RunRecord& r);
void to_json(nlohmann::json& j, const MetricPoint& p);
void to_json(nlohmann::json& j, const SweepRecord& r);
void from_json(const nlohmann::json& j, SweepRecord& r);
void from_json(const nlohmann::json& j, MetricPoint& p);

}  // namespace ldm
