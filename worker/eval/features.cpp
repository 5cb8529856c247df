#include "worker/eval/features.h"

#include <torch/script.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "shared/core/progress.h"
#include "shared/core/sha256.h"
#include "shared/core/error.h"
#include "worker/torch_compat.h"

namespace ldm::eval {

const char* const kBuiltinFeaturesWarning =
    "warning: no --inception file given: using the built-in 256-d feature network. Its numbers are "
    "NOT comparable with published FID (Inception-v3) or with FIDs from any other network; use them "
    "only to compare runs with each other. For real FID export pytorch-fid's Inception with "
    "tools/export/export_inception.py and pass --inception FILE.";

namespace features_detail {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

// uint8 NHWC or floating NCHW in [0, 1] -> contiguous float32 NCHW in [0, 1] (uint8: x / 255 in
// float32, as torchvision's ToTensor).
at::Tensor to_unit_nchw(const at::Tensor& images, const std::string& who) {
  if (!images.defined()) throw Error(who + ": undefined image tensor");
  if (images.dim() != 4)
    throw Error(who + ": images must be uint8 [N,H,W,3] or float [N,3,H,W], got shape " + shape_str(images.sizes()));
  at::Tensor x;
  if (images.scalar_type() == torch::kByte) {
    if (images.size(3) != 3)
      throw Error(who + ": uint8 images must be RGB [N,H,W,3] (NHWC), got shape " + shape_str(images.sizes()));
    x = images.to(torch::kCPU).permute({0, 3, 1, 2}).contiguous().to(torch::kFloat32).div(255);
  } else if (at::isFloatingType(images.scalar_type())) {
    if (images.size(1) != 3)
      throw Error(who + ": float images must be RGB [N,3,H,W] (NCHW) in [0,1], got shape " + shape_str(images.sizes()));
    x = images.to(torch::kCPU, torch::kFloat32).contiguous();
    if (x.numel() > 0) {
      if (!torch::isfinite(x).all().item<bool>()) throw Error(who + ": float images contain NaN or infinity");
      const double lo = x.min().item<double>(), hi = x.max().item<double>();
      if (lo < -1e-6 || hi > 1 + 1e-6) {
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      ": float images must be in [0, 1] (got values in [%.4g, %.4g]; map [-1,1] "
                      "samples with (x + 1) / 2)",
                      lo, hi);
        throw Error(who + buf);
      }
    }
  } else {
    throw Error(who + ": images must be uint8 or floating point, got " +
                std::string(c10::toString(images.scalar_type())));
  }
  if (x.size(0) > 0 && (x.size(2) < 1 || x.size(3) < 1))
    throw Error(who + ": empty images of shape " + shape_str(images.sizes()));
  return x;
}

// pytorch-fid's resize and normalisation: F.interpolate(x, size=(s, s), mode='bilinear',
// align_corners=False) (upsample_bilinear2d with the output size and no scale factors, as
// F.interpolate calls it), then 2 * x - 1.
at::Tensor resize_normalise(const at::Tensor& unit_nchw, int size) {
  if (unit_nchw.size(0) == 0) return torch::zeros({0, 3, size, size}, torch::kFloat32);
  const auto y = at::upsample_bilinear2d(unit_nchw, {size, size}, /*align_corners=*/false, c10::nullopt, c10::nullopt);
  return y.mul(2).sub(1);
}

void check_prepared(const at::Tensor& x, int size, const std::string& who) {
  if (!x.defined() || x.dim() != 4 || x.size(1) != 3 || x.size(2) != size || x.size(3) != size)
    throw Error(who + ": prepared input must be [N,3," + std::to_string(size) + "," + std::to_string(size) + "], got " +
                (x.defined() ? shape_str(x.sizes()) : std::string("undefined")));
}

// splitmix64: a fixed, portable stream for the built-in network's weights.
struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
};

}  // namespace features_detail

// ---- base ------------------------------------------------------------------------------------

at::Tensor FeatureExtractor::features(const at::Tensor& images) const { return features_of_prepared(prepare(images)); }

at::Tensor FeatureExtractor::features(const std::vector<data::RgbImage>& images) const {
  if (images.empty()) return torch::zeros({0, dim()}, torch::kFloat32);
  std::vector<at::Tensor> prepared;
  prepared.reserve(images.size());
  for (const auto& image : images) prepared.push_back(prepare(image_to_tensor(image)));
  return features_of_prepared(torch::cat(prepared, 0));
}

at::Tensor image_to_tensor(const data::RgbImage& image) {
  if (image.height < 1 || image.width < 1 ||
      image.pixels.size() != static_cast<std::size_t>(image.height) * static_cast<std::size_t>(image.width) * 3)
    throw Error("image of " + std::to_string(image.height) + "x" + std::to_string(image.width) + " with " +
                std::to_string(image.pixels.size()) + " bytes is not a valid RGB image");
  auto t = torch::empty({1, image.height, image.width, 3}, torch::kByte);
  std::memcpy(t.data_ptr<std::uint8_t>(), image.pixels.data(), image.pixels.size());
  return t;
}

