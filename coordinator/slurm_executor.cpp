#include "coordinator/slurm_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>

#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

extern char** environ;

namespace ldm::coord {
namespace {

// Single-quoted for the shell.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Output {
  int status = -1;  // exit code; -1 when it could not run or was killed
  std::string out, err;
};

// Runs `argv` (looked up on PATH) with `extra` added to the environment; captures stdout and
// stderr; kills it after `timeout_s`.
Output run_program(const std::vector<std::string>& argv, const std::vector<std::string>& extra = {},
                   double timeout_s = 30) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) throw_errno("pipe failed for", argv[0]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    bool replaced = false;
    for (const std::string& x : extra)
      replaced = replaced || entry.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0;
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  Output o;
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    o.err = "cannot run " + argv[0] + ": " + std::strerror(rc);
    return o;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0 && std::chrono::steady_clock::now() < deadline) {
    if (::poll(fds, 2, 200) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? o.out : o.err).append(buf, static_cast<std::size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  if (open_fds > 0) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  o.status = WIFEXITED(status) && open_fds == 0 ? WEXITSTATUS(status) : -1;
  if (open_fds > 0) o.err += "\n(" + argv[0] + " did not finish within " + std::to_string(int(timeout_s)) + " s)";
  return o;
}

// squeue for this user's jobs only (the coordinator submits them as itself).
Output squeue_mine() {
  const passwd* pw = ::getpwuid(::geteuid());
  std::vector<std::string> argv = {"squeue", "-h", "-o", "%i|%T|%j"};
  if (pw && pw->pw_name) argv.insert(argv.end(), {"-u", pw->pw_name});
  return run_program(argv);
}

std::string exit_file(const std::string& run_dir, ProcessId job) {
  return run_dir + "/slurm/" + std::to_string(job) + ".exit";
}

}  // namespace

SlurmOptions with_experiment_knobs(SlurmOptions o, const ExecutorSpec& e) {
  for (auto [mine, theirs] : {std::pair{&o.partition, &e.partition}, std::pair{&o.account, &e.account},
                              std::pair{&o.qos, &e.qos}, std::pair{&o.time_limit, &e.time}})
    if (!theirs->empty()) *mine = *theirs;
  if (e.nodes > 0) o.nodes = static_cast<int>(e.nodes);
  if (e.tasks_per_node > 0) o.tasks_per_node = static_cast<int>(e.tasks_per_node);
  if (e.gpus_per_node > 0) o.gpus_per_node = static_cast<int>(e.gpus_per_node);
  if (e.signal_before_s > 0) o.signal_before_s = static_cast<int>(e.signal_before_s);
  o.extra_sbatch.insert(o.extra_sbatch.end(), e.sbatch.begin(), e.sbatch.end());
  o.setup.insert(o.setup.end(), e.setup.begin(), e.setup.end());
  return o;
}

std::string slurm_job_name(const std::string& run_id) { return "ldm." + run_id; }

