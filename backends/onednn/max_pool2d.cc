// MaxPool2D as oneDNN max pooling on channels-last activations. oneDNN skips
// padded positions, so with 'same' padding they never win. The forward keeps a
// workspace (where each maximum came from) for the backward.
#include "backends/onednn/layer_kernels.h"

namespace seedproof::onednn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

class MaxPool2DKernels final : public LayerKernels {
 public:
  MaxPool2DKernels(Runtime& runtime, int64_t n, const LayerSpec& layer, const Shape& in,
                   const Shape& out)
      : runtime_(runtime),
        geometry_(MakeWindowGeometry(layer, in, out)),
        x_({n, in[2], in[0], in[1]}, kF32, Tag::nhwc),
        y_({n, out[2], out[0], out[1]}, kF32, Tag::nhwc),
        // A comparison per window position per output, counted like a flop.
        threads_(ThreadsFor(
            runtime,
            static_cast<double>(n * out[0] * out[1] * out[2] * layer.kernel_h * layer.kernel_w),
            /*weight_bytes=*/0)) {
    const WindowGeometry& g = geometry_;
    UseThreads(threads_);
    // Training and inference share this primitive: the workspace it writes is
    // cheap next to the pooling.
    forward_pd_ = dnnl::pooling_forward::primitive_desc(
        dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max,
                                    x_, y_, g.strides, g.kernel, g.padding_l, g.padding_r),
        MakeAttr(), runtime.engine);
    const memory::desc workspace = forward_pd_.workspace_desc();
    workspace_.Resize(static_cast<int64_t>((workspace.get_size() + 3) / 4));
    forward_ =
        BoundPrimitive(runtime, threads_, dnnl::pooling_forward(forward_pd_),
                       {{DNNL_ARG_SRC, x_}, {DNNL_ARG_DST, y_}, {DNNL_ARG_WORKSPACE, workspace}});
  }

  void Forward(const float* x, float* y, const float*, const float*) override {
    forward_.Run({x, y, workspace_.data()});
  }

  void PrepareBackward() override {
    if (backward_) return;
    const WindowGeometry& g = geometry_;
    UseThreads(threads_);
    dnnl::pooling_backward::primitive_desc pd(
        dnnl::pooling_backward::desc(dnnl::algorithm::pooling_max, x_, y_, g.strides, g.kernel,
                                     g.padding_l, g.padding_r),
        MakeAttr(), runtime_.engine, forward_pd_);
    backward_ = BoundPrimitive(runtime_, threads_, dnnl::pooling_backward(pd),
                               {{DNNL_ARG_DIFF_DST, y_},
                                {DNNL_ARG_WORKSPACE, forward_pd_.workspace_desc()},
                                {DNNL_ARG_DIFF_SRC, x_}});
  }

  // dz (n, out_h, out_w, c) -> dx (n, in_h, in_w, c): each gradient goes to its
  // window's maximum; dx is overwritten everywhere.
  void Backward(const float*, const float* dz, const float*, float*, float*, float* dx) override {
    if (dx != nullptr) backward_.Run({dz, workspace_.data(), dx});
  }

 private:
  Runtime& runtime_;
  const WindowGeometry geometry_;
  const memory::desc x_, y_;
  const int threads_;
  dnnl::pooling_forward::primitive_desc forward_pd_;
  Buffer workspace_;
  BoundPrimitive forward_, backward_;
};

}  // namespace

std::unique_ptr<LayerKernels> MakeMaxPool2DKernels(Runtime& runtime, int64_t n,
                                                   const LayerSpec& layer, const Shape& in,
                                                   const Shape& out) {
  return std::make_unique<MaxPool2DKernels>(runtime, n, layer, in, out);
}

}  // namespace seedproof::onednn
