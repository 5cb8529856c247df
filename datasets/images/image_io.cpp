#include "datasets/images/image_io.h"

#include <png.h>

#include <cstdio>
#include <memory>

#include "shared/core/error.h"
#include "shared/core/safe_file.h"

namespace ldm::data {
namespace {
struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;
}  // namespace

void write_png(const std::string& path, const std::uint8_t* rgb, int height, int width) {
  const std::string tmp = path + ".tmp";
  {
    File f(std::fopen(tmp.c_str(), "wb"));
    if (!f) throw_errno("cannot create", tmp);
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(width);
    image.height = static_cast<png_uint_32>(height);
    image.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_stdio(&image, f.get(), 0, rgb, 0, nullptr))
      throw Error("cannot write PNG " + tmp + ": " + image.message);
    if (std::fflush(f.get()) != 0) throw_errno("cannot write", tmp);
  }
  rename_durable(tmp, path);
}

RgbImage read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str()))
    throw DataError(path + ": cannot read PNG: " + image.message);
  image.format = PNG_FORMAT_RGB;
  RgbImage out;
  out.height = static_cast<int>(image.height);
  out.width = static_cast<int>(image.width);
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    png_image_free(&image);
    throw DataError(path + ": cannot decode PNG: " + image.message);
  }
  return out;
}

}  // namespace ldm::data