std::string slurm_batch_script(const LaunchRequest& r, const SlurmOptions& o) {
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# ldm-coord: attempt " << r.run_id << " (written for this attempt; resubmitting it by hand is not supported)\n";
  s << "#SBATCH --job-name=" << slurm_job_name(r.run_id) << "\n";
  s << "#SBATCH --ntasks=" << r.ranks << "\n";
  s << "#SBATCH --cpus-per-task=" << (o.cpus_per_task > 0 ? o.cpus_per_task : r.threads_per_rank) << "\n";
  if (o.nodes > 0) s << "#SBATCH --nodes=" << o.nodes << "\n";
  if (o.tasks_per_node > 0) s << "#SBATCH --ntasks-per-node=" << o.tasks_per_node << "\n";
  if (o.gpus_per_node > 0) s << "#SBATCH --gpus-per-node=" << o.gpus_per_node << "\n";
  if (!o.time_limit.empty()) s << "#SBATCH --time=" << o.time_limit << "\n";
  if (!o.partition.empty()) s << "#SBATCH --partition=" << o.partition << "\n";
  if (!o.account.empty()) s << "#SBATCH --account=" << o.account << "\n";
  if (!o.qos.empty()) s << "#SBATCH --qos=" << o.qos << "\n";
  if (o.signal_before_s > 0) s << "#SBATCH --signal=B:USR1@" << o.signal_before_s << "\n";
  s << "#SBATCH --chdir=" << r.run_dir << "\n";
  s << "#SBATCH --output=" << r.run_dir << "/logs/slurm-%j.out\n";
  s << "#SBATCH --no-requeue\n";  // a new attempt, not a requeue, continues a preempted job
  for (const std::string& line : o.extra_sbatch) s << "#SBATCH " << line << "\n";
  s << "set -u\n";
  for (const std::string& line : o.setup) s << line << "\n";
  s << "# SIGUSR1 (the time limit is near, or `ldm-coord cancel`): the ranks checkpoint and stop.\n";
  s << "trap 'kill -USR1 \"$step\" 2>/dev/null' USR1\n";
  s << "srun --mpi=pmix --kill-on-bad-exit=1 " << quoted(o.worker) << " train --coord " << quoted(r.coord_endpoint)
    << " --run " << quoted(r.run_id) << " &\n";
  s << "step=$!\n";
  s << "wait \"$step\"; rc=$?\n";
  s << "while kill -0 \"$step\" 2>/dev/null; do wait \"$step\"; rc=$?; done  # a trapped signal interrupts wait\n";
  s << "mkdir -p slurm && echo \"$rc\" > \"slurm/$SLURM_JOB_ID.exit\"\n";
  s << "exit \"$rc\"\n";
  return s.str();
}

ProcessId parse_sbatch_parsable(const std::string& out) {
  const std::string line = first_line(trim(out));
  const std::string id = line.substr(0, line.find(';'));
  char* end = nullptr;
  const long long v = std::strtoll(id.c_str(), &end, 10);
  if (id.empty() || *end || v <= 0) throw Error("sbatch --parsable printed '" + line + "', not a job id");
  return v;
}

std::map<ProcessId, std::pair<std::string, std::string>> parse_squeue(const std::string& out) {
  std::map<ProcessId, std::pair<std::string, std::string>> jobs;
  for (const std::string& raw : split(out, '\n')) {
    const std::vector<std::string> f = split(trim(raw), '|');
    if (f.size() < 3) continue;
    char* end = nullptr;
    const long long id = std::strtoll(f[0].c_str(), &end, 10);
    if (f[0].empty() || *end) continue;  // array or het-job ids ("12_3", "12+1") are not ours
    jobs[id] = {f[1], f[2]};
  }
  return jobs;
}

ScontrolJob parse_scontrol_job(const std::string& out) {
  ScontrolJob j;
  std::istringstream in(out);
  for (std::string word; in >> word;) {
    if (word.rfind("JobState=", 0) == 0) j.state = word.substr(9);
    if (word.rfind("ExitCode=", 0) == 0) {
      const std::string v = word.substr(9);
      const auto colon = v.find(':');
      j.exit_code = std::atoi(v.substr(0, colon).c_str());
      j.signal = colon == std::string::npos ? 0 : std::atoi(v.substr(colon + 1).c_str());
    }
  }
  return j;
}

bool slurm_state_ended(const std::string& state) {
  for (const char* s : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY",
                        "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"})
    if (state.rfind(s, 0) == 0) return true;
  return false;
}

SlurmExecutor::SlurmExecutor(SlurmOptions options) : options_(std::move(options)) {
  const Output o = run_program({"squeue", "--version"});
  if (o.status != 0)
    throw Error("the SLURM executor needs squeue and sbatch on PATH: " +
                first_line(trim(o.err.empty() ? o.out : o.err)));
}

