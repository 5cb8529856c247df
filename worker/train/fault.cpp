#include "worker/train/fault.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "shared/core/error.h"
#include "shared/core/text.h"

namespace ldm::worker {

FaultPlan parse_fault(const std::string& text) {
  FaultPlan plan;
  if (text.empty()) return plan;
  const auto bad = [&](const std::string& why) {
    return Error("LDM_FAULT='" + text + "': " + why +
                 " (expected KIND@step:S,rank:R[,attempt:A][,experiment:NAME][,stage:NAME] with KIND "
                 "abort|throw|exit|nan|diverge|stop; several separated by ';')");
  };
  auto at = text.find('@');
  if (at == std::string::npos) throw bad("missing '@'");
  plan.kind = text.substr(0, at);
  if (plan.kind != "abort" && plan.kind != "throw" && plan.kind != "exit" && plan.kind != "nan" &&
      plan.kind != "diverge" && plan.kind != "stop")
    throw bad("unknown kind '" + plan.kind + "'");
  for (const auto& part : split(text.substr(at + 1), ',')) {
    auto colon = part.find(':');
    if (colon == std::string::npos) throw bad("'" + part + "' is not key:value");
    const std::string key = part.substr(0, colon), value = part.substr(colon + 1);
    if (key == "experiment" || key == "stage") {
      if (value.empty()) throw bad(key + " needs a name");
      (key == "experiment" ? plan.experiment : plan.stage) = value;
      continue;
    }
    char* end = nullptr;
    long long v = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end) throw bad("'" + value + "' is not an integer");
    if (key == "step") plan.step = v;
    else if (key == "rank") plan.rank = static_cast<int>(v);
    else if (key == "attempt" && v >= 1) plan.attempt = static_cast<int>(v);
    else if (key == "attempt") throw bad("attempt must be >= 1");
    else throw bad("unknown key '" + key + "'");
  }
  if (plan.step < 1 || plan.rank < 0) throw bad("step (>= 1) and rank (>= 0) are required");
  return plan;
}

std::vector<FaultPlan> parse_faults(const std::string& text) {
  std::vector<FaultPlan> plans;
  for (const std::string& part : split(text, ';'))
    if (!part.empty()) plans.push_back(parse_fault(part));
  return plans;
}

std::vector<FaultPlan> faults_from_env() {
  const char* env = std::getenv("LDM_FAULT");
  return parse_faults(env ? env : "");
}

bool FaultPlan::matches(const FaultSite& site) const {
  const bool at_step = kind == "diverge" ? site.step >= step : site.step == step;
  return !kind.empty() && rank == site.rank && at_step && (attempt == -1 || attempt == site.attempt) &&
         (experiment.empty() || experiment == site.experiment) && (stage.empty() || stage == site.stage);
}

bool maybe_inject_fault(const std::vector<FaultPlan>& plans, const FaultSite& site) {
  for (const FaultPlan& plan : plans) {
    if (!plan.matches(site)) continue;
    if (plan.kind == "abort") std::abort();
    if (plan.kind == "exit") ::_exit(3);
    if (plan.kind == "diverge") return true;
    if (plan.kind == "nan") {  // one bad batch: a step re-run after a rollback is clean
      if (plan.fired) continue;
      plan.fired = true;
      return true;
    }
    if (plan.kind == "stop") {  // every thread of the rank stops, as under SIGSTOP from outside
      ::kill(::getpid(), SIGSTOP);
      return false;
    }
    throw Error("injected fault (LDM_FAULT) on rank " + std::to_string(site.rank) + " at step " +
                std::to_string(site.step));
  }
  return false;
}

namespace {
std::atomic<int64_t> g_step{0};
int g_rank = 0;
char g_note_path[4096] = {0};

// Async-signal-safe decimal formatting.
char* put_int(char* p, int64_t v) {
  char tmp[24];
  int n = 0;
  bool neg = v < 0;
  uint64_t u = neg ? uint64_t(-(v + 1)) + 1 : uint64_t(v);
  do {
    tmp[n++] = char('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) *p++ = '-';
  while (n) *p++ = tmp[--n];
  return p;
}
char* put_str(char* p, const char* s) {
  while (*s) *p++ = *s++;
  return p;
}

void on_crash(int sig) {
  char line[256];
  char* p = put_str(line, "rank ");
  p = put_int(p, g_rank);
  p = put_str(p, ": crashed with signal ");
  p = put_int(p, sig);
  p = put_str(p, " (SIG");
  p = put_str(p, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
  p = put_str(p, ") at step ");
  p = put_int(p, g_step.load());
  *p++ = '\n';
  int fd = ::open(g_note_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ssize_t ignored = ::write(fd, line, static_cast<size_t>(p - line));
    (void)ignored;
    ::close(fd);
  }
  ssize_t ignored = ::write(2, line, static_cast<size_t>(p - line));
  (void)ignored;
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}
}  // namespace

void install_crash_handler(int rank, const std::string& note_path) {
  g_rank = rank;
  std::strncpy(g_note_path, note_path.c_str(), sizeof g_note_path - 1);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_crash;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) sigaction(sig, &sa, nullptr);
}

void set_current_step(int64_t step) { g_step.store(step); }
int64_t current_step() { return g_step.load(); }

void write_failure_note(const std::string& note_path, const std::string& text) {
  int fd = ::open(note_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;  // best effort: we are already failing; the log has the message too
  std::string line = text + "\n";
  ssize_t ignored = ::write(fd, line.data(), line.size());
  (void)ignored;
  ::close(fd);
}

}  // namespace ldm::worker
