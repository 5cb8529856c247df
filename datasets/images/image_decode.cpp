#include "datasets/images/image_decode.h"

// libjpeg's headers need FILE and size_t declared first.
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <jerror.h>
#include <libexif/exif-data.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include <fstream>
#include <iterator>
#include <memory>

#include "shared/core/error.h"

namespace ldm::data {
namespace {

// True (with the reason in `message`) when a declared size is above kMaxImagePixels.
bool too_many_pixels(std::uint64_t width, std::uint64_t height, char* message, std::size_t size) {
  if (width * height <= kMaxImagePixels) return false;  // both below 2^32: no overflow
  std::snprintf(message, size, "%llu x %llu pixels, more than the %llu an image may have",
                static_cast<unsigned long long>(width), static_cast<unsigned long long>(height),
                static_cast<unsigned long long>(kMaxImagePixels));
  return true;
}

// ---------------------------------------------------------------------------------------------
// JPEG (libjpeg API of libjpeg-turbo). Errors leave libjpeg through longjmp, so the setjmp frame
// (run_jpeg) keeps every C++ object it touches in the caller's JpegJob: no destructor is skipped.

struct JpegErrorMgr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings that mean the pixels are not what the file meant (libjpeg would fill the rest grey or
// resynchronise with garbage): these make the image unreadable. Benign ones (extraneous bytes
// before a marker, unknown JFIF minor version, Adobe transform quirks) are tolerated as PIL does.
void jpeg_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF: {
      auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
      std::snprintf(err->message, sizeof err->message, "truncated JPEG data (premature end of file)");
      std::longjmp(err->jump, 1);
    }
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
      jpeg_fail(cinfo);
    default:
      return;
  }
}

struct JpegJob {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  jpeg_decompress_struct cinfo{};
  JpegErrorMgr err{};
  bool created = false;
  RgbImage out;
  std::vector<std::uint8_t> cmyk_row;
  std::vector<std::uint8_t> exif;
};

// PIL's cmyk2rgb (Convert.c): nk = 255 - K; R = clip(nk - C*nk/255) with MULDIV255 rounding.
inline std::uint8_t cmyk_channel(int c, int nk) {
  const int t = c * nk + 128;
  const int v = nk - (((t >> 8) + t) >> 8);
  return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Returns true on success; on failure job.err.message holds libjpeg's reason.
bool run_jpeg(JpegJob& job) {
  jpeg_decompress_struct* cinfo = &job.cinfo;
  cinfo->err = jpeg_std_error(&job.err.pub);
  job.err.pub.error_exit = jpeg_fail;
  job.err.pub.emit_message = jpeg_message;
  if (setjmp(job.err.jump)) return false;
  jpeg_create_decompress(cinfo);
  job.created = true;
  jpeg_mem_src(cinfo, const_cast<unsigned char*>(job.data), static_cast<unsigned long>(job.size));
  jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(cinfo, TRUE);
  // PIL's getexif(): the first APP1 segment that starts with "Exif\0\0".
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      job.exif.assign(m->data, m->data + m->data_length);
      break;
    }
  }
  const bool four = cinfo->num_components == 4;
  if (four) {
    // CMYK or YCCK (libjpeg turns YCCK into CMYK); PIL always assumes Adobe's inverted polarity.
    cinfo->out_color_space = JCS_CMYK;
  } else if (cinfo->num_components == 1 || cinfo->num_components == 3) {
    cinfo->out_color_space = JCS_RGB;  // gray is replicated by libjpeg-turbo
  } else {
    std::snprintf(job.err.message, sizeof job.err.message, "unsupported JPEG with %d components",
                  cinfo->num_components);
    return false;
  }
  jpeg_calc_output_dimensions(cinfo);
  if (too_many_pixels(cinfo->output_width, cinfo->output_height, job.err.message, sizeof job.err.message)) return false;
  jpeg_start_decompress(cinfo);
  const int w = static_cast<int>(cinfo->output_width), h = static_cast<int>(cinfo->output_height);
  job.out.width = w;
  job.out.height = h;
  job.out.pixels.resize(static_cast<std::size_t>(w) * h * 3);
  if (four) job.cmyk_row.resize(static_cast<std::size_t>(w) * 4);
  while (cinfo->output_scanline < cinfo->output_height) {
    const std::size_t y = cinfo->output_scanline;
    std::uint8_t* dst = job.out.pixels.data() + y * w * 3;
    JSAMPROW row = four ? job.cmyk_row.data() : dst;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      std::snprintf(job.err.message, sizeof job.err.message, "truncated JPEG data");
      return false;
    }
    if (four) {
      const std::uint8_t* s = job.cmyk_row.data();
      for (int x = 0; x < w; ++x, s += 4, dst += 3) {
        // "CMYK;I": the stored samples are inverted.
        const int nk = s[3];  // 255 - (255 - s[3])
        dst[0] = cmyk_channel(255 - s[0], nk);
        dst[1] = cmyk_channel(255 - s[1], nk);
        dst[2] = cmyk_channel(255 - s[2], nk);
      }
    }
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

RgbImage decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& source,
                     std::vector<std::uint8_t>& exif) {
  JpegJob job;
  job.data = data;
  job.size = size;
  const bool ok = run_jpeg(job);
  if (job.created) jpeg_destroy_decompress(&job.cinfo);
  if (!ok) throw DataError(source + ": cannot decode JPEG: " + job.err.message);
  exif = std::move(job.exif);
  return std::move(job.out);
}

