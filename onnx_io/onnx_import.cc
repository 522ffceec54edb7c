// ReadOnnx and MakeOnnxModel (onnx_io/onnx_model.h): an ONNX chain graph walked
// node by node into seedproof layers, with the weights converted to Keras layout.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "onnx_io/onnx_model.h"
#include "onnx_io/onnx_tensors.h"

namespace seedproof {
namespace {

using onnx::AttributeProto;
using onnx::ModelProto;
using onnx::NodeProto;
using onnx::TensorProto;

// Where the data is: the dims of one example in ONNX's order ((C, H, W) or (F)),
// and whether a Transpose has put an image's channels last (tf2onnx does, before
// flattening).
struct DataShape {
  std::vector<int64_t> dims;
  bool channels_last = false;
  bool image() const { return dims.size() == 3; }
};

// The operators read, in the order the error message lists them.
const std::set<std::string> kOperators = {"Add",
                                          "AveragePool",
                                          "BatchNormalization",
                                          "Constant",
                                          "Conv",
                                          "Dropout",
                                          "Elu",
                                          "Flatten",
                                          "Gemm",
                                          "GlobalAveragePool",
                                          "Identity",
                                          "LeakyRelu",
                                          "LogSoftmax",
                                          "MatMul",
                                          "MaxPool",
                                          "Pad",
                                          "Relu",
                                          "Reshape",
                                          "Selu",
                                          "Sigmoid",
                                          "Softmax",
                                          "Tanh",
                                          "Transpose"};

std::string DimsText(const std::vector<int64_t>& dims) {
  return absl::StrCat("(", absl::StrJoin(dims, ", "), ")");
}

// The node's attributes by name.
class Attributes {
 public:
  explicit Attributes(const NodeProto& node) {
    for (const AttributeProto& a : node.attribute()) by_name_[a.name()] = &a;
  }
  bool has(const std::string& name) const { return by_name_.contains(name); }
  int64_t Int(const std::string& name, int64_t fallback) const {
    const AttributeProto* a = Find(name);
    return a ? a->i() : fallback;
  }
  float Float(const std::string& name, float fallback) const {
    const AttributeProto* a = Find(name);
    return a ? a->f() : fallback;
  }
  std::string String(const std::string& name, const std::string& fallback) const {
    const AttributeProto* a = Find(name);
    return a ? a->s() : fallback;
  }
  std::vector<int64_t> Ints(const std::string& name, std::vector<int64_t> fallback) const {
    const AttributeProto* a = Find(name);
    return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
  }
  const TensorProto* Tensor(const std::string& name) const {
    const AttributeProto* a = Find(name);
    return a && a->has_t() ? &a->t() : nullptr;
  }
  // Names of the attributes outside `known`, for "unsupported attribute" errors.
  std::vector<std::string> Unknown(const std::set<std::string>& known) const {
    std::vector<std::string> out;
    for (const auto& [name, a] : by_name_) {
      if (!known.contains(name)) out.push_back(name);
    }
    return out;
  }

 private:
  const AttributeProto* Find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  std::map<std::string, const AttributeProto*> by_name_;
};

// Walks the graph's nodes in order, keeping the name of the tensor that carries
// the data and the layers made so far.
class Walker {
 public:
  Walker(const ModelProto& model, const std::string& name) : model_(model), name_(name) {}

  absl::StatusOr<OnnxGraph> Run();

 private:
  // "node 'conv1' (Conv): why", or for a node without a name its position:
  // "node #3 (Conv): why".
  absl::Status Fail(const NodeProto& node, const std::string& why) const {
    const std::string which =
        node.name().empty() ? absl::StrCat("#", node_index_) : absl::StrCat("'", node.name(), "'");
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": node ", which, " (", node.op_type(), "): ", why));
  }
  absl::Status FailGraph(const std::string& why) const {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": ", why));
  }

  absl::Status ReadInput();
  absl::Status Step(const NodeProto& node);
  // The constant a node input names, or an error naming it.
  absl::StatusOr<const ConstantTensor*> ConstantInput(const NodeProto& node, int index,
                                                      const char* what) const;
  bool IsConstant(const std::string& tensor) const { return constants_.contains(tensor); }
  absl::Status CheckUnusedOutputs(const NodeProto& node) const;
  absl::Status CheckAttributes(const NodeProto& node, const std::set<std::string>& known) const;

  absl::Status Conv(const NodeProto& node);
  absl::Status Dense(const NodeProto& node, bool gemm);
  absl::Status BiasAdd(const NodeProto& node);
  absl::Status BatchNormalization(const NodeProto& node);
  absl::Status Activation(const NodeProto& node);
  absl::Status OutputActivation(const NodeProto& node);
  absl::Status Pool(const NodeProto& node, bool max);
  absl::Status Flatten(const NodeProto& node);
  absl::Status Dropout(const NodeProto& node);
  absl::Status Pad(const NodeProto& node);
  absl::Status Transpose(const NodeProto& node);
  absl::Status TransposeConstant(const NodeProto& node);

  // The data's dims in ONNX's terms, for messages: (C, L) for a sequence.
  std::string DataText() const {
    std::vector<int64_t> dims = shape_.dims;
    if (sequence_ && dims.size() == 3) dims.pop_back();
    return DimsText(dims);
  }
  // A window attribute (kernel_shape, strides, dilations, pads) in two dimensions:
  // for sequences, ONNX's one-dimensional (k) is (k, 1) and pads (b, e) are
  // (b, 0, e, 0).
  std::vector<int64_t> Spatial(const Attributes& a, const std::string& name,
                               std::vector<int64_t> fallback) const {
    if (!a.has(name)) return fallback;
    std::vector<int64_t> v = a.Ints(name, {});
    if (!sequence_) return v;
    if (name == "pads") return v.size() == 2 ? std::vector<int64_t>{v[0], 0, v[1], 0} : v;
    return v.size() == 1 ? std::vector<int64_t>{v[0], 1} : v;
  }
  // Window geometry from auto_pad / pads / strides / kernel_shape, and a pending
  // Pad's zeros; fills the layer and returns the output dims.
  absl::StatusOr<std::vector<int64_t>> Window(const NodeProto& node, const Attributes& a,
                                              int64_t kh, int64_t kw, LayerSpec& layer,
                                              bool pad_counts);
  // Feature r of seedproof's channels-last flatten is ONNX's feature
  // (c * H + h) * W + w after a channel-major Flatten of (C, H, W) (permute_rows_).
  int64_t OnnxFeature(int64_t r) const {
    if (!permute_rows_) return r;
    const int64_t c = (*permute_rows_)[0], hw = (*permute_rows_)[1] * (*permute_rows_)[2];
    return (r % c) * hw + r / c;
  }
  // Appends a layer; a weight layer starts a unit.
  void Add(LayerSpec layer, std::vector<Tensor> weights, const std::string& text);
  // The last layer, when it can take an activation in place (nothing after it).
  LayerSpec* Activatable();

  const ModelProto& model_;
  const std::string& name_;
  std::map<std::string, ConstantTensor> constants_;
  std::map<std::string, int> consumers_;  // tensor -> how many nodes read it
  std::string data_;                      // the tensor that carries the data
  DataShape shape_;
  // A Flatten of (C, H, W) with C > 1 channel-major: the next dense kernel's rows
  // are reordered (onnx_model.h). Its (C, H, W).
  std::optional<std::vector<int64_t>> permute_rows_;
  // A Pad of zeros waiting for the Conv or AveragePool that takes it: (top,
  // bottom, left, right).
  std::optional<std::array<int64_t, 4>> pending_pad_;
  std::string pending_pad_node_;
  bool output_activation_seen_ = false;  // Softmax, LogSoftmax: nothing may follow
  bool unit_has_weights_ = false;        // the units so far include a weight layer
  bool input_transposed_ = false;        // a Transpose took (N, H, W, C) input to NCHW
  bool sequence_ = false;                // (N, C, L) data, held as (N, C, L, 1)
  int node_index_ = 0;                   // of the node being read, from 0
  OnnxGraph graph_;
};

