// The first 2,000 training and 500 test images of the real Fashion-MNIST written in
// every dataset format by numpy and PIL (tests/data/write_formats.py lists them),
// for tests of the readers and of whole studies.
#pragma once

#include <filesystem>

#include "tests/testing/script_output.h"

namespace seedproof::testing_support {

// The folder with every format's files; "" after a failure the test has reported.
inline std::filesystem::path FormatFiles() {
  return ScriptOutput(
      std::filesystem::path(__FILE__).parent_path().parent_path() / "data/write_formats.py",
      "seedproof_formats");
}

}  // namespace seedproof::testing_support
