// ldm-coord: the coordinator's command line. Each command is one function below; `serve` and
// `run` start a CoordinatorService, the others talk to a running one over HTTP or work offline.
#include <pthread.h>
#include <signal.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/api_json.h"
#include "coordinator/compare.h"
#include "coordinator/client.h"
#include "coordinator/plot.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/discovery.h"
#include "coordinator/report.h"
#include "coordinator/results_report.h"
#include "shared/core/cli.h"
#include "shared/core/credentials.h"
#include "shared/core/error.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "shared/core/spec_json.h"
#include "shared/core/text.h"
#include "shared/spec_toml/spec_toml.h"
#include "shared/spec_toml/sweep.h"
#include "shared/store/experiment_store.h"

namespace {

using namespace ldm;
using namespace ldm::coord;

constexpr const char* kDefaultState = ".ldm";
constexpr auto kProgressInterval = std::chrono::seconds(3);

const cli::Option kSlotsFlag =
    cli::integer("slots", "N",
                 "stages run side by side while their ranks x threads_per_rank fit in N (default: the CPU cores); "
                 "the others queue, first come first served",
                 1, 65536);
const cli::Option kStateFlag = cli::text("state", "DIR", "state directory: store, coord.json, runs/ (default .ldm)");
const cli::Option kCoordFlag =
    cli::text("coord", "URL", "coordinator URL (default: env LDM_COORD, else <state>/coord.json)");
const cli::Option kTokenFlag =
    cli::text("token-file", "F",
              "credentials for a coordinator listening off loopback: a copy of its <state>/auth/client.json, or a file "
              "holding the bearer token (default: env LDM_TOKEN_FILE, else <state>/auth/client.json)");
const cli::Option kWorkerFlag =
    cli::text("worker", "PATH", "ldm-worker binary (default: env LDM_WORKER, else beside ldm-coord)");
const cli::Option kMpirunFlag =
    cli::text("mpirun", "PATH", "mpirun program (default: env LDM_MPIRUN, else mpirun on PATH)");
const cli::Option kNameFlag = cli::text("name", "NAME", "experiment name (default: the file's `name`)");
const cli::Option kHeartbeatFlag = cli::integer(
    "heartbeat-timeout", "S",
    "kill a job whose worker sent nothing for S seconds and retry its run (default 300; workers heartbeat every 5 s)",
    15, 86400);

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// SIGINT/SIGTERM are blocked in every thread (before any starts) and taken with sigwait by main,
// so the server threads never see them. Forked jobs get an empty mask back (local_executor).
sigset_t shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void block_shutdown_signals() {
  const sigset_t set = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Waits up to `timeout` for SIGINT/SIGTERM; returns the signal, or 0 on timeout.
int wait_for_shutdown(std::chrono::milliseconds timeout) {
  const sigset_t set = shutdown_signals();
  const timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000) * 1000000L};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

ServiceOptions service_options(const cli::Args& a, int default_http, int default_zmq) {
  ServiceOptions o;
  o.state_dir = a.text("state", kDefaultState);
  o.runs_root = a.text("runs");
  o.listen = a.text("listen", "127.0.0.1");
  const std::string executor = a.text("executor", "local");
  if (executor != "local" && executor != "pull" && executor != "slurm")
    throw cli::UsageError("--executor must be local, slurm or pull, not '" + executor + "'");
  o.launch_jobs = executor != "pull";
  o.slurm = executor == "slurm";
  SlurmOptions& s = o.slurm_options;
  s.partition = a.text("slurm-partition");
  s.account = a.text("slurm-account");
  s.qos = a.text("slurm-qos");
  s.time_limit = a.text("slurm-time");
  s.gpus_per_node = static_cast<int>(a.integer("slurm-gpus-per-node", 0));
  s.nodes = static_cast<int>(a.integer("slurm-nodes", 0));
  s.tasks_per_node = static_cast<int>(a.integer("slurm-tasks-per-node", 0));
  s.signal_before_s = static_cast<int>(a.integer("slurm-signal-before", 120));
  for (const std::string& line : split(a.text("slurm-sbatch"), ';'))
    if (!trim(line).empty()) s.extra_sbatch.push_back(trim(line));
  for (const std::string& line : split(a.text("slurm-setup"), ';'))
    if (!trim(line).empty()) s.setup.push_back(trim(line));
  o.token_file = a.text("token-file");
  o.http_port = static_cast<int>(a.integer("http-port", default_http));
  o.zmq_port = static_cast<int>(a.integer("zmq-port", default_zmq));
  o.worker = a.text("worker", env_or("LDM_WORKER", ""));
  o.mpirun = a.text("mpirun", env_or("LDM_MPIRUN", "mpirun"));
  o.slots = static_cast<int>(a.integer("slots", 0));
  o.heartbeat_timeout_s = static_cast<double>(a.integer("heartbeat-timeout", 300));
  return o;
}

// A sweep file expanded into its cells (validated); `name` replaces the sweep's own.
SweepSubmission sweep_from_file(const std::string& file, const std::string& name, int priority) {
  const SweepSpec sweep = parse_sweep_file(file, name);  // SpecError names file:line:column and the cell
  SweepSubmission s;
  s.source = absolute_path(file);
  s.name = sweep.name;
  s.axes = sweep.axes;
  s.priority = priority;
  for (const SweepCell& cell : sweep.cells) s.cells.push_back({cell.name, cell.values, spec_to_json(cell.spec)});
  return s;
}

nlohmann::json sweep_body(const SweepSubmission& s) {
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& c : s.cells) cells.push_back({{"name", c.name}, {"values", c.values}, {"spec", c.spec}});
  return {{"source", s.source}, {"name", s.name}, {"axes", s.axes}, {"cells", cells}, {"priority", s.priority}};
}

