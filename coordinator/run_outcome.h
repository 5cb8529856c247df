// How the final state of a run is decided when its job ends: from what the worker reported
// (done / failed / preempted, or nothing) and how mpirun exited. When the worker reported nothing,
// the error comes from the notes dying ranks leave in <run_dir>/failure-rank-<R>.txt, or else from
// mpirun's exit status and the tail of <run_dir>/logs/mpirun.log. Pure functions over files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/executor.h"
#include "shared/core/records.h"

namespace ldm::coord {

// The last terminal message a run's worker sent before its job ended.
enum class WorkerReport { None, Done, Failed, Preempted };

struct WorkerReportInfo {
  WorkerReport kind = WorkerReport::None;
  std::int64_t step = 0;
  std::string message;  // failed: the worker's message
};

struct RunOutcome {
  RunState state = RunState::Failed;
  std::string error;  // "" unless failed
};

RunOutcome decide_run_outcome(const WorkerReportInfo& report, const ProcessExit& exit,
                              const std::string& run_dir);

// The one-line notes of <run_dir>/failure-rank-*.txt, ordered by rank.
std::vector<std::string> read_failure_notes(const std::string& run_dir);

// Removes failure notes left in `run_dir` by an earlier attempt (before a new one starts).
void clear_failure_notes(const std::string& run_dir);

// "mpirun exited with code 3" / "mpirun was killed by signal 9 (SIGKILL)".
std::string describe_exit_status(const ProcessExit& exit);

// The last `n` non-empty lines of a text file ("" if it cannot be read).
std::string tail_lines(const std::string& path, int n);

}  // namespace ldm::coord
