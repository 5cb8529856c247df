// Comparison tables and exports over experiments and sweeps, from stored records and metric points
// only (`ldm-coord compare` and `ldm-coord export`). Pure functions over ResultCells: the CLI fills
// them from a serving coordinator's API or, when none serves, from the store itself.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/coordinator.h"

namespace ldm::coord {

// One experiment as a comparison reads it.
struct ResultCell {
  ExperimentView view;
  nlohmann::json values = nlohmann::json::object();        // its sweep cell's values ({} alone)
  std::map<std::string, std::vector<MetricPoint>> points;  // stage -> every point of the stage
};

struct CompareOptions {
  std::string metric;             // "" = fid when any stage has it, else loss
  std::string rows;               // a key ("recipe.family", a swept key, "experiment"); "" = the first swept key
  std::string cols = "stage";     // "stage" (each stage with the metric), or a key
  std::string format = "table";   // table | md | csv | json
  std::string relative_to;        // a row label: the other rows show the % change against it
  double now = 0;                 // wall clock for the compute of runs still going (0 = their last heartbeat)
  std::vector<std::string> axes;  // the sweeps' axes in order: the default rows key is the first not "seed"
};

// The comparison: rows x columns of the metric at each stage's end (the last step a stage has the
// metric at), mean ± sample std over the experiments a row groups (seeds, other axes); "x" when a
// grouped experiment diverged, "—" when no experiment of the row has that column; best per
// column marked (lowest, or highest for metrics named *clip*, *score*, *adherence*, *accuracy*,
// *gain*); then the model's
// parameters and GFLOPs (the worker's points), images seen (steps x batch over training stages)
// and compute (rank-seconds of every attempt). Throws Error for an unknown format or
// --relative-to row, or when no experiment has the metric.
std::string format_comparison(const std::vector<ResultCell>& cells, const CompareOptions& options);

// Every metric point with its experiment, cell values, stage, attempt and step. csv: a header
// row (experiment, one column per axis, stage, metric, step, value, attempt, time); jsonl: one
// object per point. `axes` orders the value columns. Throws Error for an unknown format.
std::string export_points(const std::vector<ResultCell>& cells, const std::vector<std::string>& axes,
                          const std::string& format);

// The value of a dotted key for an experiment: its sweep value, else the key in its resolved
// spec ("recipe.family", "stage.0.lr"), else "experiment" -> its name, "arm" -> arm_label; "" when
// it has none.
std::string cell_key_text(const ResultCell& cell, const std::string& key);

// `v` printed with a printf format ("%.4g": the tables' figures).
std::string format_number(double v, const char* format = "%.4g");

// The arm of a cell: its swept values other than the seed, "key=value" with the key's last dotted
// part, in key order ("alpha=0.5 controls=proposed"); "all" for a cell of a seeds-only sweep; the
// experiment's name outside a sweep.
std::string arm_label(const ResultCell& cell);

}  // namespace ldm::coord
