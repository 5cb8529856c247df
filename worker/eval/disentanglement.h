// The disentanglement metric of the paper (PAPER.md, "Noise-level-dependent control weight"): how
// much the image changes when only the size condition changes. For fixed starting noise and a fixed
// semantic condition (class label or caption), generate one image per size condition s in a list
// (default {64, 128, 256, 512, 1024} [paper]): control metadata "original size" orig_h = orig_w = s,
// crop = the full original image (crop_top = crop_left = 0, crop_h = crop_w = s), no flip — what
// `ldm-worker sample --controls orig_h=s,orig_w=s,crop_h=s,crop_w=s` sets. Then the distance
// between every pair of the results (LPIPS in the paper [paper]); lower = better disentangled size
// control. Only meaningful for recipes with control conditioning (an error otherwise).
//
// Reported, each averaged over M (noise, condition) draws:
//   all_pairs   mean over all pairs {s_a, s_b}, a < b, of the sizes list;
//   high_res    mean over the pairs whose sizes are both >= high_res_min (default 512) [recon: the
//               paper reports a "high-resolution" variant whose exact definition we do not have;
//               DisentanglementOptions::high_res_min is the knob]; NaN when fewer than two sizes
//               qualify.
// The images are generated at the checkpoint's resolution (the size condition does not change the
// output size) and compared as the decoder returns them, float32 in [-1, 1] (LPIPS's input);
// `quantize` rounds them to the 8 bits a saved PNG holds first [recon: whether the paper measured
// saved files is unknown], which hides differences below half a grey level.
//
// Draw j (0 <= j < M): starting noise from derive_seed(seed, Purpose::DisentanglementNoise, j); label
// labels[j % size] (default j % classes) or caption captions[j % size] (required for text). [recon:
// the paper's draws, labels/prompts and M are unknown; M defaults to 8 here.] The draws are sampled
// in batches of `batch`, the same batches for every size (and, for stochastic samplers and noisy
// caption padding, the same generators), so two equal sizes in the list give bit-identical images
// and distance 0.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "worker/eval/generate.h"  // GuidedSampling

namespace ldm::worker {
struct SamplingModel;
}

namespace ldm::eval {

// A distance between two batches of images. `embed` maps float32 [N, 3, H, W] RGB images in [-1, 1]
// to a representation (computed once per image; identity when empty); `compare` maps the
// representations of two batches of N images to float64 [N] distances (row i against row i).
struct ImageDistance {
  std::string name;
  std::function<at::Tensor(const at::Tensor& images)> embed;
  std::function<at::Tensor(const at::Tensor& a, const at::Tensor& b)> compare;
};

// LPIPS from a TorchScript file. Contract: forward(x, y) with x, y float32 [N, 3, H, W] RGB in
// [-1, 1] returns N distances ([N], or [N, 1, 1, 1] as the lpips package's LPIPS module returns).
// Throws ldm::DataError naming the file when it does not load, and when its output has another
// number of elements or non-finite values.
ImageDistance lpips_distance(const std::string& torchscript_path);

// Mean squared difference of feature vectors: (1/D) * |f(a) - f(b)|^2. `features` gets float32
// [N, 3, H, W] images in [0, 1] (what eval::FeatureExtractor::features accepts) and returns [N, D].
ImageDistance feature_distance(std::string name, std::function<at::Tensor(const at::Tensor& images01)> features);

// Mean squared difference of the pixels in [-1, 1] ("pixel-mse"): the fallback without a network.
ImageDistance pixel_distance();

struct DisentanglementOptions {
  std::vector<int64_t> sizes = {64, 128, 256, 512, 1024};  // size conditions [paper]
  int64_t high_res_min = 512;                              // high_res uses the pairs of sizes >= this [recon]
  int64_t draws = 8;                                       // M (noise, condition) draws [recon]
  uint64_t seed = 0;
  std::vector<int64_t> labels;        // class task: cycled over the draws (default: j % classes)
  std::vector<std::string> captions;  // text task: cycled over the draws (required)
  GuidedSampling sampling;            // start from recipe_sampling(m) for the recipe's defaults
  int64_t batch = 8;                  // draws per network batch
  bool quantize = false;              // round the images to 8 bits before the distance [recon]
};

struct DisentanglementResult {
  std::string distance;        // ImageDistance::name
  std::vector<int64_t> sizes;  // as given
  int64_t draws = 0;
  double all_pairs = 0.0;  // mean over draws and all pairs
  double high_res = 0.0;   // mean over draws and the pairs of sizes >= high_res_min; NaN if none
  int64_t high_res_min = 0;
  std::vector<std::vector<double>> pair_mean;  // [S][S], symmetric, 0 on the diagonal: mean over draws
  std::vector<double> per_draw_all_pairs;      // [M]
  std::vector<double> per_draw_high_res;       // [M] (NaN when no pair qualifies)
  // [M][S]: the high-frequency energy (eval/adherence.h) of each draw's image at each size, from
  // which control_adherence() says whether the size condition still acts.
  std::vector<std::vector<double>> per_draw_energy;
};

// Throws ldm::Error when the recipe has no control conditioning, for fewer than two sizes, a size
// < 1, draws < 1, batch < 1, a text task without captions, captions for a class task, a label
// outside [0, classes].
DisentanglementResult measure_disentanglement(const worker::SamplingModel& m, const DisentanglementOptions& options,
                                              const ImageDistance& distance);

// The control metadata of size condition s: orig s x s, crop the full image, no flip.
ControlMeta size_condition(int64_t s);

}  // namespace ldm::eval
