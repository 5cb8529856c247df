#include "coordinator/local_executor.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

extern char** environ;

namespace ldm::coord {
namespace {

// Owns a file descriptor opened with O_CLOEXEC in the parent.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The parent's environment with the run's LDM_RUN_TOKEN (never another run's) and the executor's
// own variables.
std::vector<std::string> child_environment(const LaunchRequest& r,
                                           const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    bool replaced = starts_with(entry, "LDM_RUN_TOKEN=");
    for (const auto& [name, value] : extra) replaced = replaced || starts_with(entry, name + "=");
    if (!replaced) env.push_back(entry);
  }
  env.push_back("LDM_RUN_TOKEN=" + r.token);
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& items) {
  std::vector<char*> out;
  for (auto& s : items) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Async-signal-safe: closes every descriptor >= 3 (close_range where the kernel has it).
void close_descriptors_from_3(long max_fd) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
#endif
  for (long fd = 3; fd < max_fd; ++fd) ::close(static_cast<int>(fd));
}

// Async-signal-safe write of a C string to stderr (best effort: the child is about to exit).
void child_say(const char* text) {
  const ssize_t n = ::write(2, text, std::strlen(text));
  (void)n;
}

// errno as text without allocating or touching locales (safe after fork).
const char* errno_text(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* text = ::strerrordesc_np(err)) return text;
#endif
  return err == ENOENT ? "no such file or directory" : err == EACCES ? "permission denied" : "exec error";
}

// Runs in the forked child: only async-signal-safe calls, no allocation. Never returns.
[[noreturn]] void exec_child(const char* exe, char* const* argv, char* const* envp, const char* run_dir, int null_fd,
                             int log_fd, long max_fd, const char* exec_error) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGCHLD}) sigaction(sig, &dfl, nullptr);

  ::setsid();
  if (::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) ::_exit(127);
  if (::chdir(run_dir) != 0) {
    child_say(exec_error);
    child_say(": cannot enter the run directory: ");
    child_say(errno_text(errno));
    child_say("\n");
    ::_exit(127);
  }
  close_descriptors_from_3(max_fd);
  ::execve(exe, argv, envp);
  child_say(exec_error);
  child_say(": ");
  child_say(errno_text(errno));
  child_say("\n");
  ::_exit(127);
}

// The whole of a small /proc file, "" when it cannot be read (the process is gone).
std::string read_proc_file(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text, '\0');
  return text;
}

// The fields of /proc/<pid>/stat after "(comm)" (state first), empty when it cannot be read. comm
// may hold spaces and ')', so fields are counted from the last ')'.
std::vector<std::string> proc_stat_fields(long pid) {
  const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return {};
  return split(trim(stat.substr(close + 1)), ' ');
}

// Every process of session `sid` but its leader.
std::vector<pid_t> session_members(pid_t sid) {
  std::vector<pid_t> members;
  DIR* proc = ::opendir("/proc");
  if (!proc) return members;
  while (const dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == sid) continue;
    const std::vector<std::string> fields = proc_stat_fields(pid);  // state ppid pgrp session ...
    if (fields.size() > 3 && fields[3] == std::to_string(sid)) members.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  return members;
}

// A job's mpirun is gone (it ended, or was SIGKILLed by someone else): ranks still in its session
// would train on, and write checkpoints, beside the next attempt. They end here, before the
// coordinator can start that attempt.
void end_orphaned_ranks(ProcessId mpirun) {
  const std::vector<pid_t> orphans = session_members(static_cast<pid_t>(mpirun));
  for (const pid_t member : orphans) ::kill(member, SIGKILL);
  if (orphans.empty()) return;
  log::warn("mpirun (pid " + std::to_string(mpirun) + ") ended but " + std::to_string(orphans.size()) +
            " process(es) of its job were still running; killed them");
  // Wait (briefly) until they are gone, so that none writes into the run directory afterwards.
  for (int i = 0; i < 500; ++i) {
    bool alive = false;
    for (const pid_t member : orphans) {
      const std::vector<std::string> f = proc_stat_fields(member);
      alive = alive || (!f.empty() && f[0] != "Z" && f[0] != "X");
    }
    if (!alive) return;
    ::usleep(10000);
  }
}

}  // namespace

LocalExecutor::LocalExecutor(LocalExecutorOptions options) : options_(std::move(options)) {
  // Jobs run in their run directory: a relative worker path must not change meaning there.
  if (options_.worker.find('/') != std::string::npos) options_.worker = absolute_from_cwd(options_.worker);
}

std::vector<std::string> LocalExecutor::command_line(const LaunchRequest& r) const {
  std::vector<std::string> args = {options_.mpirun};
  if (::geteuid() == 0) args.push_back("--allow-run-as-root");
  for (const char* a : {"--oversubscribe", "--bind-to", "none", "-n"}) args.push_back(a);
  args.push_back(std::to_string(r.ranks));
  args.insert(args.end(), {"-x", "LDM_RUN_TOKEN"});
  for (const char* name : kForwardedEnvironment)
    if (const char* value = std::getenv(name); value && *value) args.insert(args.end(), {"-x", name});
  for (const auto& [name, value] : options_.environment) args.insert(args.end(), {"-x", name});
  args.insert(args.end(), {options_.worker, "train", "--coord", r.coord_endpoint, "--run", r.run_id});
  return args;
}

