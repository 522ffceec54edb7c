// One PNG or JPEG file's pixels, decoded by Debian's libpng and libjpeg-turbo.
// Internal to data/ (the image folder reader).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace seedproof {

// 8-bit pixels, (height, width, channels) row-major; channels 1 (gray) or 3 (RGB).
struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a PNG or a JPEG, told apart by their signatures. PNG: palettes become
// RGB, gray below 8 bits becomes 8-bit, 16-bit samples are rounded to 8 bits, alpha
// is dropped and gamma is ignored (what PIL's convert("L") / convert("RGB") give).
// JPEG: libjpeg's default decoding (islow DCT, fancy upsampling, as PIL uses it);
// CMYK is refused. A truncated or corrupt file is DATA_LOSS naming `path` and what
// the library found ("libpng: IDAT: CRC error"); a warning (libjpeg's "premature end
// of data segment") counts as damage too. Anything else is INVALID_ARGUMENT.
absl::StatusOr<DecodedImage> DecodeImage(const std::vector<uint8_t>& bytes,
                                         const std::string& path);

}  // namespace seedproof