Submission submission_from_file(const std::string& file, const cli::Args& a) {
  const ExperimentSpec spec = parse_experiment_file(file);  // SpecError names file:line:column
  Submission s;
  s.source = absolute_path(file);
  s.spec = spec_to_json(spec);
  s.name = a.text("name");
  return s;
}

CoordinatorClient client_for(const cli::Args& a) {
  const std::string state = a.text("state", kDefaultState);
  const LocatedCoordinator where = locate_coordinator(a.text("coord"), state);
  CoordinatorClient client(where.url, where.via);
  if (const std::string file = credentials_path(a.text("token-file"), state); !file.empty())
    client.set_bearer_token(read_credentials(file).token);
  return client;
}

// Stopped for good: terminal, or lost/preempted with no retries to come (a run that gets another
// attempt leaves its experiment running).
bool settled(RunState s) { return s != RunState::Pending && s != RunState::Running; }

// ---- commands ------------------------------------------------------------------------------------

int cmd_serve(const cli::Args& a) {
  block_shutdown_signals();
  CoordinatorService service(service_options(a, 7621, 7622));
  std::printf("ldm-coord serving %s (workers: %s), state %s\n", service.http_url().c_str(),
              service.zmq_endpoint().c_str(), service.state_dir().c_str());
  std::fflush(stdout);
  int sig = 0;
  while (!(sig = wait_for_shutdown(std::chrono::seconds(60)))) {
  }
  const std::size_t jobs = service.coordinator().running_jobs();
  log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + "; shutting down" +
            (jobs ? " and leaving " + std::to_string(jobs) + " job(s) running" : ""));
  return 0;
}

int cmd_submit(const cli::Args& a) {
  if (is_sweep_file(a.positional.at(0))) {
    const SweepSubmission s =
        sweep_from_file(a.positional.at(0), a.text("name"), static_cast<int>(a.integer("priority", 0)));
    CoordinatorClient client = client_for(a);
    const nlohmann::json reply = client.post("/api/v1/sweeps", sweep_body(s));
    std::printf("submitted sweep %s: %zu experiments over %s (`ldm-coord status %s`, `ldm-coord compare %s`)\n",
                s.name.c_str(), s.cells.size(), join(s.axes, ", ").c_str(), s.name.c_str(), s.name.c_str());
    return 0;
  }
  const Submission s = submission_from_file(a.positional.at(0), a);
  CoordinatorClient client = client_for(a);
  nlohmann::json body = {{"source", s.source}, {"spec", s.spec}};
  if (!s.name.empty()) body["name"] = s.name;
  if (a.has("priority")) body["priority"] = a.integer("priority", 0);
  const nlohmann::json reply = client.post("/api/v1/experiments", body);
  std::printf("submitted %s\n", reply.value("experiment", std::string("?")).c_str());
  return 0;
}

// Prints progress until the experiment settles, each evaluation as it ends, then the summary and
// every stage's final metrics. Exit status: 0 done, 1 otherwise, 130 interrupted (jobs keep running).
int follow_experiment(Coordinator& coordinator, const std::string& name) {
  std::string last_line;
  auto last_print = std::chrono::steady_clock::now() - kProgressInterval;
  std::set<std::string> reported;  // evaluation stages whose results were printed
  for (;;) {
    const auto view = coordinator.experiment(name);
    if (!view) throw Error("experiment " + name + " vanished from the store");
    for (const StageRecord& s : view->stages)
      if (s.state == RunState::Done && view->evaluations.count(s.name) && reported.insert(s.name).second)
        std::printf("evaluation %s done:\n%s", s.name.c_str(), format_evaluation(*view, s.name).c_str());
    const std::string line = format_progress_line(*view);
    const auto now = std::chrono::steady_clock::now();
    if (line != last_line && (now - last_print >= kProgressInterval || settled(view->experiment.state))) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
      last_line = line;
      last_print = now;
    }
    if (settled(view->experiment.state)) {
      std::printf("\n%s\nfinal metrics:\n%s", format_summary(*view).c_str(), format_final_metrics(*view).c_str());
      return view->experiment.state == RunState::Done ? 0 : 1;
    }
    if (const int sig = wait_for_shutdown(std::chrono::milliseconds(250))) {
      std::printf("interrupted (%s): experiment %s is still %s; its jobs keep running\n",
                  sig == SIGINT ? "SIGINT" : "SIGTERM", name.c_str(), to_string(view->experiment.state));
      return 130;
    }
  }
}

bool names_sweep(CoordinatorClient& client, const std::string& name) {
  for (const auto& s : client.get("/api/v1/sweeps").value("sweeps", nlohmann::json::array()))
    if (s.value("name", std::string()) == name) return true;
  return false;
}

