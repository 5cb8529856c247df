// The RocksDB experiment store. Only the coordinator opens it (single writer); everyone else reads
// through the coordinator's HTTP API.
//
// Key layout (DESIGN.md "Store"): one table-tag byte, then the key's parts, each string part
// length-prefixed with a big-endian u32 and each integer part big-endian, so that one prefix scan
// answers one question and integer parts sort numerically.
//   'V'                                         -> schema_version (decimal text)
//   'E' lp(experiment)                          -> ExperimentRecord JSON
//   'S' lp(experiment) be32(index) lp(stage)    -> StageRecord JSON   (stages scan in order)
//   'R' lp(run id)                              -> RunRecord JSON
//   'W' lp(sweep)                               -> SweepRecord JSON
//   'P' lp(experiment) lp(stage) lp(metric) be64(step)
//                                               -> be32(attempt) f64(value) f64(time)  (binary)
// A metric curve belongs to the stage, not the attempt: the attempt is in the value. When an
// attempt resumes from step S, record_resume() deletes that stage's points with step > S in the
// same write batch that records the resume, so curves never hold duplicates or stale tails.
// State changes (experiments, stages, runs) are written with sync=true; metric batches are not
// (they are acknowledged after the write and re-sent by the worker if the coordinator dies).
//
// Thread-safety: all methods may be called from several threads (RocksDB is thread-safe; this
// class holds no mutable state besides the DB handle).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/core/records.h"

namespace rocksdb {
class DB;
class Slice;
class Status;
class WriteBatch;
}  // namespace rocksdb

namespace ldm {

class ExperimentStore {
 public:
  // 2: experiment records have no `fault` (migrated from 1 on open).
  // 3: run records carry `init`, their lineage (migrated from 2 on open: {} = from scratch).
  // 4: run records carry `job`, `coord`, `report` and `cancel_requested_at` (a restarted coordinator
  //    re-attaches running jobs), experiment records `priority` (migrated from 3: "", "", "", 0, 0).
  // 5: sweep records ('W'); nothing else changes (migrated from 4 by writing the version).
  // 6: stage records carry `ranks`, the world size `resume --ranks N --allow-world-size-change`
  //    gave the stage (migrated from 5: 0 = the spec's).
  static constexpr int kSchemaVersion = 6;

  // Opens (creating if missing) the database at `path`; an empty database gets the
  // schema_version key, an older one is migrated (one synced batch). A database with a newer or no
  // schema_version, or one that RocksDB cannot
  // open (locked by another coordinator, corrupt), throws StoreError naming the path. Every
  // later RocksDB failure also throws StoreError naming the path and the operation.
  static std::unique_ptr<ExperimentStore> open(const std::string& path);
  ~ExperimentStore();

  const std::string& path() const { return path_; }
  int schema_version() const;

  void put_experiment(const ExperimentRecord& e);
  std::optional<ExperimentRecord> get_experiment(const std::string& name) const;
  std::vector<ExperimentRecord> list_experiments() const;  // sorted by name

  void put_stage(const StageRecord& s);
  std::optional<StageRecord> get_stage(const std::string& experiment, const std::string& stage) const;
  std::vector<StageRecord> list_stages(const std::string& experiment) const;  // in index order

  void put_run(const RunRecord& r);
  std::optional<RunRecord> get_run(const std::string& id) const;
  std::vector<RunRecord> list_runs() const;                               // sorted by id
  std::vector<RunRecord> list_runs(const std::string& experiment) const;  // sorted by id

  // Writes the experiment and its stages of a new submission in one synced batch.
  void put_submission(const ExperimentRecord& e, const std::vector<StageRecord>& stages);

  // Stores a batch of points for (experiment, stage) and updates `run` (its last_seq, step,
  // loss...) in one batch. Re-sending the same batch overwrites identical keys (idempotent).
  void append_metrics(const std::string& experiment, const std::string& stage, const std::vector<MetricPoint>& points,
                      const RunRecord& run);

