// The experiment reader: toml++ and our validation (shared/spec_toml/), sweeps included. An
// accepted experiment must also survive its documented round trip: format_experiment_toml's output
// parses back to a spec with the same spec_hash.
#include "shared/core/spec.h"
#include "shared/spec_toml/spec_toml.h"
#include "shared/spec_toml/sweep.h"
#include "tests/fuzz/fuzz_support.h"

using namespace ldm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz-experiment.toml";
  ExperimentSpec spec;
  if (fuzz::accepts(source, [&] { spec = parse_experiment_string(text, source); })) {
    const std::string again = format_experiment_toml(spec);
    ExperimentSpec back;
    if (!fuzz::accepts("", [&] { back = parse_experiment_string(again, "formatted.toml"); }))
      fuzz::finding("format_experiment_toml wrote a file its reader refuses:\n" + again);
    if (spec_hash(back) != spec_hash(spec)) fuzz::finding("the formatted spec parses to another spec:\n" + again);
  }
  if (text.find("sweep") != std::string::npos) fuzz::accepts(source, [&] { parse_sweep_string(text, source); });
  return 0;
}
