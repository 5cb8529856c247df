// The local executor's process contract, checked with shell scripts standing in for mpirun.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <sstream>

#include "coordinator/local_executor.h"
#include "shared/core/safe_file.h"
#include "tests/coordinator/test_support.h"

using namespace ldm;
using namespace ldm::coord;
using namespace ldm::coord::testing;

namespace {

// A listening TCP socket on an ephemeral port, deliberately WITHOUT close-on-exec.
class InheritableListener {
 public:
  InheritableListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 1) == 0);
  }
  ~InheritableListener() { ::close(fd_); }

 private:
  int fd_ = -1;
};

// Reports what the child sees as key=value lines in its log, then exits 3.
const char* kProbeScript = R"SH(echo "args=$*"
echo "pid=$$"
echo "sid=$(awk '{print $6}' /proc/$$/stat)"
echo "stdin=$(readlink /proc/$$/fd/0)"
echo "token=$LDM_RUN_TOKEN"
echo "fault=${LDM_FAULT-unset}"
echo "cwd=$(pwd)"
echo "sockets=$(ls -l /proc/$$/fd | grep -c socket)"
exit 3
)SH";

std::map<std::string, std::string> read_probe(const std::string& log_path) {
  std::map<std::string, std::string> out;
  std::istringstream in(read_file(log_path));
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

ProcessExit wait_for_exit(LocalExecutor& executor, ProcessId pid) {
  ProcessExit result;
  bool found = false;
  REQUIRE(wait_until([&] {
    for (const ProcessExit& e : executor.poll_exits())
      if (e.pid == pid) {
        result = e;
        found = true;
      }
    return found;
  }));
  return result;
}

struct Setup {
  TempDir dir;
  LaunchRequest request;
  Setup() {
    request.run_id = "exp.train.a1";
    request.token = "secret-token";
    request.ranks = 2;
    request.run_dir = dir.path() + "/runs/exp/train";  // created by launch()
    request.coord_endpoint = "tcp://127.0.0.1:5999";
  }
  LocalExecutor executor_with(const std::string& script_body) {
    return LocalExecutor({write_script(dir.path() + "/fake-mpirun", script_body), "/opt/ldm-worker"});
  }
  std::string log() const { return request.run_dir + "/logs/mpirun.log"; }
};

}  // namespace

TEST_CASE(
    "a job runs in its own session, stdin from /dev/null, in its run dir, with its token "
    "and no inherited sockets") {
  Setup s;
  InheritableListener listener;
  ::unsetenv("LDM_FAULT");
  ::setenv("LDM_RUN_TOKEN", "leaked-token", 1);  // another run's token must not reach this job
  LocalExecutor executor = s.executor_with(kProbeScript);
  const ProcessId pid = executor.launch(s.request);
  ::unsetenv("LDM_RUN_TOKEN");
  const ProcessExit exit = wait_for_exit(executor, pid);
  CHECK(exit.exit_code == 3);
  CHECK(exit.signal == 0);

  const auto probe = read_probe(s.log());
  CAPTURE(read_file(s.log()));
  CHECK(probe.at("pid") == std::to_string(pid));
  CHECK(probe.at("sid") == std::to_string(pid));  // session leader: setsid() ran
  CHECK(probe.at("stdin") == "/dev/null");
  CHECK(probe.at("token") == "secret-token");
  CHECK(probe.at("fault") == "unset");
  CHECK(probe.at("cwd") == s.request.run_dir);
  CHECK(probe.at("sockets") == "0");
  const std::string root = ::geteuid() == 0 ? "--allow-run-as-root " : "";
  CHECK(probe.at("args") == root +
                                "--oversubscribe --bind-to none -n 2 -x LDM_RUN_TOKEN /opt/ldm-worker "
                                "train --coord tcp://127.0.0.1:5999 --run exp.train.a1");
}

TEST_CASE("LDM_FAULT and LDM_LOG_LEVEL of the coordinator's own environment reach the job and every rank") {
  Setup s;
  ::setenv("LDM_FAULT", "abort@experiment:exp,step:5,rank:1", 1);
  ::setenv("LDM_LOG_LEVEL", "debug", 1);
  LocalExecutor executor = s.executor_with(kProbeScript);
  const ProcessId pid = executor.launch(s.request);
  ::unsetenv("LDM_FAULT");
  ::unsetenv("LDM_LOG_LEVEL");
  wait_for_exit(executor, pid);
  const auto probe = read_probe(s.log());
  CHECK(probe.at("fault") == "abort@experiment:exp,step:5,rank:1");
  CHECK(probe.at("args").find("-x LDM_RUN_TOKEN -x LDM_FAULT -x LDM_LOG_LEVEL /opt/ldm-worker") != std::string::npos);
}

