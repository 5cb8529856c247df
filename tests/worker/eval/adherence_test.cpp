#include <torch/torch.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "datasets/import/synthetic.h"
#include "datasets/tensor/loader.h"
#include "shared/core/error.h"
#include "tests/support/temp_dir.h"
#include "worker/eval/adherence.h"

namespace adherence_test_support {

using namespace ldm::eval;

// A [1, 3, R, R] image in [-1, 1]: a hard-edged square (sharp), or the same drawn at R / 4 and
// upsampled (blurred), as a small original resampled to the training side is.
at::Tensor square_image(int64_t r, bool blurred) {
  const int64_t side = blurred ? r / 4 : r;
  auto img = torch::full({1, 3, side, side}, -0.6);
  img.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(side / 4, 3 * side / 4),
                  torch::indexing::Slice(side / 4, 3 * side / 4)},
                 0.8);
  if (blurred)
    img = torch::nn::functional::interpolate(img, torch::nn::functional::InterpolateFuncOptions()
                                                      .size(std::vector<int64_t>{r, r})
                                                      .mode(torch::kBilinear)
                                                      .align_corners(false));
  return img.to(torch::kFloat32);
}

std::string synthetic_dir(const std::string& root, int64_t records, int64_t resolution) {
  ldm::data::SyntheticParams p;
  p.records = records;
  p.classes = 10;
  p.resolution = resolution;
  p.shard_records = 256;
  const std::string dir = root + "/synth";
  ldm::data::ensure_synthetic_dataset(p, dir);
  return dir;
}

ldm::data::RgbImage to_rgb(const ldm::data::Record& r) {
  return {static_cast<int>(r.shape.at(0)), static_cast<int>(r.shape.at(1)), r.payload};
}

}  // namespace adherence_test_support

using namespace adherence_test_support;

TEST_CASE("high-frequency energy: 0 for a flat image, lower for an upsampled (blurred) one than a sharp one") {
  CHECK(high_frequency_energy(torch::zeros({2, 3, 8, 8}))[1].item<double>() == doctest::Approx(0.0));
  const double sharp = high_frequency_energy(square_image(32, false))[0].item<double>();
  const double blurred = high_frequency_energy(square_image(32, true))[0].item<double>();
  CHECK(sharp > 0);
  CHECK(blurred > 0);
  CHECK(sharp > 2 * blurred);
  // The 8-bit form agrees with the tensor form to quantisation.
  const auto u8 = square_image(32, false)
                      .add(1)
                      .mul(127.5)
                      .round()
                      .clamp(0, 255)
                      .to(torch::kUInt8)[0]
                      .permute({1, 2, 0})
                      .contiguous();
  const uint8_t* bytes = u8.data_ptr<uint8_t>();
  ldm::data::RgbImage im{32, 32, std::vector<uint8_t>(bytes, bytes + u8.numel())};
  CHECK(high_frequency_energy(im) == doctest::Approx(sharp).epsilon(0.02));
  CHECK_THROWS_AS(high_frequency_energy(torch::zeros({1, 3, 2, 8})), ldm::Error);
}

TEST_CASE("pearson, slope and control adherence against a data curve") {
  CHECK(pearson({1, 2, 3, 4}, {2, 4, 6, 8}) == doctest::Approx(1.0));
  CHECK(pearson({1, 2, 3, 4}, {4, 3, 2, 1}) == doctest::Approx(-1.0));
  CHECK(pearson({1, 2, 3, 4}, {5, 5, 5, 5}) == 0.0);  // constant: no relation
  CHECK(slope({1, 2, 3}, {3, 5, 7}) == doctest::Approx(2.0));
  CHECK(slope({2, 2}, {1, 3}) == 0.0);
  const std::vector<double> data = {-8, -6, -6};  // log energy: rises to the output side, then flat
  // Draw 0 follows the data at half its strength, draw 1 ignores the size condition.
  const ControlAdherence c =
      control_adherence(data, {{std::exp(-4.0), std::exp(-3.0), std::exp(-3.0)}, {0.01, 0.01, 0.01}});
  CHECK(c.draws == 2);
  CHECK(c.correlation == doctest::Approx(0.5));
  CHECK(c.gain == doctest::Approx(0.25));
  CHECK_THROWS_AS(control_adherence(data, {{1.0, 2.0}}), ldm::Error);
}

TEST_CASE("the synthetic data's sharpness rises with its crop side up to the output side, then levels off") {
  ldm::testing::TempDir tmp("ldm-adherence");
  const std::string dir = synthetic_dir(tmp.path(), 1024, 32);
  const std::vector<double> d = data_sharpness_curve(dir, {8, 16, 32, 64, 96});
  MESSAGE("data curve (mean log energy at crop 8, 16, 32, 64, 96): " << d[0] << " " << d[1] << " " << d[2] << " "
                                                                     << d[3] << " " << d[4]);
  CHECK(d[1] > d[0]);
  CHECK(d[2] > d[1] + 0.5);             // upsampled small crops are blurred
  CHECK(std::fabs(d[3] - d[2]) < 0.5);  // above the output side: edges stay sharp
  CHECK(d[4] < d[2] + 0.25);
  // Without images there is nothing to measure.
  CHECK_THROWS_AS(data_sharpness_curve(tmp.path() + "/none", {16}), ldm::DataError);
}

TEST_CASE("the caption classifier reads colour, shape and side of held-out records; wrong captions score low") {
  ldm::testing::TempDir tmp("ldm-adherence");
  const std::string dir = synthetic_dir(tmp.path(), 1024, 16);
  CaptionClassifierOptions o;
  o.epochs = 8;
  o.max_records = 1024;
  bool cached = true;
  const CaptionClassifier c = CaptionClassifier::train_or_load(dir, o, tmp.path() + "/cache", &cached);
  CHECK_FALSE(cached);
  CHECK(c.resolution() == 16);
  const AttributeAccuracy& acc = c.holdout_accuracy();
  MESSAGE("held-out accuracy: colour " << acc.colour << ", shape " << acc.shape << ", side " << acc.side);
  CHECK(acc.colour_n > 100);
  CHECK(acc.colour > 0.8);  // chance: 0.1
  CHECK(acc.side > 0.7);    // chance: 1/3
  CHECK(acc.shape > 0.3);   // chance: 0.125

  // Records with their own captions against the same records with captions of other classes.
  const ldm::data::ShardDataset ds(dir);
  std::vector<ldm::data::RgbImage> images;
  std::vector<std::string> own, other;
  for (std::size_t i = 0; i < 200; ++i) {
    const ldm::data::Record r = ds.read(i);
    images.push_back(to_rgb(r));
    own.push_back(r.caption);
    other.push_back("a " + ldm::data::synthetic_class_name((r.label + 3) % 10) +
                    (i % 2 ? " on the left" : " on the right"));
  }
  const CaptionAdherence good = caption_adherence(c, images, own);
  const CaptionAdherence bad = caption_adherence(c, images, other);
  MESSAGE("own captions " << good.score << ", other classes' " << bad.score);
  CHECK(good.samples == 200);
  CHECK(good.score > 0.75);
  CHECK(bad.score < good.score - 0.3);
  CHECK(bad.attributes.colour < 0.35);  // classes 1 and 8 share green

  // Trained once per data content and options: the cache answers with the same network.
  const CaptionClassifier again = CaptionClassifier::train_or_load(dir, o, tmp.path() + "/cache", &cached);
  CHECK(cached);
  CHECK(caption_adherence(again, images, own).score == doctest::Approx(good.score));
  CHECK(again.holdout_accuracy().shape == doctest::Approx(acc.shape));
}
