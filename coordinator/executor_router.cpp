#include "coordinator/executor_router.h"

#include "shared/core/error.h"
#include "shared/core/log.h"

namespace ldm::coord {

ExecutorRouter::ExecutorRouter(std::string default_kind, LocalExecutorOptions local, SlurmOptions slurm)
    : default_kind_(std::move(default_kind)), local_(std::move(local)), slurm_options_(std::move(slurm)) {
  if (default_kind_ == "slurm") this->slurm();  // `serve --executor slurm` without SLURM stops at once
}

SlurmExecutor& ExecutorRouter::slurm() {
  if (!slurm_) slurm_ = std::make_unique<SlurmExecutor>(slurm_options_);
  return *slurm_;
}

ProcessId ExecutorRouter::launch(const LaunchRequest& request) {
  const std::string kind = request.executor.kind.empty() ? default_kind_ : request.executor.kind;
  if (kind == "slurm") return kSlurmIdBase + slurm().launch(request);
  return local_.launch(request);
}

std::vector<ProcessExit> ExecutorRouter::poll_exits() {
  std::vector<ProcessExit> exits = local_.poll_exits();
  if (slurm_)
    for (ProcessExit e : slurm_->poll_exits()) {
      e.pid += kSlurmIdBase;
      exits.push_back(e);
    }
  return exits;
}

void ExecutorRouter::signal(ProcessId id, int sig) {
  if (id >= kSlurmIdBase) {
    if (slurm_) slurm_->signal(id - kSlurmIdBase, sig);
    return;
  }
  local_.signal(id, sig);
}

std::string ExecutorRouter::identity(ProcessId id) {
  if (id >= kSlurmIdBase) return slurm_ ? slurm_->identity(id - kSlurmIdBase) : "";
  return local_.identity(id);
}

bool ExecutorRouter::adopt(ProcessId id, const std::string& identity) {
  if (id < kSlurmIdBase) return local_.adopt(id, identity);
  try {
    return slurm().adopt(id - kSlurmIdBase, identity);
  } catch (const std::exception& ex) {
    log::warn("cannot look for SLURM job " + std::to_string(id - kSlurmIdBase) + ": " + ex.what());
    return false;
  }
}

}  // namespace ldm::coord
