// The oneDNN model: per batch size, a Plan of primitives (built once, in the
// per-layer files) and the buffers the forward pass keeps for the backward pass.
// The hot path is Plan lookup, execute() calls and a few vectorised loops; the
// parameters are read from ModelBase's flat buffer on every call, so SetWeights,
// Load and the optimizer are always seen.
#include "backends/onednn/onednn_backend.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/model_base.h"
#include "backends/onednn/elementwise.h"
#include "backends/onednn/layer_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace seedproof {
namespace {

using onednn::Buffer;
using onednn::LayerKernels;

// Batch sizes whose primitives are kept: a training run sees the batch size, the
// last partial batch, and the evaluation and prediction batch sizes with theirs.
constexpr size_t kMaxPlans = 8;

absl::Status FromDnnl(const dnnl::error& e, const char* during) {
  return absl::InternalError(absl::StrCat("oneDNN failed during ", during, ": ", e.what()));
}

// Everything one batch size n needs.
struct Plan {
  int64_t n = 0;
  // [l]: the layer's primitives; null for Flatten and Dropout, which run here, and
  // for BatchNorm, whose primitives are in norms[l].
  std::vector<std::unique_ptr<LayerKernels>> kernels;
  std::vector<std::unique_ptr<onednn::BatchNormKernels>> norms;
  // [l]: (n, outputs[l]...), the layer's output after its activation (the logits
  // for the output layer); unused for Flatten, which passes its input on.
  std::vector<Buffer> outputs;
  std::vector<Buffer> masks;  // [l]: (n, outputs[l]...), Dropout's multipliers
  // [l]: what the last Forward read and wrote (Flatten and inference Dropout
  // alias their input).
  std::vector<const float*> in, out;
  // The backward pass's gradients w.r.t. a layer's output and input, alternating.
  Buffer grads[2];
  bool backward_ready = false;
  uint64_t last_use = 0;
};

// What runs one batch at a time: a runtime (stream, scratchpad, thread count)
// and the plans of the batch sizes it has seen. A model has one for whole
// batches, whose primitives may use every thread, and with threads > 1 one per
// shard of a split batch, whose primitives run on the shard's one thread.
struct Executor {
  std::unique_ptr<onednn::Runtime> runtime;
  std::vector<std::unique_ptr<Plan>> plans;
  uint64_t uses = 0;
  // The plan of the last Forward if it was a training one: Backward's input.
  Plan* trained = nullptr;
  // Backward reads layer 0's input from the caller's x: TrainStep keeps it alive
  // between Forward and Backward.
};

class OnednnModel final : public ModelBase {
 public:
  OnednnModel(ModelSpec spec, ModelShapes shapes, const BackendOptions& options)
      : ModelBase(std::move(spec), std::move(shapes)), options_(options) {
    whole_.runtime = std::make_unique<onednn::Runtime>();
    // oneDNN runs on OpenMP (libgomp) here; each primitive sets its own share of
    // these threads when it is created and run (onednn::ThreadsFor). Without
    // OpenMP in the build (CMake: OpenMP::OpenMP_CXX) the count cannot be set
    // and OpenMP's default applies.
    whole_.runtime->threads = options.threads;
    if (options.threads > 1) {
      shards_.resize(options.threads);
      for (Executor& shard : shards_) {
        shard.runtime = std::make_unique<onednn::Runtime>();
        shard.runtime->threads = 1;
      }
    }
  }

 protected:
  absl::StatusOr<const float*> Forward(const float* x, int64_t n, bool training,
                                       int end_layer) override {
    return Run(whole_, x, n, training, end_layer, 0);
  }
  absl::Status Backward(const float* dlogits, int64_t n) override {
    return RunBackward(whole_, 0, dlogits, n);
  }
  absl::StatusOr<std::unique_ptr<ModelBase>> MakeSibling(const ModelSpec& spec) const override;

  int shard_count() const override { return static_cast<int>(shards_.size()); }
  bool RunShards(int count, const std::function<void(int)>& work) override;
  absl::StatusOr<const float*> ForwardShard(int shard, const float* x, int64_t n,
                                            int64_t first_row) override {
    return Run(shards_[shard], x, n, /*training=*/true, num_layers(), first_row);
  }
  absl::Status BackwardShard(int shard, const float* dlogits, int64_t n) override {
    return RunBackward(shards_[shard], shard, dlogits, n);
  }

