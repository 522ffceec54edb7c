// IDX files (Fashion-MNIST's format, and users' own) through ReadIdx.
#include <cstddef>
#include <cstdint>

#include "data/idx.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = seedproof::fuzz::WriteInput("input-idx3-ubyte", data, size);
  auto array = seedproof::ReadIdx(path);
  if (array.ok()) {
    size_t elements = 1;
    for (int64_t d : array->dims) elements *= static_cast<size_t>(d);
    if (elements != array->data.size()) __builtin_trap();
  }
  return 0;
}