// The coordinator serving the state directory, if one answers; else nullopt (the caller reads the
// store itself, which nobody else then holds).
std::optional<CoordinatorClient> serving_client(const cli::Args& a) {
  try {
    CoordinatorClient client = client_for(a);
    client.get("/api/v1/health");
    return client;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// ResultCells of every experiment NAMES names (a sweep: all its cells), with their points (each
// curve thinned to about max_points, 0 = all); `axes` collects the sweeps' axes. Through the
// serving coordinator, else from the store itself.
std::vector<ResultCell> gather_results(const cli::Args& a, const std::vector<std::string>& names,
                                       std::vector<std::string>& axes, std::size_t max_points = 0) {
  std::vector<ResultCell> cells;
  const auto add_axes = [&](const SweepRecord& s) {
    for (const std::string& axis : s.axes)
      if (std::find(axes.begin(), axes.end(), axis) == axes.end()) axes.push_back(axis);
  };
  std::optional<CoordinatorClient> client = serving_client(a);
  if (client) {
    for (const std::string& name : names) {
      if (names_sweep(*client, name)) {
        const SweepView v = sweep_from_api_json(client->get("/api/v1/sweeps/" + url_encode(name)));
        add_axes(v.sweep);
        for (std::size_t i = 0; i < v.cells.size(); ++i)  // in full: a list item has no spec
          cells.push_back(
              {experiment_from_api_json(client->get("/api/v1/experiments/" + url_encode(v.cells[i].experiment.name))),
               v.sweep.cells.at(i).value("values", nlohmann::json::object()),
               {}});
      } else {
        cells.push_back({experiment_from_api_json(client->get("/api/v1/experiments/" + url_encode(name))), {}, {}});
      }
    }
    for (ResultCell& c : cells)
      for (const StageRecord& s : c.view.stages) {
        const nlohmann::json j = client->get("/api/v1/experiments/" + url_encode(c.view.experiment.name) +
                                             "/metrics?stage=" + url_encode(s.name) +
                                             (max_points ? "&max_points=" + std::to_string(max_points) : ""));
        c.points[s.name] = j.value("points", nlohmann::json::array()).get<std::vector<MetricPoint>>();
      }
    return cells;
  }
  const std::string state = a.text("state", kDefaultState);
  auto store = ExperimentStore::open(state + "/db");
  const auto view_of = [&](const std::string& name) {
    const auto e = store->get_experiment(name);
    if (!e) throw Error("no experiment or sweep named '" + name + "' in " + store->path());
    ResultCell c{{*e, store->list_stages(name), store->list_runs(name), {}, {}}, nlohmann::json::object(), {}};
    for (const StageRecord& s : c.view.stages) c.points[s.name] = store->metrics(name, s.name, "", max_points);
    return c;
  };
  for (const std::string& name : names) {
    if (const auto sweep = store->get_sweep(name)) {
      add_axes(*sweep);
      for (const auto& cell : sweep->cells) {
        cells.push_back(view_of(cell.value("experiment", std::string())));
        cells.back().values = cell.value("values", nlohmann::json::object());
      }
    } else {
      cells.push_back(view_of(name));
    }
  }
  return cells;
}

CompareOptions compare_options(const cli::Args& a) {
  CompareOptions o;
  o.metric = a.text("metric");
  o.rows = a.text("rows");
  o.cols = a.text("cols", "stage");
  o.format = a.text("format", "table");
  o.relative_to = a.text("relative-to");
  o.now = log::now_seconds();
  return o;
}

// Writes figures into `dir` (created), one line each on stdout.
void write_figures(const std::string& dir, const std::vector<Figure>& figures) {
  std::filesystem::create_directories(dir);
  for (const Figure& f : figures) {
    const std::string path = (std::filesystem::path(dir) / f.file).string();
    write_file_atomic(path, f.svg);
    std::printf("wrote %s (%zu %s)\n", path.c_str(), f.lines, f.lines == 1 ? "line" : "lines");
  }
}

int cmd_compare(const cli::Args& a) {
  std::vector<std::string> axes;
  const std::vector<ResultCell> cells = gather_results(a, a.positional, axes);
  CompareOptions o = compare_options(a);
  o.axes = axes;
  std::cout << format_comparison(cells, o);
  if (a.has("plot")) {
    CompareOptions as_json = o;
    as_json.format = "json";
    write_figures(a.text("plot"), {plot_comparison(nlohmann::json::parse(format_comparison(cells, as_json)))});
  }
  return 0;
}

// The record of one experiment: through the serving coordinator, else from the store itself.
ExperimentView fetch_experiment(const cli::Args& a, const std::string& name) {
  std::optional<CoordinatorClient> client = serving_client(a);
  if (client) return experiment_from_api_json(client->get("/api/v1/experiments/" + url_encode(name)));
  auto store = ExperimentStore::open(a.text("state", kDefaultState) + "/db");
  const auto e = store->get_experiment(name);
  if (!e) throw Error("no experiment named '" + name + "' in " + store->path());
  return {*e, store->list_stages(name), store->list_runs(name), {}, {}};
}

int cmd_logs(const cli::Args& a) {
  // RUN is <experiment>.<stage>.a<attempt>; names hold no '.'.
  const std::vector<std::string> parts = split(a.positional.at(0), '.');
  const std::string experiment = parts.at(0);
  const std::string run_id = parts.size() == 3 ? a.positional.at(0) : "";
  if (parts.size() != 1 && parts.size() != 3)
    throw cli::UsageError("expected an experiment name or a run id (EXPERIMENT.STAGE.aN), got '" + a.positional.at(0) +
                          "'");
  const std::string stage = parts.size() == 3 ? parts[1] : a.text("stage");
  const std::string rank = a.text("rank", "0");
  // The runs to show: the given one, else each stage's current run (or only --stage's).
  const auto runs_to_show = [&](const ExperimentView& v) {
    std::vector<RunRecord> out;
    for (const StageRecord& s : v.stages) {
      if (!stage.empty() && s.name != stage) continue;
      for (const RunRecord& r : v.runs)
        if (run_id.empty() ? r.id == s.current_run : r.id == run_id) out.push_back(r);
    }
    return out;
  };
  const ExperimentView view = fetch_experiment(a, experiment);
  if (!stage.empty() &&
      std::none_of(view.stages.begin(), view.stages.end(), [&](const StageRecord& s) { return s.name == stage; })) {
    std::vector<std::string> names;
    for (const StageRecord& s : view.stages) names.push_back(s.name);
    throw Error("experiment '" + experiment + "' has no stage '" + stage + "' (stages: " + join(names, ", ") + ")");
  }
  std::vector<RunRecord> runs = runs_to_show(view);
  if (runs.empty())
    throw Error(!run_id.empty()  ? "no run '" + run_id + "' in experiment '" + experiment + "'"
                : !stage.empty() ? "stage '" + stage + "' of experiment '" + experiment + "' has no run yet"
                                 : "experiment '" + experiment + "' has no run yet");
  const auto log_path = [&](const RunRecord& r) {
    return r.run_dir + "/logs/" + (rank == "mpirun" ? std::string("mpirun.log") : "rank-" + rank + ".log");
  };
  const auto copy_from = [](const std::string& path, std::uint64_t offset) {  // prints the new bytes
    std::ifstream in(path, std::ios::binary);
    if (!in) return offset;
    in.seekg(0, std::ios::end);
    const std::uint64_t size = static_cast<std::uint64_t>(in.tellg());
    if (size < offset) offset = 0;  // the file was replaced
    in.seekg(static_cast<std::streamoff>(offset));
    std::string chunk(size - offset, '\0');
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    std::fwrite(chunk.data(), 1, chunk.size(), stdout);
    std::fflush(stdout);
    return size;
  };
  if (!a.has("follow")) {
    for (const RunRecord& r : runs) {
      if (runs.size() > 1) std::printf("==> %s (%s) <==\n", r.id.c_str(), log_path(r).c_str());
      if (!std::filesystem::exists(log_path(r))) std::printf("(no log yet at %s)\n", log_path(r).c_str());
      copy_from(log_path(r), 0);
    }
    return 0;
  }
  // --follow: the newest run shown (by start), printed as it grows; a retry of its stage is followed
  // on (attempts of a stage share its log directory) until the stage ends.
  RunRecord run = *std::max_element(runs.begin(), runs.end(),
                                    [](const RunRecord& x, const RunRecord& y) { return x.started_at < y.started_at; });
  std::fprintf(stderr, "following %s (%s); Ctrl-C stops\n", run.id.c_str(), log_path(run).c_str());
  std::uint64_t offset = 0;
  for (;;) {
    offset = copy_from(log_path(run), offset);
    const ExperimentView now = fetch_experiment(a, experiment);
    bool ended = true;
    for (const StageRecord& s : now.stages) {
      if (s.name != run.stage) continue;
      ended = is_terminal(s.state);
      for (const RunRecord& r : now.runs)
        if (r.id == s.current_run && r.id != run.id) {  // a new attempt
          std::fprintf(stderr, "following %s\n", r.id.c_str());
          if (log_path(r) != log_path(run)) offset = 0;
          run = r;
        }
    }
    if (ended) {  // the last lines a worker wrote before its stage ended
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      copy_from(log_path(run), offset);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int cmd_plot(const cli::Args& a) {
  std::vector<std::string> axes;
  const std::vector<ResultCell> cells =
      gather_results(a, a.positional, axes, static_cast<std::size_t>(a.integer("max-points", 2000)));
  PlotOptions o;
  for (const std::string& m : split(a.text("metric"), ','))
    if (!m.empty()) o.metrics.push_back(m);
  o.x = a.text("x", "step");
  o.smoothing = a.number("smoothing", 0.9);
  write_figures(a.text("out", "plots"), plot_curves(cells, o));
  return 0;
}

// `report SWEEP... --out DIR [--claims FILE]`: DIR/README.md with its figures and sample grids.
int cmd_report(const cli::Args& a) {
  if (a.positional.empty()) throw cli::UsageError("report: name at least one sweep or experiment");
  const std::string dir = a.text("out");
  if (dir.empty()) throw cli::UsageError("report: --out DIR is required");
  std::vector<ReportSweep> sweeps;
  for (const std::string& name : a.positional) {
    ReportSweep s;
    s.name = name;
    s.cells = gather_results(a, {name}, s.axes);
    s.source = s.cells.empty() ? std::string() : s.cells.front().view.experiment.source;
    sweeps.push_back(std::move(s));
  }
  std::vector<Claim> claims;
  if (a.has("claims")) claims = parse_claims(read_file(a.text("claims")), a.text("claims"));
  ReportOptions o;
  o.command = "ldm-coord report " + join(a.positional, " ") + " --out " + dir +
              (a.has("claims") ? " --claims " + a.text("claims") : std::string());
  o.state = a.text("state", kDefaultState);
  o.now = log::now_seconds();
  o.grid_seeds = static_cast<int>(a.integer("grid-seeds", 0));
  const ReportOutput r = build_report(sweeps, claims, o);
  std::filesystem::create_directories(dir);
  for (const auto& [path, content] : r.files) {
    std::filesystem::create_directories(std::filesystem::path(dir + "/" + path).parent_path());
    write_file_atomic(dir + "/" + path, content);
  }
  std::size_t missing = 0;
  for (const auto& [from, to] : r.copies) {
    std::filesystem::create_directories(std::filesystem::path(dir + "/" + to).parent_path());
    std::error_code ec;
    std::filesystem::copy_file(from, dir + "/" + to, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
      ++missing;
      log::warn("report: no sample grid " + from + " (" + ec.message() + ")");
    }
  }
  write_file_atomic(dir + "/README.md", r.markdown);
  std::printf("wrote %s/README.md: %zu sweeps, %zu figures, %zu sample grids%s\n", dir.c_str(), sweeps.size(),
              r.files.size(), r.copies.size() - missing,
              missing ? (" (" + std::to_string(missing) + " missing)").c_str() : "");
  for (const Verdict& v : r.verdicts)
    std::printf("  %-4s %-13s %s\n", v.claim.id.c_str(), v.verdict.c_str(), v.claim.title.c_str());
  return 0;
}

int cmd_export(const cli::Args& a) {
  std::vector<std::string> axes;
  const std::vector<ResultCell> cells = gather_results(a, a.positional, axes);
  const std::string text = export_points(cells, axes, a.text("format", "csv"));
  if (a.text("out").empty()) {
    std::cout << text;
  } else {
    write_file_atomic(a.text("out"), text);
    std::size_t points = 0;
    for (const ResultCell& c : cells)
      for (const auto& [stage, p] : c.points) points += p.size();
    std::printf("wrote %zu points of %zu experiments to %s\n", points, cells.size(), a.text("out").c_str());
  }
  return 0;
}

int cmd_delete(const cli::Args& a) {
  CoordinatorClient client = client_for(a);
  const std::string& name = a.positional.at(0);
  const std::string kind = names_sweep(client, name) ? "sweeps" : "experiments";
  client.post("/api/v1/" + kind + "/" + url_encode(name) + "/delete", {{"files", a.has("files")}});
  std::printf("deleted %s %s%s\n", kind == "sweeps" ? "sweep" : "experiment", name.c_str(),
              a.has("files") ? " and its run directories" : " (run directories kept; --files removes them)");
  return 0;
}

// Follows every cell of a sweep until all settle; prints the comparison. Exit status as
// follow_experiment's (0 when every cell is done).
int follow_sweep(Coordinator& coordinator, const std::string& name) {
  std::string last_line;
  auto last_print = std::chrono::steady_clock::now() - kProgressInterval;
  for (;;) {
    const auto view = coordinator.sweep(name);
    if (!view) throw Error("sweep " + name + " vanished from the store");
    std::map<std::string, int> counts;
    std::string running;
    bool all_settled = true;
    for (const ExperimentView& e : view->cells) {
      ++counts[to_string(e.experiment.state)];
      all_settled = all_settled && settled(e.experiment.state);
      for (const StageRecord& s : e.stages)
        if (s.state == RunState::Running)
          running += " " + e.experiment.name + "/" + s.name + " " + std::to_string(s.step) + "/" +
                     std::to_string(s.total_steps) + ";";
    }
    std::string line = "sweep " + name + ":";
    for (const auto& [state, n] : counts) line += " " + std::to_string(n) + " " + state;
    if (!running.empty()) line += " |" + running.substr(0, running.size() - 1);
    const auto now = std::chrono::steady_clock::now();
    if (line != last_line && (now - last_print >= kProgressInterval || all_settled)) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
      last_line = line;
      last_print = now;
    }
    if (all_settled) {
      std::printf("\n%s\n", format_sweep_status(*view, log::now_seconds()).c_str());
      std::vector<ResultCell> cells;
      for (std::size_t i = 0; i < view->cells.size(); ++i) {
        ResultCell c{view->cells[i], view->sweep.cells.at(i).value("values", nlohmann::json::object()), {}};
        for (const StageRecord& s : c.view.stages)
          c.points[s.name] = coordinator.metrics(c.view.experiment.name, s.name, "");
        cells.push_back(std::move(c));
      }
      CompareOptions o;
      o.now = log::now_seconds();
      o.axes = view->sweep.axes;
      try {
        std::printf("%s", format_comparison(cells, o).c_str());
      } catch (const Error& e) {
        std::printf("no comparison: %s\n", e.what());
      }
      return counts["done"] == static_cast<int>(view->cells.size()) ? 0 : 1;
    }
    if (const int sig = wait_for_shutdown(std::chrono::milliseconds(250))) {
      std::printf("interrupted (%s): sweep %s goes on; its jobs keep running\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
                  name.c_str());
      return 130;
    }
  }
}

// resume's world-size flags, for the in-process coordinator, and as the API's request body.
ResumeOptions resume_options(const cli::Args& a) {
  ResumeOptions o;
  o.ranks = static_cast<int>(a.integer("ranks", 0));
  o.allow_world_size_change = a.has("allow-world-size-change");
  o.stage = a.text("stage");
  return o;
}

nlohmann::json resume_body(const ResumeOptions& o) {
  nlohmann::json body = nlohmann::json::object();
  if (o.ranks > 0) body["ranks"] = o.ranks;
  if (o.allow_world_size_change) body["allow_world_size_change"] = true;
  if (!o.stage.empty()) body["stage"] = o.stage;
  return body;
}

int cmd_resume(const cli::Args& a) {
  const ResumeOptions options = resume_options(a);
  const nlohmann::json body = resume_body(options);
  if (!body.empty() && a.has("allow-world-size-change") != a.has("ranks"))
    throw cli::UsageError(
        "--ranks N and --allow-world-size-change go together (resuming at another world size is "
        "not bit-exact)");
  // No coordinator serving this state directory: resume in-process, as `run` does, and follow it.
  if (a.text("coord").empty() && env_or("LDM_COORD", "").empty()) {
    bool serving = true;
    try {
      locate_coordinator("", a.text("state", kDefaultState));
    } catch (const Error&) {
      serving = false;
    }
    if (!serving) {
      block_shutdown_signals();
      CoordinatorService service(service_options(a, 0, 0));
      const std::string& name = a.positional.at(0);
      if (const auto sweep = service.coordinator().sweep(name)) {
        if (!body.empty()) throw cli::UsageError("--ranks applies to one experiment, not to the sweep " + name);
        bool stopped = false;
        for (const ExperimentView& e : sweep->cells)
          stopped = stopped || (settled(e.experiment.state) && e.experiment.state != RunState::Done);
        if (stopped) service.coordinator().resume_sweep(name);
        std::printf("sweep %s: %s in-process (no coordinator serving %s)\n", name.c_str(),
                    stopped ? "resumed its stopped cells, following it" : "following it", service.state_dir().c_str());
        std::fflush(stdout);
        return follow_sweep(service.coordinator(), name);
      }
      // Jobs a coordinator that stopped had left running were re-attached when this one started:
      // the experiment is still running, and resuming it means following it.
      const auto view = service.coordinator().experiment(name);
      if (view && !settled(view->experiment.state)) {
        std::printf(
            "%s is still running (%zu job(s) re-attached); following it in-process (no coordinator serving %s)\n",
            name.c_str(), service.coordinator().running_jobs(), service.state_dir().c_str());
        std::fflush(stdout);
        return follow_experiment(service.coordinator(), name);
      }
      const std::string run = service.coordinator().resume(name, options);
      std::printf("resumed %s in-process (no coordinator serving %s): %s\n", a.positional.at(0).c_str(),
                  service.state_dir().c_str(),
                  run.empty() ? "its stages wait for their parents" : ("run " + run).c_str());
      std::fflush(stdout);
      return follow_experiment(service.coordinator(), a.positional.at(0));
    }
  }
  CoordinatorClient client = client_for(a);
  if (names_sweep(client, a.positional.at(0))) {
    if (!body.empty())
      throw cli::UsageError("--ranks applies to one experiment, not to the sweep " + a.positional.at(0));
    const nlohmann::json reply =
        client.post("/api/v1/sweeps/" + url_encode(a.positional.at(0)) + "/resume", nlohmann::json::object());
    std::printf("resumed sweep %s: %s\n", a.positional.at(0).c_str(),
                join(reply.value("resumed", std::vector<std::string>{}), ", ").c_str());
    return 0;
  }
  const nlohmann::json reply = client.post("/api/v1/experiments/" + url_encode(a.positional.at(0)) + "/resume", body);
  std::printf("resumed %s: run %s\n", reply.value("experiment", std::string("?")).c_str(),
              reply.value("run", std::string("?")).c_str());
  return 0;
}

int cmd_cancel(const cli::Args& a) {
  CoordinatorClient client = client_for(a);
  if (a.text("stage").empty() && names_sweep(client, a.positional.at(0))) {
    const nlohmann::json reply =
        client.post("/api/v1/sweeps/" + url_encode(a.positional.at(0)) + "/cancel", nlohmann::json::object());
    const auto runs = reply.value("signalled", std::vector<std::string>{});
    std::printf("cancelling sweep %s: %s\n", a.positional.at(0).c_str(),
                runs.empty() ? "no run was running (waiting cells cancelled)"
                             : ("SIGUSR1 to " + join(runs, ", ") + "; they checkpoint and stop").c_str());
    return 0;
  }
  nlohmann::json body = nlohmann::json::object();
  if (!a.text("stage").empty()) body["stage"] = a.text("stage");
  const nlohmann::json reply = client.post("/api/v1/experiments/" + url_encode(a.positional.at(0)) + "/cancel", body);
  const auto runs = reply.value("signalled", std::vector<std::string>{});
  std::printf("cancelling %s: %s\n", reply.value("experiment", std::string("?")).c_str(),
              runs.empty() ? "no run was running (waiting stages cancelled)"
                           : ("SIGUSR1 to " + join(runs, ", ") + "; they checkpoint and stop").c_str());
  return 0;
}

int cmd_status(const cli::Args& a) {
  CoordinatorClient client = client_for(a);
  const bool json = a.has("json");
  if (!a.positional.empty() && names_sweep(client, a.positional[0])) {
    const nlohmann::json j = client.get("/api/v1/sweeps/" + url_encode(a.positional[0]));
    std::cout << (json ? j.dump(2) + "\n" : format_sweep_status(sweep_from_api_json(j), log::now_seconds()));
    return 0;
  }
  if (!a.positional.empty()) {
    const nlohmann::json j = client.get("/api/v1/experiments/" + url_encode(a.positional[0]));
    std::cout << (json ? j.dump(2) + "\n" : format_experiment_detail(experiment_from_api_json(j)));
    return 0;
  }
  const nlohmann::json j = client.get("/api/v1/experiments");
  if (json) {  // the experiments and the sweeps, as the two list endpoints give them
    std::cout << nlohmann::json{{"experiments", j.value("experiments", nlohmann::json::array())},
                                {"sweeps", client.get("/api/v1/sweeps").value("sweeps", nlohmann::json::array())}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::vector<ExperimentView> views;
  for (const auto& item : j.value("experiments", nlohmann::json::array()))
    views.push_back(experiment_from_api_json(item));
  std::cout << format_status_table(views);
  for (const auto& s : client.get("/api/v1/sweeps").value("sweeps", nlohmann::json::array()))
    std::printf("sweep %s: %zu cells over %s (`ldm-coord status %s`)\n", s.value("name", std::string()).c_str(),
                s.value("cells", nlohmann::json::array()).size(),
                join(s.value("axes", std::vector<std::string>{}), ", ").c_str(),
                s.value("name", std::string()).c_str());
  return 0;
}

int cmd_show(const cli::Args& a) {
  if (is_sweep_file(a.positional.at(0))) {
    const SweepSpec sweep = parse_sweep_file(a.positional.at(0));
    if (!a.text("cell").empty()) {
      for (const SweepCell& cell : sweep.cells)
        if (cell.name == a.text("cell")) {
          std::cout << format_experiment_toml(cell.spec);
          return 0;
        }
      throw Error("sweep " + sweep.name + " has no cell '" + a.text("cell") + "'");
    }
    std::printf("sweep %s: %zu cells over %s (each validated; `--cell NAME` prints one resolved)\n", sweep.name.c_str(),
                sweep.cells.size(), join(sweep.axes, ", ").c_str());
    for (const SweepCell& cell : sweep.cells) std::printf("  %s  %s\n", cell.name.c_str(), cell.values.dump().c_str());
    return 0;
  }
  std::cout << format_experiment_toml(parse_experiment_file(a.positional.at(0)));
  return 0;
}

int cmd_presets(const cli::Args& a) {
  std::cout << (a.has("json") ? nlohmann::json{{"presets", presets_json()}}.dump(2) + "\n" : format_presets_table());
  return 0;
}

int cmd_run_sweep(const cli::Args& a) {
  SweepSubmission submission = sweep_from_file(a.positional.at(0), a.text("name"), 0);  // before any I/O
  block_shutdown_signals();
  CoordinatorService service(service_options(a, 0, 0));
  Coordinator& coordinator = service.coordinator();
  const std::string base = submission.name;
  for (int n = 2;; ++n) {
    try {
      coordinator.submit_sweep(submission);
      break;
    } catch (const NameTakenError&) {
      if (!a.text("name").empty() || n > 1000) throw;
      submission = sweep_from_file(a.positional.at(0), base + "-" + std::to_string(n), 0);
    }
  }
  std::printf("submitted sweep %s: %zu experiments over %s (coordinator %s, state %s); Ctrl-C stops waiting\n",
              submission.name.c_str(), submission.cells.size(), join(submission.axes, ", ").c_str(),
              service.http_url().c_str(), service.state_dir().c_str());
  std::fflush(stdout);
  const int status = follow_sweep(coordinator, submission.name);
  if (status != 130)
    std::printf(
        "\nOn toy data (synthetic shapes, a built-in patch autoencoder, minutes of CPU) these differences "
        "are not meaningful: they show the machinery, not the recipes. `ldm-coord compare %s --format md` "
        "prints the table again.\n",
        submission.name.c_str());
  return status;
}

int cmd_run(const cli::Args& a) {
  if (is_sweep_file(a.positional.at(0))) return cmd_run_sweep(a);
  Submission submission = submission_from_file(a.positional.at(0), a);  // before any I/O
  block_shutdown_signals();
  CoordinatorService service(service_options(a, 0, 0));
  Coordinator& coordinator = service.coordinator();
  // `run` is the command people repeat (the quickstart): without --name, a taken name gets the
  // first free suffix instead of an error, so every run keeps its own history in the store.
  const std::string base = submission.spec.value("name", std::string());
  SubmitResult submitted;
  for (int n = 2;; ++n) {
    try {
      submitted = coordinator.submit(submission);
      break;
    } catch (const NameTakenError&) {
      if (!a.text("name").empty() || n > 1000) throw;
      submission.name = base + "-" + std::to_string(n);
    }
  }
  if (!submission.name.empty() && a.text("name").empty())
    std::printf("experiment '%s' exists in this store; running this one as '%s'\n", base.c_str(),
                submission.name.c_str());
  const std::string name = submitted.experiment;
  std::printf("submitted %s (coordinator %s, state %s); Ctrl-C stops waiting, jobs keep running\n", name.c_str(),
              service.http_url().c_str(), service.state_dir().c_str());
  std::fflush(stdout);

  return follow_experiment(coordinator, name);
}

// ---- dispatch ------------------------------------------------------------------------------------

// The commands that read results: compare, logs, plot, export, delete, presets.
std::vector<cli::Command> result_commands() {
  return {{"compare",
           {"NAME..."},
           "Compare experiments and sweeps side by side: the metric at each stage's end (mean ± std over seeds), "
           "best per column, ✗ diverged, — not applicable; with parameters, GFLOPs, images seen and compute.",
           {cli::text("metric", "M", "metric to compare (default: fid when a stage has it, else loss)"),
            cli::text("rows", "KEY", "rows: a swept or spec key, or experiment (default: the first swept key)"),
            cli::text("cols", "KEY", "columns: stage (default), or a swept or spec key"),
            cli::text("format", "F", "table (default), md, csv or json"),
            cli::text("relative-to", "ROW", "show the % change of every row against this one"),
            cli::text("plot", "DIR",
                      "also write the table as a bar chart (mean ± std per row) to DIR/<metric>-compare.svg"),
            kCoordFlag, kTokenFlag, kStateFlag},
           cmd_compare},
          {"logs",
           {"RUN|EXPERIMENT"},
           "Print a run's log (rank 0 by default); for an experiment, the current run of each stage. With --follow, "
           "keep printing the newest run's log as it grows (through retries) until its stage ends.",
           {cli::text("stage", "S", "only this stage of the experiment"),
            cli::text("rank", "R", "the rank whose log to print (default 0), or mpirun for the launcher's output"),
            cli::flag("follow", "keep printing new lines until the run ends"), kCoordFlag, kTokenFlag, kStateFlag},
           cmd_logs},
          {"plot",
           {"NAME..."},
           "Plot metric curves of experiments and sweeps as SVG files, one per metric, one line per experiment (stages "
           "end to end; loss smoothed over its faint raw curve; a log axis when the values span more than a decade).",
           {cli::text("metric", "M[,M...]", "metrics to plot (default: loss and every metric an evaluation stage has)"),
            cli::choice("x", {"step", "images"}, "x axis: optimiser steps (default) or images seen"),
            cli::text("out", "DIR", "directory for the SVG files (default ./plots)"),
            cli::integer("max-points", "N", "thin each curve to about N points in the store query (default 2000)", 1,
                         10000000),
            cli::number("smoothing", "W", "EMA weight of the smoothed line, 0 = raw only (default 0.9)", 0, 0.999),
            kCoordFlag, kTokenFlag, kStateFlag},
           cmd_plot},
          {"report",
           {"NAME..."},
           "Write a markdown results report of sweeps to DIR/README.md: per sweep, a comparison table of every "
           "metric (rows by arm, mean ± std over seeds), bar charts and curves, sample grids per cell, the command, "
           "spec hashes and compute; with --claims, a verdict per claim (reproduced, contradicted or inconclusive, "
           "with the effect size and Welch t over seeds).",
           {cli::text("out", "DIR", "directory of the report (README.md, figures, grids); required"),
            cli::text("claims", "FILE",
                      "a TOML file of [[claim]] tables (id, sweep, title, paper, metric, better, stage or "
                      "treatment_stage/baseline_stage, treatment_row, baseline_row, rows, t_min, scale); see "
                      "experiments/repro/claims.toml"),
            cli::integer("grid-seeds", "N", "sample grids of the first N seeds of each arm only (default: every seed)",
                         0, 1000000),
            kCoordFlag, kTokenFlag, kStateFlag},
           cmd_report},
          {"export",
           {"NAME..."},
           "Every metric point of experiments and sweeps with experiment, cell values, stage, attempt and step.",
           {cli::text("format", "F", "csv (default) or jsonl"), cli::text("out", "FILE", "write here (default stdout)"),
            kCoordFlag, kTokenFlag, kStateFlag},
           cmd_export},
          {"delete",
           {"NAME"},
           "Remove a stopped experiment, or a sweep with all its cells, from the store.",
           {cli::flag("files", "also remove their run directories"), kCoordFlag, kTokenFlag, kStateFlag},
           cmd_delete},
          {"presets",
           {},
           "List model families and size presets with analytic parameters and GFLOPs, and published counts.",
           {cli::flag("json", "print JSON instead of a table")},
           cmd_presets}};
}

cli::Program program() {
  const std::string kPortNote = " (0 = any free port)";
  cli::Program p{
      "ldm-coord",
      "Trains latent-diffusion experiments: a coordinator that schedules `mpirun ldm-worker` jobs and stores "
      "their results.",
      {{"serve",
        {},
        "Run the coordinator: HTTP API and worker endpoint, until SIGINT/SIGTERM.",
        {kStateFlag,
         cli::text("listen", "ADDR",
                   "address of the HTTP API and the worker endpoint (default 127.0.0.1; any other, e.g. 0.0.0.0 or "
                   "a cluster interface's address, turns on authentication: a bearer token and CURVE keys in "
                   "<state>/auth)"),
         cli::text("token-file", "F", "off loopback: take the bearer token from this file instead of generating one"),
         cli::text("executor", "KIND",
                   "local (default): start `mpirun ldm-worker` jobs on this machine; slurm: submit each attempt as a "
                   "batch job (sbatch, srun --mpi=pmix); pull: start nothing, ready stages wait for workers started "
                   "elsewhere (`mpirun ldm-worker train --coord tcp://HOST:PORT`); every kind also serves those"),
         cli::text("slurm-partition", "P", "slurm: sbatch --partition (default: the cluster's)"),
         cli::text("slurm-account", "A", "slurm: sbatch --account"),
         cli::text("slurm-qos", "Q", "slurm: sbatch --qos"),
         cli::text("slurm-time", "T", "slurm: sbatch --time, e.g. 04:00:00 (default: the partition's limit)"),
         cli::integer("slurm-gpus-per-node", "N", "slurm: sbatch --gpus-per-node (default none)", 0, 1024),
         cli::integer("slurm-nodes", "N", "slurm: sbatch --nodes (default: as SLURM places the ranks)", 0, 100000),
         cli::integer("slurm-tasks-per-node", "N", "slurm: sbatch --ntasks-per-node", 0, 100000),
         cli::integer("slurm-signal-before", "S",
                      "slurm: SIGUSR1 this many seconds before the time limit; the ranks checkpoint and the next "
                      "attempt resumes (default 120)",
                      0, 86400),
         cli::text("slurm-sbatch", "LINES",
                   "slurm: more #SBATCH options, ';'-separated (e.g. \"--mem=64G;--exclusive\")"),
         cli::text("slurm-setup", "LINES",
                   "slurm: shell lines run before srun, ';'-separated (e.g. \"module load openmpi\")"),
         cli::integer("http-port", "P", "HTTP API port (default 7621)" + kPortNote, 0, 65535),
         cli::integer("zmq-port", "P", "worker endpoint port (default 7622)" + kPortNote, 0, 65535),
         cli::text("runs", "DIR", "run directories (default <state>/runs)"),
         kWorkerFlag,
         kMpirunFlag,
         kSlotsFlag,
         kHeartbeatFlag},
        cmd_serve},
       {"submit",
        {"FILE"},
        "Validate an experiment file (a sweep: every cell) and submit it to the running coordinator.",
        {kNameFlag,
         cli::integer("priority", "N",
                      "its ready stages take free slots before those of lower-priority experiments (default 0)",
                      -1000000, 1000000),
         kCoordFlag, kTokenFlag, kStateFlag},
        cmd_submit},
       {"resume",
        {"EXPERIMENT"},
        "Start new attempts of a stopped experiment's stopped stages, from their newest checkpoints: through "
        "the serving coordinator, or in-process (and followed, as `run`) when none serves the state directory; "
        "an experiment whose jobs still run (left by a coordinator that stopped) is re-attached and followed. "
        "With --ranks N --allow-world-size-change the stopped stages go on at N ranks: same global batch and "
        "data order (no record skipped or seen twice), new generator streams, so not bit-exact.",
        {cli::integer("ranks", "N", "go on at this world size (with --allow-world-size-change)", 1, 1000000),
         cli::flag("allow-world-size-change", "accept that a resume at another world size is not bit-exact"),
         cli::text("stage", "S", "with --ranks: only this stopped stage changes world size"), kCoordFlag, kTokenFlag,
         kStateFlag, kWorkerFlag, kMpirunFlag, kSlotsFlag, kHeartbeatFlag},
        cmd_resume},
       {"cancel",
        {"EXPERIMENT"},
        "Cancel a running experiment (or one stage): its workers checkpoint and stop (SIGUSR1, SIGKILL after a "
        "grace period); `resume` continues from the checkpoint.",
        {cli::text("stage", "S", "cancel only this stage"), kCoordFlag, kTokenFlag, kStateFlag},
        cmd_cancel},
       {"status",
        {"[EXPERIMENT]"},
        "Show experiments, their stages and runs (or one experiment in detail).",
        {cli::flag("json", "print the API's JSON instead of a table"), kCoordFlag, kTokenFlag, kStateFlag},
        cmd_status},
       {"show",
        {"FILE"},
        "Print the fully resolved experiment configuration (defaults included); for a sweep, its cells.",
        {cli::text("cell", "NAME", "a sweep: print this cell's resolved configuration")},
        cmd_show},
       {"run",
        {"FILE"},
        "Run one experiment, or a sweep of them, in-process (coordinator on ephemeral ports) until it ends; a sweep "
        "ends with its comparison table; exit 0 if everything is done.",
        {kStateFlag, kNameFlag, kWorkerFlag, kMpirunFlag, kSlotsFlag, kHeartbeatFlag},
        cmd_run}}};
  const std::vector<cli::Command> results = result_commands();
  p.commands.insert(p.commands.end() - 1, results.begin(), results.end());  // before `run`, as help lists them
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  log::set_component("coord");
  return cli::run(program(), argc, argv);
}