 private:
  // Forward on `executor`; first_row: x's first row in the whole batch (dropout).
  absl::StatusOr<const float*> Run(Executor& executor, const float* x, int64_t n, bool training,
                                   int end_layer, int64_t first_row);
  // Backward on `executor`, into the gradients of `shard` (0: the whole batch's).
  absl::Status RunBackward(Executor& executor, int shard, const float* dlogits, int64_t n);
  Plan& PlanFor(Executor& executor, int64_t n);
  std::unique_ptr<Plan> MakePlan(onednn::Runtime& runtime, int64_t n);
  void PrepareBackward(Plan& plan);

  const BackendOptions options_;
  Executor whole_;
  std::vector<Executor> shards_;
};

absl::StatusOr<std::unique_ptr<OnednnModel>> MakeOnednnModel(const ModelSpec& spec,
                                                             const BackendOptions& options) {
  if (options.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("onednn backend: threads must be >= 1, got ", options.threads));
  }
  absl::StatusOr<ModelShapes> shapes = InferShapes(spec);
  if (!shapes.ok()) return shapes.status();
  try {
    return std::make_unique<OnednnModel>(spec, *std::move(shapes), options);
  } catch (const dnnl::error& e) {
    return FromDnnl(e, "engine creation");
  }
}

bool OnednnModel::RunShards(int count, const std::function<void(int)>& work) {
#ifdef _OPENMP
  // The shards' primitives were made for one thread each and run inside this
  // region, where oneDNN does not fork again.
  if (omp_in_parallel()) return false;
  bool all_there = true;
#pragma omp parallel num_threads(count)
  {
    // Every thread sees the same count, so either all run their share or none.
    if (omp_get_num_threads() != count) {
#pragma omp single
      all_there = false;
    } else {
      work(omp_get_thread_num());
    }
  }
  return all_there;
#else
  (void)count;
  (void)work;
  return false;
#endif
}

Plan& OnednnModel::PlanFor(Executor& executor, int64_t n) {
  std::vector<std::unique_ptr<Plan>>& plans = executor.plans;
  ++executor.uses;
  for (auto& plan : plans) {
    if (plan->n == n) {
      plan->last_use = executor.uses;
      return *plan;
    }
  }
  if (plans.size() == kMaxPlans) {
    auto oldest = std::min_element(plans.begin(), plans.end(), [](const auto& a, const auto& b) {
      return a->last_use < b->last_use;
    });
    if (oldest->get() == executor.trained) executor.trained = nullptr;
    plans.erase(oldest);
  }
  plans.push_back(MakePlan(*executor.runtime, n));
  plans.back()->last_use = executor.uses;
  return *plans.back();
}

std::unique_ptr<Plan> OnednnModel::MakePlan(onednn::Runtime& runtime, int64_t n) {
  auto plan = std::make_unique<Plan>();
  plan->n = n;
  const int layers = num_layers();
  plan->kernels.resize(layers);
  plan->norms.resize(layers);
  plan->outputs.resize(layers);
  plan->masks.resize(layers);
  plan->in.resize(layers);
  plan->out.resize(layers);
  for (int l = 0; l < layers; ++l) {
    const LayerSpec& layer = spec().layers[l];
    const Shape& in = shapes().inputs[l];
    const Shape& out = shapes().outputs[l];
    // The output layer's activation is fused into the loss.
    const Activation activation = l + 1 < layers ? layer.activation : Activation::kLinear;
    switch (layer.kind) {
      case LayerKind::kFlatten:
        continue;
      case LayerKind::kDropout:
        plan->masks[l].Resize(n * ElementCount(out));
        break;
      case LayerKind::kActivation:
        break;  // a loop of ours, into outputs[l]
      case LayerKind::kDense:
        plan->kernels[l] = onednn::MakeDenseKernels(runtime, n, ElementCount(in), ElementCount(out),
                                                    activation, layer.alpha);
        break;
      case LayerKind::kConv2D:
        plan->kernels[l] = onednn::MakeConv2DKernels(runtime, n, layer, in, out, activation);
        break;
      case LayerKind::kMaxPool2D:
        plan->kernels[l] = onednn::MakeMaxPool2DKernels(runtime, n, layer, in, out);
        break;
      case LayerKind::kAvgPool2D:
      case LayerKind::kGlobalAvgPool2D:
        plan->kernels[l] = onednn::MakeAvgPool2DKernels(runtime, n, layer, in, out);
        break;
      case LayerKind::kBatchNorm:
        plan->norms[l] = onednn::MakeBatchNormKernels(runtime, n, layer, in);
        break;
    }
    plan->outputs[l].Resize(n * ElementCount(out));
  }
  return plan;
}

