// `ldm-worker train`: one rank of a stage's job (training, or an evaluation stage). Launched by the coordinator as
//   mpirun -n N ldm-worker train --coord tcp://HOST:PORT --run RUN_ID     (LDM_RUN_TOKEN in the env)
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "shared/core/error.h"
#include "shared/core/credentials.h"
#include "shared/core/log.h"
#include "shared/core/protocol.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec_json.h"
#include "worker/cli/commands.h"
#include "worker/comm/comm.h"
#include "worker/eval/eval_stage.h"
#include "worker/torch_compat.h"
#include "worker/train/fault.h"
#include "worker/train/reporter.h"
#include "worker/train/trainer.h"
#include "worker/train/watchdog.h"

namespace ldm::worker {
namespace {

// Per-rank log file in the run directory (the cwd the coordinator gave us).
void redirect_output(int rank) {
  make_dirs("logs");
  const std::string path = "logs/rank-" + std::to_string(rank) + ".log";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("cannot open", path);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  ::close(fd);
}

// How long the end of a run waits for the coordinator to store its last metric batches and
// acknowledge its report: long enough for a coordinator to be restarted (the points and the
// report would otherwise be lost, and the run retried from its last checkpoint). [ours]
constexpr double kFinalWait = 600.0;
// After that wait ran out (no coordinator came back), the report gets this long only. [ours]
constexpr double kAbsentWait = 30.0;

// The credentials for the coordinator's endpoint: --token-file, else LDM_TOKEN_FILE, else none.
ClientCredentials worker_credentials(const cli::Args& a) {
  const char* env_file = std::getenv("LDM_TOKEN_FILE");
  const std::string token_file = a.text("token-file", env_file ? env_file : "");
  return token_file.empty() ? ClientCredentials{} : read_credentials(token_file);
}

// Pull mode: rank 0 asks the coordinator for the next stage that fits this job's ranks. Returns
// {run, token}; {"", ""} when nothing is left. While stages of this size wait for their parents
// it asks again every 5 s. Throws Error when the coordinator does not answer.
std::pair<std::string, std::string> claim_work(const std::string& endpoint, const ClientCredentials& credentials,
                                               int world) {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  zmq::context_t ctx(1);
  for (;;) {
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);
    apply_curve(sock, credentials);
    sock.connect(endpoint);
    const std::string claim = protocol::encode(protocol::make(
        protocol::Type::Claim, "", "",
        {{"world_size", world}, {"host", host}, {"pid", static_cast<int64_t>(::getpid())}, {"gpus", 0}}));
    protocol::Message reply;
    bool answered = false;
    for (int attempt = 0; attempt < 15 && !answered; ++attempt) {  // 30 s
      sock.send(zmq::buffer(claim), zmq::send_flags::dontwait);
      zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
      zmq::message_t msg;
      if (zmq::poll(&item, 1, std::chrono::milliseconds(2000)) > 0 && sock.recv(msg, zmq::recv_flags::dontwait)) {
        reply = protocol::decode(msg.data(), msg.size());
        answered = true;
      }
    }
    if (!answered)
      throw Error("the coordinator at " + endpoint + " did not answer a claim for work within 30 s" +
                  (credentials.has_curve() ? std::string(" (check that --token-file is its <state>/auth/client.json)")
                                           : std::string(" (off loopback it wants --token-file)")));
    if (reply.type == protocol::Type::Error)
      throw Error("the coordinator at " + endpoint +
                  " refused a claim for work: " + reply.body.value("message", std::string("(no message)")));
    if (reply.type != protocol::Type::Assign)
      throw Error("the coordinator at " + endpoint + " answered a claim with '" + protocol::to_string(reply.type) +
                  "'");
    const std::string run = reply.body.at("run").get<std::string>();
    if (!run.empty()) return {run, reply.body.at("token").get<std::string>()};
    const int64_t pending = reply.body.value("pending", int64_t{0});
    if (pending == 0) return {"", ""};
    log::info("no stage for " + std::to_string(world) + " rank(s) is ready; " + std::to_string(pending) +
              " wait for their parents; asking again in 5 s");
    std::this_thread::sleep_for(std::chrono::seconds(5));
  }
}

// A pulled run: the rank works, logs and leaves its failure note in the run directory, as a launched
// one does. Returns the note's path.
std::string enter_run_directory(const cli::Args& a, int rank, const std::string& run_dir, const std::string& run_id) {
  make_dirs(run_dir);
  if (::chdir(run_dir.c_str()) != 0) throw_errno("cannot enter the run directory", run_dir);
  const std::string note = run_dir + "/failure-rank-" + std::to_string(rank) + ".txt";
  ::unlink(note.c_str());
  install_crash_handler(rank, note);
  if (!a.has("no-redirect")) redirect_output(rank);
  log::info("rank " + std::to_string(rank) + ": training run " + run_id + " (pulled from " + a.text("coord") + ")");
  return note;
}

// Trains (or evaluates) one run to its end on every rank; 0 when it ended (done or preempted).
// `pulled`: the job was started by the user, not in the run directory: the rank's log and failure
// note go to the run directory once the spec names it.
int train_run(const cli::Args& a, Communicator& comm, const std::string& run_id, const std::string& token,
              bool pulled) {
  const int rank = comm.rank();
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) throw_errno("getcwd failed", ".");
  std::string note = std::string(cwd) + "/failure-rank-" + std::to_string(rank) + ".txt";
  if (!pulled) {
    ::unlink(note.c_str());  // a note from an earlier attempt is not ours
    install_crash_handler(rank, note);
  }

