// WriteOnnx (onnx_io/onnx_model.h): a seedproof model as an ONNX graph that takes
// seedproof's own (N, H, W, C) or (N, F) data and gives Model::Predict's
// probabilities.
//
// The graph transposes the images to ONNX's (N, C, H, W) once at the input and
// back to channels-last right before each Flatten, so the dense kernels keep
// seedproof's row order and every weight is a plain copy or a transpose of one
// tensor. Padding is always written as explicit pads computed from the model's
// shapes ('same' included), never as auto_pad, so no runtime's reading of
// SAME_UPPER can differ from the engine's.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "onnx_io/onnx_model.h"

namespace seedproof {
namespace {

using onnx::AttributeProto;
using onnx::GraphProto;
using onnx::NodeProto;
using onnx::TensorProto;

constexpr int64_t kExportOpset = 14;
constexpr int64_t kExportIrVersion = 8;  // the newest libonnx 1.12 knows
// The engine's SELU constants (backends/ compute with these floats): written into
// the node, since ONNX's defaults are the same numbers in other digits.
constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSeluGamma = 1.0507009873554805f;

// Appends nodes and initializers to a graph, each value named after the layer it
// belongs to ("layer3_conv", "layer3_conv_W"), and keeps the name of the value
// that carries the data so far.
class GraphWriter {
 public:
  explicit GraphWriter(GraphProto* graph) : graph_(graph) {}

  const std::string& data() const { return data_; }
  void set_data(std::string name) { data_ = std::move(name); }

  // A float initializer.
  std::string Constant(const std::string& name, const std::vector<int64_t>& dims,
                       const std::vector<float>& values) {
    TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(
        std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    return name;
  }

  // A node reading the data (and `extra` inputs after it), whose output becomes
  // the data.
  NodeProto* Apply(const std::string& op, const std::string& name,
                   const std::vector<std::string>& extra = {}) {
    NodeProto* node = graph_->add_node();
    node->set_op_type(op);
    node->set_name(name);
    node->add_input(data_);
    for (const std::string& in : extra) node->add_input(in);
    node->add_output(name);
    data_ = name;
    return node;
  }

 private:
  GraphProto* graph_;
  std::string data_;
};

void SetInts(NodeProto* node, const std::string& name, const std::vector<int64_t>& values) {
  AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void SetInt(NodeProto* node, const std::string& name, int64_t value) {
  AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INT);
  a->set_i(value);
}

void SetFloat(NodeProto* node, const std::string& name, float value) {
  AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::FLOAT);
  a->set_f(value);
}

void SetShape(onnx::ValueInfoProto* value, const std::string& name,
              const std::vector<int64_t>& example) {
  value->set_name(name);
  onnx::TypeProto_Tensor* type = value->mutable_type()->mutable_tensor_type();
  type->set_elem_type(TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = type->mutable_shape();
  shape->add_dim()->set_dim_param("N");
  for (int64_t d : example) shape->add_dim()->set_dim_value(d);
}

// The ONNX node of an activation, if it has one (linear has none).
void ApplyActivation(GraphWriter& w, const LayerSpec& layer, const std::string& prefix) {
  switch (layer.activation) {
    case Activation::kLinear:
      return;
    case Activation::kRelu:
      w.Apply("Relu", prefix + "_relu");
      return;
    case Activation::kTanh:
      w.Apply("Tanh", prefix + "_tanh");
      return;
    case Activation::kSigmoid:
      w.Apply("Sigmoid", prefix + "_sigmoid");
      return;
    case Activation::kSoftmax:
      w.Apply("Softmax", prefix + "_softmax");
      return;
    case Activation::kElu:
      SetFloat(w.Apply("Elu", prefix + "_elu"), "alpha", 1.0f);
      return;
    case Activation::kLeakyRelu:
      SetFloat(w.Apply("LeakyRelu", prefix + "_leaky_relu"), "alpha", layer.alpha);
      return;
    case Activation::kSelu: {
      NodeProto* node = w.Apply("Selu", prefix + "_selu");
      SetFloat(node, "alpha", kSeluAlpha);
      SetFloat(node, "gamma", kSeluGamma);
      return;
    }
  }
}

// ONNX pads [top, left, bottom, right] of a window layer, from the shapes the
// engine computed ('same' puts the odd pixel after, as Keras and the engine do).
std::vector<int64_t> Pads(const LayerSpec& layer, const Shape& in, const Shape& out) {
  if (layer.padding == Padding::kExplicit) {
    return {layer.pad_top, layer.pad_left, layer.pad_bottom, layer.pad_right};
  }
  if (layer.padding == Padding::kValid) return {0, 0, 0, 0};
  auto total = [](int64_t in, int64_t out, int64_t k, int64_t stride) {
    return std::max<int64_t>((out - 1) * stride + k - in, 0);
  };
  int64_t h = total(in[0], out[0], layer.kernel_h, layer.stride_h);
  int64_t w = total(in[1], out[1], layer.kernel_w, layer.stride_w);
  return {h / 2, w / 2, h - h / 2, w - w / 2};
}

// (kh, kw, I, O) -> (O, I, kh, kw).
std::vector<float> ConvKernelToOnnx(const Tensor& k) {
  const int64_t kh = k.shape[0], kw = k.shape[1], in = k.shape[2], out = k.shape[3];
  std::vector<float> onnx(k.values.size());
  for (int64_t y = 0; y < kh; ++y) {
    for (int64_t x = 0; x < kw; ++x) {
      for (int64_t i = 0; i < in; ++i) {
        for (int64_t o = 0; o < out; ++o) {
          onnx[((o * in + i) * kh + y) * kw + x] = k.values[((y * kw + x) * in + i) * out + o];
        }
      }
    }
  }
  return onnx;
}

}  // namespace

absl::StatusOr<std::string> WriteOnnx(const Model& model, const std::string& graph_name) {
  const ModelSpec& spec = model.spec();
  const ModelShapes& shapes = model.shapes();
  if (spec.input.size() != 1 && spec.input.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("only (F) or (H, W, C) inputs are written as ONNX; this model's is ",
                     ShapeToString(spec.input)));
  }
  onnx::ModelProto proto;
  proto.set_ir_version(kExportIrVersion);
  proto.set_producer_name("seedproof");
  proto.set_doc_string(
      "Input (N, H, W, C) or (N, F) as seedproof's datasets hold it (scaled as the "
      "study's preprocessing does); output: the probabilities Model::Predict gives.");
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kExportOpset);
  GraphProto* graph = proto.mutable_graph();
  graph->set_name(graph_name);
  SetShape(graph->add_input(), "input", spec.input);

