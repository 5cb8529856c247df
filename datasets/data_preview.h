// `ldm-data preview`: a PNG grid of a dataset's records, each tile its image (or, for latent
// shards, its first three channels scaled to [0, 255]) over its id, label, caption and control
// metadata, so a user can look at a dataset. Drawn with libgd (its built-in bitmap font).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/format/shard.h"

namespace ldm::data {

struct PreviewTile {
  Record record;
  std::string label;  // "3 (red circle)", "none"
};

struct PreviewLayout {
  int columns = 4;
  int cell = 128;  // image side in the tile, pixels (images are resized to fit, nearest neighbour)
  int text_lines = 4;
};

// Writes the grid to `path` (PNG). Throws Error naming the path if it cannot be written.
void write_preview(const std::string& path, const std::vector<PreviewTile>& tiles, const PreviewLayout& layout);

// The tile's text lines, each at most `chars` long: "#<id> label <label> [view <v>]", the caption
// (wrapped, the last line cut with "..."), "orig HxW crop HxW at top,left [flip]".
std::vector<std::string> preview_text(const PreviewTile& tile, std::size_t chars, int lines);

}  // namespace ldm::data
