// A shipped dataset's encoding, as a worker decodes what the coordinator sends.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/dataset_blob.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  seedproof::DecodeDataset(std::string(reinterpret_cast<const char*>(data), size), "fuzz blob")
      .IgnoreError();
  return 0;
}
