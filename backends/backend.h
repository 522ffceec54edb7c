// The training engine's face. A Backend builds Models from a ModelSpec and a seed;
// a Model trains on tensors it is handed. Nothing here knows of files other than
// the model file, of YAML, gRPC, MPI, SQLite or Prometheus.
//
// Batches are row-major: x is (n, input...) floats, channels last; labels y are
// (n) int32 (class index for sparse categorical cross-entropy, 0/1 for binary).
// Every call that can fail returns absl::Status; none throws.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/model_spec.h"

namespace seedproof {

// Sums (or otherwise combines) gradients across the replicas of a data-parallel
// group. Model::train_step calls Reduce once per step, after backward and before
// the optimizer update, with every trainable gradient in one contiguous buffer.
// Gradients arrive as sums over the local examples; Reduce must leave in the
// buffer the sum over all replicas' examples, and return the global example count
// (the step divides by it). The local reducer does nothing.
//
// A reducer may also overlap the sum with the backward pass, as PyTorch DDP's
// buckets do: it says how many floats make a bucket, and the model then tells it,
// during the pass, which part of the buffer is already final (Ready). Layers are
// packed in layer order and the pass runs top down, so the final part is a suffix
// that grows towards the buffer's start. Reduce, with the same buffer, finishes.
class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  // local_examples: examples this replica's gradients summed over.
  // Returns the total example count across replicas.
  virtual absl::StatusOr<int64_t> Reduce(std::span<float> gradients, int64_t local_examples) = 0;
  // Floats worth reducing while the backward pass still runs; 0 (the default):
  // everything waits for Reduce, and Ready is never called.
  virtual int64_t bucket_floats() const { return 0; }
  // During a backward pass: gradients [begin, gradients.size()) are final and stay
  // untouched until Reduce returns. Called with a non-increasing begin.
  virtual void Ready(std::span<float> /*gradients*/, int64_t /*begin*/) {}
};

// The default reducer: a single replica.
GradientReducer& LocalGradientReducer();

struct Tensor {
  Shape shape;
  std::vector<float> values;
};

struct EvalResult {
  double loss = 0.0;      // mean over the examples
  double accuracy = 0.0;  // share of examples whose arg-max (or p > 0.5) is the label
  int64_t examples = 0;
  // The summed loss (batch by batch, in order) and the hits: a caller evaluating a
  // set in chunks of the batch size combines them into exactly the one-call result.
  double loss_sum = 0.0;
  int64_t correct = 0;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelSpec& spec() const = 0;
  virtual const ModelShapes& shapes() const = 0;
  int num_layers() const { return static_cast<int>(spec().layers.size()); }
  // Units of the output layer: the width of predict's output rows.
  int64_t output_units() const { return ElementCount(shapes().outputs.back()); }

  // Probabilities for n examples: out is (n, output_units) and must have room.
  // Dropout is off.
  virtual absl::Status Predict(const float* x, int64_t n, float* out) = 0;

  // What the first `layers` layers (1 <= layers < num_layers()) make of n
  // examples, activations applied and dropout off: out is (n,
  // ElementCount(shapes().outputs[layers - 1])) and must have room. Training a
  // head on these is training the whole model with those layers frozen.
  virtual absl::Status Features(const float* x, int64_t n, int layers, float* out) = 0;

  // One training step on a batch of n examples: forward, loss, backward through the
  // trainable layers only, gradient reduction, optimizer update. Returns the mean
  // loss over the batch before the update; if `correct` is given, it receives how
  // many examples the pre-update model classified right. Fails if no layer is
  // trainable.
  virtual absl::StatusOr<float> TrainStep(const float* x, const int32_t* y, int64_t n,
                                          int64_t* correct = nullptr) = 0;

  // Mean loss and accuracy over n examples, in batches of batch_size. Dropout off.
  virtual absl::StatusOr<EvalResult> Evaluate(const float* x, const int32_t* y, int64_t n,
                                              int64_t batch_size) = 0;

  // The layer's parameter tensors in Keras layout (kernel, bias); empty for layers
  // without weights.
  virtual absl::StatusOr<std::vector<Tensor>> GetWeights(int layer) const = 0;
  // Replaces the layer's parameters; shapes must match exactly.
  virtual absl::Status SetWeights(int layer, const std::vector<Tensor>& tensors) = 0;

  // A frozen layer computes no weight gradient and is never updated; backward stops
  // at the lowest trainable layer. Every change starts a fresh optimizer state.
  virtual absl::Status SetTrainable(int layer, bool trainable) = 0;
  virtual bool trainable(int layer) const = 0;
  // Sets the optimizer and starts a fresh optimizer state.
  virtual absl::Status SetOptimizer(const OptimizerSpec& optimizer) = 0;
  virtual const OptimizerSpec& optimizer() const = 0;
  // Not owned; must outlive the model's training calls. nullptr: the local reducer.
  virtual void SetGradientReducer(GradientReducer* reducer) = 0;

  // A deep copy: weights, trainable flags, optimizer and its state. Training the
  // copy never changes this model.
  virtual absl::StatusOr<std::unique_ptr<Model>> Clone() const = 0;

  // A new model made of this model's first `keep` layers (weights copied, trainable
  // flags kept) followed by `new_layers`, initialised from `seed`, with `loss`.
  // Its optimizer is `optimizer()` with a fresh state.
  virtual absl::StatusOr<std::unique_ptr<Model>> Derive(int keep,
                                                        const std::vector<LayerSpec>& new_layers,
                                                        Loss loss, uint64_t seed) const = 0;

  // Writes the model file (docs/MODEL_FORMAT.md): spec, trainable flags, weights.
  virtual absl::Status Save(const std::string& path) const = 0;
  // The same file's bytes, in memory (artifacts travel this way).
  virtual std::string SaveBytes() const = 0;

  // The flat parameter buffer: every layer's tensors in order, Keras layout. The
  // same bytes for the same weights on every backend; two models whose buffers are
  // equal have bit-identical weights.
  virtual std::span<const float> parameters() const = 0;
};

struct BackendOptions {
  // Threads the backend may use for one model's math. Results are bit-identical
  // for the same spec, seed, thread count and CPU.
  int threads = 1;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // A model with freshly initialised weights: kernels from each layer's
  // initializer, biases zero, all layers trainable, SGD(lr=1e-3).
  virtual absl::StatusOr<std::unique_ptr<Model>> Create(const ModelSpec& spec, uint64_t seed) = 0;
  // Reads a model file written by any backend's Save.
  virtual absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path) = 0;
  // The same from a model file's bytes (SaveBytes); errors name `name`.
  virtual absl::StatusOr<std::unique_ptr<Model>> LoadBytes(const std::string& bytes,
                                                           const std::string& name) = 0;
};

// Backends by name ("onednn", "reference") or, for anything containing a '/', a
// shared library to dlopen that exports seedproof_backend_plugin (see plugin.h).
absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(const std::string& name_or_path,
                                                     const BackendOptions& options = {});
// The built-in names, for help texts and errors.
std::vector<std::string> BuiltinBackendNames();

}  // namespace seedproof