ProcessId SlurmExecutor::launch(const LaunchRequest& r) {
  make_dirs(r.run_dir + "/logs");
  make_dirs(r.run_dir + "/slurm");
  const std::string script = r.run_dir + "/slurm/" + r.run_id + ".sh";
  write_file_atomic(script, slurm_batch_script(r, with_experiment_knobs(options_, r.executor)));
  std::vector<std::string> env = {"LDM_RUN_TOKEN=" + r.token};
  for (const auto& [name, value] : options_.environment) env.push_back(name + "=" + value);
  const Output o = run_program({"sbatch", "--parsable", "--export=ALL", script}, env);
  if (o.status != 0) throw Error("sbatch refused " + script + ": " + trim(o.err.empty() ? o.out : o.err));
  const ProcessId job = parse_sbatch_parsable(o.out);
  jobs_[job] = {slurm_job_name(r.run_id), r.run_dir};
  log::info("run " + r.run_id + ": submitted SLURM job " + std::to_string(job) + " (" + script + ")");
  return job;
}

std::vector<ProcessExit> SlurmExecutor::poll_exits() {
  std::vector<ProcessExit> exits;
  const double now = log::now_seconds();
  if (jobs_.empty() || now - last_poll_ < options_.poll_interval_s) return exits;
  last_poll_ = now;
  const Output q = squeue_mine();
  if (q.status != 0) {
    log::warn("squeue failed (jobs are looked at again later): " + first_line(trim(q.err)));
    return exits;
  }
  const auto listed = parse_squeue(q.out);
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    const auto seen = listed.find(it->first);
    if (seen != listed.end() && !slurm_state_ended(seen->second.first)) {
      ++it;
      continue;
    }
    ProcessExit e;
    e.pid = it->first;
    const std::string file = exit_file(it->second.run_dir, it->first);
    if (path_exists(file)) {
      e.exit_code = std::atoi(trim(read_file(file)).c_str());
      if (e.exit_code > 128) {  // srun's status for a signalled step
        e.signal = e.exit_code - 128;
        e.exit_code = -1;
      }
    } else {
      const ScontrolJob j = parse_scontrol_job(run_program({"scontrol", "show", "job", std::to_string(it->first)}).out);
      if (j.exit_code >= 0) {
        e.exit_code = j.signal ? -1 : j.exit_code;
        e.signal = j.signal;
        if (j.state.rfind("CANCELLED", 0) == 0 && !j.signal) e.signal = SIGKILL;  // scancel before srun ended
      } else {
        e.status_known = false;
      }
    }
    exits.push_back(e);
    it = jobs_.erase(it);
  }
  return exits;
}

void SlurmExecutor::signal(ProcessId job, int sig) {
  if (!jobs_.count(job)) return;
  const std::vector<std::string> argv =
      sig == SIGUSR1 ? std::vector<std::string>{"scancel", "--batch", "--signal=USR1", std::to_string(job)}
                     : std::vector<std::string>{"scancel", std::to_string(job)};
  const Output o = run_program(argv);
  if (o.status != 0) log::warn(join(argv, " ") + ": " + first_line(trim(o.err)));
}

std::string SlurmExecutor::identity(ProcessId job) {
  const auto it = jobs_.find(job);
  return it == jobs_.end() ? "" : "slurm:" + std::to_string(job) + ":" + it->second.name;
}

bool SlurmExecutor::adopt(ProcessId job, const std::string& identity) {
  const std::string prefix = "slurm:" + std::to_string(job) + ":";
  if (identity.rfind(prefix, 0) != 0) return false;
  const std::string name = identity.substr(prefix.size());
  const Output q = squeue_mine();
  const auto listed = parse_squeue(q.out);
  const auto it = listed.find(job);
  if (q.status != 0 || it == listed.end() || it->second.second != name || slurm_state_ended(it->second.first))
    return false;
  // The run directory: the job name is ldm.<experiment>.<stage>.a<N>; the exit file is found through
  // scontrol's WorkDir.
  const std::string info = run_program({"scontrol", "show", "job", std::to_string(job)}).out;
  std::string work_dir;
  std::istringstream in(info);
  for (std::string word; in >> word;)
    if (word.rfind("WorkDir=", 0) == 0) work_dir = word.substr(8);
  jobs_[job] = {name, work_dir};
  return true;
}

}  // namespace ldm::coord
