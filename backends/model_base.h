// The part of every built-in Model that does not depend on how the math is done:
// the flat parameter and gradient buffers, initialisation, freezing, the fused
// losses, the optimizers, dropout masks, clone/derive and the model file. A
// backend subclasses ModelBase and supplies Forward and Backward. Only backends
// include this header.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backends/backend.h"
#include "backends/model_file.h"
#include "backends/thread_group.h"

namespace seedproof {

class ModelBase : public Model {
 public:
  const ModelSpec& spec() const final { return spec_; }
  const ModelShapes& shapes() const final { return shapes_; }
  absl::Status Predict(const float* x, int64_t n, float* out) final;
  absl::Status Features(const float* x, int64_t n, int layers, float* out) final;
  absl::StatusOr<float> TrainStep(const float* x, const int32_t* y, int64_t n,
                                  int64_t* correct) final;
  absl::StatusOr<EvalResult> Evaluate(const float* x, const int32_t* y, int64_t n,
                                      int64_t batch_size) final;
  absl::StatusOr<std::vector<Tensor>> GetWeights(int layer) const final;
  absl::Status SetWeights(int layer, const std::vector<Tensor>& tensors) final;
  absl::Status SetTrainable(int layer, bool trainable) final;
  bool trainable(int layer) const final;
  absl::Status SetOptimizer(const OptimizerSpec& optimizer) final;
  const OptimizerSpec& optimizer() const final { return optimizer_; }
  void SetGradientReducer(GradientReducer* reducer) final;
  absl::StatusOr<std::unique_ptr<Model>> Clone() const final;
  absl::StatusOr<std::unique_ptr<Model>> Derive(int keep, const std::vector<LayerSpec>& new_layers,
                                                Loss loss, uint64_t seed) const final;
  absl::Status Save(const std::string& path) const final;
  std::string SaveBytes() const final;
  std::span<const float> parameters() const final { return params_; }

  // Sets kernels from each layer's initializer and biases to zero, from `seed`
  // (which also seeds dropout). Layers [first_layer, end) only.
  void InitializeParameters(uint64_t seed, int first_layer = 0);
  // Restores the state a model file holds.
  absl::Status RestoreState(std::span<const float> params, const std::vector<bool>& trainable,
                            uint64_t seed, uint64_t step);

 protected:
  ModelBase(ModelSpec spec, ModelShapes shapes);

  // ---- What a backend implements ----

  // Runs the network on n examples (x is (n, input...)) and returns the logits,
  // (n, output_units): the output layer's values before its activation (softmax or
  // sigmoid is fused into the loss). Every other layer applies its activation.
  // training: dropout is on, and what Backward needs is kept. The pointer stays
  // valid until the next Forward. end_layer < num_layers() runs layers
  // [0, end_layer) only and returns the last one's output, activation applied
  // (Features); Backward cannot follow such a call.
  virtual absl::StatusOr<const float*> Forward(const float* x, int64_t n, bool training,
                                               int end_layer) = 0;

  // After Forward(x, n, training=true): dlogits is (n, output_units), the gradient of
  // each example's loss with respect to its logits (not divided by n). Writes into
  // Gradient(l, t) the gradient summed over the n examples for every trainable layer
  // l (overwriting), and runs no backward pass below lowest_trainable_layer().
  virtual absl::Status Backward(const float* dlogits, int64_t n) = 0;

  // An untrained model of the same backend and options for `spec` (Clone, Derive).
  virtual absl::StatusOr<std::unique_ptr<ModelBase>> MakeSibling(const ModelSpec& spec) const = 0;

  // ---- What a backend may implement: split batches ----
  //
  // A backend that can run parts of a batch at the same time, each on a thread of
  // its own, says how many (shard_count() > 1) and implements the three calls
  // below. TrainStep then splits a batch into that many contiguous parts (see
  // SplitsBatch), runs the network on each part concurrently, sums the parts'
  // gradients through a ThreadGroup and updates a share of the weights on each
  // thread. Results stay bit-identical for a given shard count.

  virtual int shard_count() const { return 1; }
  // Runs work(0), ..., work(count - 1) at once, each on its own thread, and
  // returns when all have ended; returns false without running any if it cannot
  // have `count` threads at once (work synchronises across shards).
  virtual bool RunShards(int count, const std::function<void(int)>& work);
  // Forward(training=true) over rows [first_row, first_row + n) of a batch, on
  // the calling thread, by shard `shard`'s own buffers. Dropout masks are those
  // of the same rows of the whole batch.
  virtual absl::StatusOr<const float*> ForwardShard(int shard, const float* x, int64_t n,
                                                    int64_t first_row);
  // Backward after ForwardShard on the same shard; writes Gradient(l, t, shard).
  virtual absl::Status BackwardShard(int shard, const float* dlogits, int64_t n);

