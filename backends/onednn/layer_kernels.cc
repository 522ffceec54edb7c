#include "backends/onednn/layer_kernels.h"

#include <algorithm>
#include <new>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace seedproof::onednn {

void Buffer::Resize(int64_t count) {
  if (count <= capacity_) return;
  // aligned_alloc wants a size that is a multiple of the alignment.
  const size_t bytes = (static_cast<size_t>(count) * sizeof(float) + 63) / 64 * 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) throw std::bad_alloc();
  data_.reset(p);
  capacity_ = count;
}

int ThreadsFor(const Runtime& runtime, double flops, double weight_bytes) {
  constexpr double kFlopsPerThread = 4e6;
  constexpr double kMinFlopsPerWeightByte = 48;
  if (flops < kMinFlopsPerWeightByte * weight_bytes) return 1;
  return std::clamp(static_cast<int>(flops / kFlopsPerThread), 1, runtime.threads);
}

void UseThreads([[maybe_unused]] int threads) {
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
}

BoundPrimitive::BoundPrimitive(Runtime& runtime, int threads, dnnl::primitive primitive,
                               std::initializer_list<std::pair<int, dnnl::memory::desc>> args)
    : runtime_(&runtime), threads_(threads), primitive_(std::move(primitive)) {
  auto bind = [&](int arg, const dnnl::memory::desc& desc) {
    // No buffer of its own: Run points it at the caller's.
    memories_.emplace_back(desc, runtime.engine, static_cast<void*>(DNNL_MEMORY_NONE));
    args_.push_back({arg, memories_.back().get()});
  };
  for (const auto& [arg, desc] : args) bind(arg, desc);
  const dnnl_memory_desc_t* scratchpad_md =
      dnnl_primitive_desc_query_md(primitive_.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  const dnnl::memory::desc scratchpad =
      scratchpad_md != nullptr ? dnnl::memory::desc(*scratchpad_md) : dnnl::memory::desc();
  if (scratchpad.get_size() > 0) {
    runtime.scratchpad.Resize(static_cast<int64_t>((scratchpad.get_size() + 3) / 4));
    bind(DNNL_ARG_SCRATCHPAD, scratchpad);
    has_scratchpad_ = true;
  }
}

void BoundPrimitive::Run(std::initializer_list<const void*> handles) {
  auto memory = memories_.begin();
  for (const void* handle : handles) (memory++)->set_data_handle(const_cast<void*>(handle));
  // The scratchpad may have moved since: a later primitive can have grown it.
  if (has_scratchpad_) memory->set_data_handle(runtime_->scratchpad.data());
  UseThreads(threads_);
  dnnl::error::wrap_c_api(dnnl_primitive_execute(primitive_.get(), runtime_->stream.get(),
                                                 static_cast<int>(args_.size()), args_.data()),
                          "could not execute a primitive");
}

Packed::Packed(Runtime& runtime, const dnnl::memory::desc& keras, const dnnl::memory::desc& wanted)
    : same_(keras == wanted) {
  if (same_) return;
  buffer_.Resize(static_cast<int64_t>((wanted.get_size() + sizeof(float) - 1) / sizeof(float)));
  const dnnl::engine& e = runtime.engine;
  // Weights are small: one thread.
  UseThreads(1);
  to_wanted_ = BoundPrimitive(
      runtime, 1, dnnl::reorder(dnnl::reorder::primitive_desc(e, keras, e, wanted, MakeAttr())),
      {{DNNL_ARG_FROM, keras}, {DNNL_ARG_TO, wanted}});
  to_keras_ = BoundPrimitive(
      runtime, 1, dnnl::reorder(dnnl::reorder::primitive_desc(e, wanted, e, keras, MakeAttr())),
      {{DNNL_ARG_FROM, wanted}, {DNNL_ARG_TO, keras}});
}

const float* Packed::Pack(const float* keras) {
  if (same_) return keras;
  to_wanted_.Run({keras, buffer_.data()});
  return buffer_.data();
}

void Packed::Unpack(float* keras) {
  if (same_) return;
  to_keras_.Run({buffer_.data(), keras});
}

void LayerKernels::BackwardInBlocks(const float* x, const float* dz, const float* kernel,
                                    float* dkernel, float* dbias, float* dx, int64_t,
                                    const std::function<void(const float*)>& final) {
  Backward(x, dz, kernel, dkernel, dbias, dx);
  final(dkernel);
}

dnnl::primitive_attr MakeAttr(Activation activation, float alpha) {
  constexpr float kSeluScale = 1.0507009873554805f;
  constexpr float kSeluAlpha = 1.6732632423543772f;
  dnnl::post_ops ops;
  // append_eltwise(scale, algorithm, alpha, beta): dst = scale * f(dst).
  switch (activation) {
    case Activation::kLinear:
    case Activation::kSoftmax:  // only ever the output layer's, fused into the loss
      break;
    case Activation::kRelu:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      break;
    case Activation::kLeakyRelu:  // eltwise_relu's alpha is the slope below 0
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, alpha, 0.0f);
      break;
    case Activation::kSelu:
      ops.append_eltwise(kSeluScale, dnnl::algorithm::eltwise_elu, kSeluAlpha, 0.0f);
      break;
    case Activation::kElu:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_elu, 1.0f, 0.0f);
      break;
    case Activation::kTanh:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_tanh, 0.0f, 0.0f);
      break;
    case Activation::kSigmoid:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f);
      break;
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

WindowGeometry MakeWindowGeometry(const LayerSpec& layer, const Shape& in, const Shape& out) {
  WindowGeometry g;
  g.strides = {layer.stride_h, layer.stride_w};
  g.kernel = {layer.kernel_h, layer.kernel_w};
  const int64_t k[2] = {layer.kernel_h, layer.kernel_w};
  if (layer.padding == Padding::kExplicit) {
    g.padding_l = {layer.pad_top, layer.pad_left};
    g.padding_r = {layer.pad_bottom, layer.pad_right};
    return g;
  }
  for (int d = 0; d < 2; ++d) {
    const int64_t total = layer.padding == Padding::kSame
                              ? std::max<int64_t>((out[d] - 1) * g.strides[d] + k[d] - in[d], 0)
                              : 0;
    g.padding_l.push_back(total / 2);
    g.padding_r.push_back(total - total / 2);
  }
  return g;
}

}  // namespace seedproof::onednn
