// Internal to backends/onednn/: only its .cc files include this header, because it
// pulls in dnnl.hpp. It holds what the per-layer files share: the runtime a model's
// primitives run on, a primitive bound to its argument memories, and the interface
// of one layer's primitives for one batch size.
//
// Everything here throws dnnl::error; the model (onednn_backend.cc) catches it at
// its boundary and turns it into an absl::Status.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/model_spec.h"

namespace seedproof::onednn {

// The engine and stream one model's primitives run on.
struct Runtime {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

// A float buffer aligned to a cache line (and a 512-bit vector), uninitialised.
class Buffer {
 public:
  // Contents are undefined after a resize that grows.
  void Resize(int64_t count);
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  int64_t capacity_ = 0;
};

// A primitive and the memory objects its arguments are bound to, built once.
// Run points each memory at this call's buffer (no copies, no allocation of ours)
// and executes.
class BoundPrimitive {
 public:
  BoundPrimitive() = default;
  // args: (DNNL_ARG_*, descriptor) in the order Run receives the handles.
  BoundPrimitive(dnnl::primitive primitive, const dnnl::engine& engine,
                 std::initializer_list<std::pair<int, dnnl::memory::desc>> args);
  explicit operator bool() const { return static_cast<bool>(primitive_); }
  // One handle per argument, in construction order.
  void Run(dnnl::stream& stream, std::initializer_list<const void*> handles);

 private:
  dnnl::primitive primitive_;
  std::vector<dnnl::memory> memories_;
  std::unordered_map<int, dnnl::memory> args_;
};

// A tensor a primitive wants in its own layout, kept next to the Keras-layout
// original: Pack reorders the original into the primitive's layout (or just
// points at it when the layouts are the same), Unpack the other way. Rewritten on
// every use, so it never goes stale.
class Packed {
 public:
  Packed() = default;
  Packed(Runtime& runtime, const dnnl::memory::desc& keras, const dnnl::memory::desc& wanted);
  // The data in the wanted layout, from `keras` (Keras layout).
  const float* Pack(dnnl::stream& stream, const float* keras);
  // Where the primitive writes before Unpack.
  float* target(float* keras) { return same_ ? keras : buffer_.data(); }
  // Copies what the primitive wrote (target) into `keras`.
  void Unpack(dnnl::stream& stream, float* keras);

 private:
  bool same_ = true;
  Buffer buffer_;
  BoundPrimitive to_wanted_, to_keras_;
};

// One layer's primitives for one batch size n. Shapes are written per layer kind
// in its factory's comment; all activations are row-major, channels last.
class LayerKernels {
 public:
  virtual ~LayerKernels() = default;
  // y = activation(layer(x)); the output layer's kernels apply no activation.
  virtual void Forward(const float* x, float* y, const float* kernel, const float* bias) = 0;
  // Builds what Backward needs; only batch sizes that train pay for it.
  virtual void PrepareBackward() = 0;
  // After Forward on the same x. dz is the gradient w.r.t. the layer's output
  // before its activation. Overwrites dkernel and dbias (the sums over the batch)
  // unless they are null (the layer is frozen), and dx unless it is null (nothing
  // below needs it).
  virtual void Backward(const float* x, const float* dz, const float* kernel, float* dkernel,
                        float* dbias, float* dx) = 0;
};

// activation: the post-op fused into the forward primitive; kLinear for none
// (also for the output layer, whose activation the loss applies).
dnnl::primitive_attr ActivationAttr(Activation activation);

// x (n, in), kernel (in, out), bias (out), y (n, out).
std::unique_ptr<LayerKernels> MakeDenseKernels(Runtime& runtime, int64_t n, int64_t in, int64_t out,
                                               Activation activation);

// x (n, in_h, in_w, in_c), kernel (k_h, k_w, in_c, out_c), bias (out_c),
// y (n, out_h, out_w, out_c); TensorFlow's 'same' padding rule.
std::unique_ptr<LayerKernels> MakeConv2DKernels(Runtime& runtime, int64_t n, const LayerSpec& layer,
                                                const Shape& in, const Shape& out,
                                                Activation activation);

// x (n, in_h, in_w, c), y (n, out_h, out_w, c). Padded positions never win.
// Backward takes only dz (the gradient w.r.t. y) and dx.
std::unique_ptr<LayerKernels> MakeMaxPool2DKernels(Runtime& runtime, int64_t n,
                                                   const LayerSpec& layer, const Shape& in,
                                                   const Shape& out);

// Strides, window and the padding before/after each spatial dimension (H, W) for
// Conv2D and MaxPool2D. 'same' follows TensorFlow: pad_total =
// max((out - 1) * stride + k - in, 0), the smaller half first (top, left).
struct WindowGeometry {
  dnnl::memory::dims strides, kernel, padding_l, padding_r;
};
WindowGeometry MakeWindowGeometry(const LayerSpec& layer, const Shape& in, const Shape& out);

}  // namespace seedproof::onednn
