// The coordinator's state machine: submissions, stages run in order, runs (attempts), and the
// worker messages that move them. Owns no threads and no sockets: the ZeroMQ loop feeds it frames
// and calls tick(), the HTTP server calls submit() and the queries, tests call all of them directly
// with a fake Executor.
//
// State lives in the ExperimentStore; every state change is written there (synced) before the
// reply that depends on it is returned. In memory it keeps only what belongs to this process: the
// jobs it launched (pid -> run) and the last terminal report each run's worker sent.
//
// Lifecycle of one run: created PENDING and launched when its stage is ready (no init_from, or its
// parent stage done: stages form a DAG, and independent ones run at the same time) -> RUNNING on the
// worker's hello -> metrics / heartbeats / checkpoints -> the worker reports done, failed or
// preempted -> when mpirun exits the run becomes DONE, FAILED or PREEMPTED (see run_outcome.h).
// Stage states follow their run; the experiment's follows its stages (settle_experiment); a DONE
// stage lets its children launch, with the lineage of their first run recorded (lineage.h).
// Retries: a run that was preempted, or whose job crashed, was killed or vanished without a rank
// reporting an error, or went silent (RunOutcome::retryable), gets a new attempt while the stage's
// max_attempts allow. A new attempt continues from the newest checkpoint in the stage's run directory: it is
// recorded (with the deletion of the stage's metric points after that step, one write batch)
// before it is launched, and the worker is told which bundle to load. resume() starts a new
// attempt of a stopped experiment by hand.
// Liveness: every message of a run's worker (its reporter thread sends a heartbeat every few
// seconds, whatever the training loop is doing) counts as a sign of life; a job that has sent none
// for heartbeat_timeout_s since its launch or its last message is SIGKILLed and its run is LOST,
// then retried like a crash.
// Restart: on construction, each run a previous coordinator left PENDING/RUNNING is re-attached
// when its job still runs (Executor::adopt: same pid, same identity), and keeps its attempt: its
// worker's messages, buffered while no coordinator listened, are accepted again and the first one
// confirms it. A run whose job is gone ends as its worker's recorded report says (done, failed,
// ...), or LOST and retried from the stage's newest checkpoint when it reported nothing.
//
// Thread-safety: every public method locks one internal mutex, so the ZeroMQ and HTTP threads may
// call concurrently. The Executor is only ever called under that mutex.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/executor.h"
#include "coordinator/run_outcome.h"
#include "shared/core/error.h"
#include "shared/core/protocol.h"
#include "shared/core/records.h"
#include "shared/store/experiment_store.h"

namespace ldm::coord {

// A submission whose experiment name is already in the store (HTTP 409).
class NameTakenError : public Error {
 public:
  using Error::Error;
};

// A query for an experiment or stage that does not exist (HTTP 404).
class NotFoundError : public Error {
 public:
  using Error::Error;
};

// A request that the experiment's state does not allow, e.g. resuming a running one (HTTP 409).
class ConflictError : public Error {
 public:
  using Error::Error;
};

// A request whose options do not fit, e.g. a world size the global batch does not split over
// (HTTP 400).
class InvalidRequestError : public Error {
 public:
  using Error::Error;
};

// resume()'s options. With `ranks` (and allow_world_size_change, which says the user knows it is
// not bit-exact) the resumed stages (or only `stage`) run at that world size from now on.
struct ResumeOptions {
  int ranks = 0;  // 0 = keep each stage's world size
  bool allow_world_size_change = false;
  std::string stage;  // "" = every resumed stage takes `ranks`
};

struct CoordinatorOptions {
  std::string runs_root;          // absolute; run dirs are <runs_root>/<experiment>/<stage>/
  std::string zmq_endpoint;       // what workers connect to, e.g. "tcp://127.0.0.1:7622"
  std::function<double()> clock;  // wall-clock seconds for records; empty = log::now_seconds
  double cancel_grace_s = 60;     // cancel: SIGUSR1 (checkpoint and exit), then SIGKILL after this [ours]
  // A job whose worker sent nothing (no hello, heartbeat, metrics, ...) for this long is killed and
  // its run LOST (retried). Workers heartbeat every 5 s from their own thread. [ours]
  double heartbeat_timeout_s = 300;
  // Slots of the executor (local: CPU cores). A stage takes ranks x threads_per_rank; ready stages
  // start by experiment priority (higher first), then first come, first served (experiments in
  // submission order, stages in file order) while they fit. A stage larger than every slot runs
  // when nothing else does. 0 = no limit.
  int slots = 0;
  // false: the executor starts no job; ready stages wait for pull workers (`serve --executor pull`),
  // which claim them over the worker endpoint (protocol "claim"). Claims are served either way.
  bool launch_jobs = true;
};

struct Submission {
  std::string source;   // file it came from (for messages)
  nlohmann::json spec;  // resolved spec (spec_to_json); re-validated here
  std::string name;     // "" = the spec's own name
  int priority = 0;     // ExperimentRecord::priority
};

struct SubmitResult {
  std::string experiment;
  std::vector<std::string> runs;  // runs created (and launched) by the submission
};

// A sweep expanded by the CLI (shared/spec_toml/sweep.h): every cell a resolved spec.
struct SweepSubmission {
  std::string source;
  std::string name;
  std::vector<std::string> axes;
  struct Cell {
    std::string name;
    nlohmann::json values;  // {axis: value}
    nlohmann::json spec;    // spec_to_json; re-validated here
  };
  std::vector<Cell> cells;
  int priority = 0;
};

struct SweepSubmitResult {
  std::string sweep;
  std::vector<std::string> experiments;  // in sweep order
  std::vector<std::string> runs;         // launched at once (the others queue for slots)
};

// One experiment with its stages (in order) and runs, as stored.
struct ExperimentView {
  ExperimentRecord experiment;
  std::vector<StageRecord> stages;
  std::vector<RunRecord> runs;
  // The metric points of the evaluation stages (kind = "eval"), by stage name: their results
  // (FID, CLIP score, ... at each evaluated checkpoint's step).
  std::map<std::string, std::vector<MetricPoint>> evaluations;
  // Pending stages that have not started, by name: what they wait for (a parent, or slots).
  std::map<std::string, std::string> waiting;
  // Running runs' latest system figures from their heartbeats, by run id ({step, ranks: [{rank,
  // step_s, data_wait_s, comm_s, comm_hidden_s, peak_rss_mb}]}); kept in memory only (the stored
  // sys_* metric points hold their aggregates).
  std::map<std::string, nlohmann::json> system;
};

// A sweep and its cells' experiments, in sweep order.
struct SweepView {
  SweepRecord sweep;
  std::vector<ExperimentView> cells;  // sweep.cells[i]'s experiment
};

class Coordinator {
 public:
  // Reads its state back from `store` (see the header comment). Both references must outlive it.
  Coordinator(ExperimentStore& store, Executor& executor, CoordinatorOptions options);
  // Jobs still running are left running (and logged).
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Validates and stores a new experiment, then launches its ready stages. Throws SpecError
  // (invalid spec or name; a parent in another experiment or a bundle path that does not exist or
  // can never finish), NameTakenError, StoreError.
  SubmitResult submit(const Submission& submission);

