#include "backends/model_spec.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace seedproof {
namespace {

// Output length of a window sliding over `in` (TensorFlow's rule, which Keras uses,
// or the explicit zeros before and after).
int64_t WindowOutput(int64_t in, int k, int stride, Padding padding, int before = 0,
                     int after = 0) {
  if (padding == Padding::kSame) return (in + stride - 1) / stride;
  if (padding == Padding::kExplicit) in += before + after;
  return in < k ? 0 : (in - k) / stride + 1;
}

std::string LayerName(const ModelSpec& spec, size_t i) {
  return absl::StrCat("layer ", i, " (", LayerKindName(spec.layers[i].kind), ")");
}

bool ValidEnum(Activation a) { return a >= Activation::kLinear && a <= Activation::kLeakyRelu; }
bool ValidEnum(Initializer i) {
  return i >= Initializer::kGlorotUniform && i <= Initializer::kLecunNormal;
}
bool ValidEnum(Padding p) {
  return p == Padding::kValid || p == Padding::kSame || p == Padding::kExplicit;
}

}  // namespace

int64_t ElementCount(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) { return absl::StrCat("(", absl::StrJoin(shape, ", "), ")"); }

LayerSpec LayerSpec::Flatten() {
  LayerSpec s;
  s.kind = LayerKind::kFlatten;
  return s;
}

LayerSpec LayerSpec::Dense(int units, Activation activation, Initializer init) {
  LayerSpec s;
  s.kind = LayerKind::kDense;
  s.units = units;
  s.activation = activation;
  s.init = init;
  return s;
}

LayerSpec LayerSpec::Conv2D(int filters, int kernel, int stride, Padding padding,
                            Activation activation, Initializer init) {
  LayerSpec s;
  s.kind = LayerKind::kConv2D;
  s.units = filters;
  s.kernel_h = s.kernel_w = kernel;
  s.stride_h = s.stride_w = stride;
  s.padding = padding;
  s.activation = activation;
  s.init = init;
  return s;
}

LayerSpec LayerSpec::MaxPool2D(int window, int stride, Padding padding) {
  LayerSpec s;
  s.kind = LayerKind::kMaxPool2D;
  s.kernel_h = s.kernel_w = window;
  s.stride_h = s.stride_w = stride > 0 ? stride : window;
  s.padding = padding;
  return s;
}

LayerSpec LayerSpec::Dropout(float rate) {
  LayerSpec s;
  s.kind = LayerKind::kDropout;
  s.rate = rate;
  return s;
}

LayerSpec LayerSpec::BatchNorm(float epsilon, float momentum, Activation activation) {
  LayerSpec s;
  s.kind = LayerKind::kBatchNorm;
  s.epsilon = epsilon;
  s.momentum = momentum;
  s.activation = activation;
  return s;
}

LayerSpec LayerSpec::AvgPool2D(int window, int stride, Padding padding) {
  LayerSpec s = MaxPool2D(window, stride, padding);
  s.kind = LayerKind::kAvgPool2D;
  return s;
}

LayerSpec LayerSpec::GlobalAvgPool2D() {
  LayerSpec s;
  s.kind = LayerKind::kGlobalAvgPool2D;
  return s;
}

LayerSpec LayerSpec::ActivationLayer(Activation activation, float alpha) {
  LayerSpec s;
  s.kind = LayerKind::kActivation;
  s.activation = activation;
  s.alpha = alpha;
  return s;
}

