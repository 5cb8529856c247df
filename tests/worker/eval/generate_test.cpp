#include <torch/script.h>
#include <torch/torch.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/images/image_io.h"
#include "shared/core/error.h"
#include "shared/core/spec_json.h"
#include "tests/support/file_bytes.h"
#include "tests/support/temp_dir.h"
#include "worker/comm/comm.h"
#include "worker/diffusion/sampling.h"
#include "worker/eval/disentanglement.h"
#include "worker/eval/generate.h"
#include "worker/io/checkpoint.h"
#include "worker/train/condition_builder.h"

namespace eval_generate_test_support {

// A world of `world` ranks seen from `rank`, without processes: collectives are no-ops, except that
// gather on rank 0 returns the payloads the test recorded from the other ranks' runs. What the rank
// sent and how many barriers it passed land in `seen`.
struct FakeRankSeen {
  std::string sent;
  int barriers = 0;
};

class FakeRankBackend final : public ldm::worker::CommBackend {
 public:
  FakeRankBackend(int rank, int world, std::vector<std::string> others, FakeRankSeen* seen)
      : rank_(rank), world_(world), others_(std::move(others)), seen_(seen) {}
  std::string name() const override { return "fake"; }
  int rank() const override { return rank_; }
  int size() const override { return world_; }
  void allreduce_sum(float*, std::size_t) override {}
  std::int64_t allreduce_max(std::int64_t v) override { return v; }
  void broadcast(std::string&, int) override {}
  std::vector<std::string> gather(const std::string& mine, int root) override {
    seen_->sent = mine;
    if (rank_ != root) return {};
    std::vector<std::string> all = {mine};
    all.insert(all.end(), others_.begin(), others_.end());
    return all;
  }
  void barrier() override { ++seen_->barriers; }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  int rank_, world_;
  std::vector<std::string> others_;
  FakeRankSeen* seen_;
};

// A communicator (with its thread) over the fake rank.
std::unique_ptr<ldm::worker::Communicator> fake_rank(int rank, int world, FakeRankSeen& seen,
                                                     std::vector<std::string> others = {}) {
  return std::make_unique<ldm::worker::Communicator>(
      [=, &seen] { return std::make_unique<FakeRankBackend>(rank, world, others, &seen); });
}

ldm::ExperimentSpec class_spec() {
  ldm::ExperimentSpec s;
  s.name = "eval-unit";
  s.seed = 5;
  s.dataset.records = 64;
  s.dataset.classes = 4;
  s.dataset.shard_records = 64;
  s.recipe.preset = "tiny/4";
  s.stages.emplace_back();
  s.stages[0].resolution = 32;
  s.stages[0].steps = 10;
  s.stages[0].batch_size = 8;
  ldm::validate(s);
  return s;
}

// The paper's model on captions with every control group (experiments/tiny/proposed-text.toml).
ldm::ExperimentSpec proposed_text_spec() {
  ldm::ExperimentSpec s;
  s.name = "eval-unit-text";
  s.seed = 3;
  s.task = "text";
  s.dataset.records = 64;
  s.dataset.classes = 4;
  s.dataset.shard_records = 64;
  s.text_encoder.dim = 32;
  s.text_encoder.max_tokens = 12;
  s.recipe = ldm::recipe_defaults("proposed");
  s.recipe.family = "proposed";
  s.recipe.preset = "tiny/2";
  s.recipe.conditioning.controls = ldm::ControlMode::Proposed;
  s.recipe.conditioning.alpha = 1.0;
  s.recipe.conditioning.alpha_size = 2.0;
  s.recipe.conditioning.text_padding = ldm::TextPadding::NoisyReplicate;
  s.recipe.conditioning.text_pad_noise = 0.1;
  s.stages.emplace_back();
  s.stages[0].resolution = 32;
  s.stages[0].steps = 10;
  s.stages[0].batch_size = 8;
  ldm::validate(s);
  return s;
}

// A bundle with random weights (every tensor, the zero-initialised adaLN-Zero and output layers
// included, gets Gaussian noise), so samples depend on noise, label, caption and controls.
std::string write_random_bundle(const ldm::ExperimentSpec& spec, const std::string& dir) {
  torch::NoGradGuard no_grad;
  const ldm::StageSpec& stage = spec.stages[0];
  const int64_t side = ldm::latent_side(spec, stage);
  const ldm::worker::ConditionBuilder cb(spec, ldm::resolution_shift(spec, stage));
  auto gen = at::detail::createCPUGenerator(11);
  auto model =
      ldm::models::build_denoiser(spec.recipe, cb.geometry(ldm::latent_channels(spec.autoencoder), side, side), gen);
  ldm::worker::CheckpointBundle b;
  b.manifest = {{"step", 3}, {"spec", ldm::spec_to_json(spec)}, {"stage_index", 0}};
  auto noise_gen = at::detail::createCPUGenerator(12);
  for (const auto& item : model->named_parameters(true)) {
    auto v = item.value().detach().clone();
    if (item.value().requires_grad()) v += 0.05 * torch::randn(v.sizes(), noise_gen);
    b.model[item.key()] = v;
    b.ema[item.key()] = v;
  }
  for (const auto& item : model->named_buffers(true)) {
    b.model[item.key()] = item.value().detach().clone();
    b.ema[item.key()] = item.value().detach().clone();
  }
  return ldm::worker::write_checkpoint(dir, b);
}

ldm::eval::GenerateOptions options(const ldm::worker::SamplingModel& m, const std::string& out, int64_t n,
                                   int64_t batch) {
  ldm::eval::GenerateOptions o;
  o.n = n;
  o.out_dir = out;
  o.seed = 21;
  o.batch = batch;
  o.sampling = ldm::eval::recipe_sampling(m);
  o.sampling.sampler.method = ldm::Sampler::Ddim;
  o.sampling.sampler.steps = 4;
  return o;
}

// Runs ranks world-1 .. 1, then 0 (which composes the grid from everyone's files), into `out`.
std::vector<int64_t> run_fake_ranks(const ldm::worker::SamplingModel& m, ldm::eval::GenerateOptions o, int world) {
  std::vector<std::string> payloads(static_cast<std::size_t>(world));
  for (int r = world - 1; r >= 1; --r) {
    FakeRankSeen seen;
    auto comm = fake_rank(r, world, seen);
    auto res = ldm::eval::generate_for_eval(m, o, *comm);
    CHECK(res.rank_counts.empty());
    CHECK(res.grid.empty());
    CHECK(seen.barriers == 1);
    payloads[static_cast<std::size_t>(r)] = seen.sent;
  }
  FakeRankSeen seen;
  auto root = fake_rank(0, world, seen, std::vector<std::string>(payloads.begin() + 1, payloads.end()));
  return ldm::eval::generate_for_eval(m, o, *root).rank_counts;
}

void check_same_files(const std::string& a, const std::string& b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const std::string name = "/samples/" + ldm::eval::sample_file_name(i);
    CAPTURE(name);
    REQUIRE(std::filesystem::exists(a + name));
    REQUIRE(std::filesystem::exists(b + name));
    CHECK(ldm::testing::read_bytes(a + name) == ldm::testing::read_bytes(b + name));
  }
  CHECK(!std::filesystem::exists(a + "/samples/" + ldm::eval::sample_file_name(n)));
  CHECK(!std::filesystem::exists(b + "/samples/" + ldm::eval::sample_file_name(n)));
  CHECK(ldm::testing::read_bytes(a + "/grid.png") == ldm::testing::read_bytes(b + "/grid.png"));
}

