// Crops of decoded images with the control metadata every record stores (original size,
// crop box in original pixel coordinates, flip flag), and PIL-exact resampling.
//
// The output is h x w RGB with (h, w) = (CropOptions::height, CropOptions::width), a zero field
// meaning `size`; by default both are zero, i.e. size x size, and every square result is exactly
// what it was before rectangular targets existed (aspect-ratio buckets, datasets/images/buckets.h).
//
// Strategies:
//  - Center: ADM / DiT `center_crop_arr`, generalised to an h x w target: halve with PIL's BOX
//    filter ((W, H) -> (W//2, H//2)) while H >= 2h and W >= 2w, then BICUBIC-resize by
//    scale = max(h/H, w/W) to (round(W*scale), round(H*scale)) (Python rounding; a side that
//    rounding left below its target is clamped up to it), then take the central h x w window
//    ((H'-h)//2, (W'-w)//2). For h == w == size this is DiT's function verbatim.
//  - Random: the same two-step resize, then a uniformly random h x w window.
//  - RandomResized: torchvision RandomResizedCrop(size=(h, w)): get_params (scale, log-uniform
//    ratio, 10 tries, then the central crop clamped to the ratio range; it does not depend on the
//    output size), then PIL crop + resize to (w, h) with `resized_filter` (torchvision's default
//    is BILINEAR).
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

#include "datasets/format/shard.h"     // ControlMeta
#include "datasets/images/image_io.h"  // RgbImage

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
  int size = 256;  // output side R
  // Rectangular output (aspect-ratio buckets): height x width; 0 = use `size` (the default, square).
  int height = 0, width = 0;
  double flip_prob = 0.0;                                    // probability of a horizontal flip
  double scale_min = 0.08, scale_max = 1.0;                  // RandomResized: area fraction
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;       // RandomResized: aspect w/h
  ResampleFilter resized_filter = ResampleFilter::Bilinear;  // RandomResized's resize

  int out_height() const { return height > 0 ? height : size; }
  int out_width() const { return width > 0 ? width : size; }
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
  double uniform();                                                      // [0, 1), 53 bits
  double uniform(double lo, double hi);                                  // [lo, hi)
  std::int64_t uniform_int(std::int64_t lo, std::int64_t hi_exclusive);  // unbiased

 private:
  std::uint64_t base_, counter_ = 0;
};

struct CropResult {
  RgbImage image;       // out_height() x out_width() RGB
  ControlMeta control;  // orig_h/w, crop box in original coordinates, flip
};

// Throws ldm::Error for an output side < 1 (size, or a negative height/width) or an empty input.
CropResult crop_image(const RgbImage& in, const CropOptions& options, const AugmentKey& key);

// DiT's center_crop_arr(pil_image, size) alone (no flip); `meta` (optional) gets the control data.
RgbImage center_crop_arr(const RgbImage& in, int size, ControlMeta* meta = nullptr);
// The same for a height x width target (Center above); center_crop_rect(in, s, s) ==
// center_crop_arr(in, s).
RgbImage center_crop_rect(const RgbImage& in, int height, int width, ControlMeta* meta = nullptr);
// The two-step resize Center and Random crop from (BOX halvings, then BICUBIC so the image covers
// height x width): both sides of the result are >= the target, one of them (rounding aside) equal.
RgbImage resize_to_cover(const RgbImage& in, int height, int width);

}  // namespace ldm::data
