// For readers that take a path: the fuzzer's bytes in a file of this process's
// own (in /dev/shm when there is one), rewritten for every input.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace seedproof::fuzz {

// A file named `name` in a folder of this process's own, holding [data, data + size).
inline std::string WriteInput(const std::string& name, const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path shm = "/dev/shm";
    auto d = (std::filesystem::exists(shm) ? shm : std::filesystem::temp_directory_path()) /
             ("seedproof-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::filesystem::path path = dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path.string();
}

}  // namespace seedproof::fuzz
