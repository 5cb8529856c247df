// Decoding of JPEG, PNG and WebP images from memory into 8-bit RGB, as the importers need them.
// Libraries: libjpeg-turbo (libjpeg API), libpng, libwebp (+ demux for its EXIF chunk), libexif.
// The result matches Debian's python3-pil `ImageOps.exif_transpose(Image.open(f)).convert("RGB")`:
//  - the format comes from the magic bytes, never from a file name;
//  - grayscale is replicated into R, G and B; alpha is dropped (as PIL's convert("RGB") does, not
//    composited over a background); palette images are looked up (tRNS ignored);
//  - 16-bit PNG keeps the high byte of each sample (PIL's "RGB;16B" raw mode). Exception: 16-bit
//    *grayscale* PNG, which PIL opens as mode "I" and clips to 0..255 on convert("RGB") (values
//    above 255 all turn white); we keep the high byte there too, i.e. the image as it is meant;
//  - CMYK and YCCK JPEGs are read as Adobe (inverted) CMYK, as PIL always assumes, and turned into
//    RGB with PIL's formula (R = 255 - C - K + C*K/255, rounded);
//  - the EXIF orientation (IFD0 tag 0x0112, values 2..8) of JPEG (APP1), PNG (eXIf) and WebP
//    (EXIF chunk) is applied the way PIL's exif_transpose does.
// Every failure (unknown format, corrupt or truncated data, including a truncated JPEG that libjpeg
// would "recover" by painting the rest grey) throws ldm::DataError whose message starts with the
// `source` string given by the caller (e.g. "train/n01440764/x.JPEG: truncated JPEG data").
// Thread-safety: all functions are reentrant; no global state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/images/image_io.h"  // RgbImage

namespace ldm::data {

enum class ImageFormat { Unknown, Jpeg, Png, Webp };

// Images with more pixels are refused before their pixels are allocated (a header of a few bytes
// can declare 65535 x 65535): PIL's DecompressionBombError threshold, 2 x its MAX_IMAGE_PIXELS, so
// both readers keep the same web-crawl images (at most 537 MB of RGB).
inline constexpr std::uint64_t kMaxImagePixels = 2ull * 89478485ull;

// From the first bytes: JPEG FF D8 FF, PNG's 8-byte signature, WebP "RIFF....WEBP".
ImageFormat detect_image_format(const std::uint8_t* data, std::size_t size);
const char* image_format_name(ImageFormat f);  // "jpeg", "png", "webp", "unknown"

// Decodes `size` bytes at `data` into HxWx3 RGB with the EXIF orientation applied.
// Throws DataError naming `source`.
RgbImage decode_image(const std::uint8_t* data, std::size_t size, const std::string& source);
inline RgbImage decode_image(const std::vector<std::uint8_t>& bytes, const std::string& source) {
  return decode_image(bytes.data(), bytes.size(), source);
}
// Reads the whole file and decodes it; `path` is the source in error messages.
RgbImage decode_image_file(const std::string& path);

// The EXIF orientation stored in a TIFF/EXIF block ("Exif\0\0" header optional), 1 when absent
// or not in 1..8. Uses libexif.
int exif_orientation(const std::uint8_t* exif, std::size_t size);

// Applies an EXIF orientation (1..8) like PIL's exif_transpose: 2 mirror, 3 rotate 180, 4 flip
// vertically, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
// Orientations 5..8 swap width and height. Other values return the image unchanged.
RgbImage apply_exif_orientation(RgbImage image, int orientation);

}  // namespace ldm::data
