// CSV files through libcsv and the reader's checks. The first byte picks the
// options: a header or not, the label column first or last, a (28, 28, 1) shape.
#include <cstddef>
#include <cstdint>

#include "data/readers.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  seedproof::CsvOptions options;
  options.header = data[0] & 1;
  options.label_index = (data[0] & 2) ? 0 : -1;
  if ((data[0] & 4) && options.header) options.label_column = "label";
  if (data[0] & 8) options.shape = {28, 28, 1};
  if (data[0] & 16) options.classes.count = 10;
  const std::string path = seedproof::fuzz::WriteInput("input.csv", data + 1, size - 1);
  seedproof::ReadCsv(path, options).IgnoreError();
  return 0;
}