  // ---- What a backend uses ----

  // Parameter tensor t (0 kernel, 1 bias) of a layer, Keras layout.
  float* Param(int layer, int tensor) { return params_.data() + param_offset_[layer][tensor]; }
  const float* Param(int layer, int tensor) const {
    return params_.data() + param_offset_[layer][tensor];
  }
  // Its gradient, or nullptr while the layer is frozen: the whole batch's, or
  // (for a split batch) shard `shard`'s.
  float* Gradient(int layer, int tensor, int shard = 0);
  // The lowest layer with trainable weights; num_layers() if none.
  int lowest_trainable_layer() const { return lowest_trainable_; }
  // Overlap during Backward (the whole batch's pass, not a shard's): the floats
  // the gradient reducer sums at once while the pass runs (0: it does not, and
  // GradientsFinal must not be called), and the call that tells it everything
  // from `from` (a Gradient() pointer) to the end of the buffer is final.
  int64_t overlap_bucket_floats() const { return overlap_bucket_floats_; }
  void GradientsFinal(const float* from);
  // Dropout multipliers for values [first, first + count) of a layer's output in
  // the current training step, counted over the whole batch: 0 or 1/(1-rate). A
  // pure function of (seed, step, layer, index), so every backend, thread count
  // and split of the batch drops the same units.
  void DropoutMask(int layer, int64_t count, float* mask, int64_t first = 0) const;

 private:
  // What Save and SaveBytes write.
  ModelFileContents FileContents() const;
  void RebuildGradientLayout();
  // The optimizer's step: gradients are sums over `examples`; Adam's bias
  // correction is that of optimizer step optimizer_steps_ + 1.
  struct OptimizerStep {
    float scale = 1.0f;    // 1 / examples
    float adam_lr = 0.0f;  // Adam's bias-corrected learning rate
  };
  OptimizerStep NextOptimizerStep(int64_t examples) const;
  // Updates the weights whose gradients lie in [begin, end) of the gradient buffer.
  void ApplyOptimizer(const OptimizerStep& step, int64_t begin, int64_t end);
  // Backward on the whole batch (dlogits_), handing gradients to `reducer` as
  // they become final when it has buckets; a failed pass still finishes the
  // sums it started.
  absl::Status BackwardHandingOver(GradientReducer& reducer, int64_t n);
  // Whether a training batch of n examples is split across shards: the backend
  // has shards, each gets at least kMinShardRows rows, and no trainable
  // BatchNorm layer would see only its part's statistics.
  bool SplitsBatch(int64_t n) const;
  // TrainStep on a split batch. *ran is false, and nothing has changed, when the
  // backend could not run the shards at once (TrainStep then runs the batch whole).
  absl::StatusOr<float> TrainSplit(const float* x, const int32_t* y, int64_t n, int64_t* correct,
                                   bool* ran);
  absl::Status CheckLayer(int layer) const;

  ModelSpec spec_;
  ModelShapes shapes_;
  std::vector<std::vector<int64_t>> param_offset_;  // [layer][tensor] into params_
  std::vector<float> params_;
  std::vector<bool> trainable_;
  int lowest_trainable_ = 0;

  // Gradients of the trainable tensors only, packed in layer order, so the reducer
  // gets one contiguous buffer. grad_offset_[layer][tensor] is -1 when frozen.
  std::vector<std::vector<int64_t>> grad_offset_;
  std::vector<float> gradients_;

  OptimizerSpec optimizer_;
  std::vector<float> slot1_, slot2_;  // momentum / Adam m and v, parallel to gradients_
  int64_t optimizer_steps_ = 0;       // since the last fresh state (Adam bias correction)
  GradientReducer* reducer_ = nullptr;
  int64_t overlap_bucket_floats_ = 0;  // set only while TrainStep runs Backward
  bool handed_over_ = false;           // GradientsFinal was called in this pass

  // Split batches: shard s >= 1 sums its gradients in shard_gradients_[s - 1]
  // (shard 0 in gradients_), and the group sums them.
  std::vector<std::vector<float>> shard_gradients_;
  std::unique_ptr<ThreadGroup> group_;

  uint64_t seed_ = 0;
  uint64_t step_ = 0;           // training steps taken, for dropout masks
  std::vector<float> dlogits_;  // (n, output_units) scratch for TrainStep
};

// Makes an untrained model of one backend (parameters not yet set) for a spec.
using ModelMaker = std::function<absl::StatusOr<std::unique_ptr<ModelBase>>(const ModelSpec&)>;

// The Backend of every ModelBase backend: Create makes a model and initialises it
// from the seed; Load makes one and fills it from a model file.
std::unique_ptr<Backend> MakeModelBaseBackend(std::string name, ModelMaker make);

}  // namespace seedproof
