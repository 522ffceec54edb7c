// The description of a network that a Backend builds: an input shape, an ordered
// list of layers with their settings, and the loss the output layer is fused with.
//
// Layouts are Keras's, channels last, so weights move between seedproof and Keras
// without transposes:
//   input example   (H, W, C) for images, (F) for flat features
//   Dense kernel    (in, out)            bias (out)
//   Conv2D kernel   (kh, kw, in, out)    bias (out)
//   BatchNorm       gamma (C), beta (C), moving_mean (C), moving_variance (C):
//                   the last two are state, updated by training, never by gradients
// Flatten of an (H, W, C) example is row-major, channels fastest (as Keras).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace seedproof {

// Numbering is part of the model file format: append, never renumber.
enum class LayerKind : uint32_t {
  kFlatten = 1, kDense = 2, kConv2D = 3, kMaxPool2D = 4, kDropout = 5,
  kBatchNorm = 6, kAvgPool2D = 7, kGlobalAvgPool2D = 8,
  kActivation = 9  // its activation alone (after a pool, say: an imported graph's Relu)
};
enum class Activation : uint32_t {
  kLinear = 1, kRelu = 2, kSelu = 3, kElu = 4, kTanh = 5, kSigmoid = 6, kSoftmax = 7,
  kLeakyRelu = 8  // x < 0: alpha * x (LayerSpec::alpha)
};
// kExplicit: the LayerSpec's pad_* zeros before and after each spatial dimension
// (what ONNX and PyTorch models carry).
enum class Padding : uint32_t { kValid = 1, kSame = 2, kExplicit = 3 };
enum class Initializer : uint32_t { kGlorotUniform = 1, kHeNormal = 2, kLecunNormal = 3 };
// Each loss is fused with the output activation it needs: sparse categorical
// cross-entropy with softmax (labels 0..units-1), binary cross-entropy with a
// one-unit sigmoid (labels 0 or 1).
enum class Loss : uint32_t { kSparseCategoricalCrossEntropy = 1, kBinaryCrossEntropy = 2 };

// Shape of one example (no batch dimension).
using Shape = std::vector<int64_t>;
int64_t ElementCount(const Shape& shape);
std::string ShapeToString(const Shape& shape);

struct LayerSpec {
  LayerKind kind = LayerKind::kDense;
  Activation activation = Activation::kLinear;   // Dense, Conv2D, BatchNorm
  Initializer init = Initializer::kGlorotUniform;  // Dense, Conv2D kernels; biases start at 0
  int units = 0;                                 // Dense: outputs; Conv2D: filters
  int kernel_h = 0, kernel_w = 0;                // Conv2D kernel; pooling window
  int stride_h = 1, stride_w = 1;                // Conv2D, MaxPool2D, AvgPool2D
  Padding padding = Padding::kValid;             // Conv2D, MaxPool2D, AvgPool2D
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;  // Padding::kExplicit
  float rate = 0.0f;                             // Dropout: share of inputs zeroed, [0, 1)
  float alpha = 0.0f;      // LeakyRelu activation: the slope below 0, [0, 1]
  // BatchNorm: y = gamma * (x - mean) / sqrt(var + epsilon) + beta, per channel (the
  // last dimension). Training a trainable one normalises with the batch's mean and
  // (biased) variance and moves each moving statistic as m = momentum * m + (1 -
  // momentum) * batch value (the variance unbiased, as PyTorch); a frozen one, and
  // every one outside training, uses the moving statistics (Keras's rule).
  float epsilon = 1e-3f;   // Keras's default; PyTorch's is 1e-5
  float momentum = 0.99f;  // Keras's default; PyTorch's momentum 0.1 is 0.9 here
  bool count_include_pad = false;  // AvgPool2D: padded zeros count in the mean

  static LayerSpec Flatten();
  static LayerSpec Dense(int units, Activation activation,
                         Initializer init = Initializer::kGlorotUniform);
  static LayerSpec Conv2D(int filters, int kernel, int stride, Padding padding,
                          Activation activation, Initializer init = Initializer::kGlorotUniform);
  // Keras's default: the stride equals the window.
  static LayerSpec MaxPool2D(int window, int stride = 0, Padding padding = Padding::kValid);
  static LayerSpec Dropout(float rate);
  static LayerSpec BatchNorm(float epsilon = 1e-3f, float momentum = 0.99f,
                             Activation activation = Activation::kLinear);
  // Keras's default: the stride equals the window.
  static LayerSpec AvgPool2D(int window, int stride = 0, Padding padding = Padding::kValid);
  // (H, W, C) -> (1, 1, C): the mean of each channel.
  static LayerSpec GlobalAvgPool2D();
  // The activation on its own (not softmax, which only an output layer has).
  static LayerSpec ActivationLayer(Activation activation, float alpha = 0.0f);

  bool has_weights() const {
    return kind == LayerKind::kDense || kind == LayerKind::kConv2D ||
           kind == LayerKind::kBatchNorm;
  }
  // How many of its tensors gradients train: kernel and bias, gamma and beta.
  int trainable_tensors() const { return has_weights() ? 2 : 0; }
  // Whether its activation is applied (Dense, Conv2D, BatchNorm and Activation).
  bool takes_activation() const { return has_weights() || kind == LayerKind::kActivation; }
  friend bool operator==(const LayerSpec&, const LayerSpec&) = default;
};

struct ModelSpec {
  Shape input;
  std::vector<LayerSpec> layers;
  Loss loss = Loss::kSparseCategoricalCrossEntropy;
  friend bool operator==(const ModelSpec&, const ModelSpec&) = default;
};

// What validation and shape inference learn about a spec. shapes[i] is the output
// of layer i (shapes.back() is the logits' shape).
struct ModelShapes {
  std::vector<Shape> inputs;   // inputs[i]: the example shape layer i receives
  std::vector<Shape> outputs;  // outputs[i]: the example shape layer i produces
  // Parameter tensors per layer, in order (kernel, then bias), with their shapes.
  std::vector<std::vector<Shape>> params;
  int64_t parameter_count = 0;
};

// Checks every setting and infers shapes. Errors name the layer by index and kind
// ("layer 3 (conv2d): kernel 5x5 is larger than its 3x3 input with valid padding").
absl::StatusOr<ModelShapes> InferShapes(const ModelSpec& spec);

const char* LayerKindName(LayerKind kind);
const char* ActivationName(Activation activation);
const char* InitializerName(Initializer init);
const char* LossName(Loss loss);
const char* PaddingName(Padding padding);
// Parse a lower-case name ("dense", "selu", "glorot_uniform", "same", ...).
absl::StatusOr<LayerKind> ParseLayerKind(std::string_view name);
absl::StatusOr<Activation> ParseActivation(std::string_view name);
absl::StatusOr<Initializer> ParseInitializer(std::string_view name);

// Training settings. Changing them, or which layers train, starts a fresh optimizer
// state (Keras's "compile again").
enum class OptimizerKind : uint32_t { kSgd = 1, kAdam = 2 };
struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kSgd;
  float learning_rate = 1e-3f;
  float momentum = 0.0f;   // SGD: v <- momentum*v - lr*g; w <- w + v
  bool nesterov = false;   // SGD: w <- w + momentum*v - lr*g (after updating v)
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-7f;  // Adam, Keras's defaults
  // Decoupled weight decay on kernels (not biases): w <- w - lr*weight_decay*w.
  float weight_decay = 0.0f;
};

}  // namespace seedproof