absl::StatusOr<const ConstantTensor*> Walker::ConstantInput(const NodeProto& node, int index,
                                                            const char* what) const {
  if (index >= node.input_size() || node.input(index).empty()) {
    return Fail(node, absl::StrCat("has no ", what, " input"));
  }
  const std::string& tensor = node.input(index);
  auto it = constants_.find(tensor);
  if (it == constants_.end()) {
    return Fail(node, absl::StrCat("its ", what, " '", tensor,
                                   "' is computed in the graph, not a stored constant (seedproof "
                                   "reads chains whose weights are initializers)"));
  }
  return &it->second;
}

absl::Status Walker::CheckUnusedOutputs(const NodeProto& node) const {
  for (int i = 1; i < node.output_size(); ++i) {
    if (!node.output(i).empty() && consumers_.contains(node.output(i))) {
      return Fail(node, absl::StrCat("its output ", i, " ('", node.output(i),
                                     "') is used: seedproof reads only chains of single outputs"));
    }
  }
  return absl::OkStatus();
}

absl::Status Walker::CheckAttributes(const NodeProto& node,
                                     const std::set<std::string>& known) const {
  const std::vector<std::string> unknown = Attributes(node).Unknown(known);
  if (unknown.empty()) return absl::OkStatus();
  return Fail(node, absl::StrCat("attribute ", absl::StrJoin(unknown, ", "), " is not supported"));
}

absl::Status Walker::ReadInput() {
  std::set<std::string> initializers;
  for (const TensorProto& t : model_.graph().initializer()) initializers.insert(t.name());
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const onnx::ValueInfoProto& v : model_.graph().input()) {
    if (!initializers.contains(v.name())) inputs.push_back(&v);
  }
  if (inputs.size() != 1) {
    return FailGraph(absl::StrCat("the graph has ", inputs.size(),
                                  " data inputs; seedproof reads graphs of one"));
  }
  if (model_.graph().output_size() != 1) {
    return FailGraph(absl::StrCat("the graph has ", model_.graph().output_size(),
                                  " outputs; seedproof reads graphs of one"));
  }
  const onnx::ValueInfoProto& input = *inputs.front();
  data_ = input.name();
  if (!input.type().has_tensor_type() ||
      input.type().tensor_type().elem_type() != TensorProto::FLOAT) {
    return FailGraph(absl::StrCat("input '", input.name(), "' is not a float32 tensor"));
  }
  const auto& dims = input.type().tensor_type().shape().dim();
  if (dims.size() < 2 || dims.size() > 4) {
    return FailGraph(
        absl::StrCat("input '", input.name(), "' has ", dims.size(),
                     " dimensions; seedproof reads (N, features), (N, C, L) and (N, C, H, W)"));
  }
  graph_.onnx_input.push_back(dims[0].has_dim_value() ? dims[0].dim_value() : 0);
  for (int d = 1; d < dims.size(); ++d) {
    if (!dims[d].has_dim_value() || dims[d].dim_value() < 1) {
      return FailGraph(absl::StrCat("input '", input.name(), "' dimension ", d, " is '",
                                    dims[d].dim_param(),
                                    "': a shape that depends on the data (only the batch "
                                    "dimension may)"));
    }
    shape_.dims.push_back(dims[d].dim_value());
    graph_.onnx_input.push_back(dims[d].dim_value());
  }
  if (shape_.dims.size() == 2) {
    // A sequence (C, L): an image (C, L, 1), its 1-D windows (k) windows (k, 1).
    sequence_ = true;
    shape_.dims.push_back(1);
  }
  const auto& d = shape_.dims;
  graph_.spec.input = shape_.image() ? Shape{d[1], d[2], d[0]} : Shape{d[0]};
  return absl::OkStatus();
}

void Walker::Add(LayerSpec layer, std::vector<Tensor> weights, const std::string& text) {
  const int index = static_cast<int>(graph_.spec.layers.size());
  graph_.spec.layers.push_back(layer);
  graph_.weights.push_back(std::move(weights));
  const bool starts_unit = layer.kind == LayerKind::kDense || layer.kind == LayerKind::kConv2D;
  std::vector<OnnxUnit>& units = graph_.units;
  if (starts_unit || units.empty()) {
    // What came before the first weight layer stays in the first unit.
    if (starts_unit && units.size() == 1 && !unit_has_weights_) {
      unit_has_weights_ = true;
      units.back().description = units.back().description.empty()
                                     ? text
                                     : absl::StrCat(units.back().description, " + ", text);
      units.back().end_layer = index + 1;
      return;
    }
    units.push_back({index, index + 1, text});
    unit_has_weights_ = unit_has_weights_ || starts_unit;
    return;
  }
  units.back().end_layer = index + 1;
  if (!text.empty()) absl::StrAppend(&units.back().description, " + ", text);
}

LayerSpec* Walker::Activatable() {
  if (graph_.spec.layers.empty()) return nullptr;
  LayerSpec& last = graph_.spec.layers.back();
  if (!last.takes_activation() || last.activation != ::seedproof::Activation::kLinear)
    return nullptr;
  return &last;
}

