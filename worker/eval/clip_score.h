// CLIP score of image-caption pairs with user-supplied CLIP towers exported to TorchScript
// (tools/export/export_clip.py writes them from OpenAI CLIP / open_clip / Hugging Face weights).
//
// Definition (Hessel et al. 2021, "CLIPScore"; the w = 100 scale of torchmetrics' CLIPScore, which
// text-to-image papers report):
//   score(image, caption) = max(w * cos(E_image, E_caption), 0),   w = 100 by default,
//   CLIP score of a set   = the mean of the per-pair scores.
// E are the raw projected features the towers return (normalised here, in float64). Hessel et al.
// use w = 2.5 for caption evaluation: pass weight = 2.5 for their numbers. torchmetrics clamps the
// *mean* instead (max(w * mean cos, 0)); both agree whenever no pair has a negative cosine, which is
// the normal case for CLIP, and ClipScoreResult reports both.
//
// Images: CLIP's own preprocessing (clip.load's _transform), from 8-bit RGB:
//   1. torchvision Resize(S, BICUBIC) on a PIL image: the shorter side becomes S, the longer
//      int(S * long / short); PIL's bicubic resampling (datasets/images/crop.h resize_image, PIL-exact);
//   2. CenterCrop(S): top = round((h - S) / 2), left = round((w - S) / 2) with Python's round
//      (half to even);
//   3. ToTensor (float32 x / 255), Normalize with CLIP's mean (0.48145466, 0.4578275, 0.40821073)
//      and std (0.26862954, 0.26130258, 0.27577711), in float32.
// S is the image module's input_resolution attribute (224 when absent; 336 for ViT-L/14@336px).
// open_clip models trained with other mean/std (none of the OpenAI-style ViTs) are not supported.
// Captions: ClipTokenizer (worker/eval/clip_tokenizer.h), context length from the text module's
// context_length attribute (77 when absent), truncated with EOT kept last.
//
// TorchScript contracts (both modules in eval mode, float32; see tools/export/README.md):
//   image: forward(x: float32 [N,3,S,S], normalised as above) -> float32 [N,D]
//          optional attributes input_resolution (int), output_dim (int), network (str)
//   text:  forward(ids: int64 [N,L]: SOT, BPE ids, EOT, zero padding) -> float32 [N,D]
//          (CLIP: the final-norm features at the EOT position, i.e. argmax(ids), times
//          text_projection)
//          optional attributes context_length (int, L), vocab_size (int), output_dim (int), network (str)
// Instead of the text tower, precomputed caption features [N,D] can be given
// (score_with_text_features, ldm-eval clip-score --text-features F.npy).
//
// identity(): "clip:image=<16 hex of the image file's SHA-256>:text=<16 hex of the text file's>:
// bpe=<16 hex of the merges file's>" or, without a text tower, "clip:image=<16 hex>:text=precomputed".
//
// Errors: ldm::DataError naming the file for missing files, files this LibTorch cannot load, a
// missing forward(), attribute values that do not fit together (output_dim of the towers, a
// tokenizer vocabulary larger than the text module's vocab_size), a module that fails or returns
// another shape or non-finite values; ldm::Error for bad arguments (mismatched counts or widths,
// zero-norm features, an empty image).
// Thread-safety: all const members may be called concurrently.
#pragma once

#include "shared/core/cli.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/images/image_io.h"  // RgbImage
#include "worker/eval/clip_tokenizer.h"

