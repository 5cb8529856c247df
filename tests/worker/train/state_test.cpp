// TrainingState: everything a checkpoint holds goes through save() and comes back with restore().
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <string>

#include "shared/core/error.h"
#include "shared/core/spec.h"
#include "worker/train/state.h"

using namespace ldm;
using namespace ldm::worker;

namespace state_test {

ExperimentSpec spec_with_seed(std::int64_t seed) {
  ExperimentSpec s;
  s.name = "state";
  s.seed = seed;
  s.recipe = recipe_defaults("mdt");  // Adan: four moments per bucket, and the mask generator in use
  s.recipe.preset = "tiny/2";
  s.stages.emplace_back();
  return s;
}

const models::ModelGeometry kGeometry{4, 8, 8, 5};

// One optimiser step with random gradients, and a draw from every generator, so nothing is at its
// initial value.
void advance(TrainingState& s) {
  auto g = at::detail::createCPUGenerator(3);
  for (auto& b : s.flat().buckets()) b.grads.copy_(torch::randn(b.grads.sizes(), g));
  s.optimizer().step(1e-3);
  s.ema().update(1);
  for (Purpose p : kTrainingGenerators) torch::rand({3}, s.generator(p));
}

}  // namespace state_test

TEST_CASE("a saved training state restores into another exactly: weights, EMA, moments, generators") {
  using namespace state_test;
  TrainingState a(spec_with_seed(1), kGeometry, 0);
  advance(a);
  const CheckpointBundle b = a.save({{"step", 1}, {"world_size", 1}}, {a.generator_bytes()});
  CHECK(b.manifest.at("generators").size() == std::size(kTrainingGenerators));
  CHECK(b.optimizer.at("step").item<int64_t>() == 1);

  TrainingState other(spec_with_seed(2), kGeometry, 0);  // another seed: every part differs first
  REQUIRE(other.param_checksum() != a.param_checksum());
  REQUIRE(other.generator_bytes() != a.generator_bytes());
  other.restore(b, 0, 1, "bundle");
  CHECK(other.param_checksum() == a.param_checksum());
  CHECK(other.generator_bytes() == a.generator_bytes());
  CHECK(other.optimizer().steps_taken() == 1);
  const CheckpointBundle again = other.save({{"step", 1}, {"world_size", 1}}, {other.generator_bytes()});
  for (const auto& [name, t] : b.ema) CHECK(torch::equal(t, again.ema.at(name)));
  for (const auto& [name, t] : b.optimizer) CHECK(torch::equal(t, again.optimizer.at(name)));
}

TEST_CASE("restoring a bundle that lacks a tensor or a rank's generators names what is missing") {
  using namespace state_test;
  TrainingState a(spec_with_seed(1), kGeometry, 0);
  CheckpointBundle b = a.save({{"step", 0}, {"world_size", 2}}, {a.generator_bytes()});  // rank 0's only
  TrainingState other(spec_with_seed(1), kGeometry, 1);
  CHECK_THROWS_WITH_AS(other.restore(b, 1, 2, "ckpt"), "ckpt: no generator states for rank 1", DataError);
  b.ema.erase("x_embedder.proj.weight");
  CHECK_THROWS_WITH_AS(other.restore(b, 0, 2, "ckpt"), "ckpt: ema has no tensor 'x_embedder.proj.weight'", DataError);
}