std::vector<std::string> sample_files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/samples"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace eval_generate_test_support

TEST_CASE("eval rank ranges are contiguous, cover every index once and differ in size by at most one") {
  using ldm::eval::rank_range;
  for (int64_t n : {1, 6, 7, 100}) {
    for (int world : {1, 2, 3, 5}) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        auto range = rank_range(n, r, world);
        CHECK(range.begin == next);
        CHECK(range.size() >= n / world);
        CHECK(range.size() <= n / world + 1);
        next = range.end;
      }
      CHECK(next == n);
    }
  }
  CHECK(rank_range(6, 0, 2).size() == 3);
  CHECK(rank_range(6, 1, 2).begin == 3);
  CHECK_THROWS_AS(rank_range(6, 2, 2), ldm::Error);
  CHECK(ldm::eval::sample_file_name(42) == "000042.png");
}

TEST_CASE("generating 6 samples on 2 ranks writes 3 files per rank, byte-identical to one rank") {
  namespace t = eval_generate_test_support;
  ldm::testing::TempDir tmp("ldm-eval-gen");
  t::write_random_bundle(t::class_spec(), tmp.file("checkpoints"));
  const auto m = ldm::worker::load_sampling_model(tmp.file("checkpoints"));
  // batch 4 on purpose: global batch [0, 4) is split between the two ranks
  auto o = t::options(m, tmp.file("one"), 6, 4);
  o.sampling.cfg = 2.0;
  auto single = ldm::worker::make_single_process_communicator();
  auto r1 = ldm::eval::generate_for_eval(m, o, *single);
  CHECK(r1.rank_counts == std::vector<int64_t>{6});
  CHECK(r1.grid == tmp.file("one") + "/grid.png");
  CHECK(t::sample_files(tmp.file("one")).size() == 6);

  o.out_dir = tmp.file("two");
  CHECK(t::run_fake_ranks(m, o, 2) == std::vector<int64_t>{3, 3});
  t::check_same_files(tmp.file("one"), tmp.file("two"), 6);

  // The samples are not all alike (weights, noise and labels reach the images).
  CHECK(ldm::testing::read_bytes(tmp.file("one/samples/000000.png")) !=
        ldm::testing::read_bytes(tmp.file("one/samples/000001.png")));
  const auto png = ldm::data::read_png(tmp.file("one/samples/000000.png"));
  CHECK(png.height == 32);
  CHECK(png.width == 32);
  const auto grid = ldm::data::read_png(tmp.file("one/grid.png"));
  CHECK(grid.width == 6 * 32 + 7 * 2);
  CHECK(grid.height == 32 + 2 * 2);
  auto manifest = nlohmann::json::parse(ldm::testing::read_bytes(tmp.file("two/generate.json")));
  CHECK(manifest["world_size"] == 2);
  CHECK(manifest["ranks"][1]["begin"] == 3);
  CHECK(manifest["ranks"][1]["count"] == 3);

  // The ranges on their own (no communicator) give the same files too.
  o.out_dir = tmp.file("ranges");
  CHECK(ldm::eval::generate_range(m, o, {3, 6}) == 3);
  CHECK(ldm::eval::generate_range(m, o, {0, 3}) == 3);
  for (int64_t i = 0; i < 6; ++i) {
    const std::string name = "/samples/" + ldm::eval::sample_file_name(i);
    CHECK(ldm::testing::read_bytes(tmp.file("one") + name) == ldm::testing::read_bytes(tmp.file("ranges") + name));
  }
}

