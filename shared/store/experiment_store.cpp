#include "shared/store/experiment_store.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "shared/core/error.h"
#include "shared/core/log.h"

namespace ldm {

namespace {

// The stored schema_version as a number; nullopt when it is not a plain decimal integer.
std::optional<int> parse_version(const std::string& text) {
  int v = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
  return v;
}

const std::string kVersionKey = "V";
constexpr bool kSync = true, kNoSync = false;       // WriteOptions::sync
constexpr std::size_t kPointValueSize = 4 + 8 + 8;  // be32 attempt, f64 value, f64 time

[[noreturn]] void fail(const std::string& path, const std::string& op, const std::string& detail) {
  throw StoreError("experiment store " + path + ": " + op + ": " + detail);
}

// RocksDB's PosixFileSystem::LockFile reports "While lock file" when fcntl finds the LOCK held
// by another process, and "lock hold by current process" when this process already has it open.
bool is_lock_error(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string m = s.ToString();
  return m.find("While lock file") != std::string::npos || m.find("lock hold by current process") != std::string::npos;
}

std::uint32_t get_be32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint64_t get_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint64_t f64_bits(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

double f64_from_bits(std::uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

// tag byte + lp(part): the head of every key but 'V'.
std::string tagged(char tag, const std::string& part) {
  std::string k(1, tag);
  store_keys::put_lp(k, part);
  return k;
}

std::string encode_point(const MetricPoint& p) {
  std::string v;
  v.reserve(kPointValueSize);
  store_keys::put_be32(v, p.attempt);
  store_keys::put_be64(v, f64_bits(p.value));
  store_keys::put_be64(v, f64_bits(p.time));
  return v;
}

// Parses the part of a point key after metric_prefix(experiment, stage): lp(metric) be64(step).
bool decode_point_key(const char* p, std::size_t n, std::string& metric, std::int64_t& step) {
  if (n < 4) return false;
  const std::uint32_t len = get_be32(p);
  if (n != 4 + std::size_t{len} + 8) return false;
  metric.assign(p + 4, len);
  step = static_cast<std::int64_t>(get_be64(p + 4 + len));
  return true;
}

// A point from its key (whose first stage_prefix_size bytes are the stage's metric prefix) and
// value; false when either is malformed.
bool decode_point(const rocksdb::Slice& key, std::size_t stage_prefix_size, const rocksdb::Slice& value,
                  MetricPoint& p) {
  if (key.size() < stage_prefix_size ||
      !decode_point_key(key.data() + stage_prefix_size, key.size() - stage_prefix_size, p.metric, p.step) ||
      value.size() != kPointValueSize)
    return false;
  p.attempt = get_be32(value.data());
  p.value = f64_from_bits(get_be64(value.data() + 4));
  p.time = f64_from_bits(get_be64(value.data() + 12));
  return true;
}

template <class Record>
std::string encode(const Record& r) {
  return nlohmann::json(r).dump();
}

}  // namespace

namespace store_keys {

void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void put_lp(std::string& out, const std::string& s) {
  put_be32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

std::string experiment_key(const std::string& name) { return tagged('E', name); }

std::string stage_prefix(const std::string& experiment) { return tagged('S', experiment); }

std::string stage_key(const std::string& experiment, int index, const std::string& stage) {
  std::string k = stage_prefix(experiment);
  put_be32(k, static_cast<std::uint32_t>(index));
  put_lp(k, stage);
  return k;
}

std::string run_key(const std::string& id) { return tagged('R', id); }

std::string metric_prefix(const std::string& experiment, const std::string& stage) {
  std::string k = tagged('P', experiment);
  put_lp(k, stage);
  return k;
}

std::string metric_prefix(const std::string& experiment, const std::string& stage, const std::string& metric) {
  std::string k = metric_prefix(experiment, stage);
  put_lp(k, metric);
  return k;
}

std::string metric_key(const std::string& experiment, const std::string& stage, const std::string& metric,
                       std::int64_t step) {
  std::string k = metric_prefix(experiment, stage, metric);
  put_be64(k, static_cast<std::uint64_t>(step));
  return k;
}

}  // namespace store_keys

// ---- open / close ----------------------------------------------------------------------

std::unique_ptr<ExperimentStore> ExperimentStore::open(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (is_lock_error(s))
    throw StoreError("experiment store " + path +
                     " is in use by another coordinator (its LOCK file is held): " + s.ToString());
  if (!s.ok()) fail(path, "open", s.ToString());
  std::unique_ptr<ExperimentStore> store(new ExperimentStore(path, std::unique_ptr<rocksdb::DB>(raw)));
  store->init_schema();  // on throw, the unique_ptr closes the DB again
  return store;
}

ExperimentStore::ExperimentStore(std::string path, std::unique_ptr<rocksdb::DB> db)
    : path_(std::move(path)), db_(std::move(db)) {}

ExperimentStore::~ExperimentStore() {
  if (!db_) return;
  // Close() reports what deleting the handle would swallow; a destructor can only log it.
  const rocksdb::Status s = db_->Close();
  if (!s.ok()) log::warn("experiment store " + path_ + ": close: " + s.ToString());
}

void ExperimentStore::init_schema() {
  const std::string expected = std::to_string(kSchemaVersion);
  const auto stored = get(kVersionKey, "read schema_version");
  if (stored) {
    // Each migration is one synced batch that ends with its own version, so a crash between two of
    // them leaves a store the next open migrates on from where it stopped.
    const int v = parse_version(*stored).value_or(-1);
    if (v >= 1 && v < kSchemaVersion) {
      if (v <= 1) migrate_from_1();
      if (v <= 2) migrate_from_2();
      if (v <= 3) migrate_from_3();
      if (v <= 4) migrate_from_4();
      if (v <= 5) migrate_from_5();
    } else if (v != kSchemaVersion)
      fail(path_, "open", "on-disk schema_version " + *stored + ", this build expects schema_version " + expected);
    return;
  }
  // A crash between creating the DB and writing 'V' leaves it empty, so empty means new.
  if (!is_empty())
    fail(path_, "open",
         "on-disk schema_version missing (not an experiment store?), this build expects "
         "schema_version " +
             expected);
  rocksdb::WriteBatch batch;
  check(batch.Put(kVersionKey, expected), "write schema_version");
  write(batch, kSync, "write schema_version");
}

void ExperimentStore::migrate_from_1() {
  // 1 -> 2: experiment records lose `fault` (fault injection is an environment variable of the
  // coordinator now, never data). Every record and the new version go in one synced batch: a crash
  // leaves the store at version 1, to be migrated again.
  rocksdb::WriteBatch batch;
  std::size_t changed = 0;
  scan("E", "migrate schema_version 1 -> 2", [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    nlohmann::json j = nlohmann::json::parse(v.ToString(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      fail(path_, "migrate schema_version 1 -> 2", "experiment record " + k.ToString(true) + " is not a JSON object");
    if (j.erase("fault") == 0) return;
    check(batch.Put(k, j.dump()), "migrate schema_version 1 -> 2");
    ++changed;
  });
  check(batch.Put(kVersionKey, "2"), "write schema_version");
  write(batch, kSync, "migrate schema_version 1 -> 2");
  log::info("experiment store " + path_ + ": migrated schema_version 1 -> 2 (" + std::to_string(changed) +
            " experiment record(s) lost their fault-injection field)");
}

void ExperimentStore::migrate_from_2() {
  // 2 -> 3: run records gain `init`, the lineage of a stage started from another's checkpoint;
  // every run written before staged experiments existed started from scratch: {}.
  const char* op = "migrate schema_version 2 -> 3";
  rocksdb::WriteBatch batch;
  std::size_t changed = 0;
  scan("R", op, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    nlohmann::json j = nlohmann::json::parse(v.ToString(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) fail(path_, op, "run record " + k.ToString(true) + " is not a JSON object");
    if (j.contains("init")) return;
    j["init"] = nlohmann::json::object();
    check(batch.Put(k, j.dump()), op);
    ++changed;
  });
  check(batch.Put(kVersionKey, "3"), "write schema_version");
  write(batch, kSync, op);
  log::info("experiment store " + path_ + ": migrated schema_version 2 -> 3 (" + std::to_string(changed) +
            " run record(s) recorded as started from scratch)");
}

void ExperimentStore::migrate_from_3() {
  // 3 -> 4: runs gain `job` (the executor's identity of their process), `coord` (the endpoint their
  // worker reports to), `report` (the worker's terminal report) and `cancel_requested_at`;
  // experiments gain `priority`.
  // A run written before has none of them: a restarted coordinator cannot re-attach its job and
  // treats it as gone (retried from its newest checkpoint), as it would have marked it lost before.
  const char* op = "migrate schema_version 3 -> 4";
  rocksdb::WriteBatch batch;
  const std::size_t runs = add_default_fields(
      batch, "R", "run", {{"job", ""}, {"coord", ""}, {"report", ""}, {"cancel_requested_at", 0}}, op);
  const std::size_t experiments = add_default_fields(batch, "E", "experiment", {{"priority", 0}}, op);
  check(batch.Put(kVersionKey, "4"), "write schema_version");
  write(batch, kSync, op);
  log::info("experiment store " + path_ + ": migrated schema_version 3 -> 4 (" + std::to_string(runs) + " run and " +
            std::to_string(experiments) + " experiment record(s) given the new fields)");
}

void ExperimentStore::migrate_from_4() {
  // 4 -> 5: sweep records (table 'W') exist from now on; a store written before has none, and no
  // other record changes.
  rocksdb::WriteBatch batch;
  check(batch.Put(kVersionKey, "5"), "write schema_version");
  write(batch, kSync, "migrate schema_version 4 -> 5");
  log::info("experiment store " + path_ + ": migrated schema_version 4 -> 5 (sweeps; no record changed)");
}

void ExperimentStore::migrate_from_5() {
  // 5 -> 6: stages gain `ranks`, the world size a resume at another world size gave them; every
  // stage written before runs at its spec's ranks (0).
  const char* op = "migrate schema_version 5 -> 6";
  rocksdb::WriteBatch batch;
  const std::size_t stages = add_default_fields(batch, "S", "stage", {{"ranks", 0}}, op);
  check(batch.Put(kVersionKey, "6"), "write schema_version");
  write(batch, kSync, op);
  log::info("experiment store " + path_ + ": migrated schema_version 5 -> 6 (" + std::to_string(stages) +
            " stage record(s) run at their spec's ranks)");
}

std::size_t ExperimentStore::add_default_fields(rocksdb::WriteBatch& batch, const char* table, const char* what,
                                                const nlohmann::json& defaults, const char* op) const {
  std::size_t changed = 0;
  scan(table, op, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    nlohmann::json j = nlohmann::json::parse(v.ToString(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      fail(path_, op, std::string(what) + " record " + k.ToString(true) + " is not a JSON object");
    bool added = false;
    for (auto it = defaults.begin(); it != defaults.end(); ++it)
      if (!j.contains(it.key())) {
        j[it.key()] = it.value();
        added = true;
      }
    if (!added) return;
    check(batch.Put(k, j.dump()), op);
    ++changed;
  });
  return changed;
}

bool ExperimentStore::is_empty() const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->SeekToFirst();
  const bool empty = !it->Valid();
  check(it->status(), "check for an empty database");
  return empty;
}

int ExperimentStore::schema_version() const {
  const std::string op = "read schema_version";
  const auto stored = get(kVersionKey, op);
  if (!stored) fail(path_, op, "the key is missing");
  const auto v = parse_version(*stored);
  if (!v) fail(path_, op, "not an integer: '" + *stored + "'");
  return *v;
}

// ---- helpers ---------------------------------------------------------------------------

void ExperimentStore::check(const rocksdb::Status& s, const std::string& op) const {
  if (!s.ok()) fail(path_, op, s.ToString());
}

std::optional<std::string> ExperimentStore::get(const std::string& key, const std::string& op) const {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
  if (s.IsNotFound()) return std::nullopt;
  check(s, op);
  return value;
}

void ExperimentStore::write(rocksdb::WriteBatch& batch, bool sync, const std::string& op) {
  rocksdb::WriteOptions options;
  options.sync = sync;
  check(db_->Write(options, &batch), op);
}

void ExperimentStore::scan(const std::string& prefix, const std::string& op, const ScanFn& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) fn(it->key(), it->value());
  check(it->status(), op);
}

void ExperimentStore::delete_prefix(rocksdb::WriteBatch& batch, const std::string& prefix, const std::string& op) {
  scan(prefix, op, [&](const rocksdb::Slice& key, const rocksdb::Slice&) { check(batch.Delete(key), op); });
}

template <class Record>
Record ExperimentStore::decode(const rocksdb::Slice& value, const std::string& op) const {
  try {
    return nlohmann::json::parse(value.data(), value.data() + value.size()).get<Record>();
  } catch (const std::exception& e) {  // nlohmann errors, or ldm::Error for an unknown state
    fail(path_, op, std::string("corrupt record: ") + e.what());
  }
}

// ---- experiments, stages, runs ---------------------------------------------------------

void ExperimentStore::put_experiment(const ExperimentRecord& e) {
  const std::string op = "put_experiment " + e.name;
  rocksdb::WriteBatch batch;
  check(batch.Put(store_keys::experiment_key(e.name), encode(e)), op);
  write(batch, kSync, op);
}

std::optional<ExperimentRecord> ExperimentStore::get_experiment(const std::string& name) const {
  const std::string op = "get_experiment " + name;
  const auto value = get(store_keys::experiment_key(name), op);
  if (!value) return std::nullopt;
  return decode<ExperimentRecord>(*value, op);
}

std::vector<ExperimentRecord> ExperimentStore::list_experiments() const {
  const std::string op = "list_experiments";
  std::vector<ExperimentRecord> out;
  scan("E", op,
       [&](const rocksdb::Slice&, const rocksdb::Slice& v) { out.push_back(decode<ExperimentRecord>(v, op)); });
  // Length-prefixed keys sort by (length, bytes), not by name.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

void ExperimentStore::put_stage(const StageRecord& s) {
  const std::string op = "put_stage " + s.experiment + "/" + s.name;
  rocksdb::WriteBatch batch;
  check(batch.Put(store_keys::stage_key(s.experiment, s.index, s.name), encode(s)), op);
  write(batch, kSync, op);
}

std::optional<StageRecord> ExperimentStore::get_stage(const std::string& experiment, const std::string& stage) const {
  // The key holds the index before the name, so find the stage by its key's tail.
  std::string tail;
  store_keys::put_lp(tail, stage);
  const std::size_t key_size = store_keys::stage_prefix(experiment).size() + 4 + tail.size();
  const std::string op = "get_stage " + experiment + "/" + stage;
  std::optional<StageRecord> found;
  scan(store_keys::stage_prefix(experiment), op, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    if (!found && k.size() == key_size && k.ends_with(tail)) found = decode<StageRecord>(v, op);
  });
  return found;
}

std::vector<StageRecord> ExperimentStore::list_stages(const std::string& experiment) const {
  const std::string op = "list_stages " + experiment;
  std::vector<StageRecord> out;
  scan(store_keys::stage_prefix(experiment), op,
       [&](const rocksdb::Slice&, const rocksdb::Slice& v) { out.push_back(decode<StageRecord>(v, op)); });
  return out;  // be32(index) in the key: already in index order
}

void ExperimentStore::put_run(const RunRecord& r) {
  const std::string op = "put_run " + r.id;
  rocksdb::WriteBatch batch;
  check(batch.Put(store_keys::run_key(r.id), encode(r)), op);
  write(batch, kSync, op);
}

std::optional<RunRecord> ExperimentStore::get_run(const std::string& id) const {
  const std::string op = "get_run " + id;
  const auto value = get(store_keys::run_key(id), op);
  if (!value) return std::nullopt;
  return decode<RunRecord>(*value, op);
}

std::vector<RunRecord> ExperimentStore::list_runs() const {
  const std::string op = "list_runs";
  std::vector<RunRecord> out;
  scan("R", op, [&](const rocksdb::Slice&, const rocksdb::Slice& v) { out.push_back(decode<RunRecord>(v, op)); });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

std::vector<RunRecord> ExperimentStore::list_runs(const std::string& experiment) const {
  std::vector<RunRecord> out = list_runs();
  out.erase(std::remove_if(out.begin(), out.end(), [&](const RunRecord& r) { return r.experiment != experiment; }),
            out.end());
  return out;
}

void ExperimentStore::put_submission(const ExperimentRecord& e, const std::vector<StageRecord>& stages) {
  const std::string op = "put_submission " + e.name;
  rocksdb::WriteBatch batch;
  check(batch.Put(store_keys::experiment_key(e.name), encode(e)), op);
  for (const StageRecord& s : stages)
    check(batch.Put(store_keys::stage_key(s.experiment, s.index, s.name), encode(s)), op);
  write(batch, kSync, op);
}

// ---- metrics ---------------------------------------------------------------------------

void ExperimentStore::append_metrics(const std::string& experiment, const std::string& stage,
                                     const std::vector<MetricPoint>& points, const RunRecord& run) {
  const std::string op = "append_metrics " + run.id;
  rocksdb::WriteBatch batch;
  for (const MetricPoint& p : points)
    check(batch.Put(store_keys::metric_key(experiment, stage, p.metric, p.step), encode_point(p)), op);
  check(batch.Put(store_keys::run_key(run.id), encode(run)), op);
  // Not synced: the worker keeps the batch until acknowledged and re-sends it after a crash.
  write(batch, kNoSync, op);
}

std::vector<MetricPoint> ExperimentStore::metrics(const std::string& experiment, const std::string& stage,
                                                  const std::string& metric, std::size_t max_points) const {
  const std::string op = "metrics " + experiment + "/" + stage;
  if (max_points > 0) return thinned_metrics(experiment, stage, metric, max_points, op);
  const std::size_t stage_prefix_size = store_keys::metric_prefix(experiment, stage).size();
  const std::string prefix = metric.empty() ? store_keys::metric_prefix(experiment, stage)
                                            : store_keys::metric_prefix(experiment, stage, metric);
  std::vector<MetricPoint> out;
  scan(prefix, op, [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
    MetricPoint p;
    if (!decode_point(k, stage_prefix_size, v, p))
      fail(path_, op,
           "corrupt metric point (key " + std::to_string(k.size()) + " bytes, value " + std::to_string(v.size()) +
               " bytes)");
    out.push_back(std::move(p));
  });
  // Keys group a metric's points in step order but sort metrics by (length, name); a stable
  // sort by name keeps each curve's step order.
  std::stable_sort(out.begin(), out.end(),
                   [](const MetricPoint& a, const MetricPoint& b) { return a.metric < b.metric; });
  return out;
}

std::vector<MetricPoint> ExperimentStore::thinned_metrics(const std::string& experiment, const std::string& stage,
                                                          const std::string& metric, std::size_t max_points,
                                                          const std::string& op) const {
  const std::string stage_prefix = store_keys::metric_prefix(experiment, stage);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const auto point_at = [&](MetricPoint& p) {  // decodes the iterator's entry
    if (!decode_point(it->key(), stage_prefix.size(), it->value(), p))
      fail(path_, op,
           "corrupt metric point (key " + std::to_string(it->key().size()) + " bytes, value " +
               std::to_string(it->value().size()) + " bytes)");
  };
  // The curves: one seek each to the first key after the previous curve's keys.
  std::vector<std::string> names;
  if (!metric.empty()) {
    names.push_back(metric);
  } else {
    for (it->Seek(stage_prefix); it->Valid() && it->key().starts_with(stage_prefix);) {
      MetricPoint p;
      point_at(p);
      names.push_back(p.metric);
      it->Seek(store_keys::metric_prefix(experiment, stage, p.metric) + std::string(8, '\xff'));
      if (it->Valid() && it->key().starts_with(store_keys::metric_prefix(experiment, stage, p.metric))) it->Next();
    }
  }
  std::vector<MetricPoint> out;
  for (const std::string& name : names) {
    const std::string prefix = store_keys::metric_prefix(experiment, stage, name);
    it->SeekForPrev(prefix + std::string(8, '\xff'));
    if (!it->Valid() || !it->key().starts_with(prefix)) continue;  // no points
    MetricPoint last;
    point_at(last);
    it->Seek(prefix);
    MetricPoint first;
    point_at(first);
    // Bucket b holds steps [first + b*width, first + (b+1)*width).
    const std::int64_t span = last.step - first.step + 1;
    const std::int64_t width = (span + std::int64_t(max_points) - 1) / std::int64_t(max_points);
    for (std::int64_t b = 0; b * width < span; ++b) {
      const std::int64_t start = first.step + b * width;
      it->Seek(store_keys::metric_key(experiment, stage, name, start));
      if (!it->Valid() || !it->key().starts_with(prefix)) break;
      MetricPoint p;
      point_at(p);
      if (p.step >= start + width) {  // empty buckets: go on at the bucket of the point found
        b = (p.step - first.step) / width - 1;
        continue;
      }
      if (p.step == last.step) break;
      out.push_back(std::move(p));
    }
    out.push_back(std::move(last));
  }
  check(it->status(), op);
  std::stable_sort(out.begin(), out.end(),
                   [](const MetricPoint& a, const MetricPoint& b) { return a.metric < b.metric; });
  return out;
}

void ExperimentStore::record_resume(const RunRecord& run, std::int64_t from_step) {
  const std::string op = "record_resume " + run.id + " from step " + std::to_string(from_step);
  const std::string prefix = store_keys::metric_prefix(run.experiment, run.stage);
  rocksdb::WriteBatch batch;
  scan(prefix, op, [&](const rocksdb::Slice& k, const rocksdb::Slice&) {
    std::string metric;
    std::int64_t step = 0;
    if (!decode_point_key(k.data() + prefix.size(), k.size() - prefix.size(), metric, step))
      fail(path_, op, "corrupt metric key (" + std::to_string(k.size()) + " bytes)");
    if (step > from_step) check(batch.Delete(k), op);
  });
  check(batch.Put(store_keys::run_key(run.id), encode(run)), op);
  write(batch, kSync, op);
}

void ExperimentStore::delete_experiment(const std::string& name) {
  const std::string op = "delete_experiment " + name;
  rocksdb::WriteBatch batch;
  delete_experiment(batch, name, op);
  write(batch, kSync, op);
}

void ExperimentStore::delete_experiment(rocksdb::WriteBatch& batch, const std::string& name, const std::string& op) {
  check(batch.Delete(store_keys::experiment_key(name)), op);
  delete_prefix(batch, store_keys::stage_prefix(name), op);
  for (const RunRecord& r : list_runs(name)) check(batch.Delete(store_keys::run_key(r.id)), op);
  delete_prefix(batch, tagged('P', name), op);  // every stage's points
}

void ExperimentStore::put_sweep(const SweepRecord& sweep, const std::vector<Submission>& cells) {
  const std::string op = "put_sweep " + sweep.name;
  rocksdb::WriteBatch batch;
  check(batch.Put(tagged('W', sweep.name), nlohmann::json(sweep).dump()), op);
  for (const Submission& cell : cells) {
    check(batch.Put(store_keys::experiment_key(cell.experiment.name), encode(cell.experiment)), op);
    for (const StageRecord& s : cell.stages)
      check(batch.Put(store_keys::stage_key(s.experiment, s.index, s.name), encode(s)), op);
  }
  write(batch, kSync, op);
}

std::optional<SweepRecord> ExperimentStore::get_sweep(const std::string& name) const {
  const std::string op = "get_sweep " + name;
  const auto value = get(tagged('W', name), op);
  if (!value) return std::nullopt;
  return decode<SweepRecord>(*value, op);
}

std::vector<SweepRecord> ExperimentStore::list_sweeps() const {
  const std::string op = "list_sweeps";
  std::vector<SweepRecord> out;
  scan("W", op, [&](const rocksdb::Slice&, const rocksdb::Slice& v) { out.push_back(decode<SweepRecord>(v, op)); });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

void ExperimentStore::delete_sweep(const std::string& name) {
  const std::string op = "delete_sweep " + name;
  const auto sweep = get_sweep(name);
  if (!sweep) return;
  rocksdb::WriteBatch batch;
  check(batch.Delete(tagged('W', name)), op);
  for (const auto& cell : sweep->cells) {
    const std::string experiment = cell.value("experiment", std::string());
    if (!experiment.empty()) delete_experiment(batch, experiment, op);
  }
  write(batch, kSync, op);
}

}  // namespace ldm
