// Minimal leveled logging to stderr: "2026-11-26T05:10:00.123Z I [coord] message".
// Thread-safe (one line per call). The level comes from LDM_LOG_LEVEL (debug|info|warn|error).
#pragma once

#include <sstream>
#include <string>

namespace ldm::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_component(const std::string& name);  // the "[coord]" / "[worker r1]" tag
void set_level(Level level);
Level level();
void write(Level level, const std::string& message);

inline void debug(const std::string& m) {
  if (level() <= Level::Debug) write(Level::Debug, m);
}
inline void info(const std::string& m) { write(Level::Info, m); }
inline void warn(const std::string& m) { write(Level::Warn, m); }
inline void error(const std::string& m) { write(Level::Error, m); }

// Seconds since the Unix epoch, with sub-second precision (wall clock, for records).
double now_seconds();
// ISO-8601 UTC time for humans.
std::string iso_time(double seconds_since_epoch);

}  // namespace ldm::log