absl::StatusOr<OnnxGraph> Walker::Run() {
  for (const TensorProto& t : model_.graph().initializer()) {
    auto c = ReadConstant(t);
    if (!c.ok())
      return FailGraph(absl::StrCat("initializer '", t.name(), "': ", c.status().message()));
    constants_[t.name()] = *std::move(c);
  }
  for (const NodeProto& node : model_.graph().node()) {
    for (const std::string& in : node.input()) ++consumers_[in];
  }
  for (const onnx::ValueInfoProto& out : model_.graph().output()) ++consumers_[out.name()];
  if (auto s = ReadInput(); !s.ok()) return s;
  for (const NodeProto& node : model_.graph().node()) {
    if (auto s = Step(node); !s.ok()) return s;
    ++node_index_;
  }
  if (pending_pad_) {
    return FailGraph(absl::StrCat("node '", pending_pad_node_,
                                  "' (Pad) is the last: its zeros pad "
                                  "nothing seedproof computes"));
  }
  if (data_ != model_.graph().output(0).name()) {
    return FailGraph(absl::StrCat("the graph's output '", model_.graph().output(0).name(),
                                  "' is not the end of its chain ('", data_, "')"));
  }
  if (graph_.spec.layers.empty()) return FailGraph("the graph computes nothing seedproof has");
  if (permute_rows_) graph_.output_flattened_chw = *permute_rows_;
  // An output layer: the chain ends in a dense layer (its logits, or their softmax
  // or sigmoid).
  const LayerSpec& last = graph_.spec.layers.back();
  graph_.output_layer = last.kind == LayerKind::kDense &&
                        (last.activation == ::seedproof::Activation::kLinear ||
                         (last.activation == ::seedproof::Activation::kSoftmax && last.units > 1) ||
                         (last.activation == ::seedproof::Activation::kSigmoid && last.units == 1));
  return std::move(graph_);
}