  std::unique_ptr<Reporter> reporter;
  try {
    const std::vector<FaultPlan> faults = faults_from_env();
    std::string spec_text;
    if (rank == 0) {
      ReporterOptions options;
      options.credentials = worker_credentials(a);
      reporter = std::make_unique<Reporter>(a.text("coord"), run_id, token, options);
      spec_text = reporter->fetch_spec(comm.size()).dump();
    }
    comm.broadcast(spec_text, 0);
    auto body = nlohmann::json::parse(spec_text);
    if (pulled) note = enter_run_directory(a, rank, body.at("run_dir").get<std::string>(), run_id);
    StageContext ctx;
    ctx.spec = spec_from_json(body.at("spec"));
    ctx.attempt = body.at("attempt").get<int>();
    ctx.run_dir = body.at("run_dir").get<std::string>();
    ctx.stage_index = body.value("stage_index", 0);
    ctx.data_dir = body.value("data_dir", ctx.run_dir + "/data");
    ctx.resume_from = body.value("resume_from", std::string());
    ctx.ranks = body.value("ranks", 0);
    ctx.allow_world_size_change = body.value("allow_world_size_change", false);
    ctx.init = body.value("init", nlohmann::json::object());
    ctx.reference_resolution = body.value("reference_resolution", int64_t{0});
    ctx.faults = faults;
    const StageSpec& stage = ctx.spec.stages.at(static_cast<std::size_t>(ctx.stage_index));
    // The watchdog covers the stage's work; the final flush below may wait (up to kFinalWait) for a
    // coordinator that is restarting, and the other ranks for rank 0 at the last barrier.
    auto watchdog = std::make_unique<Watchdog>(rank, note, stage.watchdog_s, &comm);
    if (reporter) {
      reporter->set_attempt(ctx.attempt);
      reporter->set_sent_log(ctx.run_dir + "/sent.jsonl");
    }
    if (stage.kind == "eval") {
      const nlohmann::json results = eval::run_eval_stage(ctx, comm, reporter.get());
      watchdog.reset();
      if (reporter) {
        const int64_t last = results.empty() ? 0 : results.back().at("step").get<int64_t>();
        const bool flushed = reporter->flush(last, kFinalWait);
        if (!flushed)
          log::error("the coordinator did not acknowledge every metric batch; the points are in sent.jsonl");
        reporter->send_event(protocol::Type::Done, {{"step", last}, {"summary", {{"evaluations", results}}}},
                             flushed ? kFinalWait : kAbsentWait);
      }
      comm.barrier();
      return 0;
    }
    StageResult r = train_stage(ctx, comm, reporter.get());
    watchdog.reset();
    if (reporter) {
      const bool flushed = reporter->flush(r.steps, kFinalWait);
      if (!flushed)
        log::error("the coordinator did not acknowledge " + std::to_string(reporter->unacked_batches()) +
                   " metric batches; their points are in sent.jsonl");
      nlohmann::json summary = {{"final_loss", r.final_loss},
                                {"samples_per_s", r.samples_per_s},
                                {"wall_s", r.wall_s},
                                {"param_checksum", r.param_checksum},
                                {"checkpoint", r.checkpoint}};
      if (r.preempted)
        reporter->send_event(protocol::Type::Preempted, {{"step", r.steps}, {"checkpoint", r.checkpoint}},
                             flushed ? kFinalWait : kAbsentWait);
      else
        reporter->send_event(protocol::Type::Done, {{"step", r.steps}, {"summary", summary}},
                             flushed ? kFinalWait : kAbsentWait);
    }
    comm.barrier();
    return 0;
  } catch (const std::exception& e) {
    const int64_t step = current_step();
    const std::string msg =
        "rank " + std::to_string(rank) + ": error at step " + std::to_string(step) + ": " + torch_compat::error_text(e);
    log::error(msg);
    write_failure_note(note, msg);
    if (reporter) {
      try {
        nlohmann::json body = {{"step", step}, {"rank", rank}, {"message", msg}};
        if (dynamic_cast<const DivergedError*>(&e)) body["diverged"] = true;
        reporter->send_event(protocol::Type::Failed, body, 5.0);
      } catch (const std::exception& e2) {
        log::error(std::string("could not report the failure: ") + e2.what());
      }
    }
    if (comm.size() > 1) comm.abort(1);  // the other ranks may be blocked in a collective
    return 1;
  }
}

