#include "onnx_io/onnx_tensors.h"

#include <onnx/onnx_pb.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace seedproof {
namespace {

// `count` values of type T from raw_data (little-endian, as ONNX stores it and as
// this machine is) or from the typed repeated field.
template <typename T, typename Field>
absl::StatusOr<std::vector<T>> Values(const onnx::TensorProto& t, const Field& typed,
                                      int64_t count) {
  std::vector<T> out;
  if (t.has_raw_data()) {
    if (t.raw_data().size() != static_cast<size_t>(count) * sizeof(T)) {
      return absl::InvalidArgumentError(absl::StrCat("holds ", t.raw_data().size(), " bytes for ",
                                                     count, " values of ", sizeof(T), " bytes"));
    }
    out.resize(count);
    if (count > 0) std::memcpy(out.data(), t.raw_data().data(), t.raw_data().size());
    return out;
  }
  if (typed.size() != count) {
    return absl::InvalidArgumentError(
        absl::StrCat("holds ", typed.size(), " values where its dims say ", count));
  }
  out.assign(typed.begin(), typed.end());
  return out;
}

}  // namespace

absl::StatusOr<ConstantTensor> ReadConstant(const onnx::TensorProto& t) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    return absl::InvalidArgumentError("its values are in an external file");
  }
  ConstantTensor c;
  int64_t count = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d > 0 && count > (int64_t{1} << 40) / d)) {
      return absl::InvalidArgumentError(absl::StrCat("has a dimension of ", d));
    }
    c.dims.push_back(d);
    count *= d;
  }
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT: {
      auto v = Values<float>(t, t.float_data(), count);
      if (!v.ok()) return v.status();
      c.floats = *std::move(v);
      return c;
    }
    case onnx::TensorProto::DOUBLE: {
      auto v = Values<double>(t, t.double_data(), count);
      if (!v.ok()) return v.status();
      c.floats.assign(v->begin(), v->end());
      return c;
    }
    case onnx::TensorProto::INT64: {
      auto v = Values<int64_t>(t, t.int64_data(), count);
      if (!v.ok()) return v.status();
      c.ints = *std::move(v);
      break;
    }
    case onnx::TensorProto::INT32: {
      auto v = Values<int32_t>(t, t.int32_data(), count);
      if (!v.ok()) return v.status();
      c.ints.assign(v->begin(), v->end());
      break;
    }
    case onnx::TensorProto::BOOL: {
      // Stored one byte per value in raw_data, or as int32_data.
      if (t.has_raw_data()) {
        if (t.raw_data().size() != static_cast<size_t>(count)) {
          return absl::InvalidArgumentError(
              absl::StrCat("holds ", t.raw_data().size(), " bytes for ", count, " booleans"));
        }
        for (char b : t.raw_data()) c.ints.push_back(b != 0);
      } else {
        auto v = Values<int32_t>(t, t.int32_data(), count);
        if (!v.ok()) return v.status();
        c.ints.assign(v->begin(), v->end());
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("element type ", onnx::TensorProto::DataType_Name(t.data_type()),
                       " is not supported (float, double, int64, int32, bool)"));
  }
  c.floats.assign(c.ints.begin(), c.ints.end());
  return c;
}

}  // namespace seedproof