// ---------------------------------------------------------------------------------------------
// PNG (libpng's progressive-free sequential API, reading from memory).

struct PngJob {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0, pos = 0;
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = {0};
  RgbImage out;
  std::vector<png_bytep> rows;
  std::vector<std::uint8_t> exif;
};

void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  if (job->size - job->pos < n) png_error(png, "truncated PNG data");
  std::memcpy(out, job->data + job->pos, n);
  job->pos += n;
}

[[noreturn]] void png_fail(png_structp png, png_const_charp msg) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->message, sizeof job->message, "%s", msg);
  png_longjmp(png, 1);
}
void png_warn(png_structp, png_const_charp) {}  // e.g. "iCCP: known incorrect sRGB profile"

bool run_png(PngJob& job) {
  if (setjmp(png_jmpbuf(job.png))) return false;
  png_set_read_fn(job.png, &job, png_read_mem);
  png_read_info(job.png, job.info);
  const int color = png_get_color_type(job.png, job.info);
  const int depth = png_get_bit_depth(job.png, job.info);
  // To PIL's "convert('RGB')": high byte of 16-bit samples, palette looked up, gray replicated,
  // alpha dropped; tRNS is not expanded (PIL ignores it on convert("RGB")); no gamma correction.
  if (depth == 16) png_set_strip_16(job.png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(job.png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(job.png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(job.png);
  // png_set_palette_to_rgb also turns a palette's tRNS into alpha: strip that too.
  if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(job.png, job.info, PNG_INFO_tRNS)) png_set_strip_alpha(job.png);
  png_set_interlace_handling(job.png);
  png_read_update_info(job.png, job.info);
  if (too_many_pixels(png_get_image_width(job.png, job.info), png_get_image_height(job.png, job.info), job.message,
                      sizeof job.message))
    return false;
  const int w = static_cast<int>(png_get_image_width(job.png, job.info));
  const int h = static_cast<int>(png_get_image_height(job.png, job.info));
  if (png_get_rowbytes(job.png, job.info) != static_cast<png_size_t>(w) * 3) {
    std::snprintf(job.message, sizeof job.message, "unexpected PNG row layout");
    return false;
  }
  job.out.width = w;
  job.out.height = h;
  job.out.pixels.resize(static_cast<std::size_t>(w) * h * 3);
  job.rows.resize(static_cast<std::size_t>(h));
  for (int y = 0; y < h; ++y) job.rows[y] = job.out.pixels.data() + static_cast<std::size_t>(y) * w * 3;
  png_read_image(job.png, job.rows.data());
  png_read_end(job.png, job.info);  // eXIf may follow the image data
#ifdef PNG_eXIf_SUPPORTED
  png_uint_32 n = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(job.png, job.info, &n, &exif) && exif && n > 0) job.exif.assign(exif, exif + n);
#endif
  return true;
}

RgbImage decode_png(const std::uint8_t* data, std::size_t size, const std::string& source,
                    std::vector<std::uint8_t>& exif) {
  PngJob job;
  job.data = data;
  job.size = size;
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_fail, png_warn);
  if (!job.png) throw DataError(source + ": cannot decode PNG: out of memory");
  job.info = png_create_info_struct(job.png);
  if (!job.info) {
    png_destroy_read_struct(&job.png, nullptr, nullptr);
    throw DataError(source + ": cannot decode PNG: out of memory");
  }
  const bool ok = run_png(job);
  png_destroy_read_struct(&job.png, &job.info, nullptr);
  if (!ok) throw DataError(source + ": cannot decode PNG: " + job.message);
  exif = std::move(job.exif);
  return std::move(job.out);
}

