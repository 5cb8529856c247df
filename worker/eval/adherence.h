// Does a condition still act? Two measurements that keep "ignore the condition" from winning a
// comparison that rewards insensitivity (the disentanglement metric does: a model that ignores the
// size condition scores a perfect 0).
//
// Control adherence (the size condition). The built-in synthetic data is rendered from canvases of
// varied size and resampled to the training resolution, so a record whose crop spans fewer original
// pixels than the output side was upsampled and is blurrier; above the output side its edges stay
// one pixel sharp while the canvas grain averages out. The data's sharpness-against-crop-side curve
// (rising to the output side, then flat) is what a model that learned the size condition reproduces
// when asked for different original sizes from the same noise. Sharpness here is the high-frequency
// energy of an image: the mean square of the 4-neighbour Laplacian of its luminance (0.299 R +
// 0.587 G + 0.114 B, in [0, 1]) over interior pixels [ours]. With D(s) the data's mean log energy
// at crop side s (the records whose crop side is nearest s) and E_j(s) the energy of draw j's image
// generated at size s, per checkpoint:
//   correlation  mean over draws of Pearson's r between log E_j(s) and D(s) over the sizes (1 = the
//                samples' sharpness follows the data's size relation; 0 = no relation, or equal images);
//   gain         mean over draws of the least-squares slope of log E_j(s) on D(s) (1 = as strong as in
//                the data, 0 = the size condition does nothing, > 1 = exaggerated).
// Caption adherence (the text task on synthetic captions). A small convolutional classifier is
// trained on the experiment's own synthetic training data to read the colour, the shape and the side
// (left / middle / right) of the object from an image, the attributes its caption states; a sample
// then scores, per attribute its caption states, 1 when the classifier reads the caption's value.
// The classifier's accuracy on held-out data records is the ceiling a perfect generator would reach.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/images/image_io.h"
#include "datasets/import/synthetic.h"

namespace ldm::eval {

// float32 [N, 3, H, W] images in [-1, 1] -> float64 [N] high-frequency energies (H, W >= 3).
at::Tensor high_frequency_energy(const at::Tensor& images);
// The same for an 8-bit image.
double high_frequency_energy(const data::RgbImage& image);

// Pearson's correlation of x and y; 0 when either is constant or shorter than 2.
double pearson(const std::vector<double>& x, const std::vector<double>& y);
// Least-squares slope of y on x; 0 when x is constant.
double slope(const std::vector<double>& x, const std::vector<double>& y);

// D(s) for each size: the mean log high-frequency energy of the `neighbours` records of the image
// shards in `dir` whose crop side (crop_h) is nearest s in log scale; at most `max_records` records,
// evenly spaced over the dataset. Throws DataError for latent shards.
std::vector<double> data_sharpness_curve(const std::string& dir, const std::vector<int64_t>& sizes,
                                         int64_t max_records = 2048, int64_t neighbours = 64);

struct ControlAdherence {
  double correlation = 0.0;
  double gain = 0.0;
  int64_t draws = 0;
};

// `energy` is [M draws][S sizes] (energies floored at 1e-12 before the log), `data_curve` [S].
ControlAdherence control_adherence(const std::vector<double>& data_curve,
                                   const std::vector<std::vector<double>>& energy);

struct CaptionClassifierOptions {
  int64_t epochs = 10;         // passes over the training records [ours]
  int64_t batch = 64;          //
  double lr = 2e-3;            // Adam
  int64_t max_records = 4096;  // records used (evenly spaced over the dataset) [ours]
  double holdout = 0.125;      // fraction kept out of training to measure the accuracy
  int64_t width = 32;          // channels of the widest convolution [ours]
  uint64_t seed = 0;           // initialisation and batch order
};

// Accuracy (fraction right) per attribute over the records whose captions state it.
struct AttributeAccuracy {
  double colour = 0.0, shape = 0.0, side = 0.0;
  int64_t colour_n = 0, shape_n = 0, side_n = 0;
  double mean() const;  // over the attributes with n > 0
};

class CaptionClassifier {
 public:
  // Trains on the records of the image shards in `dir` whose captions parse, at the records'
  // resolution, or loads the classifier trained before on the same data content and options from
  // `cache_dir` ("" = no cache). `cached` says which. Throws DataError for latent shards, or when
  // fewer than 16 records have parsable captions.
  static CaptionClassifier train_or_load(const std::string& dir, const CaptionClassifierOptions& options,
                                         const std::string& cache_dir, bool* cached = nullptr);

  // The attributes read from 8-bit images (resized to the training resolution when they differ).
  std::vector<data::SyntheticAttributes> predict(const std::vector<data::RgbImage>& images) const;
  const AttributeAccuracy& holdout_accuracy() const;
  int64_t resolution() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The share of what each caption states that the classifier reads from its image.
struct CaptionAdherence {
  AttributeAccuracy attributes;  // per attribute, over the samples whose caption states it
  double score = 0.0;            // mean over samples of the fraction of their stated attributes matched
  int64_t samples = 0;
};
CaptionAdherence caption_adherence(const CaptionClassifier& classifier, const std::vector<data::RgbImage>& images,
                                   const std::vector<std::string>& captions);

}  // namespace ldm::eval
