#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <thread>

#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "coordinator/discovery.h"
#include "coordinator/executor_router.h"
#include "coordinator/http_api.h"
#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/protocol.h"
#include "shared/core/safe_file.h"

namespace ldm::coord {
namespace {

// Opens <state>/db; when a live coordinator holds it, the error names that coordinator.
std::unique_ptr<ExperimentStore> open_store(const std::string& state_dir) {
  const std::string db = state_dir + "/db";
  try {
    return ExperimentStore::open(db);
  } catch (const StoreError& ex) {
    std::optional<CoordinatorAddress> holder;
    try {
      holder = read_discovery_file(state_dir);
    } catch (const std::exception&) {
    }
    if (holder && process_alive(holder->pid))
      throw Error("the store " + db + " is in use by a running coordinator (pid " + std::to_string(holder->pid) + ", " +
                  holder->http + "); submit to it with `ldm-coord submit FILE --state " + state_dir +
                  "`, or use another --state");
    throw;
  }
}

// The port to bind when none is asked for: the one the workers of runs still active report to
// (jobs a stopped coordinator left running reconnect to it), else 0 (ephemeral).
int previous_worker_port(const ExperimentStore& store) {
  double newest = -1;
  int port = 0;
  for (const RunRecord& run : store.list_runs()) {
    if (run.state != RunState::Pending && run.state != RunState::Running) continue;
    const std::size_t colon = run.coord.rfind(':');
    if (colon == std::string::npos || run.started_at < newest) continue;
    try {
      port = std::stoi(run.coord.substr(colon + 1));
      newest = run.started_at;
    } catch (const std::exception&) {
    }
  }
  return port;
}

}  // namespace

std::string absolute_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) throw_errno("cannot resolve", path);
  return buf;
}

CoordinatorService::CoordinatorService(const ServiceOptions& options) {
  make_dirs(options.state_dir);
  state_dir_ = absolute_path(options.state_dir);
  std::string runs_root = options.runs_root.empty() ? state_dir_ + "/runs" : options.runs_root;
  make_dirs(runs_root);
  runs_root = absolute_path(runs_root);

  // Off loopback, both sockets authenticate; the credentials exist before anything listens.
  auth_ = load_server_auth(options.listen, state_dir_, options.token_file);
  if (auth_.enabled) {
    log::info("listening on " + options.listen +
              ": HTTP requests need the bearer token and workers the CURVE keys of " + auth_.client_file +
              " (copy it, mode 0600, to where the CLI or workers run: --token-file)");
  }
  if (const std::string warning = network_filesystem_warning(state_dir_); !warning.empty()) log::warn(warning);
  store_ = open_store(state_dir_);
  LocalExecutorOptions exec;
  exec.mpirun = options.mpirun;
  exec.worker = options.worker.empty() ? default_worker_path() : options.worker;
  if (auth_.enabled) exec.environment.emplace_back("LDM_TOKEN_FILE", auth_.client_file);  // the workers' keys
  if (::access(exec.worker.c_str(), X_OK) != 0)
    log::warn("worker binary " + exec.worker + " is not executable; runs will fail to start " +
              "(build ldm-worker, or pass --worker PATH / set LDM_WORKER)");
  SlurmOptions slurm = options.slurm_options;
  slurm.worker = exec.worker;
  slurm.environment = exec.environment;
  executor_ = std::make_unique<ExecutorRouter>(options.slurm ? "slurm" : "local", exec, slurm);
  ZmqEndpoint::Curve curve{auth_.server_secret, auth_.client_public};
  const ZmqEndpoint::Curve* curve_ptr = auth_.enabled ? &curve : nullptr;
  if (const int previous = options.zmq_port == 0 ? previous_worker_port(*store_) : 0) {
    try {
      zmq_ = std::make_unique<ZmqEndpoint>(options.listen, previous, curve_ptr);
    } catch (const std::exception& ex) {
      log::warn("the workers of runs still active report to port " + std::to_string(previous) +
                ", which cannot be bound again (" + ex.what() + "); they will time out and be retried");
    }
  }
  if (!zmq_) zmq_ = std::make_unique<ZmqEndpoint>(options.listen, options.zmq_port, curve_ptr);

  CoordinatorOptions copts;
  copts.runs_root = runs_root;
  copts.zmq_endpoint = zmq_->endpoint();
  copts.heartbeat_timeout_s = options.heartbeat_timeout_s;
  copts.launch_jobs = options.launch_jobs;
  // SLURM queues what does not fit: no limit of our own unless one is asked for.
  copts.slots = options.slots > 0 ? options.slots
                : options.slurm   ? 0
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  coordinator_ = std::make_unique<Coordinator>(*store_, *executor_, copts);
  http_ = std::make_unique<HttpServer>(
      options.listen, options.http_port, [this](const HttpRequest& r) { return handle_api_request(*coordinator_, r); },
      auth_.token);

  zmq_->start([this](const std::string& frame) { return protocol::encode(coordinator_->handle_frame(frame)); },
              [this] { coordinator_->tick(); });
  http_->start();
  write_discovery_file(state_dir_, {http_->url(), zmq_->endpoint(), static_cast<long>(::getpid())});
  log::info("coordinator serving " + http_->url() + " (workers: " + zmq_->endpoint() + "), store " + store_->path() +
            ", runs in " + runs_root);
}

CoordinatorService::~CoordinatorService() {
  http_->stop();
  zmq_->stop();
  coordinator_.reset();
  remove_discovery_file(state_dir_);
}

}  // namespace ldm::coord
