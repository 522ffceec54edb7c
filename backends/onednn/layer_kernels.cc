#include "backends/onednn/layer_kernels.h"

#include <algorithm>
#include <new>

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

BoundPrimitive::BoundPrimitive(dnnl::primitive primitive, const dnnl::engine& engine,
                               std::initializer_list<std::pair<int, dnnl::memory::desc>> args)
    : primitive_(std::move(primitive)) {
  for (const auto& [arg, desc] : args) {
    // No buffer of its own: Run points it at the caller's.
    memories_.emplace_back(desc, engine, static_cast<void*>(DNNL_MEMORY_NONE));
    args_.emplace(arg, memories_.back());
  }
}

void BoundPrimitive::Run(dnnl::stream& stream, std::initializer_list<const void*> handles) {
  auto memory = memories_.begin();
  for (const void* handle : handles) (memory++)->set_data_handle(const_cast<void*>(handle));
  primitive_.execute(stream, args_);
}

Packed::Packed(Runtime& runtime, const dnnl::memory::desc& keras,
               const dnnl::memory::desc& wanted)
    : same_(keras == wanted) {
  if (same_) return;
  buffer_.Resize(static_cast<int64_t>((wanted.get_size() + sizeof(float) - 1) / sizeof(float)));
  const dnnl::engine& e = runtime.engine;
  to_wanted_ = BoundPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(e, keras, e, wanted)), e,
                              {{DNNL_ARG_FROM, keras}, {DNNL_ARG_TO, wanted}});
  to_keras_ = BoundPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(e, wanted, e, keras)), e,
                             {{DNNL_ARG_FROM, wanted}, {DNNL_ARG_TO, keras}});
}

const float* Packed::Pack(dnnl::stream& stream, const float* keras) {
  if (same_) return keras;
  to_wanted_.Run(stream, {keras, buffer_.data()});
  return buffer_.data();
}

void Packed::Unpack(dnnl::stream& stream, float* keras) {
  if (same_) return;
  to_keras_.Run(stream, {buffer_.data(), keras});
}

dnnl::primitive_attr ActivationAttr(Activation activation) {
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
  return attr;
}

WindowGeometry MakeWindowGeometry(const LayerSpec& layer, const Shape& in, const Shape& out) {
  WindowGeometry g;
  g.strides = {layer.stride_h, layer.stride_w};
  g.kernel = {layer.kernel_h, layer.kernel_w};
  const int64_t k[2] = {layer.kernel_h, layer.kernel_w};
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