void OnednnModel::PrepareBackward(Plan& plan) {
  if (plan.backward_ready) return;
  int64_t widest = 0;
  for (int l = 0; l < num_layers(); ++l) {
    if (plan.kernels[l]) plan.kernels[l]->PrepareBackward();
    if (plan.norms[l]) plan.norms[l]->PrepareBackward();
    widest =
        std::max({widest, ElementCount(shapes().inputs[l]), ElementCount(shapes().outputs[l])});
  }
  plan.grads[0].Resize(plan.n * widest);
  plan.grads[1].Resize(plan.n * widest);
  plan.backward_ready = true;
}

absl::StatusOr<const float*> OnednnModel::Run(Executor& executor, const float* x, int64_t n,
                                              bool training, int end_layer, int64_t first_row) {
  if (n < 1) return absl::InvalidArgumentError(absl::StrCat("Forward needs n >= 1, got ", n));
  const int threads = executor.runtime->threads;
  try {
    executor.trained = nullptr;
    Plan& plan = PlanFor(executor, n);
    const float* in = x;
    const int end = std::clamp(end_layer, 1, num_layers());
    for (int l = 0; l < end; ++l) {
      const LayerSpec& layer = spec().layers[l];
      plan.in[l] = in;
      float* y = plan.outputs[l].data();
      switch (layer.kind) {
        case LayerKind::kFlatten:
          // (n, H, W, C) -> (n, H*W*C): the same bytes.
          plan.out[l] = in;
          break;
        case LayerKind::kDropout:
          // y = x * mask, mask values 0 or 1/(1-rate), while training; else y = x.
          if (training) {
            const int64_t count = n * ElementCount(shapes().outputs[l]);
            DropoutMask(l, count, plan.masks[l].data(),
                        first_row * ElementCount(shapes().outputs[l]));
            onednn::Multiply(in, plan.masks[l].data(), y, count, threads);
            plan.out[l] = y;
          } else {
            plan.out[l] = in;
          }
          break;
        case LayerKind::kDense:
        case LayerKind::kConv2D:
          plan.kernels[l]->Forward(in, y, Param(l, 0), Param(l, 1));
          plan.out[l] = y;
          break;
        case LayerKind::kActivation: {
          const int64_t count = n * ElementCount(shapes().outputs[l]);
          std::copy(in, in + count, y);
          onednn::Activate(layer.activation, layer.alpha, y, count, threads);
          plan.out[l] = y;
          break;
        }
        case LayerKind::kMaxPool2D:
        case LayerKind::kAvgPool2D:
        case LayerKind::kGlobalAvgPool2D:
          plan.kernels[l]->Forward(in, y, nullptr, nullptr);
          plan.out[l] = y;
          break;
        case LayerKind::kBatchNorm:
          // A trainable layer in training normalises with the batch's statistics;
          // a frozen one, or any outside training, with the moving ones (Keras).
          // Param(l, 0) is gamma followed by beta, as the kernels take them.
          if (training && trainable(l)) {
            plan.norms[l]->ForwardTraining(in, y, Param(l, 0), Param(l, 2), Param(l, 3));
          } else {
            plan.norms[l]->ForwardInference(in, y, Param(l, 0), Param(l, 2), Param(l, 3));
          }
          // Never the output layer (that is dense): its activation applies here.
          onednn::Activate(layer.activation, layer.alpha, y, n * ElementCount(shapes().outputs[l]),
                           threads);
          plan.out[l] = y;
          break;
      }
      in = plan.out[l];
    }
    if (training && end == num_layers()) executor.trained = &plan;
    return in;
  } catch (const dnnl::error& e) {
    return FromDnnl(e, "the forward pass");
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("onednn backend: out of memory for a batch of ", n));
  }
}