absl::Status Walker::Step(const NodeProto& node) {
  const std::string& op = node.op_type();
  if (!node.domain().empty() && node.domain() != "ai.onnx") {
    return Fail(node, absl::StrCat("operators of domain '", node.domain(), "' are not supported"));
  }
  // Constants: stored, or computed from stored ones by Identity.
  if (op == "Constant") {
    const TensorProto* value = Attributes(node).Tensor("value");
    if (value == nullptr) return Fail(node, "only a 'value' tensor constant is supported");
    auto c = ReadConstant(*value);
    if (!c.ok()) return Fail(node, std::string(c.status().message()));
    constants_[node.output(0)] = *std::move(c);
    return absl::OkStatus();
  }
  if (op == "Shape" || op == "Size" || op == "NonZero") {
    return Fail(node,
                "computes from the data's shape or values: a shape that depends on the data "
                "(seedproof reads graphs whose shapes are fixed but for the batch)");
  }
  if (!kOperators.contains(op)) {
    return Fail(node, absl::StrCat("this operator is not supported (seedproof reads ",
                                   absl::StrJoin(kOperators, ", "), ")"));
  }
  const bool reads_data =
      std::find(node.input().begin(), node.input().end(), data_) != node.input().end();
  if (!reads_data) {
    if (op == "Identity" && node.input_size() == 1 && IsConstant(node.input(0))) {
      constants_[node.output(0)] = constants_.at(node.input(0));
      return absl::OkStatus();
    }
    if (op == "Transpose" && node.input_size() == 1 && IsConstant(node.input(0))) {
      return TransposeConstant(node);  // a weight transposed in the graph (PyTorch does)
    }
    return Fail(node, absl::StrCat("does not continue the chain from '", data_,
                                   "': a branch, or a computation seedproof does not read"));
  }
  if (output_activation_seen_) {
    return Fail(node, "follows the output's softmax: the output activation must be the last node");
  }
  if (node.input(0) != data_) {
    return Fail(node, "reads the chain's data as a second input: a branch or residual connection");
  }
  for (int i = 1; i < node.input_size(); ++i) {
    if (!node.input(i).empty() && !IsConstant(node.input(i))) {
      return Fail(node, absl::StrCat("input '", node.input(i),
                                     "' is computed from the data: a branch, a residual connection "
                                     "or a shape that depends on the data"));
    }
  }
  if (consumers_[data_] > 1) {
    return Fail(node, absl::StrCat("'", data_, "' is read by ", consumers_[data_],
                                   " nodes: a branch or residual connection"));
  }
  if (auto s = CheckUnusedOutputs(node); !s.ok()) return s;
  if (pending_pad_ && op != "Conv" && op != "AveragePool") {
    return Fail(node, absl::StrCat("follows Pad node '", pending_pad_node_,
                                   "': seedproof takes padding only into a Conv or AveragePool"));
  }
  absl::Status status;
  if (op == "Conv") {
    status = Conv(node);
  } else if (op == "Gemm" || op == "MatMul") {
    status = Dense(node, op == "Gemm");
  } else if (op == "Add") {
    status = BiasAdd(node);
  } else if (op == "BatchNormalization") {
    status = BatchNormalization(node);
  } else if (op == "Relu" || op == "LeakyRelu" || op == "Selu" || op == "Elu" || op == "Tanh" ||
             op == "Sigmoid") {
    status = Activation(node);
  } else if (op == "Softmax" || op == "LogSoftmax") {
    status = OutputActivation(node);
  } else if (op == "MaxPool" || op == "AveragePool") {
    status = Pool(node, op == "MaxPool");
  } else if (op == "GlobalAveragePool") {
    status = CheckAttributes(node, {});
    if (status.ok() && !shape_.image()) status = Fail(node, "needs a (C, H, W) input");
    if (status.ok() && shape_.channels_last) status = Fail(node, "needs channels-first data");
    if (status.ok()) {
      Add(LayerSpec::GlobalAvgPool2D(), {}, "GlobalAveragePool");
      shape_.dims = {shape_.dims[0], 1, 1};
    }
  } else if (op == "Flatten" || op == "Reshape") {
    status = Flatten(node);
  } else if (op == "Dropout") {
    status = Dropout(node);
  } else if (op == "Identity") {
    status = absl::OkStatus();
  } else if (op == "Pad") {
    status = Pad(node);
  } else if (op == "Transpose") {
    status = Transpose(node);
  } else {
    status = Fail(node, "is in the operator list but has no reader (a seedproof bug)");
  }
  if (!status.ok()) return status;
  data_ = node.output(0);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> Walker::Window(const NodeProto& node, const Attributes& a,
                                                    int64_t kh, int64_t kw, LayerSpec& layer,
                                                    bool pad_counts) {
  const std::vector<int64_t> strides = Spatial(a, "strides", {1, 1});
  const std::vector<int64_t> dilations = Spatial(a, "dilations", {1, 1});
  if (strides.size() != 2 || strides[0] < 1 || strides[1] < 1) {
    return Fail(node, absl::StrCat("strides ", DimsText(strides), " are not two positive values"));
  }
  if (dilations != std::vector<int64_t>{1, 1}) {
    return Fail(node,
                absl::StrCat("dilations ", DimsText(dilations), " are not supported (1, 1 only)"));
  }
  const int64_t h = shape_.dims[1], w = shape_.dims[2];
  std::vector<int64_t> pads = Spatial(a, "pads", {0, 0, 0, 0});
  if (pads.size() != 4)
    return Fail(node, absl::StrCat("pads ", DimsText(pads), " do not fit the data"));
  const std::string auto_pad = a.String("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    // The output is ceil(in / stride); the padding's odd one goes at the end
    // (UPPER, TensorFlow's 'same') or the start (LOWER).
    const int64_t in[2] = {h, w}, k[2] = {kh, kw};
    for (int d = 0; d < 2; ++d) {
      const int64_t out = (in[d] + strides[d] - 1) / strides[d];
      const int64_t total = std::max<int64_t>((out - 1) * strides[d] + k[d] - in[d], 0);
      const int64_t small = total / 2, big = total - small;
      pads[d] = auto_pad == "SAME_UPPER" ? small : big;
      pads[d + 2] = auto_pad == "SAME_UPPER" ? big : small;
    }
  } else if (auto_pad == "VALID") {
    pads = {0, 0, 0, 0};
  } else if (auto_pad != "NOTSET") {
    return Fail(node, absl::StrCat("auto_pad '", auto_pad, "' is not one ONNX defines"));
  }
  if (pending_pad_) {
    if (!pad_counts) {
      return Fail(
          node, absl::StrCat("follows Pad node '", pending_pad_node_, "' whose zeros would count"));
    }
    const std::array<int64_t, 4>& p = *pending_pad_;  // top, bottom, left, right
    pads = {pads[0] + p[0], pads[1] + p[2], pads[2] + p[1], pads[3] + p[3]};
    pending_pad_.reset();
  }
  // ONNX pads: (top, left, bottom, right).
  layer.kernel_h = static_cast<int>(kh);
  layer.kernel_w = static_cast<int>(kw);
  layer.stride_h = static_cast<int>(strides[0]);
  layer.stride_w = static_cast<int>(strides[1]);
  if (pads == std::vector<int64_t>{0, 0, 0, 0}) {
    layer.padding = Padding::kValid;
  } else {
    if (pads[0] >= kh || pads[2] >= kh || pads[1] >= kw || pads[3] >= kw ||
        *std::min_element(pads.begin(), pads.end()) < 0) {
      return Fail(node, absl::StrCat("pads ", DimsText(pads), " are not in [0, kernel size)"));
    }
    layer.padding = Padding::kExplicit;
    layer.pad_top = static_cast<int>(pads[0]);
    layer.pad_left = static_cast<int>(pads[1]);
    layer.pad_bottom = static_cast<int>(pads[2]);
    layer.pad_right = static_cast<int>(pads[3]);
  }
  const int64_t oh = (h + pads[0] + pads[2] - kh) / strides[0] + 1;
  const int64_t ow = (w + pads[1] + pads[3] - kw) / strides[1] + 1;
  if (h + pads[0] + pads[2] < kh || w + pads[1] + pads[3] < kw) {
    return Fail(node, absl::StrCat("its ", kh, "x", kw, " window is larger than its ", h, "x", w,
                                   " input"));
  }
  return std::vector<int64_t>{oh, ow};
}

absl::Status Walker::Conv(const NodeProto& node) {
  if (auto s = CheckAttributes(
          node, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
      !s.ok()) {
    return s;
  }
  const Attributes a(node);
  if (a.Int("group", 1) != 1) {
    return Fail(node, absl::StrCat("group ", a.Int("group", 1),
                                   " is not supported (grouped and depthwise convolutions)"));
  }
  if (!shape_.image() || shape_.channels_last) {
    return Fail(node, absl::StrCat("needs (C, H, W) data, gets ", DataText()));
  }
  auto w = ConstantInput(node, 1, "weight");
  if (!w.ok()) return w.status();
  std::vector<int64_t> wd = (*w)->dims;
  if (sequence_ && wd.size() == 3) wd.push_back(1);  // (O, I, k) is (O, I, k, 1)
  const int64_t c = shape_.dims[0];
  if (wd.size() != 4 || wd[1] != c) {
    return Fail(node, absl::StrCat("weight '", node.input(1), "' is ", DimsText((*w)->dims),
                                   "; the data has ", c, " channels: expected (filters, ", c,
                                   sequence_ ? ", k)" : ", kh, kw)"));
  }
  const int64_t o = wd[0], kh = wd[2], kw = wd[3];
  const std::vector<int64_t> kernel_shape = Spatial(a, "kernel_shape", {kh, kw});
  if (kernel_shape != std::vector<int64_t>{kh, kw}) {
    return Fail(node, absl::StrCat("kernel_shape ", DimsText(kernel_shape), " is not the weight's ",
                                   kh, "x", kw));
  }
  LayerSpec layer = LayerSpec::Conv2D(static_cast<int>(o), 1, 1, Padding::kValid,
                                      ::seedproof::Activation::kLinear);
  auto out = Window(node, a, kh, kw, layer, /*pad_counts=*/true);
  if (!out.ok()) return out.status();
  // (O, I, kh, kw) -> (kh, kw, I, O).
  Tensor kernel{{kh, kw, c, o}, std::vector<float>(kh * kw * c * o)};
  for (int64_t f = 0; f < o; ++f) {
    for (int64_t i = 0; i < c; ++i) {
      for (int64_t y = 0; y < kh; ++y) {
        for (int64_t x = 0; x < kw; ++x) {
          kernel.values[((y * kw + x) * c + i) * o + f] =
              (*w)->floats[((f * c + i) * kh + y) * kw + x];
        }
      }
    }
  }
  Tensor bias{{o}, std::vector<float>(o, 0.0f)};
  if (node.input_size() > 2 && !node.input(2).empty()) {
    auto b = ConstantInput(node, 2, "bias");
    if (!b.ok()) return b.status();
    if (static_cast<int64_t>((*b)->floats.size()) != o) {
      return Fail(node, absl::StrCat("bias '", node.input(2), "' has ", (*b)->floats.size(),
                                     " values for ", o, " filters"));
    }
    bias.values = (*b)->floats;
  }
  Add(layer, {std::move(kernel), std::move(bias)},
      absl::StrCat("Conv ", kh, "x", kw, " (", o, layer.stride_h > 1 ? ", stride " : "",
                   layer.stride_h > 1 ? absl::StrCat(layer.stride_h) : "", ")"));
  shape_.dims = {o, (*out)[0], (*out)[1]};
  return absl::OkStatus();
}

absl::Status Walker::Dense(const NodeProto& node, bool gemm) {
  if (auto s = CheckAttributes(
          node, gemm ? std::set<std::string>{"alpha", "beta", "transA", "transB", "broadcast"}
                     : std::set<std::string>{});
      !s.ok()) {
    return s;
  }
  const Attributes a(node);
  if (shape_.dims.size() != 1) {
    return Fail(node,
                absl::StrCat("needs (N, features) data, gets ", DataText(), " (flatten it first)"));
  }
  if (gemm && a.Int("transA", 0) != 0) return Fail(node, "transA 1 is not supported");
  auto w = ConstantInput(node, 1, "weight");
  if (!w.ok()) return w.status();
  const int64_t in = shape_.dims[0];
  const std::vector<int64_t>& wd = (*w)->dims;
  const bool trans_b = gemm && a.Int("transB", 0) != 0;
  if (wd.size() != 2 || (trans_b ? wd[1] : wd[0]) != in) {
    return Fail(node, absl::StrCat("weight '", node.input(1), "' is ", DimsText(wd),
                                   "; the data has ", in, " features: expected ",
                                   trans_b ? absl::StrCat("(units, ", in, ")")
                                           : absl::StrCat("(", in, ", units)")));
  }
  const int64_t out = trans_b ? wd[0] : wd[1];
  const float alpha = gemm ? a.Float("alpha", 1.0f) : 1.0f;
  const float beta = gemm ? a.Float("beta", 1.0f) : 1.0f;
  Tensor kernel{{in, out}, std::vector<float>(in * out)};
  for (int64_t r = 0; r < in; ++r) {
    const int64_t s = OnnxFeature(r);
    for (int64_t u = 0; u < out; ++u) {
      kernel.values[r * out + u] =
          alpha * (trans_b ? (*w)->floats[u * in + s] : (*w)->floats[s * out + u]);
    }
  }
  permute_rows_.reset();
  Tensor bias{{out}, std::vector<float>(out, 0.0f)};
  if (gemm && node.input_size() > 2 && !node.input(2).empty()) {
    auto c = ConstantInput(node, 2, "bias");
    if (!c.ok()) return c.status();
    const std::vector<float>& values = (*c)->floats;
    if (values.size() == 1) {
      bias.values.assign(out, beta * values[0]);
    } else if (static_cast<int64_t>(values.size()) == out) {
      for (int64_t u = 0; u < out; ++u) bias.values[u] = beta * values[u];
    } else {
      return Fail(node, absl::StrCat("bias '", node.input(2), "' has ", values.size(),
                                     " values for ", out, " units"));
    }
  }
  Add(LayerSpec::Dense(static_cast<int>(out), ::seedproof::Activation::kLinear),
      {std::move(kernel), std::move(bias)}, absl::StrCat(gemm ? "Gemm " : "MatMul ", out));
  shape_.dims = {out};
  return absl::OkStatus();
}

absl::Status Walker::BiasAdd(const NodeProto& node) {
  // The data plus a constant right after a MatMul or Conv: that layer's bias.
  const bool after_weights =
      !graph_.spec.layers.empty() &&
      (graph_.spec.layers.back().kind == LayerKind::kDense ||
       graph_.spec.layers.back().kind == LayerKind::kConv2D) &&
      graph_.spec.layers.back().activation == ::seedproof::Activation::kLinear &&
      graph_.units.back().end_layer == static_cast<int>(graph_.spec.layers.size());
  if (!after_weights || node.input_size() != 2) {
    return Fail(node, "only an Add of a constant bias right after a MatMul or Conv is supported");
  }
  auto b = ConstantInput(node, 1, "bias");
  if (!b.ok()) return b.status();
  std::vector<Tensor>& weights = graph_.weights.back();
  const int64_t units = static_cast<int64_t>(weights[1].values.size());
  // The constant must broadcast along the units: (units) or (1, units) after a
  // MatMul; (units, 1, 1) or (1, units, 1, 1) after a Conv, whose data is (N, C, H, W)
  // (a plain (units) would broadcast along the width), or (units) with opset 1-6's
  // broadcast=1, axis=1.
  const bool conv = graph_.spec.layers.back().kind == LayerKind::kConv2D;
  const Attributes a(node);
  if (auto s = CheckAttributes(node, {"broadcast", "axis"}); !s.ok()) return s;
  std::vector<int64_t> dims = (*b)->dims;
  while (!dims.empty() && dims.front() == 1 && dims.size() > (conv ? 3u : 1u)) {
    dims.erase(dims.begin());
  }
  const bool legacy_channels = a.Int("broadcast", 0) == 1 && a.Int("axis", -1) == 1;
  const bool fits = conv ? dims == std::vector<int64_t>{units, 1, 1} ||
                               (legacy_channels && dims == std::vector<int64_t>{units})
                         : dims == std::vector<int64_t>{units};
  if (!fits) {
    return Fail(node, absl::StrCat("its constant '", node.input(1), "' ", DimsText((*b)->dims),
                                   " is not a bias of the ", units, conv ? " channels" : " outputs",
                                   conv ? " (expected (C, 1, 1))" : ""));
  }
  for (int64_t u = 0; u < units; ++u) weights[1].values[u] += (*b)->floats[u];
  return absl::OkStatus();
}

absl::Status Walker::BatchNormalization(const NodeProto& node) {
  if (auto s =
          CheckAttributes(node, {"epsilon", "momentum", "training_mode", "spatial", "is_test"});
      !s.ok()) {
    return s;
  }
  const Attributes a(node);
  if (a.Int("training_mode", 0) != 0) {
    return Fail(node,
                "training_mode 1: export the model in eval mode (its batch statistics are "
                "not weights)");
  }
  if (a.Int("spatial", 1) != 1) return Fail(node, "spatial 0 is not supported");
  if (a.has("is_test") && a.Int("is_test", 0) == 0) {
    return Fail(node, "is_test 0 (training mode, opsets before 7): export the model in eval mode");
  }
  if (shape_.channels_last && shape_.image()) return Fail(node, "needs channels-first data");
  const int64_t c = shape_.dims[0];
  std::vector<Tensor> weights;
  const char* names[4] = {"scale", "bias", "mean", "variance"};
  for (int i = 0; i < 4; ++i) {
    auto t = ConstantInput(node, i + 1, names[i]);
    if (!t.ok()) return t.status();
    if (static_cast<int64_t>((*t)->floats.size()) != c) {
      return Fail(node, absl::StrCat("its ", names[i], " '", node.input(i + 1), "' has ",
                                     (*t)->floats.size(), " values for ", c, " channels"));
    }
    // Per feature after a channel-major flatten: in seedproof's order.
    Tensor values{{c}, std::vector<float>(c)};
    for (int64_t r = 0; r < c; ++r) values.values[r] = (*t)->floats[OnnxFeature(r)];
    weights.push_back(std::move(values));
  }
  // ONNX's momentum is the moving statistic's share, as seedproof's (0.9 = PyTorch's 0.1).
  Add(LayerSpec::BatchNorm(a.Float("epsilon", 1e-5f), a.Float("momentum", 0.9f)),
      std::move(weights), "BatchNormalization");
  return absl::OkStatus();
}

absl::Status Walker::Activation(const NodeProto& node) {
  const std::string& op = node.op_type();
  const Attributes a(node);
  ::seedproof::Activation activation = ::seedproof::Activation::kRelu;
  float alpha = 0.0f;
  if (op == "Relu" || op == "Tanh" || op == "Sigmoid") {
    if (auto s = CheckAttributes(node, {}); !s.ok()) return s;
    activation = op == "Relu"   ? ::seedproof::Activation::kRelu
                 : op == "Tanh" ? ::seedproof::Activation::kTanh
                                : ::seedproof::Activation::kSigmoid;
  } else if (op == "LeakyRelu") {
    if (auto s = CheckAttributes(node, {"alpha"}); !s.ok()) return s;
    activation = ::seedproof::Activation::kLeakyRelu;
    alpha = a.Float("alpha", 0.01f);
    if (!(alpha >= 0.0f && alpha <= 1.0f)) {
      return Fail(node, absl::StrCat("alpha ", alpha, " is not in [0, 1]"));
    }
  } else if (op == "Elu") {
    if (auto s = CheckAttributes(node, {"alpha"}); !s.ok()) return s;
    if (a.Float("alpha", 1.0f) != 1.0f) {
      return Fail(node,
                  absl::StrCat("alpha ", a.Float("alpha", 1.0f), " is not supported (1 only)"));
    }
    activation = ::seedproof::Activation::kElu;
  } else {  // Selu, with the constants every framework uses (PyTorch writes none)
    if (auto s = CheckAttributes(node, {"alpha", "gamma"}); !s.ok()) return s;
    const float alpha_attr = a.Float("alpha", 1.67326319217681884765625f);
    const float gamma = a.Float("gamma", 1.05070102214813232421875f);
    if (std::fabs(alpha_attr - 1.6732632f) > 1e-6f || std::fabs(gamma - 1.0507010f) > 1e-6f) {
      return Fail(node, absl::StrCat("alpha ", alpha_attr, " and gamma ", gamma,
                                     " are not SELU's constants"));
    }
    activation = ::seedproof::Activation::kSelu;
  }
  if (LayerSpec* last = Activatable()) {
    last->activation = activation;
    last->alpha = alpha;
    OnnxUnit& unit = graph_.units.back();
    absl::StrAppend(&unit.description, " + ", op);
    return absl::OkStatus();
  }
  Add(LayerSpec::ActivationLayer(activation, alpha), {}, op);
  return absl::OkStatus();
}

absl::Status Walker::OutputActivation(const NodeProto& node) {
  if (auto s = CheckAttributes(node, {"axis"}); !s.ok()) return s;
  const int64_t axis = Attributes(node).Int("axis", model_.opset_import().empty() ? 1 : -1);
  const bool last_axis = axis == -1 || axis == 1;
  if (shape_.dims.size() != 1 || !last_axis || graph_.spec.layers.empty() ||
      graph_.spec.layers.back().kind != LayerKind::kDense ||
      graph_.spec.layers.back().activation != ::seedproof::Activation::kLinear) {
    return Fail(node,
                "only a softmax over the units of a last Gemm or MatMul is supported (the "
                "output layer's)");
  }
  graph_.spec.layers.back().activation = ::seedproof::Activation::kSoftmax;
  absl::StrAppend(&graph_.units.back().description, " + ", node.op_type());
  output_activation_seen_ = true;
  return absl::OkStatus();
}

absl::Status Walker::Pool(const NodeProto& node, bool max) {
  if (auto s = CheckAttributes(node, {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                                      "kernel_shape", "pads", "storage_order", "strides"});
      !s.ok()) {
    return s;
  }
  const Attributes a(node);
  if (!shape_.image() || shape_.channels_last) {
    return Fail(node, absl::StrCat("needs (C, H, W) data, gets ", DataText()));
  }
  if (a.Int("ceil_mode", 0) != 0) return Fail(node, "ceil_mode 1 is not supported");
  if (a.Int("storage_order", 0) != 0) return Fail(node, "storage_order 1 is not supported");
  const std::vector<int64_t> k = Spatial(a, "kernel_shape", {});
  if (k.size() != 2) return Fail(node, "needs a two-dimensional kernel_shape");
  LayerSpec layer = max ? LayerSpec::MaxPool2D(1) : LayerSpec::AvgPool2D(1);
  // An AveragePool's own padding counts when count_include_pad says so; a Pad
  // node's zeros are data and always count.
  layer.count_include_pad = !max && (a.Int("count_include_pad", 0) != 0 || pending_pad_);
  if (!max && pending_pad_ && a.Int("count_include_pad", 0) == 0 &&
      Spatial(a, "pads", {0, 0, 0, 0}) != std::vector<int64_t>{0, 0, 0, 0}) {
    return Fail(node, absl::StrCat("has padding that does not count after Pad node '",
                                   pending_pad_node_, "' whose zeros do"));
  }
  auto out = Window(node, a, k[0], k[1], layer, /*pad_counts=*/!max);
  if (!out.ok()) return out.status();
  Add(layer, {}, absl::StrCat(max ? "MaxPool " : "AveragePool ", k[0], "x", k[1]));
  shape_.dims = {shape_.dims[0], (*out)[0], (*out)[1]};
  return absl::OkStatus();
}

absl::Status Walker::Flatten(const NodeProto& node) {
  if (node.op_type() == "Flatten") {
    if (auto s = CheckAttributes(node, {"axis"}); !s.ok()) return s;
    if (Attributes(node).Int("axis", 1) != 1) {
      return Fail(node, absl::StrCat("axis ", Attributes(node).Int("axis", 1),
                                     " is not supported (1: keep the batch, flatten the rest)"));
    }
  } else {
    if (auto s = CheckAttributes(node, {"allowzero"}); !s.ok()) return s;
    auto target = ConstantInput(node, 1, "shape");
    if (!target.ok()) return target.status();
    int64_t features = 1;
    for (int64_t d : shape_.dims) features *= d;
    const std::vector<int64_t>& t = (*target)->ints;
    const bool flattens =
        t.size() == 2 && (t[0] == 0 || t[0] == -1) && (t[1] == -1 || t[1] == features);
    if (!flattens) {
      return Fail(node, absl::StrCat("reshapes to ", DimsText(t),
                                     "; only a Reshape that flattens each example is supported"));
    }
  }
  if (shape_.dims.size() == 1) return absl::OkStatus();  // already flat
  int64_t features = 1;
  for (int64_t d : shape_.dims) features *= d;
  // Channel-major order: the next dense layer reads its rows permuted (when the
  // order differs at all).
  if (!shape_.channels_last && shape_.dims[0] > 1 && shape_.dims[1] * shape_.dims[2] > 1) {
    permute_rows_ = shape_.dims;
  }
  Add(LayerSpec::Flatten(), {}, "Flatten");
  shape_ = {{features}, false};
  return absl::OkStatus();
}

absl::Status Walker::Dropout(const NodeProto& node) {
  if (auto s = CheckAttributes(node, {"ratio", "seed", "is_test"}); !s.ok()) return s;
  float ratio = Attributes(node).Float("ratio", 0.5f);
  if (node.input_size() > 1 && !node.input(1).empty()) {
    auto r = ConstantInput(node, 1, "ratio");
    if (!r.ok()) return r.status();
    if ((*r)->floats.size() != 1) return Fail(node, "its ratio is not one number");
    ratio = (*r)->floats[0];
  }
  if (node.input_size() > 2 && !node.input(2).empty()) {
    auto t = ConstantInput(node, 2, "training_mode");
    if (!t.ok()) return t.status();
    if (!(*t)->ints.empty() && (*t)->ints[0] != 0) {
      return Fail(node, "training_mode true: export the model in eval mode");
    }
  }
  if (!(ratio >= 0.0f && ratio < 1.0f))
    return Fail(node, absl::StrCat("ratio ", ratio, " is not in [0, 1)"));
  Add(LayerSpec::Dropout(ratio), {}, "Dropout");
  return absl::OkStatus();
}

absl::Status Walker::Pad(const NodeProto& node) {
  if (auto s = CheckAttributes(node, {"mode", "pads", "value"}); !s.ok()) return s;
  const Attributes a(node);
  if (a.String("mode", "constant") != "constant") {
    return Fail(node, absl::StrCat("mode '", a.String("mode", "constant"),
                                   "' is not supported (constant zeros only)"));
  }
  std::vector<int64_t> pads = a.Ints("pads", {});
  float value = a.Float("value", 0.0f);
  if (node.input_size() > 1 && !node.input(1).empty()) {
    auto p = ConstantInput(node, 1, "pads");
    if (!p.ok()) return p.status();
    pads = (*p)->ints;
  }
  if (node.input_size() > 2 && !node.input(2).empty()) {
    auto v = ConstantInput(node, 2, "constant_value");
    if (!v.ok()) return v.status();
    value = (*v)->floats.empty() ? 0.0f : (*v)->floats[0];
  }
  if (node.input_size() > 3) return Fail(node, "padding chosen axes is not supported");
  if (value != 0.0f) return Fail(node, absl::StrCat("pads with ", value, "; zeros only"));
  if (pads.size() != 8 || !shape_.image()) {
    return Fail(node, "only padding the height and width of (N, C, H, W) data is supported");
  }
  // (n, c, h, w begins; n, c, h, w ends).
  if (pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0) {
    return Fail(node, "pads the batch or channel dimension");
  }
  if (pads[2] == 0 && pads[3] == 0 && pads[6] == 0 && pads[7] == 0) return absl::OkStatus();
  pending_pad_ = std::array<int64_t, 4>{pads[2], pads[6], pads[3], pads[7]};
  pending_pad_node_ = node.name();
  return absl::OkStatus();
}

absl::Status Walker::TransposeConstant(const NodeProto& node) {
  if (auto s = CheckAttributes(node, {"perm"}); !s.ok()) return s;
  const ConstantTensor& in = constants_.at(node.input(0));
  const int64_t rank = static_cast<int64_t>(in.dims.size());
  std::vector<int64_t> perm = Attributes(node).Ints("perm", {});
  if (perm.empty()) {
    for (int64_t d = rank - 1; d >= 0; --d) perm.push_back(d);  // ONNX's default: reverse
  }
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t d = 0; d < rank; ++d) {
    if (static_cast<int64_t>(sorted.size()) != rank || sorted[d] != d) {
      return Fail(node, absl::StrCat("perm ", DimsText(perm), " is not a permutation of the ", rank,
                                     " axes of '", node.input(0), "'"));
    }
  }
  ConstantTensor out;
  std::vector<int64_t> in_strides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d) in_strides[d] = in_strides[d + 1] * in.dims[d + 1];
  for (int64_t d = 0; d < rank; ++d) out.dims.push_back(in.dims[perm[d]]);
  const int64_t count = static_cast<int64_t>(in.floats.size());
  std::vector<int64_t> index(rank, 0);  // position in the output, odometer order
  for (int64_t i = 0; i < count; ++i) {
    int64_t from = 0;
    for (int64_t d = 0; d < rank; ++d) from += index[d] * in_strides[perm[d]];
    out.floats.push_back(in.floats[from]);
    if (!in.ints.empty()) out.ints.push_back(in.ints[from]);
    for (int64_t d = rank - 1; d >= 0 && ++index[d] == out.dims[d]; --d) index[d] = 0;
  }
  constants_[node.output(0)] = std::move(out);
  return absl::OkStatus();
}

