// The paper's experiments as files (experiments/paper/): every file reads as `ldm-coord show`
// reads it (each sweep cell resolved and validated), and each has a CPU-size counterpart in
// experiments/tiny/paper/ with the same grid shape.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "shared/spec_toml/spec_toml.h"
#include "shared/spec_toml/sweep.h"
#include "tests/support/source_path.h"

using ldm::testing::source_path;

namespace {

std::vector<std::filesystem::path> toml_files(const std::string& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(source_path(dir)))
    if (entry.path().extension() == ".toml") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("every file in experiments/paper reads and validates, and has a tiny counterpart of the same grid") {
  const std::vector<std::filesystem::path> full = toml_files("experiments/paper");
  // Table 1 on both datasets and one sweep per ablation the paper reports.
  const std::vector<std::string> expected = {"control-weighting", "controls",        "crop",
                                             "noise-schedule",    "pos-embed",       "pretraining",
                                             "table1-cc12m",      "table1-imagenet", "text-padding"};
  std::vector<std::string> names;
  for (const auto& p : full) names.push_back(p.stem().string());
  CHECK(names == expected);
  for (const auto& path : full) {
    CAPTURE(path.string());
    REQUIRE(ldm::is_sweep_file(path.string()));
    const ldm::SweepSpec paper = ldm::parse_sweep_file(path.string());
    const std::filesystem::path tiny_path = source_path("experiments/tiny/paper") / path.filename();
    REQUIRE(std::filesystem::exists(tiny_path));
    const ldm::SweepSpec tiny = ldm::parse_sweep_file(tiny_path.string());
    CHECK(tiny.cells.size() == paper.cells.size());
    CHECK(tiny.axes.size() == paper.axes.size());
    for (std::size_t i = 0; i < paper.cells.size(); ++i) {
      // The same stages (names aside: resolutions differ), the same task and family per cell.
      CHECK(tiny.cells[i].spec.stages.size() == paper.cells[i].spec.stages.size());
      CHECK(tiny.cells[i].spec.task == paper.cells[i].spec.task);
      CHECK(tiny.cells[i].spec.recipe.family == paper.cells[i].spec.recipe.family);
      for (std::size_t s = 0; s < paper.cells[i].spec.stages.size(); ++s)
        CHECK(tiny.cells[i].spec.stages[s].kind == paper.cells[i].spec.stages[s].kind);
    }
    // The full-size files train at the paper's batch 2048 [paper].
    for (const ldm::SweepCell& cell : paper.cells)
      for (const ldm::StageSpec& stage : cell.spec.stages)
        if (stage.kind == "train") CHECK(stage.batch_size == 2048);
  }
}
