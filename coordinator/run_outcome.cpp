#include "coordinator/run_outcome.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

#include "shared/core/checkpoint_dir.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

constexpr int kLogTailLines = 5;

const char* signal_name(int sig) {
  switch (sig) {
    case 1:
      return "SIGHUP";
    case 2:
      return "SIGINT";
    case 3:
      return "SIGQUIT";
    case 4:
      return "SIGILL";
    case 6:
      return "SIGABRT";
    case 7:
      return "SIGBUS";
    case 8:
      return "SIGFPE";
    case 9:
      return "SIGKILL";
    case 10:
      return "SIGUSR1";
    case 11:
      return "SIGSEGV";
    case 13:
      return "SIGPIPE";
    case 15:
      return "SIGTERM";
    default:
      return nullptr;
  }
}

// The exit status plus the last lines of the job log, for a job that left no rank notes.
std::string describe_exit_with_log(const ProcessExit& exit, const std::string& run_dir) {
  std::string out = describe_exit_status(exit);
  const std::string log_path = run_dir + "/logs/mpirun.log";
  const std::string tail = tail_lines(log_path, kLogTailLines);
  if (!tail.empty()) out += "; last lines of " + log_path + ":\n" + tail;
  return out;
}

// (rank, path) of every <run_dir>/failure-rank-<R>.txt, unordered.
std::vector<std::pair<long, std::string>> failure_note_files(const std::string& run_dir) {
  std::vector<std::pair<long, std::string>> files;
  DIR* dir = ::opendir(run_dir.c_str());
  if (!dir) return files;
  const std::string prefix = "failure-rank-", suffix = ".txt";
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.size() <= prefix.size() + suffix.size() || !starts_with(name, prefix) ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string rank = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    files.emplace_back(std::strtol(rank.c_str(), nullptr, 10), run_dir + "/" + name);
  }
  ::closedir(dir);
  return files;
}

}  // namespace

void clear_failure_notes(const std::string& run_dir) {
  for (const auto& file : failure_note_files(run_dir)) ::unlink(file.second.c_str());
}

std::string describe_exit_status(const ProcessExit& exit) {
  if (exit.signal > 0) {
    std::string s = "mpirun was killed by signal " + std::to_string(exit.signal);
    if (const char* name = signal_name(exit.signal)) s += std::string(" (") + name + ")";
    return s;
  }
  if (!exit.status_known)
    return "mpirun (pid " + std::to_string(exit.pid) +
           ") ended while no coordinator that started it was watching; its exit status is unknown";
  if (exit.exit_code < 0) return "mpirun ended with an unknown exit status";
  return "mpirun exited with code " + std::to_string(exit.exit_code);
}

std::vector<std::string> read_failure_notes(const std::string& run_dir) {
  std::vector<std::pair<long, std::string>> notes;  // (rank, note)
  for (const auto& [rank, file] : failure_note_files(run_dir)) {
    try {
      const std::string note = trim(read_file(file));
      if (!note.empty()) notes.emplace_back(rank, note);
    } catch (const std::exception&) {
      // A note that vanished or cannot be read adds nothing; the exit status still explains.
    }
  }
  std::sort(notes.begin(), notes.end());
  std::vector<std::string> out;
  for (auto& n : notes) out.push_back(std::move(n.second));
  return out;
}

std::string tail_lines(const std::string& path, int n) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::exception&) {
    return "";
  }
  std::vector<std::string> lines;
  for (const std::string& line : split(text, '\n'))
    if (!trim(line).empty()) lines.push_back(line);
  const std::size_t first = lines.size() > static_cast<std::size_t>(n) ? lines.size() - n : 0;
  return join(std::vector<std::string>(lines.begin() + static_cast<long>(first), lines.end()), "\n");
}

std::optional<ResumePoint> newest_checkpoint(const std::string& run_dir) {
  const auto newest = newest_bundle(run_dir + "/checkpoints");
  if (!newest) return std::nullopt;
  ResumePoint p;
  p.bundle = newest->dir;
  const std::string manifest = p.bundle + "/manifest.json";
  p.step = parse_bundle_manifest(read_file(manifest), manifest).at("step").get<std::int64_t>();
  if (p.step != newest->step)
    throw Error(manifest + ": step " + std::to_string(p.step) + " in a bundle named for step " +
                std::to_string(newest->step));
  return p;
}

const char* to_string(WorkerReport report) {
  switch (report) {
    case WorkerReport::Done:
      return "done";
    case WorkerReport::Failed:
      return "failed";
    case WorkerReport::Diverged:
      return "diverged";
    case WorkerReport::Preempted:
      return "preempted";
    case WorkerReport::None:
      break;
  }
  return "";
}

WorkerReport worker_report_from_string(const std::string& text) {
  for (WorkerReport r : {WorkerReport::Done, WorkerReport::Failed, WorkerReport::Diverged, WorkerReport::Preempted})
    if (text == to_string(r)) return r;
  return WorkerReport::None;
}

RunOutcome decide_run_outcome(const WorkerReportInfo& report, const ProcessExit& exit, const std::string& run_dir) {
  // An adopted job's status is unknown: its worker's own report decides (done is done).
  const bool clean_exit =
      exit.status_known ? exit.signal == 0 && exit.exit_code == 0 : report.kind == WorkerReport::Done;
  switch (report.kind) {
    case WorkerReport::Preempted:
      return {RunState::Preempted, "", true};
    case WorkerReport::Failed:
      if (!report.message.empty()) return {RunState::Failed, report.message};
      break;
    case WorkerReport::Diverged:  // however the job ended: a diverged training is not retried
      return {RunState::Diverged, report.message, false};
    case WorkerReport::Done:
      if (clean_exit) return {RunState::Done, ""};
      break;
    case WorkerReport::None:
      if (clean_exit) return {RunState::Failed, "worker exited without reporting completion"};
      break;
  }
  const std::vector<std::string> notes = read_failure_notes(run_dir);
  if (!exit.status_known && report.kind == WorkerReport::None && notes.empty())
    return {RunState::Lost, describe_exit_status(exit) + ", and its worker reported nothing", true};
  std::string error = notes.empty() ? describe_exit_with_log(exit, run_dir) : join(notes, "; ");
  if (report.kind == WorkerReport::Done)
    error = "worker reported completion at step " + std::to_string(report.step) + " but " + error;
  // A handled error leaves "rank R: error at step S: ..." (worker/cli/main.cpp); a crash leaves
  // "rank R: crashed with signal ..." and a killed job leaves nothing.
  bool reported_error = report.kind == WorkerReport::Failed;
  for (const std::string& note : notes)
    reported_error = reported_error || note.find(": error at step ") != std::string::npos;
  return {RunState::Failed, error, !reported_error};
}

}  // namespace ldm::coord
