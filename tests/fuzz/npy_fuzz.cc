// NumPy .npy pairs and .npz archives. The input's first byte picks the reader and
// its layout; for a pair, the next two bytes say where the examples' file ends
// and the labels' begins.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "data/readers.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const bool npz = data[0] & 1, channels_first = data[0] & 2;
  seedproof::DeclaredClasses classes;
  if (data[0] & 4) classes.count = 10;
  if (npz) {
    const std::string path = seedproof::fuzz::WriteInput("input.npz", data + 1, size - 1);
    seedproof::ReadNpzPair(path, "x_train", "y_train", classes, channels_first).IgnoreError();
    return 0;
  }
  const size_t split = std::min<size_t>(size - 3, (size_t{data[1]} << 8) | data[2]);
  const std::string x = seedproof::fuzz::WriteInput("x.npy", data + 3, split);
  const std::string y = seedproof::fuzz::WriteInput("y.npy", data + 3 + split, size - 3 - split);
  seedproof::ReadNpyPair(x, y, classes, channels_first).IgnoreError();
  return 0;
}
