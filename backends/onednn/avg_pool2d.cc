// AvgPool2D and GlobalAvgPool2D as oneDNN average pooling on channels-last
// activations: the global one is a window of the whole input. Whether padded
// zeros count in a mean picks the algorithm (pooling_avg_include_padding or
// _exclude_padding).
#include "backends/onednn/layer_kernels.h"

namespace seedproof::onednn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

// The global pool as a plain window: the input's height and width, stride 1.
LayerSpec WindowOf(const LayerSpec& layer, const Shape& in) {
  if (layer.kind != LayerKind::kGlobalAvgPool2D) return layer;
  LayerSpec window = LayerSpec::AvgPool2D(1);
  window.kernel_h = static_cast<int>(in[0]);
  window.kernel_w = static_cast<int>(in[1]);
  window.stride_h = window.stride_w = 1;
  return window;
}

class AvgPool2DKernels final : public LayerKernels {
 public:
  AvgPool2DKernels(Runtime& runtime, int64_t n, const LayerSpec& layer, const Shape& in,
                   const Shape& out)
      : runtime_(runtime),
        geometry_(MakeWindowGeometry(WindowOf(layer, in), in, out)),
        algorithm_(layer.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                           : dnnl::algorithm::pooling_avg_exclude_padding),
        x_({n, in[2], in[0], in[1]}, kF32, Tag::nhwc),
        y_({n, out[2], out[0], out[1]}, kF32, Tag::nhwc),
        // An addition per window position per output, counted like a flop.
        threads_(ThreadsFor(runtime,
                            static_cast<double>(n * out[0] * out[1] * out[2] *
                                                geometry_.kernel[0] * geometry_.kernel[1]),
                            /*weight_bytes=*/0)) {
    const WindowGeometry& g = geometry_;
    UseThreads(threads_);
    forward_pd_ = dnnl::pooling_forward::primitive_desc(
        dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, algorithm_, x_, y_,
                                    g.strides, g.kernel, g.padding_l, g.padding_r),
        MakeAttr(), runtime.engine);
    forward_ = BoundPrimitive(runtime, threads_, dnnl::pooling_forward(forward_pd_),
                              {{DNNL_ARG_SRC, x_}, {DNNL_ARG_DST, y_}});
  }

  void Forward(const float* x, float* y, const float*, const float*) override {
    forward_.Run({x, y});
  }

  void PrepareBackward() override {
    if (backward_) return;
    const WindowGeometry& g = geometry_;
    UseThreads(threads_);
    dnnl::pooling_backward::primitive_desc pd(
        dnnl::pooling_backward::desc(algorithm_, x_, y_, g.strides, g.kernel, g.padding_l,
                                     g.padding_r),
        MakeAttr(), runtime_.engine, forward_pd_);
    backward_ = BoundPrimitive(runtime_, threads_, dnnl::pooling_backward(pd),
                               {{DNNL_ARG_DIFF_DST, y_}, {DNNL_ARG_DIFF_SRC, x_}});
  }

  // dz (n, out_h, out_w, c) -> dx (n, in_h, in_w, c), overwritten: each gradient
  // shared out over its window.
  void Backward(const float*, const float* dz, const float*, float*, float*, float* dx) override {
    if (dx != nullptr) backward_.Run({dz, dx});
  }

 private:
  Runtime& runtime_;
  const WindowGeometry geometry_;
  const dnnl::algorithm algorithm_;
  const memory::desc x_, y_;
  const int threads_;
  dnnl::pooling_forward::primitive_desc forward_pd_;
  BoundPrimitive forward_, backward_;
};

}  // namespace

std::unique_ptr<LayerKernels> MakeAvgPool2DKernels(Runtime& runtime, int64_t n,
                                                   const LayerSpec& layer, const Shape& in,
                                                   const Shape& out) {
  return std::make_unique<AvgPool2DKernels>(runtime, n, layer, in, out);
}

}  // namespace seedproof::onednn