int cmd_train(const cli::Args& a) {
  auto comm = make_communicator(a.text("comm", "auto"));
  const int rank = comm->rank();
  install_preemption_handler();
  log::set_component("worker r" + std::to_string(rank));
  const std::string run = a.text("run");
  if (!run.empty()) {  // launched by the coordinator for this run, in its run directory
    if (!a.has("no-redirect")) redirect_output(rank);
    const char* token = std::getenv("LDM_RUN_TOKEN");
    if (!token || !*token) {
      log::error("LDM_RUN_TOKEN is not set (the coordinator passes the run's token in it)");
      return 1;
    }
    return train_run(a, *comm, run, token, /*pulled=*/false);
  }
  // Pull mode: ask for work, train it, ask again until nothing is left (or --once). Each run's
  // output goes to its run directory; between runs, back to the job's own.
  const int job_out = ::fcntl(1, F_DUPFD_CLOEXEC, 3), job_err = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
  const auto back_to_job_output = [&] {
    std::fflush(stdout);
    std::fflush(stderr);
    if (job_out >= 0) ::dup2(job_out, 1);
    if (job_err >= 0) ::dup2(job_err, 2);
  };
  int trained = 0;
  for (;;) {
    std::string assignment;
    if (rank == 0) {
      try {
        const auto [id, token] = claim_work(a.text("coord"), worker_credentials(a), comm->size());
        assignment = id.empty() ? std::string() : id + "\n" + token;
      } catch (const std::exception& e) {
        log::error("rank 0: " + std::string(e.what()));
        assignment = "!";  // the other ranks stop too
      }
    }
    comm->broadcast(assignment, 0);
    if (assignment == "!") return 1;
    if (assignment.empty()) {
      log::info("nothing left to train for " + std::to_string(comm->size()) + " rank(s); " + std::to_string(trained) +
                " run(s) trained");
      return 0;
    }
    const std::size_t newline = assignment.find('\n');
    const int rc = train_run(a, *comm, assignment.substr(0, newline), assignment.substr(newline + 1), /*pulled=*/true);
    back_to_job_output();
    if (rank == 0) {
      char dir[4096];
      log::info("run " + assignment.substr(0, newline) + (rc == 0 ? " ended" : " failed") + "; its logs are in " +
                (::getcwd(dir, sizeof dir) ? std::string(dir) : std::string("its run directory")) + "/logs");
    }
    if (rc != 0) return rc;
    ++trained;
    if (a.has("once")) return 0;
    if (preemption_requested()) {  // SIGUSR1: the job itself is being preempted; claim nothing more
      log::info("preempted: " + std::to_string(trained) + " run(s) trained; claiming no more work");
      return 0;
    }
  }
}

}  // namespace

cli::Command train_command() {
  return {"train",
          {},
          "Train one stage (launched by ldm-coord under mpirun; the run token comes in LDM_RUN_TOKEN), or, without "
          "--run, ask the coordinator for stages whose ranks match this job's and train them until none is left "
          "(pull mode: `mpirun -n N ldm-worker train --coord tcp://HOST:PORT` from your own batch script).",
          {cli::text("coord", "ENDPOINT", "the coordinator's ZeroMQ endpoint").required(),
           cli::text("run", "RUN_ID", "the run to train (launched by ldm-coord); none = pull mode"),
           cli::flag("once", "pull mode: train one stage, then exit"),
           cli::text("token-file", "F",
                     "a coordinator listening off loopback: a copy of its <state>/auth/client.json (CURVE keys; "
                     "default: env LDM_TOKEN_FILE)"),
           cli::text("comm", "KIND",
                     "collectives between the ranks: auto (nccl when built with NCCL, a GPU is visible and the "
                     "launcher started several ranks; else mpi when started by mpirun or srun; else a single "
                     "process), mpi, nccl (rank 0's id over MPI, else NCCL_COMM_ID=HOST:PORT or "
                     "LDM_NCCL_ID_FILE=PATH), single"),
           cli::flag("no-redirect", "keep stdout/stderr (default: logs/rank-N.log in the run directory)")},
          cmd_train};
}

}  // namespace ldm::worker
