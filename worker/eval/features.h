// Feature extractors for FID: the Inception-v3 pool3 network from a TorchScript file (comparable with
// published FID when the file is pytorch-fid's FID Inception), and a small built-in network for tests
// and the quickstart (NOT comparable with anything published).
//
// Images go in as
//   - uint8 [N, H, W, 3] RGB (NHWC, as decode_image and image shards hold them), or
//   - floating point [N, 3, H, W] RGB in [0, 1] (NCHW, what torchvision's ToTensor makes);
// or one data::RgbImage at a time (images of different sizes: each is resized on its own).
// features() returns float32 [N, dim()] on the CPU.
//
// InceptionExtractor (`ldm-eval --inception PATH`): preprocessing exactly as pytorch-fid 0.3's
// InceptionV3(resize_input=True, normalize_input=True) with its ImagePathDataset:
//   1. uint8 RGB -> float32 x / 255 (ToTensor: img.to(float32).div(255)), NCHW;
//   2. F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False) — no antialiasing,
//      applied to every image, also one that is already 299x299 (then it is the identity);
//   3. x = 2 * x - 1 (to [-1, 1]), in float32;
//   4. module.forward(x) -> [N, 2048] (pytorch-fid's block 3, the adaptive average pool after
//      Mixed_7c, squeezed).
// Differences from pytorch-fid's command line that remain: our decoder applies the EXIF orientation
// (PIL's exif_transpose; pytorch-fid's Image.open(...).convert('RGB') does not), which only matters
// for rotated JPEG photographs, and pytorch-fid batches a folder only when its images share one
// size. Other FID tools resize differently (clean-fid: PIL bicubic with antialiasing; ADM/DiT's
// TensorFlow evaluator: TF's bilinear resize inside the graph); their numbers differ slightly.
// The TorchScript contract (tools/export/export_inception.py writes such files):
//   forward(x: float32 [N,3,299,299] in [-1,1]) -> float32 [N,2048]
//   optional attributes: network (str, e.g. "fid-inception-v3:pt_inception-2015-12-05-6726825d.pth"),
//                        feature_dim (int, must be 2048 when present)
// identity() = "torchscript-inception:<first 16 hex of the file's SHA-256>"; label() names the
// network and says whether it is comparable with published FID (only the FID Inception
// architecture with loaded weights is; torchvision's Inception, random weights and files without a
// network attribute are flagged).
//
// BuiltinExtractor: uint8/255 -> bilinear resize to 64x64 (align_corners=False) -> [-1, 1] ->
// four 3x3 convolutions with ReLU (3->32 stride 2, 32->64 stride 2, 64->128 stride 2, 128->256
// stride 1, padding 1) -> spatial mean -> [N, 256]. The weights are He-uniform values from a
// fixed-seed splitmix64 stream (independent of LibTorch's random generators and of the global seed),
// so the features are the same in every run and process. identity() = "builtin-convnet-v1:256".
//
// Thread-safety: features() is const and may be called from several threads at once.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "datasets/images/image_io.h"  // RgbImage

namespace ldm::eval {

class FeatureExtractor {
 public:
  virtual ~FeatureExtractor() = default;

  // The network input for `images` (formats above): float32 [N, 3, S, S], resized and normalised.
  // Throws ldm::Error for a wrong rank/layout/dtype, float values outside [0, 1], an empty image.
  virtual at::Tensor prepare(const at::Tensor& images) const = 0;
  // The features of prepared input [N, 3, S, S], computed in batches of batch_size(): float32
  // [N, dim()] on the CPU. N may be 0.
  virtual at::Tensor features_of_prepared(const at::Tensor& prepared) const = 0;

  // prepare() then features_of_prepared().
  at::Tensor features(const at::Tensor& images) const;
  // Images of any sizes: each is prepared on its own, then the batch runs through the network.
  at::Tensor features(const std::vector<data::RgbImage>& images) const;

  virtual int dim() const = 0;
  virtual int input_size() const = 0;  // S
  virtual int batch_size() const = 0;
  // Stable identity of the network (its weights): statistics with different identities must not be
  // compared.
  virtual std::string identity() const = 0;
  // For people: what the network is and whether its FIDs are comparable with published ones.
  virtual std::string label() const = 0;
  virtual bool comparable_with_published_fid() const = 0;
};

// uint8 [H, W, 3] -> uint8 [1, H, W, 3] tensor sharing nothing with `image` (a copy).
at::Tensor image_to_tensor(const data::RgbImage& image);

struct InceptionOptions {
  int batch_size = 50;         // images per module call (pytorch-fid's default)
  std::string device = "cpu";  // where the module runs ("cpu", "cuda", "cuda:1")
};

class InceptionExtractor final : public FeatureExtractor {
 public:
  static constexpr int kInputSize = 299;
  static constexpr int kDim = 2048;

  // Loads the TorchScript file. Throws ldm::DataError naming the file: missing, not loadable by
  // this LibTorch, no forward method, feature_dim other than 2048; ldm::Error for a bad option.
  explicit InceptionExtractor(const std::string& path, InceptionOptions options = {});
  ~InceptionExtractor() override;
  InceptionExtractor(const InceptionExtractor&) = delete;
  InceptionExtractor& operator=(const InceptionExtractor&) = delete;

  at::Tensor prepare(const at::Tensor& images) const override;
  // Throws ldm::DataError naming the file when the module fails or returns another shape than
  // [n, 2048], or non-finite values.
  at::Tensor features_of_prepared(const at::Tensor& prepared) const override;
  int dim() const override { return kDim; }
  int input_size() const override { return kInputSize; }
  int batch_size() const override;
  std::string identity() const override;
  std::string label() const override;
  bool comparable_with_published_fid() const override;

  const std::string& path() const;
  const std::string& sha256() const;
  const std::string& network() const;  // the file's `network` attribute, "" when absent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class BuiltinExtractor final : public FeatureExtractor {
 public:
  static constexpr int kInputSize = 64;
  static constexpr int kDim = 256;

  explicit BuiltinExtractor(int batch_size = 50);
  ~BuiltinExtractor() override;
  BuiltinExtractor(const BuiltinExtractor&) = delete;
  BuiltinExtractor& operator=(const BuiltinExtractor&) = delete;

  at::Tensor prepare(const at::Tensor& images) const override;
  at::Tensor features_of_prepared(const at::Tensor& prepared) const override;
  int dim() const override { return kDim; }
  int input_size() const override { return kInputSize; }
  int batch_size() const override;
  std::string identity() const override { return "builtin-convnet-v1:256"; }
  std::string label() const override {
    return "builtin 256-d conv net (NOT comparable with Inception FID or any published number)";
  }
  bool comparable_with_published_fid() const override { return false; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// InceptionExtractor(inception_path) when the path is non-empty, else BuiltinExtractor.
// batch_size applies to both; `device` ("cpu", "cuda", "cuda:1", or "auto": a GPU when LibTorch sees
// one) to the Inception module (the small built-in network runs on the CPU).
std::unique_ptr<FeatureExtractor> make_feature_extractor(const std::string& inception_path, int batch_size = 50,
                                                         const std::string& device = "cpu");

// The warning the CLI prints when the built-in network is used.
extern const char* const kBuiltinFeaturesWarning;

}  // namespace ldm::eval
