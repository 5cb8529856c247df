// Conditioning mechanisms of the proposed model (PAPER.md "Conditioning improvements"):
// control metadata embedded per control group and weighted by the noise level, text-token
// padding (zero / replicate / noisy replicate), and the condition-dropout helper.
//
// Tags as in PAPER.md: [paper] stated by the paper, [recon] our reconstruction (always an option
// with a documented default), [lit] from the paper of a re-implemented model.
//
// Time convention everywhere here: t ∈ [0, 1], t = 0 clean data, t = 1 pure noise. The caller
// passes the noise level it conditions on (raw or resolution-shifted: that choice is the caller's).
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>  // not <torch/torch.h> nor the Linear/Sequential headers: they cost more
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shared/core/choices.h"
#include "shared/core/controls.h"

namespace ldm::models {

// ---- noise-level-dependent control weight ----------------------------------------------------

// w_α(t) = cos(π t / 2)^α  [recon: the paper only says 0 at high noise, rising to 1 at low noise,
// with a steepness α]. t is clamped to [0, 1]; w(1) = 0 exactly (α > 0), w(0) = 1, non-increasing
// in t; a larger α keeps the weight near 0 down to lower noise (the control acts later).
// α = 0 gives the constant weight 1 everywhere, t = 1 included (SDXL-style). α < 0 is a SpecError.
double control_weight(double t, double alpha);
// Element-wise on t [N] (any shape) -> same shape; float64 math, returned in t's floating dtype
// (float32 for integer t), on t's device.
at::Tensor control_weight(const at::Tensor& t, double alpha);

// ---- control metadata --------------------------------------------------------------------------

// Columns of the per-sample control tensor [N, kControlColumns] float32. Sizes and crop offsets
// are in pixels of the original image (as datasets' ControlMeta); flip is 0/1; aspect = orig_w /
// orig_h (0 when orig_h is 0).
namespace control_col {
constexpr int64_t kOrigH = 0, kOrigW = 1;
constexpr int64_t kCropTop = 2, kCropLeft = 3, kCropH = 4, kCropW = 5;
constexpr int64_t kFlip = 6;
constexpr int64_t kAspect = 7;
}  // namespace control_col
constexpr int64_t kControlColumns = 8;

// Control groups, each embedded by its own MLP and weighted by its own α [paper: size, crop,
// flip, aspect ratio are the controls; the grouping is recon].
enum class ControlGroup { Size = 0, Crop = 1, Flip = 2, Aspect = 3 };
constexpr int kControlGroups = 4;
const char* to_string(ControlGroup g);                 // "size" | "crop" | "flip" | "aspect"
std::vector<int64_t> control_columns(ControlGroup g);  // size: {0,1}; crop: {2,3,4,5}; flip: {6}; aspect: {7}

// [N, 8] float32 (CPU) from the loader's per-sample metadata, in the column order above.
at::Tensor control_tensor(const std::vector<ControlMeta>& controls);

struct ControlEmbedderOptions {
  int64_t dim = 0;               // output width D (the adaLN conditioning width)
  int64_t frequency_size = 256;  // Fourier features per scalar [lit: SDXL uses 256 per scalar]
  double max_period = 10000;     // of the Fourier features (as the timestep embedding) [lit: SDXL]
  // "constant": Σ_g emb_g (SDXL-style, weight 1) | "noise_weighted": Σ_g w_{α_g}(t)·emb_g [paper].
  std::string weighting = "noise_weighted";
  // α per group [recon: shared default 1.0 = a plain quarter-cosine ramp. The paper sweeps α; a
  // summary says low-level controls (size) should act late, i.e. a larger α for size].
  double alpha_size = 1.0, alpha_crop = 1.0, alpha_flip = 1.0, alpha_aspect = 1.0;
  // Which groups are conditioned on (Table 2 ablates crop / flip / size). A disabled group has no
  // parameters and contributes nothing.
  bool use_size = true, use_crop = true, use_flip = true, use_aspect = true;
  // Embedding of a dropped control (classifier-free guidance on controls) [recon]:
  // "zero": the whole control embedding of a dropped sample is exactly 0, so adaLN sees the
  //         timestep embedding alone and "no control" needs no parameters (default);
  // "learned": each group's embedding is replaced by a learned null vector `<group>_null` [D]
  //         (then weighted like the group, so it too vanishes at t = 1 in noise_weighted mode).
  std::string dropped = "zero";