TEST_CASE("a job killed by a signal is reaped with that signal, once") {
  Setup s;
  LocalExecutor executor = s.executor_with("kill -9 $$\n");
  const ProcessId pid = executor.launch(s.request);
  const ProcessExit exit = wait_for_exit(executor, pid);
  CHECK(exit.signal == 9);
  CHECK(exit.exit_code == -1);
  CHECK(executor.poll_exits().empty());
}

TEST_CASE("signal() delivers SIGUSR1 to mpirun (preemption)") {
  Setup s;
  LocalExecutor executor =
      s.executor_with("trap 'echo got-usr1; exit 0' USR1\ntouch ready\nwhile :; do sleep 0.05; done\n");
  const ProcessId pid = executor.launch(s.request);
  REQUIRE(wait_until([&] { return path_exists(s.request.run_dir + "/ready"); }));
  executor.signal(pid, SIGUSR1);
  const ProcessExit exit = wait_for_exit(executor, pid);
  CHECK(exit.exit_code == 0);
  CHECK(read_file(s.log()).find("got-usr1") != std::string::npos);
}

TEST_CASE("SIGKILL ends the whole job: mpirun and every process it started, in its own process group too") {
  Setup s;
  // The "rank" gets a process group of its own, as OpenMPI's do (perl-base is essential in Debian).
  LocalExecutor executor = s.executor_with(
      "perl -e 'setpgrp(0, 0); exec \"sleep\", \"300\"' &\necho $! > rank.pid\n"
      "while [ \"$(awk '{print $5}' /proc/$(cat rank.pid)/stat)\" != \"$(cat rank.pid)\" ]; do sleep 0.01; done\n"
      "touch ready\nwait\n");
  const ProcessId pid = executor.launch(s.request);
  REQUIRE(wait_until([&] { return path_exists(s.request.run_dir + "/ready"); }));
  const ProcessId rank = std::stoll(read_file(s.request.run_dir + "/rank.pid"));
  REQUIRE(!local_process_identity(rank).empty());
  CHECK(::getpgid(static_cast<pid_t>(rank)) == rank);
  executor.signal(pid, SIGKILL);
  CHECK(wait_for_exit(executor, pid).signal == SIGKILL);
  CHECK(wait_until([&] { return local_process_identity(rank).empty(); }));  // gone (or a zombie nobody reaped)
}

TEST_CASE("a restarted executor adopts a running job by its identity and sees it end, status unknown") {
  Setup s;
  LocalExecutor first = s.executor_with("touch ready\nexec sleep 300\n");
  const ProcessId pid = first.launch(s.request);
  REQUIRE(wait_until([&] { return path_exists(s.request.run_dir + "/ready"); }));
  const std::string identity = first.identity(pid);
  CHECK(identity.find('/') != std::string::npos);
  CHECK(identity == local_process_identity(pid));  // exec keeps the process start time

  LocalExecutor second({"mpirun", "/opt/ldm-worker"});
  CHECK_FALSE(second.adopt(pid, identity + "0"));  // another start time: a recycled pid
  CHECK_FALSE(second.adopt(::getpid() + 4000000, identity));
  REQUIRE(second.adopt(pid, identity));
  CHECK(second.poll_exits().empty());
  second.signal(pid, SIGKILL);                          // an adopted job can be killed too
  const ProcessExit exit = wait_for_exit(second, pid);  // a zombie until `first` reaps it: seen as ended
  CHECK_FALSE(exit.status_known);
  CHECK(second.poll_exits().empty());
  CHECK(wait_for_exit(first, pid).signal == SIGKILL);
}

TEST_CASE("a missing mpirun is an error naming it, and nothing is started") {
  Setup s;
  LocalExecutor by_name({"no-such-mpirun-xyz", "/opt/ldm-worker"});
  CHECK_THROWS_WITH_AS(by_name.launch(s.request),
                       "cannot find 'no-such-mpirun-xyz' on PATH (set --mpirun or LDM_MPIRUN)", Error);
  LocalExecutor by_path({s.dir.path() + "/missing", "/opt/ldm-worker"});
  CHECK_THROWS_AS(by_path.launch(s.request), Error);
  CHECK(by_path.poll_exits().empty());
}

TEST_CASE("the default worker path is ldm-worker beside the running executable") {
  const std::string path = default_worker_path();
  CHECK(path.size() > std::string("/ldm-worker").size());
  CHECK(path.substr(path.size() - 11) == "/ldm-worker");
}

TEST_CASE("a program that cannot be executed exits 127 with the reason in the job log") {
  Setup s;
  const std::string bogus = s.dir.path() + "/not-a-program";
  write_file_atomic(bogus, std::string("\x7f"
                                       "ELF garbage",
                                       12));
  ::chmod(bogus.c_str(), 0755);
  LocalExecutor executor({bogus, "/opt/ldm-worker"});
  const ProcessExit exit = wait_for_exit(executor, executor.launch(s.request));
  CHECK(exit.exit_code == 127);
  CHECK(read_file(s.log()).find("ldm-coord: run exp.train.a1: cannot start " + bogus + ": ") == 0);
}