absl::Status OnednnModel::RunBackward(Executor& executor, int shard, const float* dlogits,
                                      int64_t n) {
  const int threads = executor.runtime->threads;
  if (executor.trained == nullptr || executor.trained->n != n) {
    return absl::FailedPreconditionError(
        absl::StrCat("Backward on ", n, " examples needs Forward(training=true) on as many first"));
  }
  const int last = num_layers() - 1;
  const int lowest = lowest_trainable_layer();
  if (lowest > last) return absl::OkStatus();  // nothing trains
  Plan& plan = *executor.trained;
  // Overlap: each trainable layer's gradients go to the reducer as soon as they
  // are final, the largest in blocks, while the pass goes on below.
  const int64_t bucket = overlap_bucket_floats();
  const std::function<void(const float*)> final = [this](const float* from) {
    GradientsFinal(from);
  };
  try {
    PrepareBackward(plan);
    // grad: the gradient w.r.t. layer l's output, (n, outputs[l]...); for the
    // output layer, dlogits (read only; the loss's activation is already in it).
    float* grad = nullptr;
    int spare = 0;  // which of plan.grads receives the next dx
    for (int l = last; l >= lowest; --l) {
      const LayerSpec& layer = spec().layers[l];
      const int64_t count = n * ElementCount(shapes().outputs[l]);
      // No input gradient for the lowest trainable layer: nothing below it learns.
      float* dx = l > lowest ? plan.grads[spare].data() : nullptr;
      switch (layer.kind) {
        case LayerKind::kFlatten:
          continue;  // same bytes: dy is already dx
        case LayerKind::kDropout:
          // dx = dy * mask, in place (Dropout is never the output layer).
          onednn::Multiply(grad, plan.masks[l].data(), grad, count, threads);
          continue;
        case LayerKind::kActivation:
          // In place too: dy times the derivative is dx (never the output layer).
          onednn::MultiplyByDerivative(layer.activation, layer.alpha, plan.out[l], grad, count,
                                       threads);
          continue;
        case LayerKind::kDense:
        case LayerKind::kConv2D: {
          const float* dz = dlogits;
          if (l < last) {
            onednn::MultiplyByDerivative(layer.activation, layer.alpha, plan.out[l], grad, count,
                                         threads);
            dz = grad;
          }
          // Gradient() is null for a frozen layer, which then only passes dx down.
          if (bucket > 0 && trainable(l)) {
            plan.kernels[l]->BackwardInBlocks(plan.in[l], dz, Param(l, 0), Gradient(l, 0, shard),
                                              Gradient(l, 1, shard), dx, bucket, final);
          } else {
            plan.kernels[l]->Backward(plan.in[l], dz, Param(l, 0), Gradient(l, 0, shard),
                                      Gradient(l, 1, shard), dx);
          }
          break;
        }
        case LayerKind::kMaxPool2D:
        case LayerKind::kAvgPool2D:
        case LayerKind::kGlobalAvgPool2D:
          // Only reached with dx: a layer without weights is never the lowest
          // trainable one.
          plan.kernels[l]->Backward(nullptr, grad, nullptr, nullptr, nullptr, dx);
          break;
        case LayerKind::kBatchNorm:
          onednn::MultiplyByDerivative(layer.activation, layer.alpha, plan.out[l], grad, count,
                                       threads);
          if (trainable(l)) {
            // Gradient(l, 0) is dgamma followed by dbeta.
            plan.norms[l]->BackwardTraining(plan.in[l], grad, Param(l, 0), Gradient(l, 0, shard),
                                            dx);
            if (bucket > 0) final(Gradient(l, 0, shard));
          } else if (dx != nullptr) {
            plan.norms[l]->BackwardFrozen(grad, Param(l, 0), Param(l, 3), dx);
          }
          break;
      }
      if (dx != nullptr) {
        grad = dx;
        spare ^= 1;
      }
    }
    return absl::OkStatus();
  } catch (const dnnl::error& e) {
    return FromDnnl(e, "the backward pass");
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("onednn backend: out of memory for the backward pass of a batch of ", n));
  }
}

absl::StatusOr<std::unique_ptr<ModelBase>> OnednnModel::MakeSibling(const ModelSpec& spec) const {
  absl::StatusOr<std::unique_ptr<OnednnModel>> model = MakeOnednnModel(spec, options_);
  if (!model.ok()) return model.status();
  return std::unique_ptr<ModelBase>(std::move(*model));
}

}  // namespace

std::unique_ptr<Backend> MakeOnednnBackend(const BackendOptions& options) {
  return MakeModelBaseBackend(
      "onednn", [options](const ModelSpec& spec) -> absl::StatusOr<std::unique_ptr<ModelBase>> {
        auto model = MakeOnednnModel(spec, options);
        if (!model.ok()) return model.status();
        return std::unique_ptr<ModelBase>(std::move(*model));
      });
}

}  // namespace seedproof
