// Fault injection for tests, and the crash note a dying rank leaves behind.
//
// LDM_FAULT="KIND@step:S,rank:R[,attempt:A][,experiment:NAME][,stage:NAME]" makes rank R fail at
// the start of step S (1-based), in every attempt of the stage or, with attempt:A, only in attempt
// A (to test retries), of every experiment and stage or only the named ones (so one coordinator can
// serve tests that inject different faults). Several plans are separated by ';'. Kinds:
//   abort  - std::abort() (a crash: the signal handler writes the note)
//   throw  - throws an Error (the normal error path: note + report + MPI_Abort)
//   exit   - _exit(3) without a word (the coordinator must notice on its own)
//   nan    - the rank's loss of that step is NaN, once per process (a bad batch: the step is skipped,
//            and a re-run of the step after a rollback is clean)
//   diverge - the rank's loss is NaN at that step and every later one, re-runs included (the run
//            skips, rolls back and ends `diverged`)
//   stop   - SIGSTOP to itself: the rank hangs, the others wait in a collective (the watchdog's case)
// It is a test tool, not data: the coordinator passes LDM_FAULT from its own environment to the
// workers it starts; nothing stores it or accepts it over the API.
// The crash note is one line in <run_dir>/failure-rank-R.txt, e.g.
//   "rank 1: crashed with signal 6 (SIGABRT) at step 5"
// which the coordinator reads when the job ends without a report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ldm::worker {

// Where a rank is: what a plan's selectors are matched against.
struct FaultSite {
  std::string experiment, stage;
  int rank = 0;
  int64_t step = 0;
  int attempt = 1;
};

struct FaultPlan {
  std::string kind;  // "" = no fault
  int64_t step = -1;
  int rank = -1;
  int attempt = -1;            // -1 = every attempt
  std::string experiment;      // "" = every experiment
  std::string stage;           // "" = every stage
  mutable bool fired = false;  // "nan" fires once per process
  bool matches(const FaultSite& site) const;
};

// Parses one plan, or several separated by ';' (an empty text is no plan); throws Error naming the
// text on a malformed value.
FaultPlan parse_fault(const std::string& text);
std::vector<FaultPlan> parse_faults(const std::string& text);
std::vector<FaultPlan> faults_from_env();

// Carries out the first plan matching `site`; returns true for "nan" and "diverge" (the caller
// poisons the loss).
bool maybe_inject_fault(const std::vector<FaultPlan>& plans, const FaultSite& site);

// Installs SIGSEGV/SIGABRT/SIGBUS/SIGFPE/SIGILL handlers that write the crash note for `rank`
// to `note_path` (async-signal-safe) and re-raise. set_current_step() keeps the step current.
void install_crash_handler(int rank, const std::string& note_path);
void set_current_step(int64_t step);
int64_t current_step();

// Writes a note for a handled error (normal code path, not a signal handler).
void write_failure_note(const std::string& note_path, const std::string& text);

}  // namespace ldm::worker