TEST_CASE("a stochastic sampler (ddpm) gives the same files on 1 and 3 ranks") {
  namespace t = eval_generate_test_support;
  ldm::testing::TempDir tmp("ldm-eval-gen");
  t::write_random_bundle(t::class_spec(), tmp.file("checkpoints"));
  const auto m = ldm::worker::load_sampling_model(tmp.file("checkpoints"));
  auto o = t::options(m, tmp.file("one"), 5, 2);
  o.sampling.sampler.method = ldm::Sampler::Ddpm;
  o.sampling.sampler.steps = 5;
  auto single = ldm::worker::make_single_process_communicator();
  ldm::eval::generate_for_eval(m, o, *single);
  o.out_dir = tmp.file("three");
  CHECK(t::run_fake_ranks(m, o, 3) == std::vector<int64_t>{1, 2, 2});
  t::check_same_files(tmp.file("one"), tmp.file("three"), 5);
  // another seed, other samples
  o.out_dir = tmp.file("other");
  o.seed = 22;
  ldm::eval::generate_range(m, o, {0, 1});
  CHECK(ldm::testing::read_bytes(tmp.file("one/samples/000000.png")) !=
        ldm::testing::read_bytes(tmp.file("other/samples/000000.png")));
}

TEST_CASE("text-to-image generation with controls and noisy padding cycles the captions and is rank-independent") {
  namespace t = eval_generate_test_support;
  ldm::testing::TempDir tmp("ldm-eval-gen");
  auto spec = t::proposed_text_spec();
  spec.recipe.conditioning.text_pad_noise_inference = 0.2;  // padding noise drawn at inference too
  t::write_random_bundle(spec, tmp.file("checkpoints"));
  const auto m = ldm::worker::load_sampling_model(tmp.file("checkpoints"));
  REQUIRE(m.conditions->uses_controls());
  auto o = t::options(m, tmp.file("one"), 5, 3);
  o.sampling.cfg = 3.0;
  o.sampling.cfg_control = 2.0;
  CHECK_THROWS_AS(ldm::eval::generate_range(m, o, {0, 1}), ldm::Error);  // no captions
  o.captions = {"a red circle on the left", "a blue square"};
  auto single = ldm::worker::make_single_process_communicator();
  ldm::eval::generate_for_eval(m, o, *single);
  o.out_dir = tmp.file("two");
  CHECK(t::run_fake_ranks(m, o, 2) == std::vector<int64_t>{2, 3});
  t::check_same_files(tmp.file("one"), tmp.file("two"), 5);
}