  // Points of one stage, sorted by (metric, step). `metric` empty = all metrics. Steps are
  // expected to be >= 0 (be64 keys sort a negative step after every positive one).
  // max_points > 0 thins each curve without reading it whole: its step range is cut into
  // max_points equal buckets and each bucket contributes its first point (one seek each), plus
  // the curve's last point; a curve with at most one point per bucket comes back whole.
  std::vector<MetricPoint> metrics(const std::string& experiment, const std::string& stage,
                                   const std::string& metric = "", std::size_t max_points = 0) const;

  // Records that `run` (a new attempt) resumes `stage` from `from_step`: deletes the stage's
  // points with step > from_step and writes the run, in one synced batch.
  void record_resume(const RunRecord& run, std::int64_t from_step);

  // Removes an experiment with its stages, runs and metric points (one batch).
  void delete_experiment(const std::string& name);

  // A new sweep with every cell's submission, in one synced batch: all or nothing.
  struct Submission {
    ExperimentRecord experiment;
    std::vector<StageRecord> stages;
  };
  void put_sweep(const SweepRecord& sweep, const std::vector<Submission>& cells);
  std::optional<SweepRecord> get_sweep(const std::string& name) const;
  std::vector<SweepRecord> list_sweeps() const;  // sorted by name
  // Removes the sweep and every cell experiment it lists (one batch).
  void delete_sweep(const std::string& name);

 private:
  using ScanFn = std::function<void(const rocksdb::Slice& key, const rocksdb::Slice& value)>;

  ExperimentStore(std::string path, std::unique_ptr<rocksdb::DB> db);
  void init_schema();     // writes schema_version into an empty DB, else checks (or migrates) it
  void migrate_from_1();  // drops ExperimentRecord's `fault`
  void migrate_from_2();  // gives every RunRecord an empty `init`
  void migrate_from_3();  // gives runs `job`, `coord`, `report`, `cancel_requested_at`; experiments `priority`
  void migrate_from_4();  // sweeps are new: writes the version
  void migrate_from_5();  // gives every StageRecord `ranks` = 0
  // Adds each of `defaults`' fields that a record of `table` lacks, into `batch`; returns how many
  // records changed. A record that is not a JSON object fails the migration `op`.
  std::size_t add_default_fields(rocksdb::WriteBatch& batch, const char* table, const char* what,
                                 const nlohmann::json& defaults, const char* op) const;
  bool is_empty() const;

  // Each helper turns a failed rocksdb::Status into StoreError("... <path_>: <op>: <status>").
  void check(const rocksdb::Status& s, const std::string& op) const;
  std::optional<std::string> get(const std::string& key, const std::string& op) const;
  void write(rocksdb::WriteBatch& batch, bool sync, const std::string& op);
  void scan(const std::string& prefix, const std::string& op, const ScanFn& fn) const;  // key order
  std::vector<MetricPoint> thinned_metrics(const std::string& experiment, const std::string& stage,
                                           const std::string& metric, std::size_t max_points,
                                           const std::string& op) const;
  void delete_prefix(rocksdb::WriteBatch& batch, const std::string& prefix, const std::string& op);
  void delete_experiment(rocksdb::WriteBatch& batch, const std::string& name, const std::string& op);
  template <class Record>
  Record decode(const rocksdb::Slice& value, const std::string& op) const;  // JSON -> record

  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
};

// Key encoding, exposed for tests and tools.
namespace store_keys {
void put_be32(std::string& out, std::uint32_t v);
void put_be64(std::string& out, std::uint64_t v);
void put_lp(std::string& out, const std::string& s);  // be32 length + bytes
std::string experiment_key(const std::string& name);
std::string stage_prefix(const std::string& experiment);
std::string stage_key(const std::string& experiment, int index, const std::string& stage);
std::string run_key(const std::string& id);
std::string metric_prefix(const std::string& experiment, const std::string& stage);
std::string metric_prefix(const std::string& experiment, const std::string& stage, const std::string& metric);
std::string metric_key(const std::string& experiment, const std::string& stage, const std::string& metric,
                       std::int64_t step);
}  // namespace store_keys

}  // namespace ldm
