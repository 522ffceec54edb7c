// Files the ONNX tests share: what tests/onnx/torch_models.py wrote (PyTorch's
// models, their outputs and 1,000 Fashion-MNIST test images) and bad_models.py
// wrote (models to refuse), and raw reads.
#pragma once

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/testing/script_output.h"

namespace seedproof::testing_support {

// The folder torch_models.py wrote (see its header for what is in it).
inline std::filesystem::path TorchModels() {
  static const std::filesystem::path root = ScriptOutput(
      std::filesystem::path(__FILE__).parent_path() / "torch_models.py", "seedproof_torch_models");
  return root;
}

// The folder bad_models.py wrote: ONNX files the importer must refuse, by name.
inline std::filesystem::path BadModels() {
  static const std::filesystem::path root = ScriptOutput(
      std::filesystem::path(__FILE__).parent_path() / "bad_models.py", "seedproof_bad_onnx");
  return root;
}

inline std::string ReadBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::vector<float> ReadFloats(const std::filesystem::path& path) {
  const std::string bytes = ReadBytes(path);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

// The largest |got - want| and where it is; a NaN counts as the worst.
struct WorstDifference {
  double diff = 0.0;
  size_t at = 0;
};
inline WorstDifference Worst(const std::vector<float>& got, const std::vector<float>& want) {
  WorstDifference worst;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double diff = std::fabs(double{got[i]} - want[i]);
    if (!(diff <= worst.diff)) worst = {std::isnan(diff) ? INFINITY : diff, i};
  }
  return worst;
}

inline void WriteBytes(const std::filesystem::path& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace seedproof::testing_support
