// spec_hash (what checkpoints record and resumes compare) stays stable for existing experiment
// files: the hashes below were computed before the recipe cards and typed choices (issue 12), so a
// change to a default, a family's recipe or a choice's spelling shows up here.
#include <doctest/doctest.h>

#include <string>

#include "shared/core/spec.h"
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
    {"experiments/tiny/dit-1rank-short.toml", "631a6db89ade201c"},
    {"experiments/tiny/dit-2rank.toml", "27b15fe49bb21a92"},
    {"experiments/tiny/dit-fid.toml", "4466cbcf42acc5f8"},
    {"experiments/tiny/proposed-text.toml", "0e1737d9a6d5bc3f"},
    {"tests/fixtures/bundles/dit-tiny.toml", "839cd3f1c4216a47"},
    {"tests/fixtures/specs/choices-flow.toml", "423bd040e446d587"},
    {"tests/fixtures/specs/choices-text.toml", "a10d0523de90cb9c"},
    {"tests/fixtures/specs/family-dit.toml", "6403d441b04de0b6"},
    {"tests/fixtures/specs/family-mdt.toml", "76389a757ce4d1a8"},
    {"tests/fixtures/specs/family-mmdit.toml", "f12bcbfb899f3f1d"},
    {"tests/fixtures/specs/family-pixart.toml", "b4254b2bfe329c19"},
    {"tests/fixtures/specs/family-proposed.toml", "ab030f067e4ffa26"},
    {"tests/fixtures/specs/family-unet.toml", "ebe11275b2bedd52"},
};
}  // namespace

TEST_CASE("spec_hash of existing experiment files and of every family's defaults is what it was before issue 12") {
  for (const Known& k : kKnown) {
    CAPTURE(k.file);
    CHECK(ldm::spec_hash(ldm::parse_experiment_file(source_path(k.file).string())) == k.hash);
  }
}
