// Image files through well-kept libraries (libpng today; JPEG/WebP decoding comes with the
// importers). Pixels are 8-bit RGB, row-major HWC.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ldm::data {

// Writes an RGB PNG (written to "<path>.tmp", then renamed). Errors name the file.
void write_png(const std::string& path, const std::uint8_t* rgb, int height, int width);

struct RgbImage {
  int height = 0, width = 0;
  std::vector<std::uint8_t> pixels;  // HWC RGB
};
// Reads a PNG as 8-bit RGB (gray, palette, alpha and 16-bit inputs are converted).
RgbImage read_png(const std::string& path);

}  // namespace ldm::data
