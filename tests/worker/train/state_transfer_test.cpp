// TrainingState::initialize_from: a stage that starts from another stage's bundle at another
// resolution, class set or task. Every positional table is checked against its own definition,
// computed here independently of worker/models/pos_embed.cpp; every other tensor must be the
// parent's EMA weights exactly.
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/spec.h"
#include "tests/support/temp_dir.h"
#include "worker/train/state.h"

using namespace ldm;
using namespace ldm::worker;
namespace F = torch::nn::functional;

namespace state_transfer_test {

ExperimentSpec spec_for(const std::string& family) {
  ExperimentSpec s;
  s.name = "transfer";
  s.seed = 3;
  s.recipe = recipe_defaults(family);
  s.recipe.preset = family == "unet" ? "tiny" : "tiny/2";
  s.stages.emplace_back();
  return s;
}

// Latents 8x8 (a 4x4 token grid at patch 2) before, 16x16 (8x8 tokens) after.
models::ModelGeometry geometry(int64_t side, int64_t classes = 5) { return {4, side, side, classes}; }

// The parent: one optimiser step with random gradients and an EMA update, so that its raw weights,
// EMA and fresh initialisation all differ.
CheckpointBundle parent_bundle(const ExperimentSpec& spec, const models::ModelGeometry& g) {
  TrainingState parent(spec, g, 0);
  auto gen = at::detail::createCPUGenerator(9);
  for (auto& b : parent.flat().buckets()) b.grads.copy_(torch::randn(b.grads.sizes(), gen));
  parent.optimizer().step(1e-2);
  parent.ema().update(1);
  return parent.save({{"step", 1}}, {parent.generator_bytes()});
}

// The sin-cos table at the given row and column positions, written out from its definition
// (blocks.h: column then row half, each [sin | cos] of position * 10000^(-k/(D/4))).
torch::Tensor sincos_reference(int64_t dim, const std::vector<double>& rows, const std::vector<double>& cols) {
  const int64_t q = dim / 4, h = static_cast<int64_t>(rows.size()), w = static_cast<int64_t>(cols.size());
  auto out = torch::zeros({h * w, dim}, torch::kFloat64);
  auto a = out.accessor<double, 2>();
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j)
      for (int64_t k = 0; k < q; ++k) {
        const double omega = 1.0 / std::pow(10000.0, double(k) / double(q));
        a[i * w + j][k] = std::sin(cols[j] * omega);
        a[i * w + j][q + k] = std::cos(cols[j] * omega);
        a[i * w + j][2 * q + k] = std::sin(rows[i] * omega);
        a[i * w + j][3 * q + k] = std::cos(rows[i] * omega);
      }
  return out;
}

std::vector<double> integer_positions(int64_t n) {
  std::vector<double> p;
  for (int64_t i = 0; i < n; ++i) p.push_back(double(i));
  return p;
}

// Token centres of an n1 grid on an n0 grid (rectified_grid's default convention).
std::vector<double> centre_positions(int64_t n0, int64_t n1) {
  std::vector<double> p;
  for (int64_t i = 0; i < n1; ++i) p.push_back((i + 0.5) * double(n0) / double(n1) - 0.5);
  return p;
}

// F.interpolate(bicubic) of a [1, h0*w0, D] table to h1 x w1 tokens, in float64.
torch::Tensor bicubic_reference(const torch::Tensor& table, int64_t h0, int64_t h1, bool align_corners) {
  const int64_t d = table.size(-1);
  auto map = table.reshape({h0, h0, d}).permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat64);
  auto up = F::interpolate(map, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{h1, h1})
                                    .mode(torch::kBicubic)
                                    .align_corners(align_corners));
  return up[0].permute({1, 2, 0}).reshape({h1 * h1, d});
}

// A positional table's expected value after a 4x4 -> 8x8 transfer with `mode`.
torch::Tensor expected_position_table(const torch::Tensor& old, bool learned, PosEmbedResampling mode) {
  const int64_t d = old.size(-1);
  switch (mode) {
    case PosEmbedResampling::Interpolate:
      return bicubic_reference(old, 4, 8, false);
    case PosEmbedResampling::RectifiedGrid:
      // A learned table sampled at the token centres is exactly align_corners=false bicubic.
      return learned ? bicubic_reference(old, 4, 8, false)
                     : sincos_reference(d, centre_positions(4, 8), centre_positions(4, 8));
    case PosEmbedResampling::Extrapolate: {
      auto out = sincos_reference(d, integer_positions(8), integer_positions(8)).reshape({8, 8, d});
      if (learned) out.narrow(0, 0, 4).narrow(1, 0, 4).copy_(old.reshape({4, 4, d}));
      return out.reshape({64, d});
    }
  }
  return {};
}

