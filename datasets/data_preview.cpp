#include "datasets/data_preview.h"

#include <gd.h>
#include <gdfonts.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "shared/core/error.h"

namespace ldm::data {
namespace {

constexpr int kPad = 6;  // pixels around each tile

struct ImageFree {
  void operator()(gdImage* im) const { gdImageDestroy(im); }
};
using Image = std::unique_ptr<gdImage, ImageFree>;

// The record's payload as 8-bit RGB rows: images as they are; latents' first three channels (one
// repeated for fewer), each scaled from its own min..max to 0..255.
bool payload_rgb(const Record& r, int& h, int& w, std::vector<std::uint8_t>& rgb) {
  if (r.shape.size() != 3) return false;
  if (r.shape[2] == 3 && r.payload.size() == std::size_t(r.shape[0] * r.shape[1] * 3)) {  // ImageU8 {H, W, 3}
    h = int(r.shape[0]);
    w = int(r.shape[1]);
    rgb = r.payload;
    return true;
  }
  const std::int64_t c = r.shape[0];
  h = int(r.shape[1]);
  w = int(r.shape[2]);
  if (c < 1 || r.payload.size() != std::size_t(c * h * w) * sizeof(float)) return false;
  std::vector<float> v(std::size_t(c * h * w));
  std::memcpy(v.data(), r.payload.data(), r.payload.size());
  rgb.assign(std::size_t(h * w * 3), 0);
  for (int k = 0; k < 3; ++k) {
    const float* ch = v.data() + std::size_t(std::min<std::int64_t>(k, c - 1)) * h * w;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (int i = 0; i < h * w; ++i) {
      lo = std::min(lo, ch[i]);
      hi = std::max(hi, ch[i]);
    }
    const float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (int i = 0; i < h * w; ++i) rgb[std::size_t(i) * 3 + k] = std::uint8_t(std::lround((ch[i] - lo) * scale));
  }
  return true;
}

}  // namespace

std::vector<std::string> preview_text(const PreviewTile& t, std::size_t chars, int lines) {
  const Record& r = t.record;
  std::vector<std::string> out;
  out.push_back("#" + std::to_string(r.id) + " label " + t.label + (r.view ? " view " + std::to_string(r.view) : ""));
  const ControlMeta& c = r.control;
  const std::string control = "orig " + std::to_string(c.orig_h) + "x" + std::to_string(c.orig_w) + " crop " +
                              std::to_string(c.crop_h) + "x" + std::to_string(c.crop_w) + " at " +
                              std::to_string(c.crop_top) + "," + std::to_string(c.crop_left) + (c.flip ? " flip" : "");
  // The caption fills the lines between the first and the control line, word by word.
  const int caption_lines = std::max(0, lines - 2);
  std::string rest = r.caption.empty() ? "(no caption)" : "\"" + r.caption + "\"";
  for (int i = 0; i < caption_lines && !rest.empty(); ++i) {
    if (rest.size() <= chars) {
      out.push_back(rest);
      rest.clear();
      break;
    }
    std::size_t cut = rest.rfind(' ', chars);
    if (cut == std::string::npos || cut == 0) cut = chars;
    if (i + 1 == caption_lines) {  // the last line: cut with "..."
      out.push_back(rest.substr(0, chars >= 3 ? chars - 3 : chars) + "...");
      rest.clear();
      break;
    }
    out.push_back(rest.substr(0, cut));
    rest = rest.substr(cut + (rest[cut] == ' ' ? 1 : 0));
  }
  out.push_back(control);
  for (std::string& line : out)  // a line never runs into the next tile
    if (line.size() > chars) line = line.substr(0, chars);
  return out;
}

void write_preview(const std::string& path, const std::vector<PreviewTile>& tiles, const PreviewLayout& layout) {
  if (tiles.empty()) throw Error("preview: no records to show");
  const gdFontPtr font = gdFontGetSmall();  // 6 x 13 pixels per character
  const int cols = std::max(1, std::min<int>(layout.columns, int(tiles.size())));
  const int rows = (int(tiles.size()) + cols - 1) / cols;
  const int text_h = layout.text_lines * font->h;
  const int tile_w = std::max(layout.cell, 36 * font->w) + 2 * kPad, tile_h = layout.cell + text_h + 3 * kPad;
  Image im(gdImageCreateTrueColor(cols * tile_w, rows * tile_h));
  if (!im)
    throw Error("preview: cannot allocate a " + std::to_string(cols * tile_w) + "x" + std::to_string(rows * tile_h) +
                " image");
  const int white = gdTrueColor(255, 255, 255), black = gdTrueColor(20, 20, 20), grey = gdTrueColor(200, 200, 200);
  gdImageFilledRectangle(im.get(), 0, 0, cols * tile_w - 1, rows * tile_h - 1, white);
  const std::size_t chars = std::size_t((tile_w - 2 * kPad) / font->w);
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    const int x0 = int(i % std::size_t(cols)) * tile_w + kPad, y0 = int(i / std::size_t(cols)) * tile_h + kPad;
    int h = 0, w = 0;
    std::vector<std::uint8_t> rgb;
    gdImageRectangle(im.get(), x0 - 1, y0 - 1, x0 + layout.cell, y0 + layout.cell, grey);
    if (payload_rgb(tiles[i].record, h, w, rgb) && h > 0 && w > 0) {
      // Fit the longer side to the cell, nearest neighbour (small images stay crisp).
      const double s = double(layout.cell) / double(std::max(h, w));
      const int dh = std::max(1, int(h * s)), dw = std::max(1, int(w * s));
      for (int y = 0; y < dh; ++y)
        for (int x = 0; x < dw; ++x) {
          const std::size_t src =
              (std::size_t(std::min(h - 1, int(y / s))) * std::size_t(w) + std::size_t(std::min(w - 1, int(x / s)))) *
              3;
          gdImageSetPixel(im.get(), x0 + x, y0 + y, gdTrueColor(rgb[src], rgb[src + 1], rgb[src + 2]));
        }
    }
    const std::vector<std::string> lines = preview_text(tiles[i], chars, layout.text_lines);
    for (std::size_t k = 0; k < lines.size(); ++k) {
      std::string text = lines[k];  // gdImageString takes a non-const unsigned char*
      gdImageString(im.get(), font, x0, y0 + layout.cell + kPad + int(k) * font->h,
                    reinterpret_cast<unsigned char*>(text.data()), black);
    }
  }
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error("preview: cannot write " + tmp + ": " + std::strerror(errno));
  gdImagePng(im.get(), f);
  const bool failed = std::ferror(f) != 0;
  if (std::fclose(f) != 0 || failed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("preview: cannot write " + path + ": " + std::strerror(errno));
  }
}

}  // namespace ldm::data
