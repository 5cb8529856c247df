// Fault injection for tests, and the crash note a dying rank leaves behind.
//
// LDM_FAULT="KIND@step:S,rank:R[,attempt:A]" makes rank R fail at the start of step S (1-based),
// in every attempt of the stage or, with attempt:A, only in attempt A (to test retries):
//   abort  - std::abort() (a crash: the signal handler writes the note)
//   throw  - throws an Error (the normal error path: note + report + MPI_Abort)
//   exit   - _exit(3) without a word (the coordinator must notice on its own)
// The crash note is one line in <run_dir>/failure-rank-R.txt, e.g.
//   "rank 1: crashed with signal 6 (SIGABRT) at step 5"
// which the coordinator reads when the job ends without a report.
#pragma once

#include <cstdint>
#include <string>

namespace ldm::worker {

struct FaultPlan {
  std::string kind;  // "" = no fault
  int64_t step = -1;
  int rank = -1;
  int attempt = -1;  // -1 = every attempt
};

// Parses the LDM_FAULT syntax; throws Error naming the text on a malformed value.
FaultPlan parse_fault(const std::string& text);
FaultPlan fault_from_env();

// Acts on the plan if (rank, step, attempt) match.
void maybe_inject_fault(const FaultPlan& plan, int rank, int64_t step, int attempt = 1);

// Installs SIGSEGV/SIGABRT/SIGBUS/SIGFPE/SIGILL handlers that write the crash note for `rank`
// to `note_path` (async-signal-safe) and re-raise. set_current_step() keeps the step current.
void install_crash_handler(int rank, const std::string& note_path);
void set_current_step(int64_t step);
int64_t current_step();

// Writes a note for a handled error (normal code path, not a signal handler).
void write_failure_note(const std::string& note_path, const std::string& text);

}  // namespace ldm::worker
