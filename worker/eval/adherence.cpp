#include "worker/eval/adherence.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "datasets/tensor/loader.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/log.h"
#include "shared/core/safe_file.h"
#include "worker/eval/eval_stage.h"  // collection_content_hash
#include "worker/io/safetensors.h"

namespace ldm::eval {

// Named (not anonymous) so a unity build can merge this file with others.
namespace adherence_detail {

// Bump when the network, its training or the cached file's layout changes: old caches are not reused.
constexpr int kClassifierVersion = 1;
constexpr int kColours = 10, kShapes = 8;

// u8 HWC images -> float32 [N, 3, R, R] in [-1, 1], resized (area/bilinear) to R when they differ.
at::Tensor images_tensor(const std::vector<data::RgbImage>& images, int64_t resolution) {
  std::vector<at::Tensor> out;
  for (const data::RgbImage& im : images) {
    auto t = torch::from_blob(const_cast<uint8_t*>(im.pixels.data()), {im.height, im.width, 3}, torch::kUInt8)
                 .permute({2, 0, 1})
                 .to(torch::kFloat32)
                 .div(127.5)
                 .sub(1.0)
                 .unsqueeze(0);  // [1, 3, H, W]
    if (im.height != resolution || im.width != resolution)
      t = torch::nn::functional::interpolate(t, torch::nn::functional::InterpolateFuncOptions()
                                                    .size(std::vector<int64_t>{resolution, resolution})
                                                    .mode(torch::kBilinear)
                                                    .align_corners(false));
    out.push_back(t);
  }
  return torch::cat(out);
}

torch::nn::Sequential make_network(int64_t width) {
  namespace nn = torch::nn;
  const int64_t half = std::max<int64_t>(1, width / 2);
  // [N, 3, R, R] -> [N, 21] logits: 10 colours, 8 shapes, 3 sides. The 4 x 4 pooled map keeps
  // where the object is (side), which a global average would lose.
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, half, 3).padding(1)), nn::SiLU(),
                        nn::Conv2d(nn::Conv2dOptions(half, width, 3).stride(2).padding(1)), nn::SiLU(),
                        nn::Conv2d(nn::Conv2dOptions(width, width, 3).stride(2).padding(1)), nn::SiLU(),
                        nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(4)), nn::Flatten(),
                        nn::Linear(width * 16, kColours + kShapes + data::kSyntheticSides));
}

// PyTorch's default (Kaiming-uniform with a = sqrt(5): bound 1 / sqrt(fan_in)) from a seeded generator,
// not LibTorch's global one.
void initialise(torch::nn::Sequential& net, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  for (auto& m : net->modules(false)) {
    std::vector<at::Tensor> params = m->parameters(false);
    if (params.empty()) continue;
    const int64_t fan_in = params[0].dim() > 1 ? params[0][0].numel() : params[0].numel();
    const double bound = 1.0 / std::sqrt(double(fan_in));
    for (auto& p : params) p.uniform_(-bound, bound, g);
  }
}

struct Targets {
  at::Tensor colour, shape, side;  // int64 [N], -1 where the caption does not say
};

Targets targets_of(const std::vector<data::SyntheticAttributes>& a) {
  std::vector<int64_t> c, s, d;
  for (const auto& x : a) {
    c.push_back(x.colour);
    s.push_back(x.shape);
    d.push_back(x.side);
  }
  auto t = [](std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64); };
  return {t(c), t(s), t(d)};
}

// Cross-entropy over the rows whose target is known (0 when none is).
at::Tensor head_loss(const at::Tensor& logits, const at::Tensor& target) {
  const auto known = target.ge(0);
  if (!known.any().item<bool>()) return torch::zeros({}, logits.options());
  return torch::nn::functional::cross_entropy(logits.index({known}), target.index({known}));
}

std::vector<data::SyntheticAttributes> decode(const at::Tensor& logits) {
  const auto colour = logits.slice(1, 0, kColours).argmax(1);
  const auto shape = logits.slice(1, kColours, kColours + kShapes).argmax(1);
  const auto side = logits.slice(1, kColours + kShapes).argmax(1);
  std::vector<data::SyntheticAttributes> out(static_cast<std::size_t>(logits.size(0)));
  for (int64_t i = 0; i < logits.size(0); ++i) {
    out[i].colour = static_cast<int>(colour[i].item<int64_t>());
    out[i].shape = static_cast<int>(shape[i].item<int64_t>());
    out[i].side = static_cast<int>(side[i].item<int64_t>());
  }
  return out;
}

