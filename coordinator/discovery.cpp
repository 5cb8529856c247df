#include "coordinator/discovery.h"

#include "coordinator/local_executor.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/safe_file.h"

namespace ldm::coord {

std::string discovery_file_path(const std::string& state_dir) { return state_dir + "/coord.json"; }

void write_discovery_file(const std::string& state_dir, const CoordinatorAddress& a) {
  const nlohmann::json j = {{"http", a.http}, {"zmq", a.zmq}, {"pid", a.pid}};
  write_file_atomic(discovery_file_path(state_dir), j.dump(2) + "\n");
}

void remove_discovery_file(const std::string& state_dir) {
  try {
    auto a = read_discovery_file(state_dir);
    if (a && a->pid == static_cast<long>(::getpid())) std::remove(discovery_file_path(state_dir).c_str());
  } catch (const std::exception&) {
    // Unreadable: not ours to delete.
  }
}

std::optional<CoordinatorAddress> read_discovery_file(const std::string& state_dir) {
  const std::string path = discovery_file_path(state_dir);
  if (!path_exists(path)) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("http") || !j["http"].is_string())
    throw Error(path + ": not a coordinator discovery file (expected {\"http\": URL, ...})");
  CoordinatorAddress a;
  a.http = j["http"].get<std::string>();
  if (j.contains("zmq") && j["zmq"].is_string()) a.zmq = j["zmq"].get<std::string>();
  if (j.contains("pid") && j["pid"].is_number_integer()) a.pid = j["pid"].get<long>();
  return a;
}

bool process_alive(long pid) {
  // A killed coordinator stays a zombie until its parent reaps it (which in a container may be never).
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) && !local_process_identity(pid).empty();
}

LocatedCoordinator locate_coordinator(const std::string& coord_flag, const std::string& state_dir) {
  if (!coord_flag.empty()) return {coord_flag, "--coord"};
  if (const char* env = std::getenv("LDM_COORD"); env && *env) return {env, "LDM_COORD"};
  const std::string path = discovery_file_path(state_dir);
  const auto a = read_discovery_file(state_dir);
  if (!a)
    throw Error("no coordinator found: no --coord URL, no LDM_COORD, and no " + path +
                " (start one with `ldm-coord serve --state " + state_dir + "`)");
  if (a->pid > 0 && !process_alive(a->pid))
    throw Error("no coordinator running: " + path + " names pid " + std::to_string(a->pid) + " (" + a->http +
                "), which has exited; start one with `ldm-coord serve --state " + state_dir + "`");
  return {a->http, path};
}

}  // namespace ldm::coord
