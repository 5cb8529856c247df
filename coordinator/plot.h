// Figures of experiments and sweeps (`ldm-coord plot`, `ldm-coord compare --plot`): pure functions
// from ResultCells (compare.h) to SVG documents (svg_chart.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/compare.h"

namespace ldm::coord {

struct PlotOptions {
  std::vector<std::string> metrics;  // [] = loss, and every metric of an evaluation stage
  std::string x = "step";            // step | images: optimiser steps or samples seen, stages end to end
  double smoothing = 0.9;            // loss-like curves: EMA weight of the solid line (0 = raw only)
};

struct Figure {
  std::string file;  // "<metric>.svg"
  std::string svg;
  std::size_t lines = 0;  // cells with a point of the metric
};

// One figure per metric, one line per cell. A cell's stages are laid end to end along x in stage
// order (a training stage after its init_from parent's end, one without a parent in the
// experiment after every stage before it; an evaluation stage's points at its parent's steps). Curves with many points
// are smoothed (solid) over their faint raw line; the y axis is logarithmic when every value is positive and they span
// more than a decade. Throws Error for an unknown --x, or when no cell has any of the metrics.
std::vector<Figure> plot_curves(const std::vector<ResultCell>& cells, const PlotOptions& options);

// The bar chart of a comparison (format_comparison's JSON): one group per column, one bar per row
// (its mean, an error bar of one standard deviation over the row's experiments; none where the
// table shows ✗ diverged or — not applicable).
Figure plot_comparison(const nlohmann::json& comparison);

// A cell's legend label: its sweep values ("family=dit preset=tiny/2"), else its experiment name.
std::string cell_label(const ResultCell& cell);

}  // namespace ldm::coord
