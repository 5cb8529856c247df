// Square crops of decoded images with the control metadata every record stores (original size,
// crop box in original pixel coordinates, flip flag), and PIL-exact resampling.
//
// Strategies (all produce size x size RGB):
//  - Center: ADM / DiT `center_crop_arr`: halve with PIL's BOX filter while the shorter side is
//    >= 2*size, then BICUBIC-resize so the shorter side is `size` (other side round(x*scale), Python
//    rounding), then take the central size x size ((H'-size)//2, (W'-size)//2).
//  - Random: the same two-step resize, then a uniformly random size x size window.
//  - RandomResized: torchvision RandomResizedCrop.get_params (scale, log-uniform ratio, 10 tries,
//    then the central crop clamped to the ratio range), then PIL crop + resize to size x size with
//    `resized_filter` (torchvision's default is BILINEAR).
// Then a horizontal flip with probability `flip_prob`.
//
// The crop box in ControlMeta is in ORIGINAL (decoded, EXIF-rotated) pixel coordinates. For Center
// and Random it is the resized-image window scaled back by orig/resized per axis and rounded, so it
// may be off by one original pixel from the exact (fractional) region; it always lies inside the
// original image. The flip flag says the output was mirrored after cropping.
//
// Randomness is a pure function of (seed, epoch, record_id, view): a counter-based splitmix64
// stream, with separate streams for the crop and the flip. No global state; thread-safe.
//
// Resampling is PIL 9.4's Resample.c re-implemented (separable, horizontal pass first, 8-bit
// intermediate, 22-bit fixed-point coefficients, antialiased support when downscaling), so results
// equal python3-pil's Image.resize bit for bit. No Debian library offers PIL's exact filters
// (libswscale's bicubic differs and has no box filter; libvips is large and differs too).
#pragma once

#include <cstdint>
#include <string>

#include "datasets/image_io.h"  // RgbImage
#include "datasets/shard.h"     // ControlMeta

namespace ldm::data {

enum class ResampleFilter { Box, Bilinear, Bicubic };

// PIL's Image.resize((out_w, out_h), filter) on an RGB image. Same size returns a copy.
RgbImage resize_image(const RgbImage& in, int out_w, int out_h, ResampleFilter filter);
// The rectangle [top, top+h) x [left, left+w) of `in`; must lie inside it.
RgbImage crop_region(const RgbImage& in, int top, int left, int h, int w);
RgbImage flip_horizontal(const RgbImage& in);

enum class CropStrategy { Center, Random, RandomResized };
CropStrategy parse_crop_strategy(const std::string& name);  // "center" | "random" | "random_resized"
const char* crop_strategy_name(CropStrategy s);

struct CropOptions {
  CropStrategy strategy = CropStrategy::Center;
  int size = 256;           // output side R
  double flip_prob = 0.0;   // probability of a horizontal flip
  double scale_min = 0.08, scale_max = 1.0;            // RandomResized: area fraction
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // RandomResized: aspect w/h
  ResampleFilter resized_filter = ResampleFilter::Bilinear;  // RandomResized's resize
};

// What the augmentation randomness is a function of.
struct AugmentKey {
  std::uint64_t seed = 0, epoch = 0, record_id = 0;
  std::uint32_t view = 0;  // index of the augmented view of the same record
};

// A counter-based generator: the i-th draw of stream `purpose` is splitmix64 of a hash of
// (key, purpose) plus i. Copyable value type; no shared state.
class AugmentRng {
 public:
  AugmentRng(const AugmentKey& key, std::uint64_t purpose);
  std::uint64_t next_u64();
  double uniform();                              // [0, 1), 53 bits
  double uniform(double lo, double hi);          // [lo, hi)
  std::int64_t uniform_int(std::int64_t lo, std::int64_t hi_exclusive);  // unbiased

 private:
  std::uint64_t base_, counter_ = 0;
};

struct CropResult {
  RgbImage image;       // size x size RGB
  ControlMeta control;  // orig_h/w, crop box in original coordinates, flip
};

// Throws ldm::Error for size < 1 or an empty input image.
CropResult crop_image(const RgbImage& in, const CropOptions& options, const AugmentKey& key);

// DiT's center_crop_arr(pil_image, size) alone (no flip); `meta` (optional) gets the control data.
RgbImage center_crop_arr(const RgbImage& in, int size, ControlMeta* meta = nullptr);

}  // namespace ldm::data
