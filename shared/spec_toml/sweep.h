// Sweeps: one experiment file with a [sweep] table, expanded into one experiment per grid cell.
//
//   [sweep]
//   name = "quick"                       # default: the file's `name`
//   seeds = [1, 2]                       # an axis over the top-level `seed`
//   [sweep.grid]                         # product axes, by the dotted key names errors use
//   "recipe.conditioning.alpha" = [0.0, 0.5]
//   "stage.0.dataset.path" = ["/data/a", "/data/b"]
//   [sweep.zip]                          # one axis whose keys vary together (equal lengths)
//   "recipe.family" = ["dit", "unet"]
//   "recipe.preset" = ["tiny/2", "tiny"]
//   [sweep.common.recipe.ema]            # merged into every cell (over the base file's keys)
//   warmup = true
//
// Cells are the product of the zip axis (if any), the grid axes (file order) and the seeds, in
// that order. Sweeping `recipe.family` starts each cell's [recipe] from that family's card
// defaults and default preset: the base file's [recipe] keys are dropped, and only those under
// [sweep.common.recipe] (and zipped keys such as recipe.preset) apply, so one family's settings do
// not leak into another's. Each cell is named `<sweep>-<label>...` (labels: a family or preset as
// is, a seed as s<N>, any other key as <last part of the key><value>), mapped into
// [A-Za-z0-9_-]{1,64} with a short hash suffix when too long or not unique. Every cell is parsed
// and validated here: a bad cell is a SpecError naming the cell, its values and the key.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/core/spec.h"

namespace ldm {

struct SweepCell {
  std::string name;       // the cell's experiment name
  nlohmann::json values;  // the cell's value of each axis: {"recipe.family": "dit", "seed": 1}
  ExperimentSpec spec;    // resolved and validated
};

struct SweepSpec {
  std::string name;               // the sweep's name
  std::vector<std::string> axes;  // the swept keys, in cell-label order ("seed" for seeds)
  std::vector<SweepCell> cells;
};

inline constexpr std::size_t kMaxSweepCells = 4096;

// True when the file (or text) has a top-level [sweep] table. Throws SpecError like the parsers.
bool is_sweep_file(const std::string& path);

// `name`, when not empty, replaces the sweep's name (and so its cells' names).
SweepSpec parse_sweep_file(const std::string& path, const std::string& name = "");
SweepSpec parse_sweep_string(const std::string& text, const std::string& source_name, const std::string& name = "");

// The name of the cell with these labels: "<sweep>-<label>-...", made valid (see above). Exposed
// for tests; `taken` holds the names given so far.
std::string sweep_cell_name(const std::string& sweep, const std::vector<std::string>& labels,
                            const nlohmann::json& values);

}  // namespace ldm