  // Validates every cell, then stores the sweep and all its experiments in one batch and launches
  // their ready stages (cells queue in sweep order). Throws SpecError naming the cell,
  // NameTakenError (the sweep's or a cell's name), StoreError.
  SweepSubmitResult submit_sweep(const SweepSubmission& submission);

  // cancel / resume applied to every cell that allows it; ConflictError when none does.
  std::vector<std::string> cancel_sweep(const std::string& sweep);
  std::vector<std::string> resume_sweep(const std::string& sweep);

  // Removes a stopped experiment (or a sweep with every cell) from the store, and with `files` its
  // run directories. Throws NotFoundError, ConflictError (something still runs; cancel it first).
  void remove(const std::string& name, bool files);

  // Starts a new attempt of every stopped stage of a stopped (failed, lost, preempted, cancelled,
  // diverged) experiment whose parent is done, continuing from that stage's newest checkpoint;
  // their children follow. Manual resumes are not counted against max_attempts. Returns the first
  // run created. Throws NotFoundError, ConflictError (running or pending, or done), StoreError.
  // At another world size (ResumeOptions) the global batch stays, so the data order goes on where
  // it stopped, and the workers start new generator streams. InvalidRequestError for options that
  // do not fit a stage.
  std::string resume(const std::string& experiment, const ResumeOptions& options);
  std::string resume(const std::string& experiment) { return resume(experiment, ResumeOptions{}); }

  // Cancels a running experiment, or one stage of it (`stage` non-empty): each running attempt gets
  // SIGUSR1 (the worker checkpoints and exits) and SIGKILL if it is still there after
  // cancel_grace_s; its run ends CANCELLED and is not retried. Stages that have not started are
  // cancelled at once (all of them when the whole experiment is). `resume` continues cancelled
  // stages from their newest checkpoint. Returns the runs signalled. Throws NotFoundError,
  // ConflictError (nothing running or waiting to cancel).
  std::vector<std::string> cancel(const std::string& experiment, const std::string& stage = "");

  // One wire frame in, one reply out (spec, ack or error). Never throws: malformed,
  // unauthenticated and failing requests are logged and answered with an error message.
  protocol::Message handle_frame(const std::string& frame);
  protocol::Message handle(const protocol::Message& message);

  // Reaps ended jobs (deciding their runs' final states) and launches stages that are ready.
  void tick();

  std::optional<ExperimentView> experiment(const std::string& name) const;
  std::vector<ExperimentView> experiments() const;  // sorted by name
  std::optional<SweepView> sweep(const std::string& name) const;
  std::vector<SweepRecord> sweeps() const;  // sorted by name
  // Metric points of one stage ("" = the first stage), one metric ("" = all), each curve thinned
  // to about max_points (0 = every point; ExperimentStore::metrics). Throws NotFoundError.
  std::vector<MetricPoint> metrics(const std::string& experiment, const std::string& stage, const std::string& metric,
                                   std::size_t max_points = 0) const;