// Adds one (predicted, stated) comparison to the per-attribute tallies; returns (matched, stated).
std::pair<int, int> tally(AttributeAccuracy& acc, const data::SyntheticAttributes& got,
                          const data::SyntheticAttributes& want) {
  int matched = 0, stated = 0;
  const auto one = [&](int g, int w, double& right, int64_t& n) {
    if (w < 0) return;
    ++n;
    ++stated;
    if (g == w) {
      right += 1;
      ++matched;
    }
  };
  one(got.colour, want.colour, acc.colour, acc.colour_n);
  one(got.shape, want.shape, acc.shape, acc.shape_n);
  one(got.side, want.side, acc.side, acc.side_n);
  return {matched, stated};
}

void normalise(AttributeAccuracy& acc) {
  if (acc.colour_n) acc.colour /= double(acc.colour_n);
  if (acc.shape_n) acc.shape /= double(acc.shape_n);
  if (acc.side_n) acc.side /= double(acc.side_n);
}

}  // namespace adherence_detail

at::Tensor high_frequency_energy(const at::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) < 3 || images.size(3) < 3)
    throw Error("high-frequency energy: expected [N, 3, H, W] images with H, W >= 3");
  const auto x = images.to(torch::kFloat64).add(1.0).div(2.0).clamp(0.0, 1.0);
  const auto lum = x.select(1, 0) * 0.299 + x.select(1, 1) * 0.587 + x.select(1, 2) * 0.114;  // [N, H, W]
  using torch::indexing::Slice;
  const auto c = lum.index({Slice(), Slice(1, -1), Slice(1, -1)});
  const auto lap = lum.index({Slice(), Slice(0, -2), Slice(1, -1)}) + lum.index({Slice(), Slice(2), Slice(1, -1)}) +
                   lum.index({Slice(), Slice(1, -1), Slice(0, -2)}) + lum.index({Slice(), Slice(1, -1), Slice(2)}) -
                   4 * c;  // [N, H-2, W-2]
  return lap.pow(2).flatten(1).mean(1);
}

