// Aspect-ratio buckets for the dataset importers: records are grouped by bucket so that a batch
// shares one shape (an h x w crop, datasets/images/crop.h CropOptions::height/width).
//
// The list is SDXL-style (Podell et al. 2023, appendix: "multi-aspect training"): a grid of
// (height, width) pairs, both multiples of `step`, each holding as close to resolution^2 pixels as
// the grid allows, with the aspect ratio bounded by `max_aspect`. Every image goes to the bucket
// whose aspect ratio is nearest to its own in log space, and is then cropped to that bucket's shape.
//
// The defaults (kDefaultBucketStep, kDefaultBucketMaxAspect) and the exact construction rule are
// OUR RECONSTRUCTION, not values from the paper: SDXL lists its 1024^2 buckets (64-pixel steps,
// aspect 0.25 .. 4) without a rule, and says nothing for other resolutions. 32 pixels is four latent
// pixels of an f=8 autoencoder; 2.0 keeps the crops of a 256^2 model at least 128 pixels wide.
// Torch-free.
#pragma once

#include <cstddef>
#include <vector>

namespace ldm::data {

struct Bucket {
  int height = 0, width = 0;
};
inline bool operator==(const Bucket& a, const Bucket& b) { return a.height == b.height && a.width == b.width; }
inline bool operator!=(const Bucket& a, const Bucket& b) { return !(a == b); }

constexpr int kDefaultBucketStep = 32;           // our reconstruction (see above)
constexpr double kDefaultBucketMaxAspect = 2.0;  // our reconstruction (see above)

// Every (h, w) with h and w positive multiples of `step`, h*w <= resolution^2,
// max(h, w)/min(h, w) <= max_aspect, that is maximal on the grid: (h, w + step) and (h + step, w)
// both exceed resolution^2 pixels. So each h has at most one bucket, its largest w (an h whose
// largest w is also the largest w of a taller h, i.e. a dominated pair, is left out), and the list is
// symmetric: (h, w) is in it iff (w, h) is. (resolution, resolution) is always in it. Sorted by
// aspect w/h, ascending (portrait first). Throws ldm::Error, naming the value, unless
// resolution >= 1, step >= 1, resolution % step == 0 and max_aspect >= 1.
std::vector<Bucket> make_buckets(int resolution, int step = kDefaultBucketStep,
                                 double max_aspect = kDefaultBucketMaxAspect);

// The index of the bucket whose log aspect ratio log(w/h) is nearest to the image's, compared
// exactly (integer arithmetic, no floating-point ties); on a tie the squarer bucket (smaller
// |log(w/h)|), then the earlier one. Throws ldm::Error for an empty list or non-positive sizes.
std::size_t nearest_bucket(const std::vector<Bucket>& buckets, int image_h, int image_w);

}  // namespace ldm::data
