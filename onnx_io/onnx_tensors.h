// Constant tensors of an ONNX graph (initializers, Constant nodes) as plain
// vectors: the importer reads weights, biases, shapes and pads through this.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace onnx {
class TensorProto;
}

namespace seedproof {

struct ConstantTensor {
  std::vector<int64_t> dims;
  std::vector<float> floats;  // every element as float (integers converted too)
  std::vector<int64_t> ints;  // every element, for an integer tensor; empty otherwise
};

// The tensor's values: float32 and float64 from raw_data or the typed fields,
// int64 and int32 likewise. Other element types, external data, and a value count
// that does not match the dims are INVALID_ARGUMENT.
absl::StatusOr<ConstantTensor> ReadConstant(const onnx::TensorProto& tensor);

}  // namespace seedproof
