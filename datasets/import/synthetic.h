// The built-in synthetic class-conditional dataset: coloured shapes whose class sets shape and
// colour, drawn on canvases of varied original size and aspect ratio, then cropped (crop box
// recorded) and randomly flipped (flag recorded). Each record has a caption of variable length,
// e.g. "a small red square on the left", whose left/right word describes the object's position in
// the final (cropped, flipped) image, so it swaps when the image is flipped. Torch-free.
//
// Rendering is a pure function of (params, record index): the same parameters always give the
// same bytes, whichever process or thread renders them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datasets/format/shard.h"

namespace ldm::data {

struct SyntheticParams {
  std::int64_t records = 1024;
  std::int64_t classes = 10;
  std::int64_t resolution = 32;  // final square image side
  std::int64_t seed = 0;
  std::int64_t shard_records = 256;  // records per shard file
};

// Identity of a parameter set ("synthetic-<16 hex>"), used as cache directory name and as the
// shards' `dataset` header field.
std::string synthetic_identity(const SyntheticParams& p);

// Human name of class k, e.g. "red square" (shape and colour differ by class).
std::string synthetic_class_name(std::int64_t k);

// What a synthetic caption says about its image, as indices into the renderer's vocabulary (-1 where
// the caption does not say): colour (synthetic_colour_names), shape (synthetic_shape_names), and
// side 0 = left, 1 = middle/centre, 2 = right. The first colour and shape word of the caption win;
// words are matched whole, case-insensitively ("lime" is a colour, "sublime" is not).
struct SyntheticAttributes {
  int colour = -1, shape = -1, side = -1;
};
SyntheticAttributes parse_synthetic_caption(const std::string& caption);
const std::vector<std::string>& synthetic_colour_names();
const std::vector<std::string>& synthetic_shape_names();
inline constexpr int kSyntheticSides = 3;

// Renders record `index` (ImageU8 payload, {R, R, 3}, label = index % classes shuffled by seed).
Record render_synthetic_record(const SyntheticParams& p, std::int64_t index);

// Renders the whole dataset into `dir` (created), as shards "synth-00000.ldms"... plus a manifest
// "dataset.json" written last. If `dir` already holds a complete dataset with the same identity
// it is reused. Writes into "<dir>.tmp-<pid>" and renames, so concurrent or killed runs never
// leave a half-written dataset behind. `progress(done, total)` is called now and then.
void ensure_synthetic_dataset(const SyntheticParams& p, const std::string& dir,
                              const std::function<void(std::int64_t, std::int64_t)>& progress = {});

}  // namespace ldm::data
