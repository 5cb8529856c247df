#include "worker/eval/clip_score.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "datasets/images/crop.h"  // resize_image (PIL-exact bicubic), crop_region
#include "shared/core/sha256.h"
#include "shared/core/error.h"
#include "worker/torch_compat.h"

namespace ldm::eval {

// File-local helpers in a named namespace (the library is unity-built).
namespace clip_score_detail {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (std::size_t i = 0; i < s.size(); ++i) o << (i ? "," : "") << s[i];
  o << "]";
  return o.str();
}

// Python's round(x / 2.0) for an integer x >= 0: half to even.
int half_round_even(int x) {
  const int q = x / 2;
  if (x % 2 == 0) return q;
  return q % 2 == 0 ? q : q + 1;
}

struct Tower {
  std::string kind;  // "image" / "text"
  std::string path, sha, network;
  torch::jit::Module module;
  std::int64_t output_dim = -1;

  std::string what() const { return "CLIP " + kind + " encoder " + path; }
};

std::int64_t int_attr(const Tower& t, const char* name, std::int64_t fallback) {
  if (!t.module.hasattr(name)) return fallback;
  const auto v = t.module.attr(name);
  if (!v.isInt() || v.toInt() < 1)
    throw DataError(t.what() + ": attribute " + name + " is " + (v.isInt() ? std::to_string(v.toInt()) : v.tagKind()) +
                    ", expected a positive int");
  return v.toInt();
}

void load_tower(Tower& t, const std::string& kind, const std::string& path, const torch::Device& device,
                const char* contract) {
  t.kind = kind;
  t.path = path;
  std::error_code ec;
  if (path.empty()) throw Error("CLIP " + kind + " encoder: no file given");
  if (!std::filesystem::exists(path, ec)) throw DataError(t.what() + ": no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError(t.what() + ": not a regular file");
  t.sha = sha256_file_hex(path);
  try {
    t.module = torch::jit::load(path, device);
  } catch (const std::exception& e) {
    std::string msg = torch_compat::error_text(e);
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    throw DataError(t.what() + ": not a TorchScript archive that this LibTorch (" +
                    std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + ") can load (" +
                    msg + "); export it with tools/export/export_clip.py under Debian's python3-torch");
  }
  t.module.eval();
  if (!t.module.find_method("forward"))
    throw DataError(t.what() + ": the TorchScript module has no forward method (expected " + contract + ")");
  t.output_dim = int_attr(t, "output_dim", -1);
  if (t.module.hasattr("network")) {
    const auto v = t.module.attr("network");
    if (v.isString()) t.network = v.toStringRef();
  }
}

// Runs `forward` on `input` in chunks of batch_size rows; checks [rows, D] and finiteness.
at::Tensor run_tower(const Tower& t, const at::Tensor& input, int batch_size, const torch::Device& device,
                     std::int64_t expected_dim) {
  torch::NoGradGuard no_grad;
  const std::int64_t n = input.size(0);
  std::vector<at::Tensor> outs;
  std::int64_t dim = expected_dim;
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t rows = std::min<std::int64_t>(batch_size, n - start);
    const auto chunk = input.narrow(0, start, rows).to(device).contiguous();
    c10::IValue result;
    try {
      result = t.module.get_method("forward")({chunk});
    } catch (const std::exception& e) {
      throw DataError(t.what() + ": forward() failed on a batch of shape " + shape_str(chunk.sizes()) + ": " +
                      torch_compat::error_text(e));
    }
    if (!result.isTensor())
      throw DataError(t.what() + ": forward() returned a " + result.tagKind() + ", expected a tensor [n,D]");
    auto y = result.toTensor();
    if (y.dim() != 2 || y.size(0) != rows || (dim > 0 && y.size(1) != dim) || y.size(1) < 1)
      throw DataError(t.what() + ": forward() returned shape " + shape_str(y.sizes()) + ", expected [" +
                      std::to_string(rows) + ", " + (dim > 0 ? std::to_string(dim) : std::string("D")) + "]");
    dim = y.size(1);
    y = y.to(torch::kCPU, torch::kFloat32);
    if (!torch::isfinite(y).all().item<bool>())
      throw DataError(t.what() + ": forward() returned NaN or infinite features");
    outs.push_back(y);
  }
  if (outs.empty()) return torch::zeros({0, std::max<std::int64_t>(dim, 0)}, torch::kFloat32);
  return outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
}

}  // namespace clip_score_detail

namespace csd = clip_score_detail;

// ---- preprocessing ---------------------------------------------------------------------------------

