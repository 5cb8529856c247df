// A whole running coordinator in one object: opens the store (<state>/db), loads the credentials
// when it listens off loopback (auth.h), binds the worker
// endpoint (ZeroMQ) and the HTTP API, starts their threads, and writes <state>/coord.json once
// both listen. Used by `ldm-coord serve` and by the embedded `ldm-coord run`.
//
// Destruction stops both threads first (no request is in flight afterwards), then the coordinator
// (jobs still running are left running and logged), then closes the store and removes coord.json.
#pragma once

#include <memory>
#include <string>

#include "coordinator/auth.h"
#include "coordinator/coordinator.h"
#include "coordinator/http_server.h"
#include "coordinator/local_executor.h"
#include "coordinator/slurm_executor.h"
#include "coordinator/zmq_endpoint.h"
#include "shared/store/experiment_store.h"

namespace ldm::coord {

struct ServiceOptions {
  std::string state_dir = ".ldm";    // holds db/, coord.json and (by default) runs/
  std::string runs_root;             // "" = <state_dir>/runs
  std::string listen = "127.0.0.1";  // address of the HTTP API and the worker endpoint (auth.h)
  std::string token_file;            // the bearer token off loopback ("" = generated into <state>/auth)
  int http_port = 7621;              // 0 = ephemeral
  int zmq_port = 7622;               // 0 = the port active runs' workers report to if free, else ephemeral
  std::string worker;                // ldm-worker path ("" = beside this executable)
  std::string mpirun = "mpirun";
  int slots = 0;                     // executor slots (CoordinatorOptions::slots); 0 = the machine's CPU cores
  double heartbeat_timeout_s = 300;  // CoordinatorOptions::heartbeat_timeout_s
  bool launch_jobs = true;           // CoordinatorOptions::launch_jobs (false: `--executor pull`)
  bool slurm = false;                // jobs are SLURM batch jobs (`--executor slurm`), with these:
  SlurmOptions slurm_options;        // (worker, environment and cpus come from the fields above)
};

class CoordinatorService {
 public:
  // Throws Error: the store is locked (naming the coordinator that holds it when known), a port is
  // taken, a directory cannot be created.
  explicit CoordinatorService(const ServiceOptions& options);
  ~CoordinatorService();
  CoordinatorService(const CoordinatorService&) = delete;
  CoordinatorService& operator=(const CoordinatorService&) = delete;

  Coordinator& coordinator() { return *coordinator_; }
  const ServerAuth& auth() const { return auth_; }
  const std::string& state_dir() const { return state_dir_; }
  std::string http_url() const { return http_->url(); }
  const std::string& zmq_endpoint() const { return zmq_->endpoint(); }

 private:
  std::string state_dir_;  // absolute
  ServerAuth auth_;
  std::unique_ptr<ExperimentStore> store_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ZmqEndpoint> zmq_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<HttpServer> http_;
};

// An absolute, normalised path for `path` (which must exist).
std::string absolute_path(const std::string& path);

}  // namespace ldm::coord
