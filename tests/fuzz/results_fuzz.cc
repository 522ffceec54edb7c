// results.jsonl, as `seedproof report FILE` reads it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cli/results_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  seedproof::ParseResultsFile(text, "fuzz.jsonl").IgnoreError();
  return 0;
}