absl::Status Walker::Transpose(const NodeProto& node) {
  if (auto s = CheckAttributes(node, {"perm"}); !s.ok()) return s;
  const std::vector<int64_t> perm = Attributes(node).Ints("perm", {});
  // tf2onnx's two: the Keras input (N, H, W, C) to ONNX's (N, C, H, W) first thing,
  // and back before flattening.
  if (perm == std::vector<int64_t>{0, 3, 1, 2} && graph_.spec.layers.empty() && shape_.image() &&
      !input_transposed_) {
    input_transposed_ = true;
    // The file's input is (N, H, W, C): exactly seedproof's layout.
    const std::vector<int64_t>& d = shape_.dims;  // (H, W, C) as read
    graph_.spec.input = {d[0], d[1], d[2]};
    shape_.dims = {d[2], d[0], d[1]};
    return absl::OkStatus();
  }
  if (perm == std::vector<int64_t>{0, 2, 3, 1} && shape_.image() && !shape_.channels_last) {
    shape_.channels_last = true;
    return absl::OkStatus();
  }
  return Fail(node, absl::StrCat("perm ", DimsText(perm),
                                 " is not supported (only NHWC -> NCHW at the input and NCHW -> "
                                 "NHWC before a flatten)"));
}

// libonnx 1.12's shape inference reads past its buffers when a Conv's or a pool's
// kernel has another number of spatial dims than its input (onnx/onnx#6180,
// #8036; found here by tests/fuzz: a rank-3 input into a rank-4 Conv weight
// crashed the process). So every tensor's rank is followed through the graph
// first, as far as the ops tell it, and such a node is refused before libonnx
// sees it. A node whose input rank is not known here is left to the importer.
// A Conv's or pool's window against its input (rank `in`, -1 unknown) and, for a
// Conv, its weight's rank (-1 unknown): what libonnx 1.12 would crash on.
absl::Status CheckWindow(const NodeProto& node, int in, int weight, const std::string& name) {
  const std::string what =
      absl::StrCat(name, ": node '", node.name(), "' (", node.op_type(), "): ");
  int kernel = weight >= 0 ? weight - 2 : -1;  // spatial dims, -1 unknown
  for (const AttributeProto& a : node.attribute()) {
    const bool positive =
        a.name() == "strides" || a.name() == "dilations" || a.name() == "kernel_shape";
    for (int64_t v : a.ints()) {
      if ((positive && v < 1) || (a.name() == "pads" && v < 0)) {  // it divides by these
        return absl::InvalidArgumentError(
            absl::StrCat(what, a.name(), " ", v,
                         positive ? "; each must be at least 1" : "; pads cannot be negative"));
      }
    }
    if (a.name() != "kernel_shape") continue;
    if (kernel >= 0 && kernel != a.ints_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "its weight has ", kernel, " spatial dims, its kernel_shape ", a.ints_size()));
    }
    kernel = a.ints_size();
  }
  if (in >= 0 && (in < 3 || (kernel >= 0 && kernel != in - 2))) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "its input has rank ", in, " but its kernel ", kernel, " spatial dims (a ",
        node.op_type(), " needs (N, C, spatial dims) and a kernel of as many)"));
  }
  return absl::OkStatus();
}

