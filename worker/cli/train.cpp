// `ldm-worker train`: one rank of a stage's job (training, or an evaluation stage). Launched by the coordinator as
//   mpirun -n N ldm-worker train --coord tcp://HOST:PORT --run RUN_ID     (LDM_RUN_TOKEN in the env)
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/log.h"
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

int cmd_train(const cli::Args& a) {
  auto comm = make_communicator(a.text("comm", "auto"));
  const int rank = comm->rank();
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) throw_errno("getcwd failed", ".");
  const std::string note = std::string(cwd) + "/failure-rank-" + std::to_string(rank) + ".txt";
  ::unlink(note.c_str());  // a note from an earlier attempt is not ours
  install_crash_handler(rank, note);
  install_preemption_handler();
  if (!a.has("no-redirect")) redirect_output(rank);
  log::set_component("worker r" + std::to_string(rank));

  std::unique_ptr<Reporter> reporter;
  try {
    const std::vector<FaultPlan> faults = faults_from_env();
    const char* token = std::getenv("LDM_RUN_TOKEN");
    if (!token || !*token) throw Error("LDM_RUN_TOKEN is not set (the coordinator passes the run's token in it)");
    std::string spec_text;
    if (rank == 0) {
      ReporterOptions options;
      const char* env_file = std::getenv("LDM_TOKEN_FILE");
      const std::string token_file = a.text("token-file", env_file ? env_file : "");
      if (!token_file.empty()) options.credentials = read_credentials(token_file);
      reporter = std::make_unique<Reporter>(a.text("coord"), a.text("run"), token, options);
      spec_text = reporter->fetch_spec(comm->size()).dump();
    }
    comm->broadcast(spec_text, 0);
    auto body = nlohmann::json::parse(spec_text);
    StageContext ctx;
    ctx.spec = spec_from_json(body.at("spec"));
    ctx.attempt = body.at("attempt").get<int>();
    ctx.run_dir = body.at("run_dir").get<std::string>();
    ctx.stage_index = body.value("stage_index", 0);
    ctx.data_dir = body.value("data_dir", ctx.run_dir + "/data");
    ctx.resume_from = body.value("resume_from", std::string());
    ctx.init = body.value("init", nlohmann::json::object());
    ctx.reference_resolution = body.value("reference_resolution", int64_t{0});
    ctx.faults = faults;
    const StageSpec& stage = ctx.spec.stages.at(static_cast<std::size_t>(ctx.stage_index));
    // The watchdog covers the stage's work; the final flush below may wait (up to kFinalWait) for a
    // coordinator that is restarting, and the other ranks for rank 0 at the last barrier.
    auto watchdog = std::make_unique<Watchdog>(rank, note, stage.watchdog_s, comm.get());
    if (reporter) {
      reporter->set_attempt(ctx.attempt);
      reporter->set_sent_log(ctx.run_dir + "/sent.jsonl");
    }
    if (stage.kind == "eval") {
      const nlohmann::json results = eval::run_eval_stage(ctx, *comm, reporter.get());
      watchdog.reset();
      if (reporter) {
        const int64_t last = results.empty() ? 0 : results.back().at("step").get<int64_t>();
        const bool flushed = reporter->flush(last, kFinalWait);
        if (!flushed)
          log::error("the coordinator did not acknowledge every metric batch; the points are in sent.jsonl");
        reporter->send_event(protocol::Type::Done, {{"step", last}, {"summary", {{"evaluations", results}}}},
                             flushed ? kFinalWait : kAbsentWait);
      }
      comm->barrier();
      return 0;
    }
    StageResult r = train_stage(ctx, *comm, reporter.get());
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
    comm->barrier();
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
    if (comm->size() > 1) comm->abort(1);  // the other ranks may be blocked in a collective
    return 1;
  }
}

}  // namespace

cli::Command train_command() {
  return {"train",
          {},
          "Train one stage (launched by ldm-coord under mpirun; the run token comes in LDM_RUN_TOKEN).",
          {cli::text("coord", "ENDPOINT", "the coordinator's ZeroMQ endpoint").required(),
           cli::text("run", "RUN_ID", "the run to train").required(),
           cli::text("token-file", "F",
                     "a coordinator listening off loopback: a copy of its <state>/auth/client.json (CURVE keys; "
                     "default: env LDM_TOKEN_FILE)"),
           cli::text("comm", "KIND",
                     "collectives between the ranks: auto (mpi when started by mpirun or srun, else a single "
                     "process), mpi, single"),
           cli::flag("no-redirect", "keep stdout/stderr (default: logs/rank-N.log in the run directory)")},
          cmd_train};
}

}  // namespace ldm::worker
