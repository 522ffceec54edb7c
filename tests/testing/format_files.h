// The first 2,000 training and 500 test images of the real Fashion-MNIST written in
// every dataset format by numpy and PIL (tests/data/write_formats.py lists them),
// for tests of the readers and of whole studies. Written once per version of the
// writer (its hash names the folder); ctest runs tests in processes of their own,
// some at once, so a copy is written aside and renamed into place: no process ever
// reads a half-written folder.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "data/content_hash.h"
#include "gtest/gtest.h"

namespace seedproof::testing_support {

// The folder with every format's files; "" after a failure the test has reported.
inline std::filesystem::path FormatFiles() {
  namespace fs = std::filesystem;
  const fs::path writer = fs::path(__FILE__).parent_path().parent_path() / "data/write_formats.py";
  std::ifstream in(writer, std::ios::binary);
  const std::string script(std::istreambuf_iterator<char>(in), {});
  const fs::path root = fs::path(::testing::TempDir()) /
                        absl::StrCat("seedproof_formats_", Sha256Hex(script).substr(0, 12));
  if (fs::exists(root)) return root;
  const fs::path aside = absl::StrCat(root.string(), ".", getpid());
  fs::remove_all(aside);
  const std::string command =
      absl::StrCat("/usr/bin/python3 ", writer.string(), " ", aside.string(), " 2>&1");
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << "failed: " << command;
    return {};
  }
  std::error_code lost;  // another process put its copy in place first
  fs::rename(aside, root, lost);
  if (lost) fs::remove_all(aside);
  return root;
}

}  // namespace seedproof::testing_support