absl::StatusOr<ModelShapes> InferShapes(const ModelSpec& spec) {
  if (spec.input.empty() || (spec.input.size() != 1 && spec.input.size() != 3)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input shape ", ShapeToString(spec.input),
        " must be (features) or (height, width, channels)"));
  }
  for (int64_t d : spec.input) {
    if (d <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("input shape ", ShapeToString(spec.input), " has a dimension < 1"));
    }
  }
  if (spec.layers.empty()) return absl::InvalidArgumentError("the model has no layers");
  if (spec.loss != Loss::kSparseCategoricalCrossEntropy && spec.loss != Loss::kBinaryCrossEntropy) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown loss code ", static_cast<uint32_t>(spec.loss)));
  }

  ModelShapes shapes;
  Shape current = spec.input;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& layer = spec.layers[i];
    const std::string name = LayerName(spec, i);
    const bool last = i + 1 == spec.layers.size();
    shapes.inputs.push_back(current);
    std::vector<Shape> params;
    if (!ValidEnum(layer.activation)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": unknown activation code ", static_cast<uint32_t>(layer.activation)));
    }
    if (!layer.takes_activation() && layer.activation != Activation::kLinear) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": only dense, conv2d, batchnorm and activation layers take an "
                             "activation"));
    }
    if (layer.activation == Activation::kLeakyRelu && !(layer.alpha >= 0.0f && layer.alpha <= 1.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": leaky_relu's alpha ", layer.alpha, " must be in [0, 1]"));
    }
    if (layer.activation == Activation::kSoftmax && !last) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": softmax is only supported on the output layer"));
    }
    switch (layer.kind) {
      case LayerKind::kFlatten:
        current = {ElementCount(current)};
        break;
      case LayerKind::kDropout:
        if (!(layer.rate >= 0.0f && layer.rate < 1.0f)) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": rate ", layer.rate, " must be in [0, 1)"));
        }
        break;
      case LayerKind::kDense:
        if (current.size() != 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              name, ": needs a flat input but gets ", ShapeToString(current),
              "; add a flatten layer before it"));
        }
        if (layer.units < 1) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": units must be >= 1"));
        }
        if (!ValidEnum(layer.init)) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": unknown initializer"));
        }
        params = {{current[0], layer.units}, {layer.units}};
        current = {layer.units};
        break;
      case LayerKind::kBatchNorm:
        if (!(layer.epsilon > 0.0f) || !(layer.momentum >= 0.0f && layer.momentum < 1.0f)) {
          return absl::InvalidArgumentError(absl::StrCat(
              name, ": epsilon ", layer.epsilon, " must be > 0 and momentum ", layer.momentum,
              " in [0, 1)"));
        }
        params = {{current.back()}, {current.back()}, {current.back()}, {current.back()}};
        break;
      case LayerKind::kActivation:
        break;  // same shape; softmax is refused above for any but the output layer
      case LayerKind::kGlobalAvgPool2D:
        if (current.size() != 3) {
          return absl::InvalidArgumentError(absl::StrCat(
              name, ": needs an (height, width, channels) input but gets ", ShapeToString(current)));
        }
        current = {1, 1, current[2]};
        break;
      case LayerKind::kConv2D:
      case LayerKind::kMaxPool2D:
      case LayerKind::kAvgPool2D: {
        const bool conv = layer.kind == LayerKind::kConv2D;
        if (current.size() != 3) {
          return absl::InvalidArgumentError(absl::StrCat(
              name, ": needs an (height, width, channels) input but gets ", ShapeToString(current)));
        }
        if (layer.kernel_h < 1 || layer.kernel_w < 1 || layer.stride_h < 1 || layer.stride_w < 1) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": kernel and stride must be >= 1"));
        }
        if (!ValidEnum(layer.padding)) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": unknown padding"));
        }
        if (layer.padding == Padding::kExplicit &&
            (layer.pad_top < 0 || layer.pad_bottom < 0 || layer.pad_left < 0 ||
             layer.pad_right < 0 || layer.pad_top >= layer.kernel_h ||
             layer.pad_bottom >= layer.kernel_h || layer.pad_left >= layer.kernel_w ||
             layer.pad_right >= layer.kernel_w)) {
          // A window that would hold padding only has nothing to pool.
          return absl::InvalidArgumentError(absl::StrCat(
              name, ": pads (top ", layer.pad_top, ", bottom ", layer.pad_bottom, ", left ",
              layer.pad_left, ", right ", layer.pad_right, ") must be in [0, kernel size)"));
        }
        if (conv && layer.units < 1) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": filters must be >= 1"));
        }
        if (conv && !ValidEnum(layer.init)) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": unknown initializer"));
        }
        const int64_t oh = WindowOutput(current[0], layer.kernel_h, layer.stride_h, layer.padding,
                                        layer.pad_top, layer.pad_bottom);
        const int64_t ow = WindowOutput(current[1], layer.kernel_w, layer.stride_w, layer.padding,
                                        layer.pad_left, layer.pad_right);
        if (oh < 1 || ow < 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              name, ": window ", layer.kernel_h, "x", layer.kernel_w, " is larger than its ",
              current[0], "x", current[1], " input with ", PaddingName(layer.padding),
              " padding"));
        }
        if (conv) {
          params = {{layer.kernel_h, layer.kernel_w, current[2], layer.units}, {layer.units}};
          current = {oh, ow, layer.units};
        } else {
          current = {oh, ow, current[2]};
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("layer ", i, ": unknown layer kind code ", static_cast<uint32_t>(layer.kind)));
    }
    for (const Shape& p : params) shapes.parameter_count += ElementCount(p);
    shapes.params.push_back(std::move(params));
    shapes.outputs.push_back(current);
  }

  const LayerSpec& out = spec.layers.back();
  const std::string name = LayerName(spec, spec.layers.size() - 1);
  if (out.kind != LayerKind::kDense) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": the output layer must be dense"));
  }
  if (spec.loss == Loss::kSparseCategoricalCrossEntropy &&
      (out.activation != Activation::kSoftmax || out.units < 2)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": sparse categorical cross-entropy needs a softmax output layer with >= 2 units"));
  }
  if (spec.loss == Loss::kBinaryCrossEntropy &&
      (out.activation != Activation::kSigmoid || out.units != 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": binary cross-entropy needs a sigmoid output layer with 1 unit"));
  }
  return shapes;
}

