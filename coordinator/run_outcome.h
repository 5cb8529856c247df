// How the final state of a run is decided when its job ends: from what the worker reported
// (done / failed / preempted, or nothing) and how mpirun exited. When the worker reported nothing,
// the error comes from the notes dying ranks leave in <run_dir>/failure-rank-<R>.txt, or else from
// mpirun's exit status and the tail of <run_dir>/logs/mpirun.log. Pure functions over files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/executor.h"
#include "shared/core/records.h"

namespace ldm::coord {

// The last terminal message a run's worker sent before its job ended (RunRecord::report).
enum class WorkerReport { None, Done, Failed, Diverged, Preempted };
const char* to_string(WorkerReport report);                       // "", "done", "failed", "diverged", "preempted"
WorkerReport worker_report_from_string(const std::string& text);  // unknown text -> None

struct WorkerReportInfo {
  WorkerReport kind = WorkerReport::None;
  std::int64_t step = 0;
  std::string message;  // failed: the worker's message
};

struct RunOutcome {
  RunState state = RunState::Failed;
  std::string error;  // "" unless failed
  // Another attempt could succeed: the run was preempted, or its job crashed, was killed or
  // vanished without any rank reporting an error. An error a rank reported (a note "rank R: error
  // at step S: ..." or a failed message: bad data, a bad spec) would only happen again.
  bool retryable = false;
};

// A job whose exit status is unknown (re-attached after a coordinator restart) that left no report
// and no note is LOST, and retryable.
RunOutcome decide_run_outcome(const WorkerReportInfo& report, const ProcessExit& exit, const std::string& run_dir);

// The one-line notes of <run_dir>/failure-rank-*.txt, ordered by rank.
std::vector<std::string> read_failure_notes(const std::string& run_dir);

// Removes failure notes left in `run_dir` by an earlier attempt (before a new one starts).
void clear_failure_notes(const std::string& run_dir);

// The bundle a new attempt of the stage in `run_dir` continues from: the newest complete bundle
// in <run_dir>/checkpoints (shared/core/checkpoint_dir.h: `latest` may lag behind after a kill),
// with the step of its manifest. nullopt when there is none yet (the attempt starts from scratch);
// throws Error naming the manifest when it is unreadable or disagrees with its directory's name.
struct ResumePoint {
  std::string bundle;  // absolute path of checkpoints/step-NNNNNNN
  std::int64_t step = 0;
};
std::optional<ResumePoint> newest_checkpoint(const std::string& run_dir);

// "mpirun exited with code 3" / "mpirun was killed by signal 9 (SIGKILL)".
std::string describe_exit_status(const ProcessExit& exit);

// The last `n` non-empty lines of a text file ("" if it cannot be read).
std::string tail_lines(const std::string& path, int n);

}  // namespace ldm::coord