  double alpha(ControlGroup g) const;
  bool uses(ControlGroup g) const;
};

// Control metadata -> [N, D] adaLN conditioning term. Per group g with columns c_1..c_k:
//   emb_g = Linear(D→D)(SiLU(Linear(k·F→D)(cat_i fourier(ctrl[:, c_i]))))
// Fourier features as DiT's timestep embedding (cos half first, then sin), on the raw values.
// Submodules "size", "crop", "flip", "aspect", each a torch::nn::Sequential(Linear, SiLU, Linear)
// (keys <group>.0.*, <group>.2.*).
struct ControlEmbedderImpl : torch::nn::Module {
  explicit ControlEmbedderImpl(ControlEmbedderOptions options);

  // controls [N, 8] float, t [N] float in [0, 1] (unused, may be undefined, in constant mode),
  // drop_mask [N] bool (true = dropped; undefined = none dropped) -> [N, D] in controls' dtype
  // (float32 for integer controls), on controls' device.
  at::Tensor forward(const at::Tensor& controls, const at::Tensor& t, const at::Tensor& drop_mask = {});

  // [recon, as DiT's t_embedder] input Linear weights N(0, 0.02); output Linear weights
  // xavier-uniform (not zero: the control path must receive gradients from the first step; the
  // adaLN-Zero modulation downstream already makes the model start as the unconditioned one);
  // biases 0; learned null vectors N(0, 0.02). Only `gen` is drawn from, and every parameter is
  // overwritten: call it after construction (whose LibTorch default init, like every torch::nn
  // module's, uses the global generator), as DiT::initialize does for its submodules.
  void initialize(at::Generator& gen);

  const ControlEmbedderOptions& options() const { return options_; }
  // The group's Sequential(Linear, SiLU, Linear) as a Module (null when the group is disabled).
  std::shared_ptr<torch::nn::Module> group_mlp(ControlGroup g) const { return mlps_[static_cast<int>(g)]; }

 private:
  ControlEmbedderOptions options_;
  bool noise_weighted_ = true, learned_null_ = false;
  std::array<std::shared_ptr<torch::nn::Module>, kControlGroups> mlps_;  // SequentialImpl each
  std::array<at::Tensor, kControlGroups> nulls_;
};
TORCH_MODULE(ControlEmbedder);

// ---- text-token padding ---------------------------------------------------------------------------

using ldm::TextPadding;  // zero | replicate | noisy_replicate: the spec's enum (shared/core/choices.h)

// σ_pad of noisy replicate padding [recon: the paper gives no value].
constexpr double kDefaultTextPadNoise = 0.1;

// tokens [N, L, D] (real tokens in slots 0..len-1; padded slots may hold anything), lengths [N]
// int64 in [0, L] -> [N, L, D] with the padded slots (j ≥ len) rewritten:
//   Zero:           0
//   Replicate:      tokens[j mod len]
//   NoisyReplicate: tokens[j mod len] + noise_scale·n,  n ~ N(0, 1) drawn from `gen`
// Real slots are returned bit-for-bit unchanged; a caption of length 0 becomes all zeros in every
// mode. NoisyReplicate draws one [N, L, D] normal tensor from `gen` per call (whatever the lengths,
// so the generator advances by the same amount every step); `gen` may be null only when
// noise_scale is 0 (the inference default: pass 0). The noise is drawn on gen's device.
at::Tensor pad_text_tokens(const at::Tensor& tokens, const at::Tensor& lengths, TextPadding mode,
                           double noise_scale = kDefaultTextPadNoise, at::Generator* gen = nullptr);

// ---- condition dropout ------------------------------------------------------------------------------

// [n] bool on gen's device: each entry true (= drop the condition) with probability p ∈ [0, 1],
// independently. Use one generator per purpose (semantic, control) so the two dropouts are
// independent [recon: PAPER.md default p = 0.1 each].
at::Tensor drop_mask(int64_t n, double p, at::Generator& gen);

}  // namespace ldm::models
