// The ONNX importer: protobuf decoding (libonnx), the graph walk, and the layer
// description a source model must reduce to.
#include <cstddef>
#include <cstdint>
#include <string>

#include "onnx_io/onnx_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto graph = seedproof::ReadOnnx(bytes, "fuzz.onnx");
  if (graph.ok()) seedproof::SourceModelSpec(*graph).IgnoreError();
  return 0;
}
