// A checkpoint bundle's manifest.json (parse_bundle_manifest, shared/core/checkpoint_dir.h), then
// the reads its consumers make of an accepted manifest (resume, transfer, generation, lineage),
// which must not throw: the check is their only guard.
#include "shared/core/checkpoint_dir.h"
#include "shared/core/spec_json.h"
#include "tests/fuzz/fuzz_support.h"

using namespace ldm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz-bundle/manifest.json";
  nlohmann::json m;
  if (!fuzz::accepts(source, [&] { m = parse_bundle_manifest(text, source); })) return 0;
  const bool read = fuzz::accepts("", [&] {
    (void)m.at("step").get<std::int64_t>();
    (void)m.value("world_size", -1);
    (void)m.value("threads_per_rank", std::int64_t{0});
    (void)m.value("data_cursor", std::int64_t{-1});
    (void)m.value("nonfinite_rollbacks", std::int64_t{0});
    (void)m.value("spec_hash", std::string());
    for (const auto& b : m.value("skipped_batches", nlohmann::json::array()))
      (void)b.at("index").get<std::int64_t>(), (void)b.at("step").get<std::int64_t>();
    if (m.contains("spec")) {
      const ExperimentSpec spec = spec_from_json(m.at("spec"));
      (void)spec.stages.at(m.value("stage_index", std::size_t{0}));
    }
    if (m.contains("dataset") && m["dataset"].contains("dir")) (void)m["dataset"]["dir"].get<std::string>();
  });
  if (!read) fuzz::finding("an accepted manifest that its readers cannot read");
  return 0;
}
