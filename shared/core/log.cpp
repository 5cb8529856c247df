#include "shared/core/log.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace ldm::log {
namespace {
std::mutex g_mutex;
std::string g_component = "ldm";
Level initial_level() {
  const char* env = std::getenv("LDM_LOG_LEVEL");
  if (!env) return Level::Info;
  std::string v = env;
  if (v == "debug") return Level::Debug;
  if (v == "warn") return Level::Warn;
  if (v == "error") return Level::Error;
  return Level::Info;
}
Level g_level = initial_level();
}  // namespace

void set_component(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_component = name;
}
void set_level(Level l) { g_level = l; }
Level level() { return g_level; }

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string iso_time(double t) {
  std::time_t secs = static_cast<std::time_t>(t);
  int millis = static_cast<int>((t - static_cast<double>(secs)) * 1000.0);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

void write(Level l, const std::string& message) {
  if (l < g_level) return;
  static const char tags[] = {'D', 'I', 'W', 'E'};
  std::string line = iso_time(now_seconds());
  std::lock_guard<std::mutex> lock(g_mutex);
  line += ' ';
  line += tags[static_cast<int>(l)];
  line += " [" + g_component + "] " + message + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace ldm::log
