// How CLI commands find a running coordinator: `--coord URL`, else env LDM_COORD, else the
// discovery file <state>/coord.json {"http": "http://127.0.0.1:PORT", "zmq": "...", "pid": N} that
// `ldm-coord serve` / `run` write atomically once listening and remove when they stop.
#pragma once

#include <optional>
#include <string>

namespace ldm::coord {

struct CoordinatorAddress {
  std::string http;  // base URL of the HTTP API
  std::string zmq;   // worker endpoint
  long pid = 0;
};

std::string discovery_file_path(const std::string& state_dir);

void write_discovery_file(const std::string& state_dir, const CoordinatorAddress& address);
// Removes the file if it still names this process (a newer coordinator may have replaced it).
void remove_discovery_file(const std::string& state_dir);
// nullopt if there is no file; throws Error if it exists but cannot be read or parsed.
std::optional<CoordinatorAddress> read_discovery_file(const std::string& state_dir);

// True while `pid` runs (a zombie does not).
bool process_alive(long pid);

struct LocatedCoordinator {
  std::string url;  // base URL of the HTTP API
  std::string via;  // where it came from, for messages: "--coord", "LDM_COORD", ".ldm/coord.json"
};

// Picks the URL by the precedence above. Throws Error saying where it looked when none is found
// or the discovery file names a process that is gone.
LocatedCoordinator locate_coordinator(const std::string& coord_flag, const std::string& state_dir);

}  // namespace ldm::coord