// ---------------------------------------------------------------------------------------------
// WebP (still images; the EXIF chunk through the demuxer).

const char* webp_status(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "corrupt WebP bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported WebP feature";
    case VP8_STATUS_SUSPENDED:
      return "decoding suspended";
    case VP8_STATUS_USER_ABORT:
      return "decoding aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "truncated WebP data";
    default:
      return "unknown WebP error";
  }
}

RgbImage decode_webp(const std::uint8_t* data, std::size_t size, const std::string& source,
                     std::vector<std::uint8_t>& exif) {
  WebPBitstreamFeatures features;
  VP8StatusCode st = WebPGetFeatures(data, size, &features);
  if (st != VP8_STATUS_OK) throw DataError(source + ": cannot decode WebP: " + webp_status(st));
  if (features.has_animation) throw DataError(source + ": cannot decode WebP: animated WebP is not supported");
  char message[160];
  if (too_many_pixels(features.width, features.height, message, sizeof message))
    throw DataError(source + ": cannot decode WebP: " + message);
  RgbImage out;
  out.width = features.width;
  out.height = features.height;
  out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  // Alpha, if any, is dropped (PIL's convert("RGB")), not composited.
  if (!WebPDecodeRGBInto(data, size, out.pixels.data(), out.pixels.size(), out.width * 3)) {
    // WebPDecodeRGBInto only says "failed"; ask the incremental decoder for the reason.
    WebPDecoderConfig config;
    WebPInitDecoderConfig(&config);
    config.output.colorspace = MODE_RGB;
    st = WebPDecode(data, size, &config);
    WebPFreeDecBuffer(&config.output);
    throw DataError(source + ": cannot decode WebP: " + (st == VP8_STATUS_OK ? "corrupt WebP data" : webp_status(st)));
  }
  WebPData wd{data, size};
  if (WebPDemuxer* demux = WebPDemux(&wd)) {
    WebPChunkIterator it;
    if (WebPDemuxGetChunk(demux, "EXIF", 1, &it)) {
      exif.assign(it.chunk.bytes, it.chunk.bytes + it.chunk.size);
      WebPDemuxReleaseChunkIterator(&it);
    }
    WebPDemuxDelete(demux);
  }
  return out;
}

}  // namespace

ImageFormat detect_image_format(const std::uint8_t* d, std::size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::Jpeg;
  static const std::uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 8 && std::memcmp(d, kPng, 8) == 0) return ImageFormat::Png;
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) return ImageFormat::Webp;
  return ImageFormat::Unknown;
}

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::Jpeg:
      return "jpeg";
    case ImageFormat::Png:
      return "png";
    case ImageFormat::Webp:
      return "webp";
    default:
      return "unknown";
  }
}

