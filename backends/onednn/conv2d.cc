// Conv2D as oneDNN convolutions on channels-last (nhwc) activations. The kernels
// let oneDNN choose the weights layout (with the Keras layout hwio it falls back
// to a gemm-based convolution 3-4x slower), so the weights are reordered from the
// flat buffer into that layout on every use, and the weight gradient back.
#include "backends/onednn/layer_kernels.h"

namespace seedproof::onednn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr auto kDirect = dnnl::algorithm::convolution_direct;

class Conv2DKernels final : public LayerKernels {
 public:
  Conv2DKernels(Runtime& runtime, int64_t n, const LayerSpec& layer, const Shape& in,
                const Shape& out, Activation activation)
      : runtime_(runtime),
        geometry_(MakeWindowGeometry(layer, in, out)),
        x_({n, in[2], in[0], in[1]}, kF32, Tag::nhwc),
        y_({n, out[2], out[0], out[1]}, kF32, Tag::nhwc),
        kernel_({out[2], in[2], layer.kernel_h, layer.kernel_w}, kF32, Tag::hwio),
        bias_({out[2]}, kF32, Tag::a),
        // Forward, backward-data and backward-weights do the same work.
        threads_(ThreadsFor(runtime,
                            2.0 * static_cast<double>(n * out[0] * out[1] * out[2] *
                                                      layer.kernel_h * layer.kernel_w * in[2]),
                            static_cast<double>(layer.kernel_h * layer.kernel_w * in[2] * out[2] *
                                                sizeof(float)))) {
    const memory::desc any_kernel(kernel_.dims(), kF32, Tag::any);
    const WindowGeometry& g = geometry_;
    UseThreads(threads_);
    forward_pd_ = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, kDirect, x_, any_kernel,
                                        bias_, y_, g.strides, g.padding_l, g.padding_r),
        MakeAttr(activation, layer.alpha), runtime.engine);
    forward_ = BoundPrimitive(runtime, threads_, dnnl::convolution_forward(forward_pd_),
                              {{DNNL_ARG_SRC, x_},
                               {DNNL_ARG_WEIGHTS, forward_pd_.weights_desc()},
                               {DNNL_ARG_BIAS, bias_},
                               {DNNL_ARG_DST, y_}});
    forward_kernel_ = Packed(runtime, kernel_, forward_pd_.weights_desc());
  }

  void Forward(const float* x, float* y, const float* kernel, const float* bias) override {
    const float* packed = forward_kernel_.Pack(kernel);
    forward_.Run({x, packed, bias, y});
  }

  void PrepareBackward() override {
    if (weights_grad_) return;
    const dnnl::engine& e = runtime_.engine;
    const memory::desc any_kernel(kernel_.dims(), kF32, Tag::any);
    const WindowGeometry& g = geometry_;
    UseThreads(threads_);
    // dkernel, dbias from x and dz (the gradient w.r.t. y's pre-activation).
    dnnl::convolution_backward_weights::primitive_desc weights_pd(
        dnnl::convolution_backward_weights::desc(kDirect, x_, any_kernel, bias_, y_, g.strides,
                                                 g.padding_l, g.padding_r),
        MakeAttr(), e, forward_pd_);
    weights_grad_ =
        BoundPrimitive(runtime_, threads_, dnnl::convolution_backward_weights(weights_pd),
                       {{DNNL_ARG_SRC, x_},
                        {DNNL_ARG_DIFF_DST, y_},
                        {DNNL_ARG_DIFF_WEIGHTS, weights_pd.diff_weights_desc()},
                        {DNNL_ARG_DIFF_BIAS, bias_}});
    // dx from dz and the kernel.
    dnnl::convolution_backward_data::primitive_desc data_pd(
        dnnl::convolution_backward_data::desc(kDirect, x_, any_kernel, y_, g.strides, g.padding_l,
                                              g.padding_r),
        MakeAttr(), e, forward_pd_);
    data_grad_ = BoundPrimitive(runtime_, threads_, dnnl::convolution_backward_data(data_pd),
                                {{DNNL_ARG_DIFF_DST, y_},
                                 {DNNL_ARG_WEIGHTS, data_pd.weights_desc()},
                                 {DNNL_ARG_DIFF_SRC, x_}});
    weights_grad_kernel_ = Packed(runtime_, kernel_, weights_pd.diff_weights_desc());
    data_kernel_ = Packed(runtime_, kernel_, data_pd.weights_desc());
  }

  void Backward(const float* x, const float* dz, const float* kernel, float* dkernel, float* dbias,
                float* dx) override {
    // A layer's kernel and bias train together, so both or neither are given.
    if (dkernel != nullptr && dbias != nullptr) {
      weights_grad_.Run({x, dz, weights_grad_kernel_.target(dkernel), dbias});
      weights_grad_kernel_.Unpack(dkernel);
    }
    if (dx != nullptr) {
      const float* packed = data_kernel_.Pack(kernel);
      data_grad_.Run({dz, packed, dx});
    }
  }

 private:
  Runtime& runtime_;
  const WindowGeometry geometry_;
  // Keras layouts: x (n, in_h, in_w, in_c), y (n, out_h, out_w, out_c) and
  // kernel (k_h, k_w, in_c, out_c); oneDNN names dims (N, C, H, W) and (O, I, H, W).
  const memory::desc x_, y_, kernel_, bias_;
  const int threads_;
  dnnl::convolution_forward::primitive_desc forward_pd_;
  Packed forward_kernel_, weights_grad_kernel_, data_kernel_;
  BoundPrimitive forward_, weights_grad_, data_grad_;
};

}  // namespace

std::unique_ptr<LayerKernels> MakeConv2DKernels(Runtime& runtime, int64_t n, const LayerSpec& layer,
                                                const Shape& in, const Shape& out,
                                                Activation activation) {
  return std::make_unique<Conv2DKernels>(runtime, n, layer, in, out, activation);
}

}  // namespace seedproof::onednn
