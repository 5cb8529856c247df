// Human-readable text for the CLI: status tables, one experiment's details, progress lines, the
// end-of-run summary and the presets table. Pure functions of the records (no I/O).
#pragma once

#include <string>
#include <vector>

#include "coordinator/coordinator.h"

namespace ldm::coord {

// One row per stage: experiment, state, stage, step/total, last loss, samples/s, error.
std::string format_status_table(const std::vector<ExperimentView>& experiments);

// One experiment: its stages, every run (attempt) and full error messages.
std::string format_experiment_detail(const ExperimentView& view);

// The running runs' per-rank system figures (step time, data wait, communication and its hidden
// part, peak RSS) from their latest heartbeat; "" when no run has sent any. Part of the detail.
std::string format_system(const ExperimentView& view);

// "quick/train: running, step 120/200, loss 0.1234, 512.3 samples/s"
std::string format_progress_line(const ExperimentView& view);

// Per stage: state, steps, final loss, samples/s, wall time, run dir, checkpoint, error.
std::string format_summary(const ExperimentView& view);

// The results of evaluation stage `stage` of `view`: one line per evaluated step with its metrics,
// "" when it has none.
std::string format_evaluation(const ExperimentView& view, const std::string& stage);

// Every stage's final metrics: one row per stage, one column per metric (the last point of each;
// the training curves' loss, and every evaluation metric).
std::string format_final_metrics(const ExperimentView& view);

// Families and presets with analytic parameter counts and GFLOPs at the DiT paper's 256x256 shape.
// The same presets as JSON: one object per preset (parameters and GFLOPs at the table's shape,
// each family's learned sigma), with its published count where the card has one.
nlohmann::json presets_json();
std::string format_presets_table();

// Aligns cells into columns separated by two spaces (first row = header).
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// `status SWEEP`: one row per cell (its values, state, current stage, step/steps, ETA of the
// running stage from its progress since it started), then a count of cells per state.
std::string format_sweep_status(const SweepView& sweep, double now);

}  // namespace ldm::coord