const char* LayerKindName(LayerKind kind) {
  switch (kind) {
    case LayerKind::kFlatten: return "flatten";
    case LayerKind::kDense: return "dense";
    case LayerKind::kConv2D: return "conv2d";
    case LayerKind::kMaxPool2D: return "maxpool2d";
    case LayerKind::kDropout: return "dropout";
    case LayerKind::kBatchNorm: return "batchnorm";
    case LayerKind::kAvgPool2D: return "avgpool2d";
    case LayerKind::kGlobalAvgPool2D: return "globalavgpool2d";
    case LayerKind::kActivation: return "activation";
  }
  return "unknown";
}

const char* ActivationName(Activation activation) {
  switch (activation) {
    case Activation::kLinear: return "linear";
    case Activation::kRelu: return "relu";
    case Activation::kSelu: return "selu";
    case Activation::kElu: return "elu";
    case Activation::kTanh: return "tanh";
    case Activation::kSigmoid: return "sigmoid";
    case Activation::kSoftmax: return "softmax";
    case Activation::kLeakyRelu: return "leaky_relu";
  }
  return "unknown";
}

const char* InitializerName(Initializer init) {
  switch (init) {
    case Initializer::kGlorotUniform: return "glorot_uniform";
    case Initializer::kHeNormal: return "he_normal";
    case Initializer::kLecunNormal: return "lecun_normal";
  }
  return "unknown";
}

const char* LossName(Loss loss) {
  switch (loss) {
    case Loss::kSparseCategoricalCrossEntropy: return "sparse_categorical_crossentropy";
    case Loss::kBinaryCrossEntropy: return "binary_crossentropy";
  }
  return "unknown";
}

const char* PaddingName(Padding padding) {
  switch (padding) {
    case Padding::kValid: return "valid";
    case Padding::kSame: return "same";
    case Padding::kExplicit: return "explicit";
  }
  return "unknown";
}

namespace {
template <typename Enum, typename NameFn>
absl::StatusOr<Enum> ParseByName(std::string_view name, std::string_view what,
                                 std::initializer_list<Enum> values, NameFn name_of) {
  std::vector<std::string> names;
  for (Enum v : values) {
    if (name_of(v) == name) return v;
    names.push_back(name_of(v));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown ", std::string(what), " '", std::string(name), "'; expected one of ",
                                                 absl::StrJoin(names, ", ")));
}
}  // namespace

absl::StatusOr<LayerKind> ParseLayerKind(std::string_view name) {
  return ParseByName(name, "layer",
                     {LayerKind::kFlatten, LayerKind::kDense, LayerKind::kConv2D,
                      LayerKind::kMaxPool2D, LayerKind::kDropout, LayerKind::kBatchNorm,
                      LayerKind::kAvgPool2D, LayerKind::kGlobalAvgPool2D, LayerKind::kActivation},
                     LayerKindName);
}

absl::StatusOr<Activation> ParseActivation(std::string_view name) {
  return ParseByName(name, "activation",
                     {Activation::kLinear, Activation::kRelu, Activation::kSelu, Activation::kElu,
                      Activation::kTanh, Activation::kSigmoid, Activation::kSoftmax,
                      Activation::kLeakyRelu},
                     ActivationName);
}

absl::StatusOr<Initializer> ParseInitializer(std::string_view name) {
  return ParseByName(name, "initializer",
                     {Initializer::kGlorotUniform, Initializer::kHeNormal, Initializer::kLecunNormal},
                     InitializerName);
}

}  // namespace seedproof
