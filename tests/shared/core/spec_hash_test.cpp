// spec_hash (what checkpoints record and resumes compare) stays stable for existing experiment
// files: the hashes below were computed before the recipe cards and typed choices (issue 12), so a
// change to a default, a family's recipe or a choice's spelling shows up here. Issue 18 changed
// every family's defaults to its published recipe on purpose (learned sigma for DiT, mDT-v2 and
// PixArt-α; LDM's scaled-linear betas; each family's lr, EMA, sampler and guidance): the files
// that rely on those defaults have new hashes, each with its old one beside it. Files that set
// the changed keys themselves (dit-small, dit-fid) keep theirs.
#include <doctest/doctest.h>

#include <string>

#include "shared/core/safe_file.h"
#include "shared/core/spec.h"
#include "shared/core/spec_json.h"
#include "shared/spec_toml/spec_toml.h"
#include "tests/support/source_path.h"

using ldm::testing::source_path;

namespace {
struct Known {
  const char* file;
  const char* hash;
};
const Known kKnown[] = {
    // The quickstart before issue 17 made it a sweep (d634c8b594a8de92), renamed "dit-small" on purpose.
    {"experiments/dit-small.toml", "b1663b383958e664"},
    {"experiments/tiny/dit-1rank-short.toml", "65c2923c70c6795d"},  // 631a6db89ade201c before issue 18
    {"experiments/tiny/dit-2rank.toml", "b03565d461febf43"},        // 27b15fe49bb21a92 before issue 18
    {"experiments/tiny/dit-fid.toml", "4466cbcf42acc5f8"},
    {"experiments/tiny/proposed-text.toml", "515188e1329fdabc"},        // 0e1737d9a6d5bc3f before issue 18
    {"tests/fixtures/bundles/dit-tiny.toml", "77509f7a423d1858"},       // 839cd3f1c4216a47 before issue 18
    {"tests/fixtures/specs/choices-flow.toml", "fac5f6ea7a95bd53"},     // 423bd040e446d587 before issue 18
    {"tests/fixtures/specs/choices-text.toml", "943ebdde3d1153bf"},     // a10d0523de90cb9c before issue 18
    {"tests/fixtures/specs/family-dit.toml", "93c894b91ba84171"},       // 6403d441b04de0b6 before issue 18
    {"tests/fixtures/specs/family-mdt.toml", "b3510fd2509c854d"},       // 76389a757ce4d1a8 before issue 18
    {"tests/fixtures/specs/family-mmdit.toml", "106d272f68053a12"},     // f12bcbfb899f3f1d before issue 18
    {"tests/fixtures/specs/family-pixart.toml", "d44a4115a865df5e"},    // b4254b2bfe329c19 before issue 18
    {"tests/fixtures/specs/family-proposed.toml", "3ef0c457ec48dad3"},  // ab030f067e4ffa26 before issue 18
    {"tests/fixtures/specs/family-unet.toml", "aff6528223c321c9"},      // ebe11275b2bedd52 before issue 18
};
}  // namespace

TEST_CASE(
    "spec_hash of existing experiment files and of every family's defaults is what it was (issue 18 on purpose)") {
  for (const Known& k : kKnown) {
    const std::string file = k.file;
    CAPTURE(file);
    CHECK(ldm::spec_hash(ldm::parse_experiment_file(source_path(k.file).string())) == k.hash);
  }
}

TEST_CASE("[executor] is read with its knobs, checked, and left out of the spec JSON while empty") {
  const std::string base = ldm::read_file(source_path("experiments/tiny/dit-2rank.toml").string());
  const ldm::ExperimentSpec plain = ldm::parse_experiment_string(base, "plain.toml");
  CHECK_FALSE(ldm::spec_to_json(plain).contains("executor"));
  const ldm::ExperimentSpec slurm = ldm::parse_experiment_string(
      base + "\n[executor]\nkind = \"slurm\"\npartition = \"gpu\"\ngpus_per_node = 4\nsbatch = [\"--mem=64G\"]\n",
      "slurm.toml");
  CHECK(slurm.executor.kind == "slurm");
  CHECK(slurm.executor.partition == "gpu");
  CHECK(slurm.executor.gpus_per_node == 4);
  CHECK(slurm.executor.sbatch == std::vector<std::string>{"--mem=64G"});
  CHECK(ldm::spec_to_json(slurm).at("executor").at("kind") == "slurm");
  CHECK(ldm::spec_from_json(ldm::spec_to_json(slurm)).executor.sbatch == slurm.executor.sbatch);
  CHECK(ldm::spec_hash(slurm) != ldm::spec_hash(plain));
  CHECK_THROWS_WITH(ldm::parse_experiment_string(base + "\n[executor]\nkind = \"pbs\"\n", "bad.toml"),
                    doctest::Contains("executor.kind"));
}

TEST_CASE("[hardware] is read and checked, left out of the spec JSON at its defaults, and hashed when set") {
  const std::string base = ldm::read_file(source_path("experiments/tiny/dit-2rank.toml").string());
  const ldm::ExperimentSpec plain = ldm::parse_experiment_string(base, "plain.toml");
  CHECK(plain.hardware.device == "auto");
  CHECK(plain.hardware.precision == "auto");
  CHECK(plain.hardware.tf32);
  CHECK_FALSE(plain.hardware.deterministic);
  CHECK_FALSE(ldm::spec_to_json(plain).contains("hardware"));
  // Spelling the defaults out changes nothing, so existing files and their bundles keep their hash.
  const ldm::ExperimentSpec spelled = ldm::parse_experiment_string(
      base + "\n[hardware]\ndevice = \"auto\"\nprecision = \"auto\"\ntf32 = true\n", "spelled.toml");
  CHECK(ldm::spec_hash(spelled) == ldm::spec_hash(plain));
  const ldm::ExperimentSpec gpu = ldm::parse_experiment_string(
      base + "\n[hardware]\ndevice = \"cuda\"\nprecision = \"bf16\"\ndeterministic = true\n", "gpu.toml");
  CHECK(gpu.hardware.device == "cuda");
  CHECK(gpu.hardware.precision == "bf16");
  CHECK(gpu.hardware.deterministic);
  CHECK(ldm::spec_from_json(ldm::spec_to_json(gpu)).hardware.precision == "bf16");
  CHECK(ldm::spec_hash(gpu) != ldm::spec_hash(plain));
  CHECK_THROWS_WITH(ldm::parse_experiment_string(base + "\n[hardware]\ndevice = \"tpu\"\n", "bad.toml"),
                    doctest::Contains("hardware.device"));
  CHECK_THROWS_WITH(ldm::parse_experiment_string(base + "\n[hardware]\nprecision = \"fp16\"\n", "bad.toml"),
                    doctest::Contains("hardware.precision"));
  CHECK_THROWS_WITH(ldm::parse_experiment_string(base + "\n[hardware]\ncores = 4\n", "bad.toml"),
                    doctest::Contains("hardware.cores"));
}