absl::Status CheckKernelRanks(const onnx::GraphProto& graph, const std::string& name) {
  std::unordered_map<std::string, int> rank;
  for (const auto& input : graph.input()) {
    if (input.type().tensor_type().has_shape()) {
      rank[input.name()] = input.type().tensor_type().shape().dim_size();
    }
  }
  for (const TensorProto& t : graph.initializer()) rank[t.name()] = t.dims_size();
  auto rank_of = [&](const NodeProto& node, int i) {
    auto it = i < node.input_size() ? rank.find(node.input(i)) : rank.end();
    return it == rank.end() ? -1 : it->second;
  };
  static const std::set<std::string> kWindowed = {"Conv", "ConvTranspose", "MaxPool",
                                                  "AveragePool"};
  static const std::set<std::string> kSameRank = {"Relu",
                                                  "LeakyRelu",
                                                  "Elu",
                                                  "Selu",
                                                  "Sigmoid",
                                                  "Tanh",
                                                  "Softmax",
                                                  "LogSoftmax",
                                                  "Dropout",
                                                  "Identity",
                                                  "BatchNormalization",
                                                  "Transpose",
                                                  "Clip",
                                                  "Cast",
                                                  "Pad"};
  static const std::set<std::string> kBroadcast = {"Add", "Sub", "Mul", "Div"};
  for (const NodeProto& node : graph.node()) {
    const std::string& op = node.op_type();
    const int in = rank_of(node, 0);
    int out = -1;
    if (kWindowed.contains(op)) {
      const bool conv = op == "Conv" || op == "ConvTranspose";
      if (auto s = CheckWindow(node, in, conv ? rank_of(node, 1) : -1, name); !s.ok()) return s;
      out = in;
    } else if (kSameRank.contains(op)) {
      out = in;
    } else if (op == "Flatten" || op == "Gemm") {
      out = 2;
    } else if (kBroadcast.contains(op) && node.input_size() == 2 && in >= 0 &&
               rank_of(node, 1) >= 0) {
      out = std::max(in, rank_of(node, 1));
    }
    for (const std::string& output : node.output()) {
      if (out >= 0) {
        rank[output] = out;
      } else {
        rank.erase(output);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OnnxGraph> ReadOnnx(const std::string& bytes, const std::string& name) {
  ModelProto model;
  if (bytes.empty())
    return absl::DataLossError(absl::StrCat(name, ": empty file, not an ONNX model"));
  if (!model.ParseFromString(bytes) || !model.has_graph() || model.ir_version() < 1) {
    return absl::DataLossError(absl::StrCat(
        name, ": not an ONNX model (", bytes.size(),
        " bytes that do not parse as a ModelProto with a graph: damaged, cut, or another format)"));
  }
  int64_t opset = 0;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (opset < kMinOnnxOpset) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": imports no opset of the default ONNX domain"));
  }
  if (opset > kMaxOnnxOpset) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": opset ", opset, " is beyond the ", kMaxOnnxOpset,
        " seedproof reads (libonnx 1.12 knows no newer operators); export with opset_version=14"));
  }
  for (const TensorProto& t : model.graph().initializer()) {
    if (t.data_location() == TensorProto::EXTERNAL) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": initializer '", t.name(),
          "' keeps its weights in an external file; save the model with its weights inside"));
    }
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": not a valid ONNX model: ", e.what()));
  }
  if (auto s = CheckKernelRanks(model.graph(), name); !s.ok()) return s;
  try {
    onnx::ShapeInferenceOptions options{/*check_type=*/true, /*error_mode=*/1,
                                        /*enable_data_propagation=*/false};
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": its shapes do not fit together: ", e.what()));
  }
  Walker walker(model, name);
  auto graph = walker.Run();
  if (!graph.ok()) return graph.status();
  graph->opset = opset;
  graph->producer = absl::StrCat(model.producer_name(), model.producer_version().empty() ? "" : " ",
                                 model.producer_version());
  // The layers must make a model seedproof can build (a last check of the walk).
  ModelSpec check = graph->spec;
  if (graph->output_layer) {
    check = *SourceModelSpec(*graph);
  } else {
    check = WithThrowawayHead(graph->spec);
  }
  if (auto shapes = InferShapes(check); !shapes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", shapes.status().message()));
  }
  return graph;
}

