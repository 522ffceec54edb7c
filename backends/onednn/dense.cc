// Dense as three oneDNN matmuls on the Keras-layout kernel (in, out), which is
// matmul's plain `ab` weights: no reorders, no private copy of the weights.
#include <algorithm>

#include "backends/onednn/elementwise.h"
#include "backends/onednn/layer_kernels.h"

namespace seedproof::onednn {
namespace {

using dnnl::matmul;
using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

class DenseKernels final : public LayerKernels {
 public:
  DenseKernels(Runtime& runtime, int64_t n, int64_t in, int64_t out, Activation activation,
               float alpha)
      : runtime_(runtime),
        n_(n),
        in_(in),
        out_(out),
        // The three matmuls do the same work, each over the whole kernel.
        threads_(ThreadsFor(runtime, 2.0 * static_cast<double>(n * in * out),
                            static_cast<double>(in * out * sizeof(float)))) {
    // y (n, out) = activation(x (n, in) . kernel (in, out) + bias (1, out)).
    const memory::desc x({n, in}, kF32, Tag::ab), kernel({in, out}, kF32, Tag::ab),
        bias({1, out}, kF32, Tag::ab), y({n, out}, kF32, Tag::ab);
    UseThreads(threads_);
    matmul::primitive_desc pd(matmul::desc(x, kernel, bias, y), MakeAttr(activation, alpha),
                              runtime.engine);
    forward_ = BoundPrimitive(
        runtime, threads_, matmul(pd),
        {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, kernel}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, y}});
  }

  void Forward(const float* x, float* y, const float* kernel, const float* bias) override {
    forward_.Run({x, kernel, bias, y});
  }

  void PrepareBackward() override {
    if (weights_grad_) return;
    const dnnl::engine& e = runtime_.engine;
    UseThreads(threads_);
    // dkernel (in, out) = xT (in, n) . dz (n, out), where xT is x (n, in) read
    // column-major (tag ba): no transpose is materialised.
    const memory::desc xt({in_, n_}, kF32, Tag::ba), dz({n_, out_}, kF32, Tag::ab),
        dkernel({in_, out_}, kF32, Tag::ab);
    weights_grad_ =
        BoundPrimitive(runtime_, threads_,
                       matmul(matmul::primitive_desc(matmul::desc(xt, dz, dkernel), MakeAttr(), e)),
                       {{DNNL_ARG_SRC, xt}, {DNNL_ARG_WEIGHTS, dz}, {DNNL_ARG_DST, dkernel}});
    // dx (n, in) = dz (n, out) . kernelT (out, in), kernelT being the kernel read
    // column-major.
    const memory::desc kernel_t({out_, in_}, kF32, Tag::ba), dx({n_, in_}, kF32, Tag::ab);
    data_grad_ = BoundPrimitive(
        runtime_, threads_,
        matmul(matmul::primitive_desc(matmul::desc(dz, kernel_t, dx), MakeAttr(), e)),
        {{DNNL_ARG_SRC, dz}, {DNNL_ARG_WEIGHTS, kernel_t}, {DNNL_ARG_DST, dx}});
  }

  void Backward(const float* x, const float* dz, const float* kernel, float* dkernel, float* dbias,
                float* dx) override {
    if (dkernel != nullptr) weights_grad_.Run({x, dz, dkernel});
    if (dbias != nullptr) ColumnSums(dz, n_, out_, dbias, runtime_.threads);
    if (dx != nullptr) data_grad_.Run({dz, kernel, dx});
  }

  // The kernel's rows are contiguous in the gradient buffer: blocks of rows, the
  // last first, each final as soon as its matmul returns. dx comes last: the
  // blocks' sums can start before it, and go on at the next hand-over.
  void BackwardInBlocks(const float* x, const float* dz, const float* kernel, float* dkernel,
                        float* dbias, float* dx, int64_t block_floats,
                        const std::function<void(const float*)>& final) override {
    if (dbias != nullptr) ColumnSums(dz, n_, out_, dbias, runtime_.threads);
    const int64_t rows = std::clamp<int64_t>(block_floats / out_, 1, in_);
    if (rows == in_) {
      weights_grad_.Run({x, dz, dkernel});
      final(dkernel);
    } else {
      PrepareBlocks(rows);
      for (int64_t first = (in_ - 1) / rows * rows; first >= 0; first -= rows) {
        BoundPrimitive& block = first + rows <= in_ ? block_grad_ : last_block_grad_;
        block.Run({x + first, dz, dkernel + first * out_});
        final(dkernel + first * out_);
      }
    }
    if (dx != nullptr) data_grad_.Run({dz, kernel, dx});
  }

 private:
  // Rows [first, first + count) of dkernel = columns [first, first + count) of x,
  // read transposed (count, n) with x's row stride, . dz (n, out).
  BoundPrimitive BlockGradient(int64_t count) {
    const memory::desc xt({count, n_}, kF32, memory::dims{1, in_}), dz({n_, out_}, kF32, Tag::ab),
        dkernel({count, out_}, kF32, Tag::ab);
    UseThreads(threads_);
    return BoundPrimitive(
        runtime_, threads_,
        matmul(matmul::primitive_desc(matmul::desc(xt, dz, dkernel), MakeAttr(), runtime_.engine)),
        {{DNNL_ARG_SRC, xt}, {DNNL_ARG_WEIGHTS, dz}, {DNNL_ARG_DST, dkernel}});
  }
  void PrepareBlocks(int64_t rows) {
    if (rows == block_rows_) return;
    block_grad_ = BlockGradient(rows);
    last_block_grad_ = in_ % rows != 0 ? BlockGradient(in_ % rows) : BoundPrimitive();
    block_rows_ = rows;
  }

  Runtime& runtime_;
  const int64_t n_, in_, out_;
  const int threads_;
  BoundPrimitive forward_, weights_grad_, data_grad_;
  // BackwardInBlocks's weight gradient: blocks of block_rows_ rows, and the rest.
  int64_t block_rows_ = 0;
  BoundPrimitive block_grad_, last_block_grad_;
};

}  // namespace

std::unique_ptr<LayerKernels> MakeDenseKernels(Runtime& runtime, int64_t n, int64_t in, int64_t out,
                                               Activation activation, float alpha) {
  return std::make_unique<DenseKernels>(runtime, n, in, out, activation, alpha);
}

}  // namespace seedproof::onednn
