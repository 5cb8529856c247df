// Control metadata: the crop that produced a training record, which the paper's models condition on
// (original size, crop box, flip). Written into shards by the importers, read by the loader, turned
// into model inputs by the worker (worker/models/conditioning.h: the columns and their embedding).
#pragma once

#include <cstdint>

namespace ldm {

// The crop that produced a record, in the original image's pixel coordinates.
struct ControlMeta {
  std::int32_t orig_h = 0, orig_w = 0;
  std::int32_t crop_top = 0, crop_left = 0, crop_h = 0, crop_w = 0;
  bool flip = false;
};

}  // namespace ldm
