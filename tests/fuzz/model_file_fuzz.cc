// seedproof's model file (what workers upload and download) through DecodeModelFile.
#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  seedproof::DecodeModelFile(bytes, "fuzz.model").IgnoreError();
  return 0;
}
