// PNG and JPEG through the libraries an image folder is decoded with.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/image_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  auto image = seedproof::DecodeImage(bytes, "fuzz.img");
  if (image.ok() &&
      static_cast<size_t>(image->height * image->width * image->channels) != image->pixels.size()) {
    __builtin_trap();
  }
  return 0;
}