namespace ldm::eval {

constexpr double kClipScoreWeight = 100.0;  // w of torchmetrics / text-to-image papers
constexpr int kClipImageSize = 224;
constexpr double kClipMean[3] = {0.48145466, 0.4578275, 0.40821073};
constexpr double kClipStd[3] = {0.26862954, 0.26130258, 0.27577711};

// Steps 1-2: bicubic resize of the shorter side to `size`, then the central size x size window.
data::RgbImage clip_resize_center_crop(const data::RgbImage& image, int size = kClipImageSize);
// Step 3 on a square image: float32 [3, size, size].
at::Tensor clip_normalize(const data::RgbImage& square);
// All three: float32 [3, size, size]. Throws ldm::Error for an empty image or size < 1.
at::Tensor clip_preprocess(const data::RgbImage& image, int size = kClipImageSize);

struct ClipScoreResult {
  double score = 0;               // mean over pairs of max(weight * cos, 0)
  double torchmetrics_score = 0;  // max(weight * mean cos, 0), torchmetrics' CLIPScore formula
  double mean_cosine = 0;
  at::Tensor per_pair;  // float64 [N]: max(weight * cos_i, 0)
  at::Tensor cosine;    // float64 [N]
  std::int64_t count = 0;
  double weight = kClipScoreWeight;
};

// Cosine similarity of row i of `image_features` with row i of `text_features` ([N, D] each, any
// floating dtype), in float64: float64 [N]. Throws ldm::Error for other shapes, non-finite values or
// a zero feature vector.
at::Tensor clip_cosines(const at::Tensor& image_features, const at::Tensor& text_features);
// The score from per-pair cosines (float64 [N], N >= 1). Throws ldm::Error for N = 0 or weight <= 0
// or non-finite weight.
ClipScoreResult clip_score_from_cosines(const at::Tensor& cosines, double weight = kClipScoreWeight);
ClipScoreResult clip_score_from_features(const at::Tensor& image_features, const at::Tensor& text_features,
                                         double weight = kClipScoreWeight);

struct ClipModelOptions {
  int batch_size = 32;         // images or captions per module call
  std::string device = "cpu";  // where the modules run ("cpu", "cuda", "cuda:1"); results come back on the CPU
  bool truncate = true;        // captions over the context length: truncated (EOT last), else an error
};

class ClipModel {
 public:
  // Both towers and the BPE merges file (bpe_simple_vocab_16e6.txt.gz).
  ClipModel(const std::string& image_encoder_path, const std::string& text_encoder_path,
            const std::string& bpe_merges_path, ClipModelOptions options = {});
  // The image tower only: captions come as precomputed features (score_with_text_features).
  explicit ClipModel(const std::string& image_encoder_path, ClipModelOptions options = {});
  ~ClipModel();
  ClipModel(const ClipModel&) = delete;
  ClipModel& operator=(const ClipModel&) = delete;

  bool has_text_encoder() const;
  int input_resolution() const;  // S
  int context_length() const;    // L (77 unless the text module says otherwise); 0 without a text tower
  // output_dim of the modules when they declare it, else -1 (known after the first forward()).
  int declared_dim() const;

  // clip_preprocess of each image, stacked: float32 [N, 3, S, S] (N may be 0).
  at::Tensor prepare(const std::vector<data::RgbImage>& images) const;
  // Features of prepared input [N, 3, S, S]: float32 [N, D] on the CPU, as the module returns them
  // (not normalised), computed batch_size images at a time.
  at::Tensor image_features_of_prepared(const at::Tensor& prepared) const;
  at::Tensor image_features(const std::vector<data::RgbImage>& images) const;

  // Token ids: int64 [N, L]. Throws ldm::Error without a text tower.
  at::Tensor tokenize(const std::vector<std::string>& captions) const;
  // Features of token ids [N, L] (int64): float32 [N, D] on the CPU.
  at::Tensor text_features_of_ids(const at::Tensor& ids) const;
  at::Tensor text_features(const std::vector<std::string>& captions) const;

  // CLIP score of images[i] with captions[i] (same count, >= 1).
  ClipScoreResult score(const std::vector<data::RgbImage>& images, const std::vector<std::string>& captions,
                        double weight = kClipScoreWeight) const;
  // The same with caption features given: text_features [N, D] for images[i].
  ClipScoreResult score_with_text_features(const std::vector<data::RgbImage>& images, const at::Tensor& text_features,
                                           double weight = kClipScoreWeight) const;

  const ClipTokenizer& tokenizer() const;  // throws ldm::Error without a text tower
  std::string identity() const;
  std::string image_identity() const;        // "clip-image:<16 hex>"
  std::string text_identity() const;         // "clip-text:<16 hex>:bpe=<16 hex>", or "precomputed"
  const std::string& image_network() const;  // the image module's `network` attribute, "" when absent
  const std::string& text_network() const;
  // One line for people: files, networks, S, L, D.
  std::string label() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `ldm-eval clip-score` (worker/eval/clip_score_cli.cpp): prints the result, the score as the last line.
cli::Command clip_score_command();

}  // namespace ldm::eval
