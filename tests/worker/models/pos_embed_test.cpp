#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "shared/core/error.h"
#include "tests/support/python_reference.h"
#include "tests/support/temp_dir.h"
#include "worker/models/blocks.h"
#include "worker/models/pos_embed.h"

// Helpers live in a named namespace: test_worker is a unity build, and anonymous namespaces of
// the files batched together would merge.
namespace pos_embed_test {

// resample_pos_embed with the mode and grid convention named as experiment files name them.
at::Tensor resample(const at::Tensor& old, int64_t h0, int64_t w0, int64_t h1, int64_t w1, const std::string& mode,
                    const std::string& convention = "center") {
  return ldm::models::resample_pos_embed(
      old, h0, w0, h1, w1, ldm::parse_choice<ldm::PosEmbedResampling>(mode, "recipe.pos_embed_resampling"),
      ldm::parse_choice<ldm::GridConvention>(convention, "recipe.pos_embed_grid"));
}

using namespace ldm::models;

torch::Tensor learned_map(int64_t tokens, int64_t dim, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randn({tokens, dim}, gen);
}

// The Python interpreter that has torch + numpy (Debian's python3-torch): $LDM_TEST_PYTHON or
// /usr/bin/python3 (not the first python3 on PATH, which may be a virtualenv without torch).
std::string python() {
  const char* p = std::getenv("LDM_TEST_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

std::string reference_script() {
  return ldm::testing::source_path("tests/worker/reference/pos_embed_reference.py").string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int run(const std::string& cmd, const std::string& log) {
  const int rc = std::system((cmd + " > '" + log + "' 2>&1").c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

struct RefCase {
  torch::Tensor old;  // [h0·w0, D]
  int64_t h0, w0, h1, w1;
  std::string convention;
};
struct Reference {
  torch::Tensor interpolate, rectified, extrapolate;  // [h1·w1, D] float64
};

torch::Tensor read_f64(const std::string& path, int64_t rows, int64_t cols) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "reference output missing: ", path);
  auto t = torch::empty({rows, cols}, torch::kFloat64);
  in.read(reinterpret_cast<char*>(t.data_ptr<double>()), std::streamsize(t.numel() * sizeof(double)));
  REQUIRE_MESSAGE(in.gcount() == std::streamsize(t.numel() * sizeof(double)), "short reference file ", path);
  return t;
}

// Runs the independent Python reference on all cases in one process (importing torch costs
// seconds). Fails the test (never skips) when the interpreter lacks torch or numpy.
std::vector<Reference> python_reference(const std::vector<RefCase>& cases) {
  ldm::testing::TempDir dir("ldm-pos-embed-ref");
  const std::string script = reference_script();
  REQUIRE_MESSAGE(std::filesystem::exists(script), "reference script not found: ", script);
  {
    std::ofstream manifest(dir.file("cases.txt"));
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto& c = cases[i];
      const std::string input = dir.file("old" + std::to_string(i) + ".f32");
      auto f32 = c.old.contiguous().to(torch::kFloat32);
      std::ofstream out(input, std::ios::binary);
      out.write(reinterpret_cast<const char*>(f32.data_ptr<float>()), std::streamsize(f32.numel() * sizeof(float)));
      manifest << "case" << i << ' ' << c.h0 << ' ' << c.w0 << ' ' << c.h1 << ' ' << c.w1 << ' ' << c.old.size(1) << ' '
               << c.convention << ' ' << input << '\n';
    }
  }
  const std::string log = dir.file("log.txt");
  const std::string cmd = "'" + python() + "' '" + script + "' '" + dir.file("cases.txt") + "' '" + dir.path() + "'";
  const int rc = run(cmd, log);
  if (rc == 3)
    FAIL("the pos-embed reference needs ", python(),
         " with torch and numpy (Debian: apt-get install "
         "python3-torch python3-numpy; or set LDM_TEST_PYTHON); it said:\n",
         slurp(log));
  REQUIRE_MESSAGE(rc == 0, "reference script failed (exit ", rc, "): ", cmd, "\n", slurp(log));
  std::vector<Reference> refs;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const int64_t t = c.h1 * c.w1, d = c.old.size(1);
    const std::string tag = dir.file("case" + std::to_string(i));
    refs.push_back({read_f64(tag + ".interpolate.f64", t, d), read_f64(tag + ".rectified.f64", t, d),
                    read_f64(tag + ".extrapolate.f64", t, d)});
  }
  return refs;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace pos_embed_test

TEST_CASE("sincos_2d_at on integer positions reproduces sincos_2d bit for bit on non-square grids") {
  using namespace ldm::models;
  for (auto hw : std::vector<std::pair<int64_t, int64_t>>{{3, 5}, {6, 2}, {4, 4}, {1, 7}}) {
    CAPTURE(hw.first);
    CAPTURE(hw.second);
    auto at = sincos_2d_at(16, torch::arange(hw.first), torch::arange(hw.second, torch::kFloat64));
    CHECK(at.dtype() == torch::kFloat32);
    CHECK(torch::equal(at, sincos_2d(16, hw.first, hw.second)));
  }
}

TEST_CASE("sincos_2d_at puts the column in the first half of the channels and the row in the second") {
  using namespace ldm::models;
  auto e = sincos_2d_at(8, torch::tensor({0.0, 2.5}), torch::tensor({1.25, 0.0, 3.0}));  // [2·3, 8]
  REQUIRE(e.sizes() == torch::IntArrayRef({6, 8}));
  // Token 1·3 + 0 sits at (row 2.5, column 1.25); ω = (1, 1/100) for D/4 = 2.
  auto expect = torch::tensor({std::sin(1.25), std::sin(0.0125), std::cos(1.25), std::cos(0.0125), std::sin(2.5),
                               std::sin(0.025), std::cos(2.5), std::cos(0.025)},
                              torch::kFloat32);
  CHECK(torch::allclose(e[3], expect, 0, 1e-6));
}

TEST_CASE("every resampling mode is the identity when the grid is unchanged, learned maps included") {
  using namespace ldm::models;
  auto flat = pos_embed_test::learned_map(4 * 6, 16, 1);
  for (const char* mode : {"extrapolate", "interpolate", "rectified_grid"}) {
    CAPTURE(mode);
    CHECK(torch::equal(pos_embed_test::resample(flat, 4, 6, 4, 6, mode), flat));
    auto batched = flat.unsqueeze(0);
    auto out = pos_embed_test::resample(batched, 4, 6, 4, 6, mode);
    CHECK(out.sizes() == batched.sizes());
    CHECK(torch::equal(out, batched));
    for (const char* conv : {"center", "corners", "origin"})
      CHECK(torch::equal(pos_embed_test::resample(flat, 4, 6, 4, 6, mode, conv), flat));
  }
}

TEST_CASE("extrapolation equals sincos_2d on the new non-square grid and keeps the input's rank") {
  using namespace ldm::models;
  auto old = sincos_2d(32, 4, 6).unsqueeze(0);  // [1, 24, 32]
  auto out = pos_embed_test::resample(old, 4, 6, 8, 10, "extrapolate");
  CHECK(out.sizes() == torch::IntArrayRef({1, 80, 32}));
  CHECK(torch::equal(out[0], sincos_2d(32, 8, 10)));
  // The old top-left block is unchanged by extrapolation (the grid is only extended).
  CHECK(torch::equal(out[0].reshape({8, 10, 32}).slice(0, 0, 4).slice(1, 0, 6).reshape({24, 32}), old[0]));
  CHECK(torch::equal(pos_embed_test::resample(old[0], 4, 6, 3, 2, "extrapolate"), sincos_2d(32, 3, 2)));
}

TEST_CASE("rectified grid positions follow the documented conventions") {
  using namespace ldm::models;
  CHECK(torch::allclose(rectified_positions(2, 4, GridConvention::Center),
                        torch::tensor({-0.25, 0.25, 0.75, 1.25}, torch::kFloat64)));
  CHECK(torch::allclose(rectified_positions(3, 5, GridConvention::Corners),
                        torch::tensor({0.0, 0.5, 1.0, 1.5, 2.0}, torch::kFloat64)));
  CHECK(torch::allclose(rectified_positions(2, 4, GridConvention::Origin),
                        torch::tensor({0.0, 0.5, 1.0, 1.5}, torch::kFloat64)));
  CHECK(torch::equal(rectified_positions(5, 1, GridConvention::Corners), torch::zeros({1}, torch::kFloat64)));
  for (auto c : {GridConvention::Center, GridConvention::Corners, GridConvention::Origin})
    CHECK(torch::equal(rectified_positions(7, 7, c), torch::arange(7, torch::kFloat64)));
  // Rectified grid = sin-cos on those positions, rows and columns rescaled independently.
  auto out = pos_embed_test::resample(sincos_2d(16, 2, 3), 2, 3, 4, 9, "rectified_grid");
  CHECK(torch::equal(out, sincos_2d_at(16, rectified_positions(2, 4, GridConvention::Center),
                                       rectified_positions(3, 9, GridConvention::Center))));
}

TEST_CASE("interpolation keeps a constant map constant and resamples any learned map") {
  using namespace ldm::models;
  auto constant = torch::full({3 * 5, 8}, 0.7);
  CHECK(torch::allclose(pos_embed_test::resample(constant, 3, 5, 7, 4, "interpolate"), torch::full({28, 8}, 0.7), 0,
                        1e-6));
  auto learned = pos_embed_test::learned_map(3 * 5, 8, 4).unsqueeze(0);
  auto out = pos_embed_test::resample(learned, 3, 5, 6, 10, "interpolate");
  CHECK(out.sizes() == torch::IntArrayRef({1, 60, 8}));
  CHECK(out.dtype() == torch::kFloat32);
}

TEST_CASE("resampling matches the independent Python reference to 1e-6 (bicubic and rescaled sin-cos)") {
  using namespace ldm::models;
  struct Grid {
    int64_t h0, w0, h1, w1, dim;
  };
  std::vector<pos_embed_test::RefCase> cases;
  for (const Grid& g : std::vector<Grid>{{4, 6, 8, 12, 32}, {5, 3, 7, 9, 16}, {8, 8, 4, 6, 16}, {2, 2, 16, 16, 8}}) {
    const auto learned = pos_embed_test::learned_map(g.h0 * g.w0, g.dim, uint64_t(g.h0 * 100 + g.w1));
    const auto sincos = sincos_2d(g.dim, g.h0, g.w0);
    cases.push_back({learned, g.h0, g.w0, g.h1, g.w1, "center"});
    for (const char* conv : {"center", "corners", "origin"}) cases.push_back({sincos, g.h0, g.w0, g.h1, g.w1, conv});
  }
  const auto refs = pos_embed_test::python_reference(cases);
  REQUIRE(refs.size() == cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    CAPTURE(i);
    CAPTURE(c.h0);
    CAPTURE(c.w0);
    CAPTURE(c.h1);
    CAPTURE(c.w1);
    CAPTURE(c.convention);
    using pos_embed_test::max_abs_diff;
    CHECK(max_abs_diff(pos_embed_test::resample(c.old, c.h0, c.w0, c.h1, c.w1, "interpolate"), refs[i].interpolate) <
          1e-6);
    CHECK(max_abs_diff(pos_embed_test::resample(c.old, c.h0, c.w0, c.h1, c.w1, "rectified_grid", c.convention),
                       refs[i].rectified) < 1e-6);
    CHECK(max_abs_diff(pos_embed_test::resample(c.old, c.h0, c.w0, c.h1, c.w1, "extrapolate"), refs[i].extrapolate) <
          1e-6);
  }
}

TEST_CASE("resampling modes and grid conventions are read through the spec's name tables, with suggestions") {
  try {
    pos_embed_test::resample(ldm::models::sincos_2d(8, 2, 2), 2, 2, 4, 4, "interpolat");
    FAIL("no error for an unknown mode");
  } catch (const ldm::SpecError& e) {
    CHECK(e.key_path() == "recipe.pos_embed_resampling");
    CHECK(std::string(e.what()).find("did you mean 'interpolate'") != std::string::npos);
  }
  CHECK(ldm::choice_from_name<ldm::PosEmbedResampling>("rectified_grid") == ldm::PosEmbedResampling::RectifiedGrid);
  CHECK(std::string(ldm::choice_name(ldm::GridConvention::Origin)) == "origin");
  CHECK_FALSE(ldm::choice_from_name<ldm::GridConvention>("centre").has_value());
}

TEST_CASE("resampling rejects an embedding whose token count does not match the old grid") {
  using namespace ldm::models;
  CHECK_THROWS_AS(pos_embed_test::resample(torch::zeros({10, 8}), 3, 3, 4, 4, "interpolate"), ldm::Error);
  CHECK_THROWS_AS(pos_embed_test::resample(torch::zeros({2, 9, 8}), 3, 3, 4, 4, "interpolate"), ldm::Error);
  CHECK_THROWS_AS(pos_embed_test::resample(torch::zeros({9, 8}), 3, 3, 0, 4, "extrapolate"), ldm::Error);
}
