#include "data/image_decode.h"

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace seedproof {
namespace {

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
// A decoded image larger than this is surely not a training example.
constexpr int64_t kMaxPixels = int64_t{1} << 28;

absl::Status TooLarge(const std::string& path, int64_t height, int64_t width) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", width, "x", height,
                                                 " pixels is larger than an image seedproof "
                                                 "reads (at most 2^28 pixels)"));
}

// ---- PNG ----

// libpng reports errors through a callback that must not return: it longjmps back
// into DecodePng with the message kept here.
struct PngSource {
  const std::vector<uint8_t>* bytes;
  size_t at = 0;
  std::string error;
};

void PngError(png_structp png, png_const_charp message) {
  auto* source = static_cast<PngSource*>(png_get_error_ptr(png));
  source->error = message;
  png_longjmp(png, 1);
}

void PngWarning(png_structp, png_const_charp) {}  // ancillary chunk quibbles: not damage

void PngRead(png_structp png, png_bytep out, size_t length) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (source->bytes->size() - source->at < length) {
    png_error(png, "the file ends early (truncated)");
  }
  std::memcpy(out, source->bytes->data() + source->at, length);
  source->at += length;
}

absl::StatusOr<DecodedImage> DecodePng(const std::vector<uint8_t>& bytes, const std::string& path) {
  PngSource source{&bytes, 0, {}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, PngError, PngWarning);
  if (png == nullptr) return absl::ResourceExhaustedError(absl::StrCat(path, ": libpng"));
  png_infop info = png_create_info_struct(png);
  struct Destroy {
    png_structp* png;
    png_infop* info;
    ~Destroy() { png_destroy_read_struct(png, info, nullptr); }
  } destroy{&png, &info};
  if (info == nullptr) return absl::ResourceExhaustedError(absl::StrCat(path, ": libpng"));

  // Everything below until the end of the block may longjmp here: no object with a
  // destructor is created in between.
  DecodedImage image;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    return absl::DataLossError(absl::StrCat(path, ": damaged PNG: libpng: ", source.error));
  }
  png_set_read_fn(png, &source, PngRead);
  png_set_benign_errors(png, 0);  // "not enough image data" and the like are damage
  png_set_user_limits(png, 1 << 16, 1 << 16);
  png_read_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info);
  const png_uint_32 height = png_get_image_height(png, info);
  const int color = png_get_color_type(png, info);
  if (png_get_bit_depth(png, info) == 16) png_set_scale_16(png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  image.height = height;
  image.width = width;
  image.channels = png_get_channels(png, info);
  if (image.height * image.width > kMaxPixels) return TooLarge(path, height, width);
  image.pixels.resize(image.height * image.width * image.channels);
  rows.resize(height);
  for (png_uint_32 r = 0; r < height; ++r) {
    rows[r] = image.pixels.data() + r * image.width * image.channels;
  }
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);  // the chunks after the pixels, to the end: a cut file fails
  return image;
}

// ---- JPEG ----

struct JpegErrors {
  jpeg_error_mgr manager;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JpegFail(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

// Level -1 is a warning about the data ("premature end of data segment", "corrupt
// JPEG data"): libjpeg would fill in gray and go on; here it is damage.
void JpegMessage(j_common_ptr cinfo, int level) {
  if (level < 0) JpegFail(cinfo);
}

absl::StatusOr<DecodedImage> DecodeJpeg(const std::vector<uint8_t>& bytes,
                                        const std::string& path) {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  cinfo.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = JpegFail;
  errors.manager.emit_message = JpegMessage;
  DecodedImage image;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return absl::DataLossError(absl::StrCat(path, ": damaged JPEG: libjpeg: ", errors.message));
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return absl::InvalidArgumentError(absl::StrCat(path, ": a CMYK JPEG; save it as RGB or gray"));
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  image.height = cinfo.output_height;
  image.width = cinfo.output_width;
  image.channels = cinfo.output_components;
  if (image.height * image.width > kMaxPixels) {
    jpeg_destroy_decompress(&cinfo);
    return TooLarge(path, image.height, image.width);
  }
  image.pixels.resize(image.height * image.width * image.channels);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = image.pixels.data() + cinfo.output_scanline * image.width * image.channels;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return image;
}

}  // namespace

absl::StatusOr<DecodedImage> DecodeImage(const std::vector<uint8_t>& bytes,
                                         const std::string& path) {
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0) {
    return DecodePng(bytes, path);
  }
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
    return DecodeJpeg(bytes, path);
  }
  std::string start;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    absl::StrAppend(&start, i ? " " : "", absl::StrFormat("%02x", bytes[i]));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": not a PNG or JPEG image (",
                   bytes.empty() ? "an empty file" : "it starts with " + start,
                   "); an image folder holds PNG and JPEG files only"));
}

}  // namespace seedproof
