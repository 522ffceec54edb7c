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
#include <functional>
#include <initializer_list>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <utility>
#include <vector>

#include "backends/model_spec.h"

namespace seedproof::onednn {

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

// The engine and stream one model's primitives run on, and the scratchpad they
// share (they run one at a time). oneDNN's default scratchpad is allocated and
// freed inside every execute(); ours is allocated once.
struct Runtime {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  Buffer scratchpad;
  int threads = 1;  // BackendOptions::threads: the most any primitive may use
};

// How many OpenMP threads a primitive gets: one more for every ~20 us of
// single-core work (`flops`), up to runtime.threads, and only one while it does
// fewer than 48 flops per byte of the weights it reads or writes
// (`weight_bytes`). Measured on the 2-core VMs this runs on: an OpenMP fork-join
// costs 3-4 us, and cross-core cache traffic runs at ~23 GB/s (half the
// same-core rate). ModelBase's optimizer rewrites every weight on the main
// thread each step, so a worker thread must fetch its share of the weights again
// and hand its share of the gradients back; for a dense layer that only pays
// from ~96 rows on (B=32 and 64 train slower on two threads when split, B=128
// faster). A pure function of the shapes and the thread count, so results stay
// bit-identical run to run.
int ThreadsFor(const Runtime& runtime, double flops, double weight_bytes);
// Sets the calling thread's OpenMP thread count (oneDNN reads it when it creates
// a primitive and when it runs one); a no-op without OpenMP.
void UseThreads(int threads);

// Attributes every primitive here is created with: the caller's scratchpad, plus
// `activation` fused as a post-op (kLinear: none; also for the output layer, whose
// activation the loss applies); alpha is leaky_relu's slope below 0.
dnnl::primitive_attr MakeAttr(Activation activation = Activation::kLinear, float alpha = 0.0f);

// A primitive and the memory objects its arguments are bound to, built once.
// Run points each memory at this call's buffer (no copies, no allocation of ours)
// and executes.
class BoundPrimitive {
 public:
  BoundPrimitive() = default;
  // args: (DNNL_ARG_*, descriptor) in the order Run receives the handles. The
  // primitive must have been created with MakeAttr's scratchpad mode, on
  // `threads` threads (UseThreads); the runtime's scratchpad grows to what it needs.
  BoundPrimitive(Runtime& runtime, int threads, dnnl::primitive primitive,
                 std::initializer_list<std::pair<int, dnnl::memory::desc>> args);
  explicit operator bool() const { return static_cast<bool>(primitive_); }
  // One handle per argument, in construction order.
  void Run(std::initializer_list<const void*> handles);

 private:
  Runtime* runtime_ = nullptr;
  int threads_ = 1;
  dnnl::primitive primitive_;
  bool has_scratchpad_ = false;  // the last memory is the scratchpad
  std::vector<dnnl::memory> memories_;
  // The C API's argument list, built once: the C++ execute() builds it anew (on
  // the heap) on every call.
  std::vector<dnnl_exec_arg_t> args_;
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
  const float* Pack(const float* keras);
  // Where the primitive writes before Unpack.
  float* target(float* keras) { return same_ ? keras : buffer_.data(); }
  // Copies what the primitive wrote (target) into `keras`.
  void Unpack(float* keras);

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
  // Backward for a pass that overlaps the gradients' reduction (dkernel not null,
  // dbias, when there is one, right after it in the gradient buffer): calls
  // final(p) each time everything from p to the end of dbias is final. A layer
  // that can computes its weight gradient in blocks of about block_floats, the
  // last block first, calling final after each; the default calls it once.
  virtual void BackwardInBlocks(const float* x, const float* dz, const float* kernel,
                                float* dkernel, float* dbias, float* dx, int64_t block_floats,
                                const std::function<void(const float*)>& final);
};

// x (n, in), kernel (in, out), bias (out), y (n, out).
std::unique_ptr<LayerKernels> MakeDenseKernels(Runtime& runtime, int64_t n, int64_t in, int64_t out,
                                               Activation activation, float alpha);

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

// AvgPool2D and GlobalAvgPool2D (a window of the whole input): x (n, in_h, in_w,
// c), y (n, out_h, out_w, c); the mean over the window's positions inside the
// input, or over the whole window with count_include_pad. Backward as MaxPool2D's.
std::unique_ptr<LayerKernels> MakeAvgPool2DKernels(Runtime& runtime, int64_t n,
                                                   const LayerSpec& layer, const Shape& in,
                                                   const Shape& out);

// BatchNorm over the last dimension of x and y, (n, ..., c), with gamma, beta,
// moving mean and moving variance (c each): LayerSpec's contract. gamma_beta is
// gamma followed by beta, (2, c), as they lie in the flat parameter buffer (and
// their gradients in the gradient buffer): oneDNN 2.6 backpropagates only its
// combined scale-and-shift tensor (separate use_scale/use_shift fail to execute).
class BatchNormKernels {
 public:
  virtual ~BatchNormKernels() = default;
  // A trainable layer in training: the batch's statistics, kept for
  // BackwardTraining; the moving ones move.
  virtual void ForwardTraining(const float* x, float* y, const float* gamma_beta,
                               float* moving_mean, float* moving_var) = 0;
  // Frozen, or not training: the moving statistics.
  virtual void ForwardInference(const float* x, float* y, const float* gamma_beta,
                                const float* moving_mean, const float* moving_var) = 0;
  virtual void PrepareBackward() = 0;
  // After ForwardTraining on the same x; dz is the gradient w.r.t. y before the
  // activation. Overwrites dgamma_dbeta (2, c) (sums over the batch), and dx
  // unless null.
  virtual void BackwardTraining(const float* x, const float* dz, const float* gamma_beta,
                                float* dgamma_dbeta, float* dx) = 0;
  // A frozen layer: dx = dz * gamma / sqrt(moving_var + epsilon).
  virtual void BackwardFrozen(const float* dz, const float* gamma, const float* moving_var,
                              float* dx) = 0;
};
// `in` is the example shape, (H, W, C) or (C).
std::unique_ptr<BatchNormKernels> MakeBatchNormKernels(Runtime& runtime, int64_t n,
                                                       const LayerSpec& layer, const Shape& in);

// Strides, window and the padding before/after each spatial dimension (H, W) for
// Conv2D and the pooling layers. 'same' follows TensorFlow: pad_total =
// max((out - 1) * stride + k - in, 0), the smaller half first (top, left);
// explicit padding is the layer's pad_* values.
struct WindowGeometry {
  dnnl::memory::dims strides, kernel, padding_l, padding_r;
};
WindowGeometry MakeWindowGeometry(const LayerSpec& layer, const Shape& in, const Shape& out);

}  // namespace seedproof::onednn