// ---- Inception (TorchScript) ----------------------------------------------------------------------

namespace {
constexpr const char* kInceptionWhat = "TorchScript Inception";
}

struct InceptionExtractor::Impl {
  std::string path, sha, network;
  torch::Device device{torch::kCPU};
  torch::jit::Module module;
  int batch_size = 50;

  std::string what() const { return std::string(kInceptionWhat) + " " + path; }
};

InceptionExtractor::InceptionExtractor(const std::string& path, InceptionOptions options)
    : impl_(std::make_unique<Impl>()) {
  auto& d = *impl_;
  d.path = path;
  if (options.batch_size < 1)
    throw Error(d.what() + ": batch size must be >= 1, got " + std::to_string(options.batch_size));
  d.batch_size = options.batch_size;
  try {
    d.device = torch::Device(options.device);
  } catch (const std::exception& e) {
    throw Error(d.what() + ": bad device '" + options.device + "': " + torch_compat::error_text(e));
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw DataError(d.what() + ": no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError(d.what() + ": not a regular file");
  d.sha = sha256_file_hex(path);
  try {
    d.module = torch::jit::load(path, d.device);
  } catch (const std::exception& e) {
    std::string msg = torch_compat::error_text(e);
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    throw DataError(d.what() + ": not a TorchScript archive that this LibTorch (" +
                    std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + ") can load (" +
                    msg + "); export it with tools/export/export_inception.py under Debian's python3-torch");
  }
  d.module.eval();
  if (!d.module.find_method("forward"))
    throw DataError(d.what() +
                    ": the TorchScript module has no forward method (expected forward(x: float "
                    "[N,3,299,299] in [-1,1]) -> [N,2048])");
  if (d.module.hasattr("feature_dim")) {
    const auto v = d.module.attr("feature_dim");
    if (!v.isInt() || v.toInt() != kDim)
      throw DataError(d.what() + ": attribute feature_dim is " + (v.isInt() ? std::to_string(v.toInt()) : v.tagKind()) +
                      ", expected 2048 (the Inception-v3 pool3 features)");
  }
  if (d.module.hasattr("network")) {
    const auto v = d.module.attr("network");
    if (v.isString()) d.network = v.toStringRef();
  }
}

InceptionExtractor::~InceptionExtractor() = default;

at::Tensor InceptionExtractor::prepare(const at::Tensor& images) const {
  return features_detail::resize_normalise(features_detail::to_unit_nchw(images, impl_->what()), kInputSize);
}

at::Tensor InceptionExtractor::features_of_prepared(const at::Tensor& prepared) const {
  const auto& d = *impl_;
  features_detail::check_prepared(prepared, kInputSize, d.what());
  const int64_t n = prepared.size(0);
  if (n == 0) return torch::zeros({0, kDim}, torch::kFloat32);
  torch::NoGradGuard no_grad;
  const auto x = prepared.to(d.device, torch::kFloat32);
  std::vector<at::Tensor> outs;
  for (int64_t start = 0; start < n; start += d.batch_size) {
    note_progress("extracting image features");
    const int64_t rows = std::min<int64_t>(d.batch_size, n - start);
    const auto chunk = x.narrow(0, start, rows).contiguous();
    c10::IValue result;
    try {
      result = d.module.get_method("forward")({chunk});
    } catch (const std::exception& e) {
      throw DataError(d.what() + ": forward() failed on a batch of shape " + features_detail::shape_str(chunk.sizes()) +
                      ": " + torch_compat::error_text(e));
    }
    if (!result.isTensor())
      throw DataError(d.what() + ": forward() returned a " + result.tagKind() + ", expected a tensor [n,2048]");
    auto y = result.toTensor();
    // pytorch-fid's block 3 is [n, 2048, 1, 1]: accept that too.
    if (y.dim() == 4 && y.size(2) == 1 && y.size(3) == 1) y = y.flatten(1);
    if (y.dim() != 2 || y.size(0) != rows || y.size(1) != kDim)
      throw DataError(d.what() + ": forward() returned shape " + features_detail::shape_str(y.sizes()) +
                      ", expected [" + std::to_string(rows) + ", 2048]");
    y = y.to(torch::kCPU, torch::kFloat32);
    if (!torch::isfinite(y).all().item<bool>())
      throw DataError(d.what() + ": forward() returned NaN or infinite features");
    outs.push_back(y);
  }
  return outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
}

int InceptionExtractor::batch_size() const { return impl_->batch_size; }
std::string InceptionExtractor::identity() const { return "torchscript-inception:" + impl_->sha.substr(0, 16); }
const std::string& InceptionExtractor::path() const { return impl_->path; }
const std::string& InceptionExtractor::sha256() const { return impl_->sha; }
const std::string& InceptionExtractor::network() const { return impl_->network; }

bool InceptionExtractor::comparable_with_published_fid() const {
  const std::string& n = impl_->network;
  return n.rfind("fid-inception-v3:", 0) == 0 && n.find(":random") == std::string::npos;
}

std::string InceptionExtractor::label() const {
  const std::string& n = impl_->network;
  const std::string file = std::filesystem::path(impl_->path).filename().string();
  std::string head = "inception-2048 (" + file + ", sha256 " + impl_->sha.substr(0, 16);
  if (n.empty())
    return head +
           "; no network attribute: comparable with published FID only if the file is pytorch-fid's FID "
           "Inception with its 2015 weights)";
  head += ", " + n;
  if (comparable_with_published_fid()) return head + "; FID Inception: comparable with published FID)";
  if (n.find(":random") != std::string::npos) return head + "; random weights: NOT comparable with published FID)";
  if (n.rfind("torchvision-inception-v3:", 0) == 0)
    return head + "; torchvision's Inception: NOT comparable with published FID)";
  return head + "; unknown network: comparable with published FID only if it is pytorch-fid's FID Inception)";
}

// ---- built-in network ----------------------------------------------------------------------------

struct BuiltinExtractor::Impl {
  struct Conv {
    at::Tensor weight, bias;
    int stride;
  };
  std::vector<Conv> convs;
  int batch_size = 50;
};

BuiltinExtractor::BuiltinExtractor(int batch_size) : impl_(std::make_unique<Impl>()) {
  if (batch_size < 1)
    throw Error("built-in feature network: batch size must be >= 1, got " + std::to_string(batch_size));
  impl_->batch_size = batch_size;
  struct Spec {
    int in, out, stride;
  };
  const Spec specs[] = {{3, 32, 2}, {32, 64, 2}, {64, 128, 2}, {128, kDim, 1}};
  features_detail::SplitMix64 rng{0x6C646D2D65766131ull};  // "ldm-eva1": changing it changes identity()
  for (const auto& s : specs) {
    const int64_t fan_in = static_cast<int64_t>(s.in) * 9;
    const double bound = std::sqrt(6.0 / static_cast<double>(fan_in));  // He-uniform: keeps ReLU activations O(1)
    auto w = torch::empty({s.out, s.in, 3, 3}, torch::kFloat32);
    float* pw = w.data_ptr<float>();
    for (int64_t i = 0; i < w.numel(); ++i) pw[i] = static_cast<float>((2 * rng.uniform() - 1) * bound);
    auto b = torch::empty({s.out}, torch::kFloat32);
    float* pb = b.data_ptr<float>();
    for (int64_t i = 0; i < b.numel(); ++i) pb[i] = static_cast<float>((2 * rng.uniform() - 1) * 0.05);
    impl_->convs.push_back({w, b, s.stride});
  }
}

BuiltinExtractor::~BuiltinExtractor() = default;
int BuiltinExtractor::batch_size() const { return impl_->batch_size; }

at::Tensor BuiltinExtractor::prepare(const at::Tensor& images) const {
  return features_detail::resize_normalise(features_detail::to_unit_nchw(images, "built-in feature network"),
                                           kInputSize);
}

at::Tensor BuiltinExtractor::features_of_prepared(const at::Tensor& prepared) const {
  features_detail::check_prepared(prepared, kInputSize, "built-in feature network");
  const int64_t n = prepared.size(0);
  if (n == 0) return torch::zeros({0, kDim}, torch::kFloat32);
  torch::NoGradGuard no_grad;
  const auto x = prepared.to(torch::kCPU, torch::kFloat32);
  std::vector<at::Tensor> outs;
  for (int64_t start = 0; start < n; start += impl_->batch_size) {
    note_progress("extracting image features");
    auto h = x.narrow(0, start, std::min<int64_t>(impl_->batch_size, n - start)).contiguous();
    for (const auto& c : impl_->convs) h = torch::relu(at::conv2d(h, c.weight, c.bias, {c.stride, c.stride}, {1, 1}));
    outs.push_back(h.mean({2, 3}));
  }
  return outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
}

// ---- factory ---------------------------------------------------------------------------------------

std::unique_ptr<FeatureExtractor> make_feature_extractor(const std::string& inception_path, int batch_size,
                                                         const std::string& device) {
  if (inception_path.empty()) return std::make_unique<BuiltinExtractor>(batch_size);
  InceptionOptions options;
  options.batch_size = batch_size;
  options.device = device == "auto" ? (torch::cuda::is_available() ? "cuda" : "cpu") : device;
  return std::make_unique<InceptionExtractor>(inception_path, options);
}

}  // namespace ldm::eval