TEST_CASE("generation refuses bad options") {
  namespace t = eval_generate_test_support;
  ldm::testing::TempDir tmp("ldm-eval-gen");
  t::write_random_bundle(t::class_spec(), tmp.file("checkpoints"));
  const auto m = ldm::worker::load_sampling_model(tmp.file("checkpoints"));
  auto o = t::options(m, tmp.file("out"), 0, 2);
  CHECK_THROWS_AS(ldm::eval::generate_range(m, o, {0, 0}), ldm::Error);
  o.n = 4;
  CHECK_THROWS_AS(ldm::eval::generate_range(m, o, {2, 5}), ldm::Error);
  o.captions = {"a caption"};
  CHECK_THROWS_AS(ldm::eval::generate_range(m, o, {0, 1}), ldm::Error);  // class task
  o.captions.clear();
  o.sampling.sampler.eta = 2.0;  // outside [0, 1]
  CHECK_THROWS_AS(ldm::eval::generate_range(m, o, {0, 1}), ldm::SpecError);
}

TEST_CASE(
    "disentanglement on the proposed model: finite, positive across sizes, 0 for equal sizes or dropped controls") {
  namespace t = eval_generate_test_support;
  ldm::testing::TempDir tmp("ldm-eval-dis");
  t::write_random_bundle(t::proposed_text_spec(), tmp.file("checkpoints"));
  const auto m = ldm::worker::load_sampling_model(tmp.file("checkpoints"));
  ldm::eval::DisentanglementOptions o;
  o.draws = 3;
  o.batch = 2;
  o.captions = {"a red circle on the left", "a blue square"};
  o.sampling = ldm::eval::recipe_sampling(m);
  o.sampling.sampler.method = ldm::Sampler::Euler;
  o.sampling.sampler.steps = 4;
  o.sampling.cfg = 2.0;
  const auto pixel = ldm::eval::pixel_distance();

  const auto r = ldm::eval::measure_disentanglement(m, o, pixel);
  CHECK(r.distance == "pixel-mse");
  CHECK(r.sizes == std::vector<int64_t>{64, 128, 256, 512, 1024});
  CHECK(std::isfinite(r.all_pairs));
  CHECK(r.all_pairs > 0.0);  // the size condition reaches the images
  CHECK(std::isfinite(r.high_res));
  CHECK(r.high_res >= 0.0);
  CHECK(r.per_draw_all_pairs.size() == 3);
  // default threshold 512: the only high-resolution pair is (512, 1024)
  CHECK(r.high_res == doctest::Approx(r.pair_mean[3][4]).epsilon(1e-12));
  double sum = 0.0;
  for (std::size_t a = 0; a < 5; ++a) {
    CHECK(r.pair_mean[a][a] == 0.0);
    for (std::size_t b = a + 1; b < 5; ++b) {
      CHECK(r.pair_mean[a][b] == r.pair_mean[b][a]);
      CHECK(r.pair_mean[a][b] >= 0.0);
      sum += r.pair_mean[a][b];
    }
  }
  CHECK(r.all_pairs == doctest::Approx(sum / 10.0).epsilon(1e-12));
  double per_draw = 0.0;
  for (double v : r.per_draw_all_pairs) per_draw += v;
  CHECK(r.all_pairs == doctest::Approx(per_draw / 3.0).epsilon(1e-9));

  // the same seed gives the same number
  CHECK(ldm::eval::measure_disentanglement(m, o, pixel).all_pairs == r.all_pairs);

  // the same size twice: identical images, distance exactly 0
  auto same = o;
  same.sizes = {256, 256};
  const auto r_same = ldm::eval::measure_disentanglement(m, same, pixel);
  CHECK(r_same.all_pairs == 0.0);
  CHECK(std::isnan(r_same.high_res));  // no size >= 512

  // controls dropped in every generation: the size cannot matter
  auto dropped = o;
  dropped.sampling.drop_controls = true;
  CHECK(ldm::eval::measure_disentanglement(m, dropped, pixel).all_pairs == 0.0);

  // a feature distance gets float images in [0, 1], as FeatureExtractor::features takes them
  auto features = ldm::eval::feature_distance("channel-means", [](const at::Tensor& images) {
    REQUIRE(bool(images.scalar_type() == torch::kFloat32));
    REQUIRE(images.size(1) == 3);
    REQUIRE(images.min().item<double>() >= 0.0);
    REQUIRE(images.max().item<double>() <= 1.0);
    return images.mean({2, 3});  // [N, 3]
  });
  const auto r_feat = ldm::eval::measure_disentanglement(m, o, features);
  CHECK(std::isfinite(r_feat.all_pairs));
  CHECK(r_feat.all_pairs >= 0.0);
  CHECK(r_feat.distance == "channel-means");

  // images rounded to 8 bits first (as saved PNGs): still finite, close to the float value
  auto quantized = o;
  quantized.quantize = true;
  const auto r_q = ldm::eval::measure_disentanglement(m, quantized, pixel);
  CHECK(std::isfinite(r_q.all_pairs));
  CHECK(r_q.all_pairs == doctest::Approx(r.all_pairs).epsilon(0.1));

  // fewer than two sizes, or a high threshold no pair reaches
  auto one = o;
  one.sizes = {256};
  CHECK_THROWS_AS(ldm::eval::measure_disentanglement(m, one, pixel), ldm::Error);
  auto none = o;
  none.sizes = {64, 128};
  CHECK(std::isnan(ldm::eval::measure_disentanglement(m, none, pixel).high_res));
}