ProcessId LocalExecutor::launch(const LaunchRequest& r) {
  const std::string exe = resolve_executable(options_.mpirun);
  std::vector<std::string> args = command_line(r);
  std::vector<std::string> env = child_environment(r, options_.environment);
  std::vector<char*> argv = c_strings(args);
  std::vector<char*> envp = c_strings(env);

  const std::string log_dir = r.run_dir + "/logs";
  make_dirs(log_dir);
  const std::string log_path = log_dir + "/mpirun.log";
  Fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log_fd.get() < 0) throw_errno("run " + r.run_id + ": cannot open the job log", log_path);
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_fd.get() < 0) throw_errno("run " + r.run_id + ": cannot open", "/dev/null");

  const std::string exec_error = "ldm-coord: run " + r.run_id + ": cannot start " + exe;
  long max_fd = ::sysconf(_SC_OPEN_MAX);
  if (max_fd <= 0 || max_fd > 65536) max_fd = 65536;

  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("run " + r.run_id + ": fork failed for", exe);
  if (pid == 0)
    exec_child(exe.c_str(), argv.data(), envp.data(), r.run_dir.c_str(), null_fd.get(), log_fd.get(), max_fd,
               exec_error.c_str());
  children_.insert(pid);
  log::info("run " + r.run_id + ": started mpirun (pid " + std::to_string(pid) + ") in " + r.run_dir + ": " +
            join(args, " "));
  return pid;
}

std::vector<ProcessExit> LocalExecutor::poll_exits() {
  std::vector<ProcessExit> exits;
  for (auto it = children_.begin(); it != children_.end();) {
    int status = 0;
    const pid_t got = ::waitpid(static_cast<pid_t>(*it), &status, WNOHANG);
    if (got == 0 || (got < 0 && errno == EINTR)) {
      ++it;
      continue;
    }
    ProcessExit e;
    e.pid = *it;
    if (got > 0 && WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
    if (got > 0 && WIFSIGNALED(status)) e.signal = WTERMSIG(status);
    if (got < 0) log::warn("waitpid(" + std::to_string(*it) + "): " + std::strerror(errno));
    end_orphaned_ranks(*it);
    exits.push_back(e);
    it = children_.erase(it);
  }
  // Adopted jobs are not our children: their end is seen, not waited for, and its status is unknown.
  for (auto it = adopted_.begin(); it != adopted_.end();) {
    if (local_process_identity(it->first) == it->second) {
      ++it;
      continue;
    }
    end_orphaned_ranks(it->first);
    ProcessExit e;
    e.pid = it->first;
    e.status_known = false;
    exits.push_back(e);
    it = adopted_.erase(it);
  }
  return exits;
}

std::string LocalExecutor::identity(ProcessId pid) { return local_process_identity(pid); }

bool LocalExecutor::adopt(ProcessId pid, const std::string& identity) {
  if (pid <= 0 || identity.empty() || local_process_identity(pid) != identity) return false;
  adopted_[pid] = identity;
  return true;
}

std::string local_process_identity(ProcessId pid) {
  if (pid <= 0) return "";
  const std::vector<std::string> fields = proc_stat_fields(pid);              // field 22 of stat, starttime, is [19]
  if (fields.size() < 20 || fields[0] == "Z" || fields[0] == "X") return "";  // gone, or a zombie nobody reaped
  return trim(read_proc_file("/proc/sys/kernel/random/boot_id")) + "/" + fields[19];
}

void LocalExecutor::signal(ProcessId pid, int sig) {
  if (!children_.count(pid) && !adopted_.count(pid)) return;
  // An adopted job is not our child: its pid may have been reaped and reused since poll_exits.
  if (const auto adopted = adopted_.find(pid);
      adopted != adopted_.end() && local_process_identity(pid) != adopted->second)
    return;
  if (::kill(static_cast<pid_t>(pid), sig) != 0 && errno != ESRCH)
    log::warn("kill(" + std::to_string(pid) + ", " + std::to_string(sig) + "): " + std::strerror(errno));
  // SIGKILL ends the job's whole session (mpirun leads it: setsid), so that no rank outlives a
  // killed mpirun: OpenMPI puts each rank in a process group of its own, but in mpirun's session.
  // Other signals go to mpirun alone, which forwards them to the ranks.
  if (sig == SIGKILL)
    for (const pid_t member : session_members(static_cast<pid_t>(pid))) ::kill(member, SIGKILL);
}

std::string default_worker_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "ldm-worker";
  return parent_dir(std::string(buf, static_cast<std::size_t>(n))) + "/ldm-worker";
}

std::string absolute_from_cwd(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) throw_errno("cannot resolve", path);
  return std::string(cwd) + "/" + path;
}

std::string resolve_executable(const std::string& name) {
  if (name.empty()) throw Error("no mpirun program configured");
  if (name.find('/') != std::string::npos) {
    const std::string path = absolute_from_cwd(name);
    if (::access(path.c_str(), X_OK) != 0) throw_errno("cannot execute", path);
    return path;
  }
  const char* path = std::getenv("PATH");
  for (const std::string& dir : split(path ? path : "/usr/bin:/bin", ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw Error("cannot find '" + name + "' on PATH (set --mpirun or LDM_MPIRUN)");
}

}  // namespace ldm::coord