data::RgbImage clip_resize_center_crop(const data::RgbImage& image, int size) {
  if (size < 1) throw Error("CLIP preprocessing: the size must be >= 1, got " + std::to_string(size));
  if (image.height < 1 || image.width < 1 ||
      image.pixels.size() != static_cast<std::size_t>(image.height) * static_cast<std::size_t>(image.width) * 3)
    throw Error("CLIP preprocessing: image of " + std::to_string(image.height) + "x" + std::to_string(image.width) +
                " with " + std::to_string(image.pixels.size()) + " bytes is not a valid RGB image");
  const int w = image.width, h = image.height;
  const int shorter = std::min(w, h), longer = std::max(w, h);
  // torchvision's _compute_resized_output_size: int(size * long / short) (Python's correctly rounded
  // int / int, which double division of these exact integers reproduces).
  const int new_long =
      static_cast<int>(static_cast<double>(static_cast<std::int64_t>(size) * longer) / static_cast<double>(shorter));
  const int new_w = w <= h ? size : new_long;
  const int new_h = w <= h ? new_long : size;
  const data::RgbImage resized = data::resize_image(image, new_w, new_h, data::ResampleFilter::Bicubic);
  const int top = csd::half_round_even(new_h - size);
  const int left = csd::half_round_even(new_w - size);
  return data::crop_region(resized, top, left, size, size);
}

at::Tensor clip_normalize(const data::RgbImage& square) {
  if (square.height < 1 || square.width < 1 ||
      square.pixels.size() != static_cast<std::size_t>(square.height) * static_cast<std::size_t>(square.width) * 3)
    throw Error("CLIP preprocessing: not a valid RGB image");
  auto t = torch::empty({square.height, square.width, 3}, torch::kByte);
  std::memcpy(t.data_ptr<std::uint8_t>(), square.pixels.data(), square.pixels.size());
  // ToTensor: img.to(float32).div(255); Normalize: sub_(mean).div_(std) with float32 mean/std.
  auto x = t.permute({2, 0, 1}).to(torch::kFloat32).div(255);
  const auto mean = torch::tensor(std::vector<double>(kClipMean, kClipMean + 3), torch::kFloat64).to(torch::kFloat32);
  const auto stdv = torch::tensor(std::vector<double>(kClipStd, kClipStd + 3), torch::kFloat64).to(torch::kFloat32);
  return x.sub(mean.view({3, 1, 1})).div(stdv.view({3, 1, 1})).contiguous();
}

at::Tensor clip_preprocess(const data::RgbImage& image, int size) {
  return clip_normalize(clip_resize_center_crop(image, size));
}

// ---- the score -------------------------------------------------------------------------------------

at::Tensor clip_cosines(const at::Tensor& image_features, const at::Tensor& text_features) {
  if (!image_features.defined() || !text_features.defined() || image_features.dim() != 2 || text_features.dim() != 2 ||
      image_features.sizes() != text_features.sizes())
    throw Error("CLIP score: image and text features must both be [N, D] with the same N and D, got " +
                (image_features.defined() ? csd::shape_str(image_features.sizes()) : std::string("undefined")) +
                " and " + (text_features.defined() ? csd::shape_str(text_features.sizes()) : std::string("undefined")));
  if (!image_features.is_floating_point() || !text_features.is_floating_point())
    throw Error("CLIP score: features must be floating point");
  const auto a = image_features.to(torch::kCPU, torch::kFloat64);
  const auto b = text_features.to(torch::kCPU, torch::kFloat64);
  if (!torch::isfinite(a).all().item<bool>() || !torch::isfinite(b).all().item<bool>())
    throw Error("CLIP score: NaN or infinite features");
  const auto na = a.norm(2, 1), nb = b.norm(2, 1);
  if (a.size(0) > 0 && (na.min().item<double>() == 0 || nb.min().item<double>() == 0))
    throw Error("CLIP score: a feature vector is zero (its cosine is undefined)");
  return (a / na.unsqueeze(1) * (b / nb.unsqueeze(1))).sum(1);
}

ClipScoreResult clip_score_from_cosines(const at::Tensor& cosines, double weight) {
  if (!(weight > 0) || !std::isfinite(weight))
    throw Error("CLIP score: the weight must be a positive number, got " + std::to_string(weight));
  if (!cosines.defined() || cosines.dim() != 1 || cosines.size(0) < 1)
    throw Error("CLIP score: needs at least one image-caption pair");
  ClipScoreResult r;
  r.weight = weight;
  r.cosine = cosines.to(torch::kCPU, torch::kFloat64).contiguous();
  r.count = r.cosine.size(0);
  r.per_pair = (r.cosine * weight).clamp_min(0.0);
  r.score = r.per_pair.mean().item<double>();
  r.mean_cosine = r.cosine.mean().item<double>();
  r.torchmetrics_score = std::max(weight * r.mean_cosine, 0.0);
  return r;
}

