// The import path of one image: JPEG / PNG / WebP decoding with the EXIF orientation
// (datasets/images/image_decode.h), then the crop an import applies. The first 6 bytes choose the
// crop (strategy, output size 1..64, optional rectangle, flip, seed); the rest is the image file.
// A decoded image must hold width x height x 3 bytes, and the crop exactly the size it was asked for.
#include "datasets/images/crop.h"
#include "datasets/images/image_decode.h"
#include "tests/fuzz/fuzz_support.h"

using namespace ldm;
using namespace ldm::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  CropOptions crop;
  const std::uint8_t how = in.byte();
  crop.strategy = static_cast<CropStrategy>(how % 3);
  crop.resized_filter = static_cast<ResampleFilter>((how / 3) % 3);
  crop.flip_prob = (how & 0x80) ? 0.5 : 0.0;
  crop.size = 1 + in.byte() % 64;
  if (const std::uint8_t rect = in.byte(); rect & 1)
    crop.height = 1 + (rect >> 1) % 64, crop.width = 1 + in.byte() % 64;
  const AugmentKey key{in.byte(), 0, in.byte(), 0};
  const std::string file = in.rest();
  const std::string source = "fuzz-image";
  RgbImage image;
  if (!fuzz::accepts(source, [&] {
        image = decode_image(reinterpret_cast<const std::uint8_t*>(file.data()), file.size(), source);
      }))
    return 0;
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * 3)
    fuzz::finding("a decoded image whose pixels do not match its size");
  CropResult out;
  if (!fuzz::accepts("", [&] { out = crop_image(image, crop, key); })) fuzz::finding("crop refused a decoded image");
  if (out.image.height != crop.out_height() || out.image.width != crop.out_width() ||
      out.image.pixels.size() != static_cast<std::size_t>(out.image.width) * out.image.height * 3)
    fuzz::finding("the crop is not the size asked for");
  return 0;
}
