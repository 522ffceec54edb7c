// Files a test script writes (with numpy, PIL, PyTorch: independent of seedproof),
// written once per version of the script (its hash names the folder). ctest runs
// tests in processes of their own, some at once, so a copy is written aside and
// renamed into place: no process ever reads a half-written folder.
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

// The folder `script OUT` wrote, under the test temp dir as `stem`_<hash>; "" after
// a failure the test has reported.
inline std::filesystem::path ScriptOutput(const std::filesystem::path& script,
                                          const std::string& stem) {
  namespace fs = std::filesystem;
  std::ifstream in(script, std::ios::binary);
  const std::string text(std::istreambuf_iterator<char>(in), {});
  if (text.empty()) {
    ADD_FAILURE() << "cannot read " << script;
    return {};
  }
  const fs::path root =
      fs::path(::testing::TempDir()) / absl::StrCat(stem, "_", Sha256Hex(text).substr(0, 12));
  if (fs::exists(root)) return root;
  const fs::path aside = absl::StrCat(root.string(), ".", getpid());
  fs::remove_all(aside);
  const std::string command =
      absl::StrCat("/usr/bin/python3 ", script.string(), " ", aside.string(), " 2>&1");
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
