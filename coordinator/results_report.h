// The results report of a study (`ldm-coord report SWEEP... --out DIR`): for each sweep, comparison
// tables of every measured metric (mean ± std over seeds, rows by arm), plots, sample grids per
// cell, the command that ran it, spec hashes and the compute used; and, from a claims file, one
// verdict per claim of the paper: reproduced, contradicted or inconclusive at this scale, with the
// effect size and its spread. Pure functions of the stored records (compare.h's ResultCells); the
// CLI reads them and writes the files.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "coordinator/compare.h"
#include "coordinator/plot.h"

namespace ldm::coord {

// One claim of the paper, tested as a difference between two arms of one sweep: the metric of the
// treatment (a row of the comparison, at a stage column) against the baseline's.
struct Claim {
  std::string id;                               // short name, e.g. "a1"
  std::string sweep;                            // the sweep (or experiment) it reads
  std::string title;                            // one line
  std::string paper;                            // what the paper says (and its tag: [paper], [summary])
  std::string metric;                           // e.g. "disentanglement"
  std::string better;                           // "lower" | "higher": the paper's direction for the treatment
  std::string rows;                             // the comparison's rows key ("" = arm: every swept value but the seed)
  std::string treatment_row, baseline_row;      // row labels ("" = the only row)
  std::string treatment_stage, baseline_stage;  // stage columns
  double t_min = 2.78;  // |Welch t| at or above which the difference counts (2.78: 95%, two-sided, 4 dof) [ours]
  std::string scale;    // why this scale might matter (printed with the verdict)
};

// Reads a claims file: [[claim]] tables with the keys above (`stage` sets both stages, `t_min`
// optional). Throws SpecError naming the file, line and key for a missing or unknown key or a bad
// `better`.
std::vector<Claim> parse_claims(const std::string& toml_text, const std::string& source);

struct Verdict {
  Claim claim;
  std::string verdict;  // "reproduced" | "contradicted" | "inconclusive" | "not measured" | "not run"
  std::vector<double> treatment, baseline;  // per experiment (seed)
  double treatment_mean = 0, treatment_std = 0, baseline_mean = 0, baseline_std = 0;
  double effect = 0;    // treatment − baseline, signed so that > 0 is the paper's direction
  double relative = 0;  // effect / |baseline mean| (NaN when the baseline mean is 0)
  double t = 0;         // Welch t of the effect (0 when both spreads are 0 and the effect is 0)
  std::string reason;   // one sentence: why this verdict
};

// Judges one claim over the cells of its sweep. Throws Error for a row or stage the comparison
// does not have (naming the ones it has).
Verdict judge_claim(const Claim& claim, const std::vector<ResultCell>& cells);

struct ReportSweep {
  std::string name;    // sweep (or experiment) name
  std::string source;  // the file it was submitted from
  std::vector<std::string> axes;
  std::vector<ResultCell> cells;
};

struct ReportOptions {
  std::string command;  // the command line that made the report
  std::string state;    // the state directory it read
  double now = 0;       // for runs still going
  int grid_seeds = 0;   // sample grids of at most this many seeds per arm (the first ones); 0 = every seed
};

struct ReportOutput {
  std::string markdown;                                     // README.md of DIR
  std::vector<std::pair<std::string, std::string>> files;   // (path relative to DIR, content): figures
  std::vector<std::pair<std::string, std::string>> copies;  // (source path, path relative to DIR): grids
  std::vector<Verdict> verdicts;
};

// A claim whose sweep is not among `sweeps` gets the verdict "not run".
ReportOutput build_report(const std::vector<ReportSweep>& sweeps, const std::vector<Claim>& claims,
                          const ReportOptions& options);

}  // namespace ldm::coord