ClipScoreResult clip_score_from_features(const at::Tensor& image_features, const at::Tensor& text_features,
                                         double weight) {
  return clip_score_from_cosines(clip_cosines(image_features, text_features), weight);
}

// ---- the model ---------------------------------------------------------------------------------------

struct ClipModel::Impl {
  ClipModelOptions options;
  torch::Device device{torch::kCPU};
  csd::Tower image, text;
  bool has_text = false;
  std::unique_ptr<ClipTokenizer> tokenizer;
  int resolution = kClipImageSize;
  int context = 0;
  std::int64_t declared_dim = -1;

  void init_common(const std::string& image_path, const ClipModelOptions& o) {
    options = o;
    if (o.batch_size < 1) throw Error("CLIP: batch size must be >= 1, got " + std::to_string(o.batch_size));
    try {
      device = torch::Device(o.device);
    } catch (const std::exception& e) {
      throw Error("CLIP: bad device '" + o.device + "': " + torch_compat::error_text(e));
    }
    csd::load_tower(image, "image", image_path, device, "forward(x: float32 [N,3,S,S], CLIP-normalised) -> [N,D]");
    const std::int64_t res = csd::int_attr(image, "input_resolution", kClipImageSize);
    if (res > 4096) throw DataError(image.what() + ": input_resolution " + std::to_string(res) + " is implausible");
    resolution = static_cast<int>(res);
    declared_dim = image.output_dim;
  }
};

ClipModel::ClipModel(const std::string& image_encoder_path, const std::string& text_encoder_path,
                     const std::string& bpe_merges_path, ClipModelOptions options)
    : impl_(std::make_unique<Impl>()) {
  auto& d = *impl_;
  if (text_encoder_path.empty() || bpe_merges_path.empty())
    throw Error("CLIP: a text encoder needs both its TorchScript file and the BPE merges file");
  d.init_common(image_encoder_path, options);
  csd::load_tower(d.text, "text", text_encoder_path, d.device, "forward(ids: int64 [N,L]) -> [N,D]");
  d.has_text = true;
  const std::int64_t ctx = csd::int_attr(d.text, "context_length", ClipTokenizer::kContextLength);
  if (ctx < 2 || ctx > 100000)
    throw DataError(d.text.what() + ": context_length " + std::to_string(ctx) + " is implausible");
  d.context = static_cast<int>(ctx);
  if (d.image.output_dim > 0 && d.text.output_dim > 0 && d.image.output_dim != d.text.output_dim)
    throw DataError("CLIP: the image encoder " + image_encoder_path + " has output_dim " +
                    std::to_string(d.image.output_dim) + " but the text encoder " + text_encoder_path + " has " +
                    std::to_string(d.text.output_dim) + ": they are not the two towers of one model");
  if (d.declared_dim < 0) d.declared_dim = d.text.output_dim;
  d.tokenizer = std::make_unique<ClipTokenizer>(bpe_merges_path);
  const std::int64_t vocab = csd::int_attr(d.text, "vocab_size", -1);
  if (vocab > 0 && d.tokenizer->vocab_size() > vocab)
    throw DataError("CLIP: the BPE merges file " + bpe_merges_path + " gives ids up to " +
                    std::to_string(d.tokenizer->vocab_size() - 1) + " but the text encoder " + text_encoder_path +
                    " has vocab_size " + std::to_string(vocab) + ": not this model's tokenizer");
}

ClipModel::ClipModel(const std::string& image_encoder_path, ClipModelOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->init_common(image_encoder_path, options);
}

ClipModel::~ClipModel() = default;

bool ClipModel::has_text_encoder() const { return impl_->has_text; }
int ClipModel::input_resolution() const { return impl_->resolution; }
int ClipModel::context_length() const { return impl_->context; }
int ClipModel::declared_dim() const { return static_cast<int>(impl_->declared_dim); }

at::Tensor ClipModel::prepare(const std::vector<data::RgbImage>& images) const {
  const int s = impl_->resolution;
  if (images.empty()) return torch::zeros({0, 3, s, s}, torch::kFloat32);
  std::vector<at::Tensor> xs;
  xs.reserve(images.size());
  for (const auto& im : images) xs.push_back(clip_preprocess(im, s));
  return torch::stack(xs);
}

at::Tensor ClipModel::image_features_of_prepared(const at::Tensor& prepared) const {
  const auto& d = *impl_;
  const int s = d.resolution;
  if (!prepared.defined() || prepared.dim() != 4 || prepared.size(1) != 3 || prepared.size(2) != s ||
      prepared.size(3) != s || !prepared.is_floating_point())
    throw Error(d.image.what() + ": prepared images must be float [N,3," + std::to_string(s) + "," + std::to_string(s) +
                "], got " + (prepared.defined() ? csd::shape_str(prepared.sizes()) : std::string("undefined")));
  return csd::run_tower(d.image, prepared.to(torch::kFloat32), d.options.batch_size, d.device, d.declared_dim);
}