// mDT-v2's relative-position bias after 4x4 -> 8x8: [(7*7) + 3, heads] -> [(15*15) + 3, heads].
torch::Tensor expected_relative_bias(const torch::Tensor& old, PosEmbedResampling mode) {
  const int64_t heads = old.size(1);
  const auto grid = old.narrow(0, 0, 49).to(torch::kFloat64);
  torch::Tensor out;
  if (mode == PosEmbedResampling::Extrapolate) {
    out = torch::zeros({225, heads}, torch::kFloat64);
    for (int64_t dr = -7; dr <= 7; ++dr)
      for (int64_t dc = -7; dc <= 7; ++dc) {
        const int64_t r = std::max<int64_t>(-3, std::min<int64_t>(3, dr)),
                      c = std::max<int64_t>(-3, std::min<int64_t>(3, dc));
        out[(dr + 7) * 15 + (dc + 7)] = grid[(r + 3) * 7 + (c + 3)];
      }
  } else {
    auto map = grid.reshape({7, 7, heads}).permute({2, 0, 1}).unsqueeze(0);
    auto up = F::interpolate(map, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{15, 15})
                                      .mode(torch::kBicubic)
                                      .align_corners(mode == PosEmbedResampling::RectifiedGrid));
    out = up[0].permute({1, 2, 0}).reshape({225, heads});
  }
  return torch::cat({out, old.narrow(0, 49, old.size(0) - 49).to(torch::kFloat64)});
}

TensorMap model_tensors(TrainingState& s) { return model_state(s.model()); }

InitTransfer grid_transfer(PosEmbedResampling mode) {
  InitTransfer t;
  t.load.grid = {4, 4, 8, 8, mode, GridConvention::Center};
  return t;
}

}  // namespace state_transfer_test

TEST_CASE("a stage moved to twice the resolution: positional tables follow their mode, the rest is the EMA") {
  using namespace state_transfer_test;
  for (const char* family : {"dit", "mdt", "pixart", "mmdit", "proposed"})
    for (PosEmbedResampling mode :
         {PosEmbedResampling::Extrapolate, PosEmbedResampling::Interpolate, PosEmbedResampling::RectifiedGrid}) {
      CAPTURE(family);
      CAPTURE(choice_name(mode));
      const ExperimentSpec spec = spec_for(family);
      const CheckpointBundle parent = parent_bundle(spec, geometry(8));
      TrainingState child(spec, geometry(16), 0);
      const LoadReport report = child.initialize_from(parent, grid_transfer(mode), "parent");
      int tables = 0;
      for (const auto& [key, value] : model_tensors(child)) {
        CAPTURE(key);
        const torch::Tensor& old = parent.ema.at(key);
        const std::string tail = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
        if (tail == "pos_embed" || tail == "decoder_pos_embed") {
          const bool learned = child.model().named_parameters(true)[key].requires_grad();
          CHECK(learned == (std::string(family) == "mdt"));  // mDT-v2 learns its maps; the others are fixed
          CHECK(torch::allclose(value.to(torch::kFloat64).reshape({64, -1}),
                                expected_position_table(old, learned, mode), 1e-5, 1e-5));
          ++tables;
        } else if (tail == "relative_position_bias_table") {
          CHECK(torch::allclose(value.to(torch::kFloat64), expected_relative_bias(old, mode), 1e-5, 1e-5));
          ++tables;
        } else if (key.find("relative_position_index") == std::string::npos) {
          CHECK(torch::equal(value, old));
        }
      }
      CHECK(tables > 0);
      CHECK(static_cast<int>(report.resampled.size()) == tables);
      // The EMA starts at the weights it was given.
      for (std::size_t i = 0; i < child.flat().buckets().size(); ++i)
        CHECK(torch::equal(child.ema().buffers()[i], child.flat().buckets()[i].params));
    }
}

TEST_CASE("the UNet has no positional table: its weights transfer to another resolution as they are") {
  using namespace state_transfer_test;
  const ExperimentSpec spec = spec_for("unet");
  const CheckpointBundle parent = parent_bundle(spec, geometry(8));
  TrainingState child(spec, geometry(16), 0);
  InitTransfer t = grid_transfer(PosEmbedResampling::Interpolate);
  t.ema = false;  // the raw weights this time
  const LoadReport report = child.initialize_from(parent, t, "parent");
  CHECK(report.resampled.empty());
  for (const auto& [key, value] : model_tensors(child)) CHECK(torch::equal(value, parent.model.at(key)));
}