double high_frequency_energy(const data::RgbImage& image) {
  return high_frequency_energy(adherence_detail::images_tensor({image}, image.height))[0].item<double>();
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw Error("pearson: x and y differ in length");
  if (x.size() < 2) return 0.0;
  const double n = double(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n, my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx <= 0 || syy <= 0 ? 0.0 : sxy / std::sqrt(sxx * syy);
}

double slope(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw Error("slope: x and y differ in length");
  if (x.empty()) return 0.0;
  const double n = double(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n, my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  return sxx <= 0 ? 0.0 : sxy / sxx;
}

ControlAdherence control_adherence(const std::vector<double>& data_curve,
                                   const std::vector<std::vector<double>>& energy) {
  ControlAdherence r;
  for (const auto& e : energy) {
    if (e.size() != data_curve.size())
      throw Error("control adherence: a draw has energies for " + std::to_string(e.size()) + " sizes, the data curve " +
                  std::to_string(data_curve.size()));
    std::vector<double> log_e(e.size());
    std::transform(e.begin(), e.end(), log_e.begin(), [](double v) { return std::log(std::max(v, 1e-12)); });
    r.correlation += pearson(log_e, data_curve);
    r.gain += slope(data_curve, log_e);
    ++r.draws;
  }
  if (r.draws > 0) {
    r.correlation /= double(r.draws);
    r.gain /= double(r.draws);
  }
  return r;
}

std::vector<double> data_sharpness_curve(const std::string& dir, const std::vector<int64_t>& sizes, int64_t max_records,
                                         int64_t neighbours) {
  const data::ShardDataset ds(dir);
  if (ds.header().kind != data::PayloadKind::ImageU8)
    throw DataError(dir + ": holds latents; the size/sharpness relation of the data needs image shards");
  const int64_t n = static_cast<int64_t>(ds.size()), take = std::min(n, std::max<int64_t>(1, max_records));
  std::vector<std::pair<double, double>> records;  // (log crop side, log energy)
  for (int64_t k = 0; k < take; ++k) {
    const data::Record r = ds.read(static_cast<std::size_t>(k * n / take));
    if (r.control.crop_h < 1) continue;
    const data::RgbImage im{static_cast<int>(r.shape.at(0)), static_cast<int>(r.shape.at(1)), r.payload};
    records.emplace_back(std::log(double(r.control.crop_h)), std::log(std::max(high_frequency_energy(im), 1e-12)));
  }
  if (records.empty()) throw DataError(dir + ": no record has a crop box to relate size and sharpness");
  std::vector<double> curve;
  for (int64_t s : sizes) {
    const double target = std::log(double(std::max<int64_t>(1, s)));
    std::vector<std::pair<double, double>> near = records;  // nearest crop sides first
    const std::size_t k =
        std::min<std::size_t>(near.size(), static_cast<std::size_t>(std::max<int64_t>(1, neighbours)));
    std::partial_sort(near.begin(), near.begin() + static_cast<long>(k), near.end(), [&](const auto& a, const auto& b) {
      return std::fabs(a.first - target) < std::fabs(b.first - target);
    });
    double sum = 0;
    for (std::size_t i = 0; i < k; ++i) sum += near[i].second;
    curve.push_back(sum / double(k));
  }
  return curve;
}

double AttributeAccuracy::mean() const {
  double sum = 0;
  int k = 0;
  if (colour_n) sum += colour, ++k;
  if (shape_n) sum += shape, ++k;
  if (side_n) sum += side, ++k;
  return k ? sum / k : 0.0;
}

struct CaptionClassifier::Impl {
  torch::nn::Sequential net{nullptr};
  AttributeAccuracy accuracy;
  int64_t resolution = 0;

  // The weights, held-out accuracy and resolution of a cached classifier.
  void load(const std::string& path) {
    std::map<std::string, std::string> meta;
    const worker::TensorMap tensors = worker::safetensors_decode(read_file(path), path, &meta);
    torch::NoGradGuard no_grad;
    for (auto& p : net->named_parameters()) {
      const auto it = tensors.find(p.key());
      if (it == tensors.end() || !it->second.sizes().equals(p.value().sizes()))
        throw DataError(path + ": no tensor '" + p.key() + "' of the classifier's shape; remove the file");
      p.value().copy_(it->second);
    }
    const nlohmann::json m = nlohmann::json::parse(meta.at("accuracy"));
    accuracy = {m.at("colour"), m.at("shape"), m.at("side"), m.at("colour_n"), m.at("shape_n"), m.at("side_n")};
    resolution = std::stoll(meta.at("resolution"));
  }

  // Written whole (temporary file, then rename), as the FID statistics cache is.
  void save(const std::string& path, const std::map<std::string, std::string>& about) const {
    worker::TensorMap tensors;
    for (const auto& p : net->named_parameters()) tensors[p.key()] = p.value().detach();
    const AttributeAccuracy& a = accuracy;
    const nlohmann::json acc = {{"colour", a.colour},     {"shape", a.shape},     {"side", a.side},
                                {"colour_n", a.colour_n}, {"shape_n", a.shape_n}, {"side_n", a.side_n}};
    std::map<std::string, std::string> meta = about;
    meta["accuracy"] = acc.dump();
    meta["resolution"] = std::to_string(resolution);
    make_dirs(std::filesystem::path(path).parent_path().string());
    const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    write_file_atomic(tmp, worker::safetensors_encode(tensors, meta));
    std::rename(tmp.c_str(), path.c_str());
  }

  // Adam on the rows `train` of (x, y), in batches drawn from a seeded permutation per epoch.
  void fit(const at::Tensor& x, const adherence_detail::Targets& y, const at::Tensor& train,
           const CaptionClassifierOptions& o) {
    using namespace adherence_detail;
    initialise(net, o.seed);
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(o.lr));
    auto g = at::detail::createCPUGenerator(o.seed + 1);
    net->train();
    for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
      const auto order = train.index({torch::randperm(train.size(0), g)});
      for (int64_t s = 0; s < order.size(0); s += o.batch) {
        const auto rows = order.slice(0, s, std::min(order.size(0), s + o.batch));
        const auto logits = net->forward(x.index({rows}));
        const auto loss = head_loss(logits.slice(1, 0, kColours), y.colour.index({rows})) +
                          head_loss(logits.slice(1, kColours, kColours + kShapes), y.shape.index({rows})) +
                          head_loss(logits.slice(1, kColours + kShapes), y.side.index({rows}));
        opt.zero_grad();
        loss.backward();
        opt.step();
      }
    }
  }

  std::vector<data::SyntheticAttributes> predict(const at::Tensor& x) {
    torch::NoGradGuard no_grad;
    net->eval();
    std::vector<data::SyntheticAttributes> out;
    for (int64_t s = 0; s < x.size(0); s += 256) {
      auto part = adherence_detail::decode(net->forward(x.slice(0, s, std::min(x.size(0), s + 256))));
      out.insert(out.end(), part.begin(), part.end());
    }
    return out;
  }
};

