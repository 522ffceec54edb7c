// ONNX in and out: a model exported from PyTorch, Keras or TensorFlow read as
// seedproof layers and weights (a source model to transfer from), and any seedproof
// model written as ONNX (a trained model to take away). The only user of libonnx in
// the project; nothing here knows about gRPC, MPI, SQLite or the sweep spec.
//
//   auto graph = ReadOnnx(bytes, "model.onnx");   // layers, weights, reusable units
//   auto model = MakeOnnxModel(backend, *graph);   // a Model to derive transfers from
//   auto onnx = WriteOnnx(*model, "trained");      // and back out
//
// Layouts. ONNX images are (N, C, H, W); seedproof's are (N, H, W, C), Keras's
// layout, in which its datasets hold them. A graph input (N, C, H, W) becomes the
// example shape (H, W, C), (N, F) becomes (F); convolution kernels (O, I, kh, kw)
// become (kh, kw, I, O); a Gemm's weight (out, in) becomes (in, out); and where a
// Flatten turns (C, H, W) into a vector, the following dense kernel's rows are
// permuted from ONNX's channel-major order into seedproof's channels-last order, so
// the same image gives the same numbers. WriteOnnx does the reverse: its graph takes
// (N, H, W, C) input, as seedproof's data is, and transposes around convolutions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "backends/model_spec.h"

namespace seedproof {

// One reusable unit: a weight layer (Conv, Gemm, MatMul) with the bias,
// batch normalisation and activation that follow it, and the pooling, flattening
// and dropout up to the next weight layer (what comes before the first weight layer
// belongs to the first unit). "Reuse k" keeps the first k units.
struct OnnxUnit {
  int first_layer = 0, end_layer = 0;  // [first, end) of OnnxGraph::spec.layers
  std::string description;             // "Conv 3x3 (8) + BatchNormalization + Relu + MaxPool 2x2"
};

struct OnnxGraph {
  // Input in seedproof's layout and the layers, computing exactly what the graph
  // computes (the last layer's activation as the file has it; spec.loss is not
  // read from a file). `output_layer`: the chain ends in a Gemm or MatMul (with its
  // softmax, or one unit and its sigmoid, or neither), so it can be a source model
  // (SourceModelSpec).
  ModelSpec spec;
  bool output_layer = false;
  std::vector<std::vector<Tensor>> weights;  // per layer, Keras layout (GetWeights's)
  std::vector<OnnxUnit> units;
  int64_t opset = 0;                // of the default domain
  std::string producer;             // "pytorch 1.13.1"
  std::vector<int64_t> onnx_input;  // the file's input shape, batch dimension 0 if symbolic
  // When the graph ends in a Flatten of (C, H, W) data (with nothing after it that
  // weights features: its values are ONNX's in another order), (C, H, W); the
  // layers' output is then channels-last, (h * W + w) * C + c, where ONNX's is
  // (c * H + h) * W + w. Empty otherwise.
  std::vector<int64_t> output_flattened_chw;
};

// The opsets read: PyTorch 1.13 and tf2onnx write 9 to 17; older files (the ONNX
// test suite's go back to 1) are read where each operator's attributes say the
// same thing (a legacy attribute such as consumed_inputs is refused by name).
inline constexpr int64_t kMinOnnxOpset = 1;
inline constexpr int64_t kMaxOnnxOpset = 17;

// Reads an ONNX model: parsed by libonnx, checked by its checker and shape
// inference, then walked as a chain from the one graph input to the one output.
// Operators: Gemm, MatMul (+ Add), Conv (group 1, no dilation), BatchNormalization
// (inference form), Relu, LeakyRelu, Selu, Elu, Tanh, Sigmoid, Softmax and
// LogSoftmax (the output of a last Gemm or MatMul: read as its softmax),
// MaxPool, AveragePool, GlobalAveragePool, Flatten (and a Reshape that flattens),
// Pad (zeros, before a Conv or AveragePool), Dropout, Identity; constants from
// initializers, Constant nodes or Identity. Anything else is INVALID_ARGUMENT naming
// the node, its operator and why: an unsupported operator or attribute, a branch or
// residual connection, a shape that depends on the data, weights in external files,
// an opset beyond 17. Bytes that are not an ONNX model are DATA_LOSS. Every
// message starts with `name`.
absl::StatusOr<OnnxGraph> ReadOnnx(const std::string& bytes, const std::string& name);
// The largest ONNX file read: protobuf parses no message of 2 GiB or more (a
// model that large keeps its weights in external files, which are refused).
inline constexpr int64_t kMaxOnnxBytes = (int64_t{2} << 30) - 1;

// The graph as a source model: its last layer the output layer (softmax and sparse
// categorical cross-entropy, or one sigmoid unit and binary cross-entropy; the
// logits a file ends in get their activation). INVALID_ARGUMENT for a graph that
// does not end in an output layer.
absl::StatusOr<ModelSpec> SourceModelSpec(const OnnxGraph& graph);

// The graph's layers as a network body: a Flatten and a two-unit softmax layer
// after them make a spec seedproof can build, whose Features(n, body layers) are
// exactly what the graph computes (output_flattened_chw says in which order).
ModelSpec WithThrowawayHead(const ModelSpec& body);

// A model of `backend` with SourceModelSpec's layers and the graph's weights; every
// layer trainable.
absl::StatusOr<std::unique_ptr<Model>> MakeOnnxModel(Backend& backend, const OnnxGraph& graph);

// The model as an ONNX file (opset 14, IR version 8): input "input" (N, H, W, C)
// or (N, F), output "probabilities" (softmax, or the sigmoid of the one unit), as
// Model::Predict gives them. Dropout is left out (inference), batch normalisation
// uses the moving statistics. The file passes onnx::checker and shape inference.
// `graph_name` names the graph.
absl::StatusOr<std::string> WriteOnnx(const Model& model, const std::string& graph_name);

}  // namespace seedproof