  GraphWriter w(graph);
  w.set_data("input");
  bool nchw = false;  // whether the data is an image in ONNX's (N, C, H, W)
  if (spec.input.size() == 3) {
    SetInts(w.Apply("Transpose", "input_nchw"), "perm", {0, 3, 1, 2});
    nchw = true;
  }
  for (int l = 0; l < model.num_layers(); ++l) {
    const LayerSpec& layer = spec.layers[l];
    const Shape& in = shapes.inputs[l];
    const Shape& out = shapes.outputs[l];
    const std::string prefix = absl::StrCat("layer", l, "_", LayerKindName(layer.kind));
    std::vector<Tensor> weights;
    if (layer.has_weights()) {
      auto got = model.GetWeights(l);
      if (!got.ok()) return got.status();
      weights = *std::move(got);
    }
    switch (layer.kind) {
      case LayerKind::kConv2D: {
        const Tensor& k = weights[0];
        std::string kernel = w.Constant(
            prefix + "_W", {k.shape[3], k.shape[2], k.shape[0], k.shape[1]}, ConvKernelToOnnx(k));
        std::string bias = w.Constant(prefix + "_B", weights[1].shape, weights[1].values);
        NodeProto* node = w.Apply("Conv", prefix, {kernel, bias});
        SetInts(node, "kernel_shape", {layer.kernel_h, layer.kernel_w});
        SetInts(node, "strides", {layer.stride_h, layer.stride_w});
        SetInts(node, "pads", Pads(layer, in, out));
        ApplyActivation(w, layer, prefix);
        break;
      }
      case LayerKind::kMaxPool2D:
      case LayerKind::kAvgPool2D: {
        bool max = layer.kind == LayerKind::kMaxPool2D;
        NodeProto* node = w.Apply(max ? "MaxPool" : "AveragePool", prefix);
        SetInts(node, "kernel_shape", {layer.kernel_h, layer.kernel_w});
        SetInts(node, "strides", {layer.stride_h, layer.stride_w});
        SetInts(node, "pads", Pads(layer, in, out));
        // 'same' average pooling leaves the padded zeros out of the mean (Keras).
        if (!max) SetInt(node, "count_include_pad", layer.count_include_pad ? 1 : 0);
        break;
      }
      case LayerKind::kGlobalAvgPool2D:
        w.Apply("GlobalAveragePool", prefix);
        break;
      case LayerKind::kBatchNorm: {
        std::vector<std::string> params;
        const char* names[] = {"_scale", "_B", "_mean", "_var"};
        for (int t = 0; t < 4; ++t) {
          params.push_back(w.Constant(prefix + names[t], weights[t].shape, weights[t].values));
        }
        SetFloat(w.Apply("BatchNormalization", prefix, params), "epsilon", layer.epsilon);
        ApplyActivation(w, layer, prefix);
        break;
      }
      case LayerKind::kActivation:
        ApplyActivation(w, layer, prefix);
        break;
      case LayerKind::kDropout:
        break;  // inference
      case LayerKind::kFlatten:
        if (nchw) {
          // Channels last again, so the flattened order is seedproof's.
          SetInts(w.Apply("Transpose", prefix + "_nhwc"), "perm", {0, 2, 3, 1});
          SetInt(w.Apply("Flatten", prefix), "axis", 1);
          nchw = false;
        }
        break;
      case LayerKind::kDense: {
        std::string kernel = w.Constant(prefix + "_W", weights[0].shape, weights[0].values);
        std::string bias = w.Constant(prefix + "_B", weights[1].shape, weights[1].values);
        w.Apply("Gemm", prefix, {kernel, bias});
        ApplyActivation(w, layer, prefix);
        break;
      }
    }
  }
  // The data's last value is the graph's output: renamed where it is made.
  for (NodeProto& node : *graph->mutable_node()) {
    for (std::string& input : *node.mutable_input()) {
      if (input == w.data()) input = "probabilities";
    }
    for (std::string& output : *node.mutable_output()) {
      if (output == w.data()) output = "probabilities";
    }
  }
  SetShape(graph->add_output(), "probabilities", shapes.outputs.back());

  try {
    onnx::checker::check_model(proto);
    onnx::ShapeInferenceOptions options{/*check_type=*/true, /*error_mode=*/1,
                                        /*enable_data_propagation=*/false};
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("the ONNX graph written for '", graph_name,
                                            "' fails libonnx's checks: ", e.what()));
  }
  return proto.SerializeAsString();
}

}  // namespace seedproof