TEST_CASE("disentanglement with a TorchScript LPIPS network follows its forward(x, y) contract") {
  namespace t = eval_generate_test_support;
  ldm::testing::TempDir tmp("ldm-eval-dis");
  t::write_random_bundle(t::proposed_text_spec(), tmp.file("checkpoints"));
  const auto m = ldm::worker::load_sampling_model(tmp.file("checkpoints"));
  // A stand-in "LPIPS": the pixel MSE, returned as [N, 1, 1, 1] like the lpips package.
  torch::jit::Module net("FakeLpips");
  net.define(R"(
def forward(self, x, y):
    return ((x - y) ** 2).mean(dim=[1, 2, 3], keepdim=True)
)");
  net.save(tmp.file("lpips.pt"));
  ldm::eval::DisentanglementOptions o;
  o.draws = 2;
  o.sizes = {64, 512, 1024};
  o.captions = {"a caption"};
  o.sampling = ldm::eval::recipe_sampling(m);
  o.sampling.sampler.method = ldm::Sampler::Ddim;
  o.sampling.sampler.steps = 3;
  const auto lpips = ldm::eval::lpips_distance(tmp.file("lpips.pt"));
  CHECK(lpips.name == "lpips:lpips.pt");
  const auto r = ldm::eval::measure_disentanglement(m, o, lpips);
  const auto p = ldm::eval::measure_disentanglement(m, o, ldm::eval::pixel_distance());
  CHECK(r.all_pairs > 0.0);
  CHECK(r.all_pairs == doctest::Approx(p.all_pairs).epsilon(1e-5));
  CHECK(r.high_res == doctest::Approx(p.pair_mean[1][2]).epsilon(1e-5));

  // a network that returns the wrong number of values, and a file that is not TorchScript
  torch::jit::Module bad("BadLpips");
  bad.define(R"(
def forward(self, x, y):
    return (x - y).mean()
)");
  bad.save(tmp.file("bad.pt"));
  CHECK_THROWS_AS(ldm::eval::measure_disentanglement(m, o, ldm::eval::lpips_distance(tmp.file("bad.pt"))),
                  ldm::DataError);
  ldm::testing::write_bytes(tmp.file("junk.pt"), "not a zip");
  CHECK_THROWS_AS(ldm::eval::lpips_distance(tmp.file("junk.pt")), ldm::DataError);
  CHECK_THROWS_AS(ldm::eval::lpips_distance(tmp.file("missing.pt")), ldm::DataError);
}

TEST_CASE("disentanglement refuses a recipe without control conditioning") {
  namespace t = eval_generate_test_support;
  ldm::testing::TempDir tmp("ldm-eval-dis");
  t::write_random_bundle(t::class_spec(), tmp.file("checkpoints"));  // DiT, controls = "none"
  const auto m = ldm::worker::load_sampling_model(tmp.file("checkpoints"));
  ldm::eval::DisentanglementOptions o;
  o.sampling = ldm::eval::recipe_sampling(m);
  o.sampling.sampler.steps = 2;
  try {
    ldm::eval::measure_disentanglement(m, o, ldm::eval::pixel_distance());
    FAIL("no error");
  } catch (const ldm::Error& e) {
    CHECK(std::string(e.what()).find("control") != std::string::npos);
  }
}