ModelSpec WithThrowawayHead(const ModelSpec& body) {
  ModelSpec spec = body;
  spec.loss = Loss::kSparseCategoricalCrossEntropy;
  spec.layers.push_back(LayerSpec::Flatten());  // of flat data: the same data
  spec.layers.push_back(LayerSpec::Dense(2, Activation::kSoftmax));
  return spec;
}

absl::StatusOr<ModelSpec> SourceModelSpec(const OnnxGraph& graph) {
  if (!graph.output_layer) {
    return absl::InvalidArgumentError(
        "the ONNX graph does not end in an output layer (a Gemm or MatMul, with or without its "
        "softmax or sigmoid): it cannot be a source model");
  }
  ModelSpec spec = graph.spec;
  LayerSpec& last = spec.layers.back();
  if (last.units == 1) {
    last.activation = Activation::kSigmoid;
    spec.loss = Loss::kBinaryCrossEntropy;
  } else {
    last.activation = Activation::kSoftmax;
    spec.loss = Loss::kSparseCategoricalCrossEntropy;
  }
  return spec;
}

absl::StatusOr<std::unique_ptr<Model>> MakeOnnxModel(Backend& backend, const OnnxGraph& graph) {
  auto spec = SourceModelSpec(graph);
  if (!spec.ok()) return spec.status();
  auto model = backend.Create(*spec, 0);
  if (!model.ok()) return model.status();
  for (int l = 0; l < static_cast<int>(graph.weights.size()); ++l) {
    if (graph.weights[l].empty()) continue;
    if (auto s = (*model)->SetWeights(l, graph.weights[l]); !s.ok()) return s;
  }
  return model;
}

}  // namespace seedproof