  const std::string& zmq_endpoint() const { return options_.zmq_endpoint; }
  std::size_t running_jobs() const;
  // Runs re-attached after a restart that no message has confirmed yet.
  std::size_t unconfirmed_jobs() const;

 private:
  using Reply = protocol::Message;

  double now() const;
  void recover();
  // Checks a submission (spec, name, parents outside it, evaluation files) and builds its records;
  // stores nothing. Throws as submit() does.
  ExperimentStore::Submission prepare(const Submission& submission, double submitted_at) const;
  std::string resume_locked(const std::string& experiment, const ResumeOptions& options = {});
  std::vector<std::string> cancel_locked(const std::string& experiment, const std::string& stage);
  // Re-attaches an active run's job after a restart; false when it is gone.
  bool reattach(const RunRecord& run);
  // SIGKILLs the jobs whose workers have been silent for heartbeat_timeout_s (t: liveness_now()).
  void check_liveness(double t);
  // Seconds on a clock that never jumps (steady), or the test clock when one is given.
  double liveness_now() const;
  double last_liveness_check_ = 0;
  ExperimentView view_locked(const ExperimentRecord& e) const;
  // view.waiting: what each pending, not yet started stage waits for.
  void waiting_reasons(const ExperimentRecord& e, ExperimentView& view) const;

  // Scheduling.
  // Starts every pending stage whose parent is ready (DESIGN.md "Stages form a DAG").
  // A worker started by the user that asks for work (pull mode): its world size, host and pid.
  struct PullWorker {
    std::int64_t world = 0;
    std::string host;
    std::int64_t pid = 0;
  };
  // With `pull`: at most one stage, whose ranks equal its world size, assigned to it instead of
  // launched (no slots needed); `waiting` counts the stages that fit it but wait for a parent.
  std::vector<std::string> launch_ready_stages(const std::string& experiment, const PullWorker* pull = nullptr,
                                               int* waiting = nullptr);
  // Pending stages that will still start: launched, ready, or waiting on a parent that will finish.
  std::set<std::string> live_pending_stages(const ExperimentRecord& e, const std::vector<StageRecord>& stages) const;
  // The experiment's state from its stages': done when all are, running while any runs or will
  // start, else the state of the first stage that stopped unfinished.
  void settle_experiment(const std::string& experiment, double t);
  std::string start_attempt(const ExperimentRecord& e, StageRecord stage, const PullWorker* pull = nullptr);
  // Records `run` as the stage's latest attempt and fails it with `error` (nothing was launched).
  std::string fail_before_launch(RunRecord run, StageRecord stage, const std::string& error);
  // `retryable`: the stage gets another attempt if its max_attempts allow (see the header comment).
  void finish_run(RunRecord run, RunState state, const std::string& error, bool retryable = false);
  void reap(const ProcessExit& exit);

  // Worker messages (the run is authenticated and still active).
  Reply on_hello(const protocol::Message& m, RunRecord run);
  Reply on_metrics(const protocol::Message& m, RunRecord run);
  Reply on_heartbeat(const protocol::Message& m, RunRecord run);
  Reply on_checkpoint(const protocol::Message& m, RunRecord run);
  Reply on_report(const protocol::Message& m, RunRecord run);  // done / failed / preempted
  Reply on_claim(const protocol::Message& m);                  // pull mode: the next stage for a worker

  ExperimentStore& store_;
  Executor& executor_;
  CoordinatorOptions options_;

  mutable std::mutex mu_;
  std::map<ProcessId, std::string> jobs_;  // launched (or re-attached) and not yet reaped: pid -> run id
  std::set<std::string> to_schedule_;      // experiments that may have a stage to launch
  // Slots in use by launched jobs (run id -> slots), and ready stages queued for slots, in the
  // order they get them: (-priority, submitted_at, experiment, stage index).
  using QueueKey = std::tuple<int, double, std::string, int>;
  static QueueKey queue_key(const ExperimentRecord& e, int stage_index);
  std::map<std::string, int> running_slots_;
  std::set<QueueKey> queued_;
  int slots_in_use() const;
  std::map<std::string, double> last_seen_;  // run id -> launch, re-attach or last message time
  std::set<std::string> silent_;             // runs SIGKILLed for heartbeat timeout, not yet reaped
  std::set<std::string> unconfirmed_;        // re-attached runs no message has confirmed yet
  // Active runs trained by pull workers: no local job, so their worker's reports and silence
  // decide how they end.
  std::set<std::string> pulled_;
  struct Cancelling {
    ProcessId pid = 0;
    double kill_at = 0;  // SIGKILL then, unless the job has ended
    bool killed = false;
  };
  std::map<std::string, Cancelling> cancelling_;  // run id -> its cancellation in progress
  std::map<std::string, nlohmann::json> system_;  // run id -> the latest system figures (heartbeats)
  // Run id -> metric batches stored above the run's last_seq (arrived out of order). Lost with a
  // restart, which costs at most a second (identical) write of a re-sent batch.
  std::map<std::string, std::set<std::uint64_t>> stored_ahead_;
};

}  // namespace ldm::coord
