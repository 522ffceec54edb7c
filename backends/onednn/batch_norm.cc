// BatchNorm as oneDNN batch normalization on channels-last activations (the
// channels are the last dimension, oneDNN's C). Training normalises with the
// batch's mean and biased variance, which the primitive returns; this file moves
// the moving statistics from them (the variance made unbiased, as PyTorch) and
// keeps them for the backward pass. A frozen layer's backward is one multiply, done
// here. Gamma and beta go to oneDNN as one (2, C) tensor: they lie that way in the
// flat buffers (layer_kernels.h).
#include <cmath>

#include "backends/onednn/layer_kernels.h"

namespace seedproof::onednn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Flags = dnnl::normalization_flags;
constexpr auto kF32 = memory::data_type::f32;

// The data as oneDNN names it: (N, C, H, W) stored nhwc, or (N, C) stored nc.
memory::desc DataDesc(int64_t n, const Shape& in) {
  if (in.size() == 3) return memory::desc({n, in[2], in[0], in[1]}, kF32, Tag::nhwc);
  return memory::desc({n, in[0]}, kF32, Tag::nc);
}

class OnednnBatchNorm final : public BatchNormKernels {
 public:
  OnednnBatchNorm(Runtime& runtime, int64_t n, const LayerSpec& layer, const Shape& in)
      : runtime_(runtime),
        layer_(layer),
        c_(in.back()),
        rows_(n * ElementCount(in) / in.back()),
        data_(DataDesc(n, in)),
        stats_({c_}, kF32, Tag::a),
        gamma_beta_({2, c_}, kF32, Tag::nc),
        // Two passes over the data and one to normalise, a few flops each.
        threads_(ThreadsFor(runtime, 8.0 * static_cast<double>(rows_ * c_), /*weight_bytes=*/0)) {
    UseThreads(threads_);
    training_pd_ = dnnl::batch_normalization_forward::primitive_desc(
        dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, data_,
                                                layer.epsilon, Flags::use_scale_shift),
        MakeAttr(), runtime.engine);
    training_ = BoundPrimitive(runtime, threads_, dnnl::batch_normalization_forward(training_pd_),
                               {{DNNL_ARG_SRC, data_},
                                {DNNL_ARG_SCALE_SHIFT, gamma_beta_},
                                {DNNL_ARG_DST, data_},
                                {DNNL_ARG_MEAN, stats_},
                                {DNNL_ARG_VARIANCE, stats_}});
    dnnl::batch_normalization_forward::primitive_desc inference_pd(
        dnnl::batch_normalization_forward::desc(
            dnnl::prop_kind::forward_inference, data_, layer.epsilon,
            Flags::use_global_stats | Flags::use_scale_shift),
        MakeAttr(), runtime.engine);
    inference_ = BoundPrimitive(runtime, threads_, dnnl::batch_normalization_forward(inference_pd),
                                {{DNNL_ARG_SRC, data_},
                                 {DNNL_ARG_MEAN, stats_},
                                 {DNNL_ARG_VARIANCE, stats_},
                                 {DNNL_ARG_SCALE_SHIFT, gamma_beta_},
                                 {DNNL_ARG_DST, data_}});
    mean_.Resize(c_);
    variance_.Resize(c_);
  }

  void ForwardTraining(const float* x, float* y, const float* gamma_beta, float* moving_mean,
                       float* moving_var) override {
    training_.Run({x, gamma_beta, y, mean_.data(), variance_.data()});
    const float m = layer_.momentum;
    const float unbiased = rows_ > 1 ? static_cast<float>(rows_) / static_cast<float>(rows_ - 1)
                                     : 1.0f;
    for (int64_t k = 0; k < c_; ++k) {
      moving_mean[k] = m * moving_mean[k] + (1.0f - m) * mean_.data()[k];
      moving_var[k] = m * moving_var[k] + (1.0f - m) * variance_.data()[k] * unbiased;
    }
  }

  void ForwardInference(const float* x, float* y, const float* gamma_beta,
                        const float* moving_mean, const float* moving_var) override {
    inference_.Run({x, moving_mean, moving_var, gamma_beta, y});
  }

  void PrepareBackward() override {
    if (backward_) return;
    UseThreads(threads_);
    dnnl::batch_normalization_backward::primitive_desc pd(
        dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, data_, data_,
                                                 layer_.epsilon, Flags::use_scale_shift),
        MakeAttr(), runtime_.engine, training_pd_);
    backward_ = BoundPrimitive(runtime_, threads_, dnnl::batch_normalization_backward(pd),
                               {{DNNL_ARG_SRC, data_},
                                {DNNL_ARG_MEAN, stats_},
                                {DNNL_ARG_VARIANCE, stats_},
                                {DNNL_ARG_DIFF_DST, data_},
                                {DNNL_ARG_SCALE_SHIFT, gamma_beta_},
                                {DNNL_ARG_DIFF_SRC, data_},
                                {DNNL_ARG_DIFF_SCALE_SHIFT, gamma_beta_}});
  }

  void BackwardTraining(const float* x, const float* dz, const float* gamma_beta,
                        float* dgamma_dbeta, float* dx) override {
    // The primitive always writes dx: without a caller's buffer, into one of ours.
    if (dx == nullptr) {
      scratch_dx_.Resize(rows_ * c_);
      dx = scratch_dx_.data();
    }
    backward_.Run({x, mean_.data(), variance_.data(), dz, gamma_beta, dx, dgamma_dbeta});
  }

  void BackwardFrozen(const float* dz, const float* gamma, const float* moving_var,
                      float* dx) override {
    scale_.Resize(c_);
    for (int64_t k = 0; k < c_; ++k) {
      scale_.data()[k] = static_cast<float>(
          gamma[k] / std::sqrt(static_cast<double>(moving_var[k]) + layer_.epsilon));
    }
    for (int64_t r = 0; r < rows_; ++r) {
      for (int64_t k = 0; k < c_; ++k) dx[r * c_ + k] = dz[r * c_ + k] * scale_.data()[k];
    }
  }

 private:
  Runtime& runtime_;
  const LayerSpec layer_;
  const int64_t c_, rows_;
  const memory::desc data_, stats_, gamma_beta_;
  const int threads_;
  dnnl::batch_normalization_forward::primitive_desc training_pd_;
  BoundPrimitive training_, inference_, backward_;
  Buffer mean_, variance_, scale_, scratch_dx_;
};

}  // namespace

std::unique_ptr<BatchNormKernels> MakeBatchNormKernels(Runtime& runtime, int64_t n,
                                                       const LayerSpec& layer, const Shape& in) {
  return std::make_unique<OnednnBatchNorm>(runtime, n, layer, in);
}

}  // namespace seedproof::onednn