CaptionClassifier CaptionClassifier::train_or_load(const std::string& dir, const CaptionClassifierOptions& o,
                                                   const std::string& cache_dir, bool* cached) {
  using namespace adherence_detail;
  if (cached) *cached = false;
  const data::ShardDataset ds(dir);
  if (ds.header().kind != data::PayloadKind::ImageU8)
    throw DataError(dir + ": holds latents; the caption classifier trains on image shards");
  CaptionClassifier c;
  c.impl_ = std::make_shared<Impl>();
  Impl& impl = *c.impl_;
  impl.net = make_network(o.width);
  const std::string options = "v" + std::to_string(kClassifierVersion) + " epochs=" + std::to_string(o.epochs) +
                              " batch=" + std::to_string(o.batch) + " lr=" + std::to_string(o.lr) +
                              " records=" + std::to_string(o.max_records) + " holdout=" + std::to_string(o.holdout) +
                              " width=" + std::to_string(o.width) + " seed=" + std::to_string(o.seed);
  const std::string path = cache_dir.empty() ? std::string()
                                             : cache_dir + "/caption-classifier-" + collection_content_hash(dir) + "-" +
                                                   hex64(fnv1a64(options)) + ".safetensors";
  if (!path.empty() && path_exists(path)) {
    impl.load(path);
    if (cached) *cached = true;
    log::info("caption classifier for " + dir + ": cached in " + path);
    return c;
  }

  // Records evenly spaced over the dataset, those of the first record's size whose captions say something.
  const int64_t n = static_cast<int64_t>(ds.size()), take = std::min(n, std::max<int64_t>(1, o.max_records));
  std::vector<data::RgbImage> images;
  std::vector<data::SyntheticAttributes> attributes;
  for (int64_t k = 0; k < take; ++k) {
    const data::Record r = ds.read(static_cast<std::size_t>(k * n / take));
    const auto a = data::parse_synthetic_caption(r.caption);
    if (a.colour < 0 && a.shape < 0 && a.side < 0) continue;
    data::RgbImage im{static_cast<int>(r.shape.at(0)), static_cast<int>(r.shape.at(1)), r.payload};
    if (impl.resolution == 0) impl.resolution = im.height;
    if (im.height != impl.resolution || im.width != impl.resolution) continue;
    images.push_back(std::move(im));
    attributes.push_back(a);
  }
  const int64_t total = static_cast<int64_t>(images.size());
  if (total < 16)
    throw DataError(dir + ": " + std::to_string(total) +
                    " records with captions naming a colour, a shape or a side (the caption classifier needs 16)");
  const int64_t held = std::max<int64_t>(1, static_cast<int64_t>(std::lround(o.holdout * double(total))));
  // Record i is held out where floor(i * held / total) steps up: evenly spread, so both parts span
  // the whole dataset.
  std::vector<int64_t> train_idx, held_idx;
  for (int64_t i = 0; i < total; ++i) {
    const bool held_out = (i * held) / total != ((i + 1) * held) / total;
    (held_out ? held_idx : train_idx).push_back(i);
  }
  const auto x = images_tensor(images, impl.resolution);
  const Targets y = targets_of(attributes);
  const auto train_rows = torch::tensor(train_idx, torch::kInt64), held_rows = torch::tensor(held_idx, torch::kInt64);

  log::info("caption classifier: training on " + std::to_string(train_idx.size()) + " records of " + dir + " (" +
            std::to_string(o.epochs) + " epochs), " + std::to_string(held_idx.size()) + " held out");
  impl.fit(x, y, train_rows, o);
  const auto predicted = impl.predict(x.index({held_rows}));
  for (std::size_t i = 0; i < held_idx.size(); ++i)
    tally(impl.accuracy, predicted[i], attributes[static_cast<std::size_t>(held_idx[i])]);
  normalise(impl.accuracy);
  log::info("caption classifier: held-out accuracy colour " + std::to_string(impl.accuracy.colour) + ", shape " +
            std::to_string(impl.accuracy.shape) + ", side " + std::to_string(impl.accuracy.side));
  if (!path.empty()) impl.save(path, {{"dataset", dir}, {"options", options}});
  return c;
}

std::vector<data::SyntheticAttributes> CaptionClassifier::predict(const std::vector<data::RgbImage>& images) const {
  if (images.empty()) return {};
  return impl_->predict(adherence_detail::images_tensor(images, impl_->resolution));
}

const AttributeAccuracy& CaptionClassifier::holdout_accuracy() const { return impl_->accuracy; }
int64_t CaptionClassifier::resolution() const { return impl_->resolution; }

CaptionAdherence caption_adherence(const CaptionClassifier& classifier, const std::vector<data::RgbImage>& images,
                                   const std::vector<std::string>& captions) {
  if (captions.empty()) throw Error("caption adherence: no captions");
  CaptionAdherence r;
  const auto predicted = classifier.predict(images);
  double score = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto want = data::parse_synthetic_caption(captions[i % captions.size()]);
    const auto [matched, stated] = adherence_detail::tally(r.attributes, predicted[i], want);
    if (stated == 0) continue;
    score += double(matched) / stated;
    ++r.samples;
  }
  adherence_detail::normalise(r.attributes);
  r.score = r.samples ? score / double(r.samples) : 0.0;
  return r;
}

}  // namespace ldm::eval
