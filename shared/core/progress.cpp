#include "shared/core/progress.h"

#include <atomic>
#include <chrono>

namespace ldm {
namespace {
std::atomic<double> g_last{0.0};
std::atomic<const char*> g_phase{"starting"};
}  // namespace

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void note_progress(const char* phase) {
  g_phase.store(phase, std::memory_order_relaxed);
  g_last.store(steady_seconds(), std::memory_order_relaxed);
}

double last_progress_seconds() { return g_last.load(std::memory_order_relaxed); }
const char* progress_phase() { return g_phase.load(std::memory_order_relaxed); }

}  // namespace ldm