TEST_CASE("a new class set: reinit keeps the null row and the rest, remap moves rows by the map") {
  using namespace state_transfer_test;
  ldm::testing::TempDir tmp("ldm-class-map");
  const ExperimentSpec spec = spec_for("dit");
  const CheckpointBundle parent = parent_bundle(spec, geometry(8, 5));
  const std::string table = "y_embedder.embedding_table.weight";
  const torch::Tensor old = parent.ema.at(table);  // [5 + 1, D]: the null class last
  REQUIRE(old.size(0) == 6);

  SUBCASE("reinit") {
    TrainingState child(spec, geometry(8, 7), 0);
    const torch::Tensor fresh = model_tensors(child).at(table).clone();  // [7 + 1, D]
    InitTransfer t;
    t.load.classes = {ClassTransfer::Mode::Reinit, 5, 7, {}};
    const LoadReport report = child.initialize_from(parent, t, "parent");
    CHECK(report.classes == std::vector<std::string>{table});
    const torch::Tensor now = model_tensors(child).at(table);
    CHECK(torch::equal(now.narrow(0, 0, 7), fresh.narrow(0, 0, 7)));  // new class rows
    CHECK(torch::equal(now[7], old[5]));                              // the null class kept
    for (const auto& [key, value] : model_tensors(child))
      if (key != table) CHECK(torch::equal(value, parent.ema.at(key)));
  }
  SUBCASE("remap") {
    std::ofstream(tmp.file("map.txt")) << "# old new\n0 6\n4,0\n\n2 3  # a comment\n";
    TrainingState child(spec, geometry(8, 7), 0);
    const torch::Tensor fresh = model_tensors(child).at(table).clone();
    InitTransfer t;
    t.load.classes = read_class_map(tmp.file("map.txt"), 5, 7);
    child.initialize_from(parent, t, "parent");
    const torch::Tensor now = model_tensors(child).at(table);
    CHECK(torch::equal(now[6], old[0]));
    CHECK(torch::equal(now[0], old[4]));
    CHECK(torch::equal(now[3], old[2]));
    for (int64_t j : {1, 2, 4, 5}) CHECK(torch::equal(now[j], fresh[j]));  // unmapped: new classes
    CHECK(torch::equal(now[7], old[5]));
  }
  SUBCASE("bad map files name the file and line") {
    auto error_of = [&](const std::string& text) {
      std::ofstream(tmp.file("bad.txt")) << text;
      try {
        read_class_map(tmp.file("bad.txt"), 5, 7);
      } catch (const DataError& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    CHECK(error_of("0 1\n1 1\n").find(tmp.file("bad.txt") + ":2: new class 1 is mapped twice") != std::string::npos);
    CHECK(error_of("5 1\n").find(":1: old class 5 is outside [0, 5)") != std::string::npos);
    CHECK(error_of("0 7\n").find(":1: new class 7 is outside [0, 7)") != std::string::npos);
    CHECK(error_of("0 1 2\n").find(":1: expected \"OLD NEW\"") != std::string::npos);
  }
}

TEST_CASE("a class stage continued as a text stage: the label input goes, a caption input comes, the rest stays") {
  using namespace state_transfer_test;
  ExperimentSpec text_spec = spec_for("dit");
  text_spec.task = "text";
  const CheckpointBundle parent = parent_bundle(spec_for("dit"), geometry(8));
  models::ModelGeometry g = geometry(8, 0);
  g.text_channels = 16;
  g.text_tokens = 4;
  TrainingState child(text_spec, g, 0);
  InitTransfer t;
  t.load.conditioning_swap = true;
  const LoadReport report = child.initialize_from(parent, t, "parent");
  CHECK(report.dropped == std::vector<std::string>{"y_embedder.embedding_table.weight"});
  REQUIRE_FALSE(report.fresh.empty());
  for (const std::string& name : report.fresh) CHECK(name.rfind("caption_embedder.", 0) == 0);
  for (const auto& [key, value] : model_tensors(child))
    if (key.rfind("caption_embedder.", 0) != 0) CHECK(torch::equal(value, parent.ema.at(key)));
  // Without the swap, the same load is an error naming the missing tensor.
  TrainingState strict(text_spec, g, 0);
  CHECK_THROWS_WITH_AS(strict.initialize_from(parent, InitTransfer{}, "parent"),
                       doctest::Contains("no tensor 'caption_embedder."), DataError);
}

TEST_CASE("init_optimizer = keep carries the moments and step count, and refuses when a trainable tensor moved") {
  using namespace state_transfer_test;
  const ExperimentSpec dit = spec_for("dit");
  const CheckpointBundle parent = parent_bundle(dit, geometry(8));
  TrainingState child(dit, geometry(16), 0);
  InitTransfer t = grid_transfer(PosEmbedResampling::Interpolate);
  t.keep_optimizer = true;
  child.initialize_from(parent, t, "parent");  // DiT's table is fixed: every trainable tensor is unchanged
  CHECK(child.optimizer().steps_taken() == 1);
  for (const auto& [name, moment] : child.optimizer().state()) CHECK(torch::equal(moment, parent.optimizer.at(name)));

  const ExperimentSpec mdt = spec_for("mdt");
  const CheckpointBundle mdt_parent = parent_bundle(mdt, geometry(8));
  TrainingState mdt_child(mdt, geometry(16), 0);
  CHECK_THROWS_WITH_AS(mdt_child.initialize_from(mdt_parent, t, "parent"),
                       doctest::Contains("init_optimizer = \"keep\", but trainable tensor"), DataError);
  // A fresh optimiser is the default.
  TrainingState fresh(dit, geometry(16), 0);
  fresh.initialize_from(parent, grid_transfer(PosEmbedResampling::Interpolate), "parent");
  CHECK(fresh.optimizer().steps_taken() == 0);
}