at::Tensor ClipModel::image_features(const std::vector<data::RgbImage>& images) const {
  return image_features_of_prepared(prepare(images));
}

const ClipTokenizer& ClipModel::tokenizer() const {
  if (!impl_->has_text) throw Error("CLIP: no text encoder was loaded (the captions must come as features)");
  return *impl_->tokenizer;
}

at::Tensor ClipModel::tokenize(const std::vector<std::string>& captions) const {
  const auto& tok = tokenizer();
  const int ctx = impl_->context;
  const auto ids = tok.tokenize_batch(captions, ctx, impl_->options.truncate);
  auto t = torch::empty({static_cast<std::int64_t>(captions.size()), ctx}, torch::kInt64);
  if (!ids.empty()) std::memcpy(t.data_ptr<std::int64_t>(), ids.data(), ids.size() * sizeof(std::int64_t));
  return t;
}

at::Tensor ClipModel::text_features_of_ids(const at::Tensor& ids) const {
  tokenizer();  // throws without a text tower
  const auto& d = *impl_;
  if (!ids.defined() || ids.dim() != 2 || ids.size(1) != d.context || ids.scalar_type() != torch::kInt64)
    throw Error(d.text.what() + ": token ids must be int64 [N," + std::to_string(d.context) + "], got " +
                (ids.defined() ? csd::shape_str(ids.sizes()) : std::string("undefined")));
  return csd::run_tower(d.text, ids, d.options.batch_size, d.device, d.declared_dim);
}

at::Tensor ClipModel::text_features(const std::vector<std::string>& captions) const {
  return text_features_of_ids(tokenize(captions));
}

ClipScoreResult ClipModel::score(const std::vector<data::RgbImage>& images, const std::vector<std::string>& captions,
                                 double weight) const {
  if (images.size() != captions.size())
    throw Error("CLIP score: " + std::to_string(images.size()) + " images but " + std::to_string(captions.size()) +
                " captions");
  return clip_score_from_features(image_features(images), text_features(captions), weight);
}

ClipScoreResult ClipModel::score_with_text_features(const std::vector<data::RgbImage>& images,
                                                    const at::Tensor& text_features, double weight) const {
  if (!text_features.defined() || text_features.dim() != 2 ||
      text_features.size(0) != static_cast<std::int64_t>(images.size()))
    throw Error("CLIP score: " + std::to_string(images.size()) + " images but text features of shape " +
                (text_features.defined() ? csd::shape_str(text_features.sizes()) : std::string("undefined")));
  return clip_score_from_features(image_features(images), text_features, weight);
}

std::string ClipModel::image_identity() const { return "clip-image:" + impl_->image.sha.substr(0, 16); }

std::string ClipModel::text_identity() const {
  if (!impl_->has_text) return "precomputed";
  return "clip-text:" + impl_->text.sha.substr(0, 16) + ":bpe=" + impl_->tokenizer->sha256().substr(0, 16);
}

std::string ClipModel::identity() const {
  const auto& d = *impl_;
  std::string id = "clip:image=" + d.image.sha.substr(0, 16);
  if (!d.has_text) return id + ":text=precomputed";
  return id + ":text=" + d.text.sha.substr(0, 16) + ":bpe=" + d.tokenizer->sha256().substr(0, 16);
}

const std::string& ClipModel::image_network() const { return impl_->image.network; }
const std::string& ClipModel::text_network() const { return impl_->text.network; }

std::string ClipModel::label() const {
  const auto& d = *impl_;
  std::ostringstream o;
  o << "CLIP image " << d.image.path << " (" << (d.image.network.empty() ? "network not recorded" : d.image.network)
    << ", sha256 " << d.image.sha.substr(0, 16) << ", " << d.resolution << "px)";
  if (d.has_text) {
    o << ", text " << d.text.path << " (" << (d.text.network.empty() ? "network not recorded" : d.text.network)
      << ", sha256 " << d.text.sha.substr(0, 16) << ", context " << d.context << "), BPE " << d.tokenizer->path()
      << " (sha256 " << d.tokenizer->sha256().substr(0, 16) << ", " << d.tokenizer->vocab_size() << " ids)";
  } else {
    o << ", text features precomputed";
  }
  if (d.declared_dim > 0) o << ", D = " << d.declared_dim;
  return o.str();
}

}  // namespace ldm::eval