int exif_orientation(const std::uint8_t* exif, std::size_t size) {
  if (!exif || size < 8) return 1;
  // libexif wants the "Exif\0\0" header of a JPEG APP1; PNG eXIf and some WebP chunks lack it.
  std::vector<std::uint8_t> buf;
  if (std::memcmp(exif, "Exif\0\0", 6) != 0) {
    buf.reserve(size + 6);
    buf.insert(buf.end(), {'E', 'x', 'i', 'f', 0, 0});
    buf.insert(buf.end(), exif, exif + size);
    exif = buf.data();
    size = buf.size();
  }
  ExifData* ed = exif_data_new();
  if (!ed) return 1;
  // Read what is there; do not let libexif "fix" (add or drop) entries.
  exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(ed, exif, static_cast<unsigned int>(size));
  int orientation = 1;
  if (ExifEntry* e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION)) {
    if (e->data && e->components >= 1) {
      const ExifByteOrder order = exif_data_get_byte_order(ed);
      int v = 0;
      if (e->format == EXIF_FORMAT_SHORT && e->size >= 2) v = exif_get_short(e->data, order);
      else if (e->format == EXIF_FORMAT_LONG && e->size >= 4) v = static_cast<int>(exif_get_long(e->data, order));
      else if (e->format == EXIF_FORMAT_BYTE && e->size >= 1) v = e->data[0];
      if (v >= 1 && v <= 8) orientation = v;
    }
  }
  exif_data_unref(ed);
  return orientation;
}

RgbImage apply_exif_orientation(RgbImage in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const int W = in.width, H = in.height;
  const bool swap = orientation >= 5;
  RgbImage out;
  out.width = swap ? H : W;
  out.height = swap ? W : H;
  out.pixels.resize(in.pixels.size());
  // For output pixel (x, y), the source pixel (sx, sy), as PIL's Image.transpose methods.
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2:
          sx = W - 1 - x;
          sy = y;
          break;  // FLIP_LEFT_RIGHT
        case 3:
          sx = W - 1 - x;
          sy = H - 1 - y;
          break;  // ROTATE_180
        case 4:
          sx = x;
          sy = H - 1 - y;
          break;  // FLIP_TOP_BOTTOM
        case 5:
          sx = y;
          sy = x;
          break;  // TRANSPOSE
        case 6:
          sx = y;
          sy = H - 1 - x;
          break;  // ROTATE_270 (90 clockwise)
        case 7:
          sx = W - 1 - y;
          sy = H - 1 - x;
          break;  // TRANSVERSE
        case 8:
          sx = W - 1 - y;
          sy = x;
          break;  // ROTATE_90 (counter-clockwise)
      }
      const std::uint8_t* s = in.pixels.data() + (static_cast<std::size_t>(sy) * W + sx) * 3;
      std::uint8_t* d = out.pixels.data() + (static_cast<std::size_t>(y) * out.width + x) * 3;
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  return out;
}

RgbImage decode_image(const std::uint8_t* data, std::size_t size, const std::string& source) {
  std::vector<std::uint8_t> exif;
  RgbImage img;
  switch (detect_image_format(data, size)) {
    case ImageFormat::Jpeg:
      img = decode_jpeg(data, size, source, exif);
      break;
    case ImageFormat::Png:
      img = decode_png(data, size, source, exif);
      break;
    case ImageFormat::Webp:
      img = decode_webp(data, size, source, exif);
      break;
    default:
      throw DataError(source + (size == 0 ? ": empty image file" : ": unknown image format (not JPEG, PNG or WebP)"));
  }
  if (img.width <= 0 || img.height <= 0) throw DataError(source + ": image has no pixels");
  if (!exif.empty()) img = apply_exif_orientation(std::move(img), exif_orientation(exif.data(), exif.size()));
  return img;
}

RgbImage decode_image_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open image file");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(path + ": cannot read image file");
  return decode_image(bytes.data(), bytes.size(), path);
}

}  // namespace ldm::data
