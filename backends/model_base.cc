#include "backends/model_base.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "backends/model_file.h"
#include "backends/random.h"

namespace seedproof {
namespace {

// Purposes of the streams derived from a model's seed.
constexpr uint64_t kInitStream = 1;
constexpr uint64_t kDropoutStream = 2;

class LocalReducer final : public GradientReducer {
 public:
  absl::StatusOr<int64_t> Reduce(std::span<float>, int64_t local_examples) override {
    return local_examples;
  }
};

// Fused output activation + loss for n rows of logits (n, units). Writes each
// example's dLoss/dlogits into dlogits when it is not null; returns the summed loss
// and counts correct predictions. Softmax + sparse categorical cross-entropy is
// computed from shifted logits (log-sum-exp), sigmoid + binary cross-entropy as
// max(z,0) - z*y + log1p(exp(-|z|)), finite for any logit.
double FusedLoss(Loss loss, const float* logits, const int32_t* y, int64_t n, int64_t units,
                 float* dlogits, int64_t* correct) {
  double total = 0.0;
  int64_t hits = 0;
  if (loss == Loss::kBinaryCrossEntropy) {
    for (int64_t i = 0; i < n; ++i) {
      const float z = logits[i];
      const float label = static_cast<float>(y[i]);
      total += std::max(z, 0.0f) - z * label + std::log1p(std::exp(-std::fabs(z)));
      hits += (z > 0.0f) == (y[i] == 1);
      if (dlogits) dlogits[i] = 1.0f / (1.0f + std::exp(-z)) - label;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float* z = logits + i * units;
      int64_t arg = 0;
      for (int64_t k = 1; k < units; ++k) arg = z[k] > z[arg] ? k : arg;
      const float max = z[arg];
      float sum = 0.0f;
      for (int64_t k = 0; k < units; ++k) sum += std::exp(z[k] - max);
      total += std::log(sum) - (z[y[i]] - max);
      hits += arg == y[i];
      if (dlogits) {
        float* d = dlogits + i * units;
        const float inv = 1.0f / sum;
        for (int64_t k = 0; k < units; ++k) d[k] = std::exp(z[k] - max) * inv;
        d[y[i]] -= 1.0f;
      }
    }
  }
  if (correct) *correct = hits;
  return total;
}

absl::Status CheckLabels(Loss loss, const int32_t* y, int64_t n, int64_t units) {
  const int32_t limit = loss == Loss::kBinaryCrossEntropy ? 2 : static_cast<int32_t>(units);
  for (int64_t i = 0; i < n; ++i) {
    if (y[i] < 0 || y[i] >= limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", y[i], " of example ", i, " is outside [0, ", limit, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateOptimizer(const OptimizerSpec& o) {
  auto bad = [](const char* field, float v, const char* expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer ", field, " is ", v, "; expected ", expected));
  };
  if (o.kind != OptimizerKind::kSgd && o.kind != OptimizerKind::kAdam) {
    return absl::InvalidArgumentError("unknown optimizer");
  }
  if (!(o.learning_rate > 0.0f) || !std::isfinite(o.learning_rate)) {
    return bad("learning_rate", o.learning_rate, "a finite value > 0");
  }
  if (!(o.momentum >= 0.0f && o.momentum < 1.0f)) return bad("momentum", o.momentum, "[0, 1)");
  if (!(o.beta1 >= 0.0f && o.beta1 < 1.0f)) return bad("beta1", o.beta1, "[0, 1)");
  if (!(o.beta2 >= 0.0f && o.beta2 < 1.0f)) return bad("beta2", o.beta2, "[0, 1)");
  if (!(o.epsilon > 0.0f)) return bad("epsilon", o.epsilon, "> 0");
  if (!(o.weight_decay >= 0.0f) || !std::isfinite(o.weight_decay)) {
    return bad("weight_decay", o.weight_decay, "a finite value >= 0");
  }
  return absl::OkStatus();
}

}  // namespace

GradientReducer& LocalGradientReducer() {
  static LocalReducer reducer;
  return reducer;
}

ModelBase::ModelBase(ModelSpec spec, ModelShapes shapes)
    : spec_(std::move(spec)), shapes_(std::move(shapes)) {
  const int layers = num_layers();
  param_offset_.resize(layers);
  int64_t offset = 0;
  for (int l = 0; l < layers; ++l) {
    for (const Shape& s : shapes_.params[l]) {
      param_offset_[l].push_back(offset);
      offset += ElementCount(s);
    }
  }
  params_.assign(offset, 0.0f);
  trainable_.assign(layers, true);
  RebuildGradientLayout();
}

absl::Status ModelBase::CheckLayer(int layer) const {
  if (layer < 0 || layer >= num_layers()) {
    return absl::OutOfRangeError(
        absl::StrCat("layer ", layer, " does not exist; the model has ", num_layers(), " layers"));
  }
  return absl::OkStatus();
}

void ModelBase::InitializeParameters(uint64_t seed, int first_layer) {
  seed_ = seed;
  for (int l = first_layer; l < num_layers(); ++l) {
    const LayerSpec& layer = spec_.layers[l];
    if (!layer.has_weights()) continue;
    if (layer.kind == LayerKind::kBatchNorm) {
      // Keras's and PyTorch's start: gamma 1, beta 0, moving mean 0, moving variance 1.
      const int64_t c = ElementCount(shapes_.params[l][0]);
      std::fill_n(Param(l, 0), c, 1.0f);
      std::fill_n(Param(l, 1), c, 0.0f);
      std::fill_n(Param(l, 2), c, 0.0f);
      std::fill_n(Param(l, 3), c, 1.0f);
      continue;
    }
    const Shape& kernel = shapes_.params[l][0];
    // Keras: fan_in/fan_out are the kernel's last two dims times the receptive field.
    const int64_t receptive = layer.kind == LayerKind::kConv2D ? kernel[0] * kernel[1] : 1;
    const double fan_in = static_cast<double>(receptive * kernel[kernel.size() - 2]);
    const double fan_out = static_cast<double>(receptive * kernel.back());
    Rng rng(StreamSeed(seed, kInitStream, static_cast<uint64_t>(l)));
    float* w = Param(l, 0);
    const int64_t count = ElementCount(kernel);
    // Keras divides a truncated normal's stddev by 0.8796... so the kept values
    // have the intended variance.
    constexpr double kTruncatedStd = 0.87962566103423978;
    switch (layer.init) {
      case Initializer::kGlorotUniform: {
        const float limit = static_cast<float>(std::sqrt(6.0 / (fan_in + fan_out)));
        for (int64_t i = 0; i < count; ++i) w[i] = rng.Uniform(-limit, limit);
        break;
      }
      case Initializer::kHeNormal:
        for (int64_t i = 0; i < count; ++i) {
          w[i] = static_cast<float>(rng.TruncatedNormal(std::sqrt(2.0 / fan_in) / kTruncatedStd));
        }
        break;
      case Initializer::kLecunNormal:
        for (int64_t i = 0; i < count; ++i) {
          w[i] = static_cast<float>(rng.TruncatedNormal(std::sqrt(1.0 / fan_in) / kTruncatedStd));
        }
        break;
    }
    std::fill_n(Param(l, 1), ElementCount(shapes_.params[l][1]), 0.0f);
  }
}

void ModelBase::RebuildGradientLayout() {
  lowest_trainable_ = num_layers();
  grad_offset_.assign(num_layers(), {});
  int64_t offset = 0;
  for (int l = 0; l < num_layers(); ++l) {
    const bool trains = trainable_[l] && spec_.layers[l].has_weights();
    if (trains) lowest_trainable_ = std::min(lowest_trainable_, l);
    // Only the first trainable_tensors() tensors learn: a BatchNorm's moving
    // statistics are state its forward pass updates, not weights.
    const int learned = spec_.layers[l].trainable_tensors();
    for (size_t t = 0; t < shapes_.params[l].size(); ++t) {
      const bool learns = trains && static_cast<int>(t) < learned;
      grad_offset_[l].push_back(learns ? offset : -1);
      if (learns) offset += ElementCount(shapes_.params[l][t]);
    }
  }
  gradients_.assign(offset, 0.0f);
  // A fresh optimizer state, Keras's "compile again".
  const bool needs_slot1 = optimizer_.kind == OptimizerKind::kAdam || optimizer_.momentum > 0.0f;
  slot1_.assign(needs_slot1 ? offset : 0, 0.0f);
  slot2_.assign(optimizer_.kind == OptimizerKind::kAdam ? offset : 0, 0.0f);
  optimizer_steps_ = 0;
}

void ModelBase::GradientsFinal(const float* from) {
  handed_over_ = true;
  reducer_->Ready(gradients_, from - gradients_.data());
}

float* ModelBase::Gradient(int layer, int tensor, int shard) {
  const int64_t offset = grad_offset_[layer][tensor];
  if (offset < 0) return nullptr;
  return (shard == 0 ? gradients_.data() : shard_gradients_[shard - 1].data()) + offset;
}

void ModelBase::DropoutMask(int layer, int64_t count, float* mask, int64_t first) const {
  const float keep = 1.0f - spec_.layers[layer].rate;
  const float scale = 1.0f / keep;
  // 24-bit uniforms compared with keep; the threshold is computed once.
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(keep) * 16777216.0);
  const uint64_t base = StreamSeed(seed_, kDropoutStream, step_, static_cast<uint64_t>(layer));
  for (int64_t i = 0; i < count; ++i) {
    mask[i] = (Mix64(base + static_cast<uint64_t>(first + i)) >> 40) < threshold ? scale : 0.0f;
  }
}

absl::Status ModelBase::Predict(const float* x, int64_t n, float* out) {
  constexpr int64_t kChunk = 1024;
  const int64_t units = output_units();
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t m = std::min(kChunk, n - start);
    auto logits =
        Forward(x + start * ElementCount(spec_.input), m, /*training=*/false, num_layers());
    if (!logits.ok()) return logits.status();
    float* o = out + start * units;
    for (int64_t i = 0; i < m; ++i) {
      const float* z = *logits + i * units;
      if (spec_.loss == Loss::kBinaryCrossEntropy) {
        o[i] = 1.0f / (1.0f + std::exp(-z[0]));
        continue;
      }
      const float max = *std::max_element(z, z + units);
      float sum = 0.0f;
      for (int64_t k = 0; k < units; ++k) sum += (o[i * units + k] = std::exp(z[k] - max));
      for (int64_t k = 0; k < units; ++k) o[i * units + k] /= sum;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<float> ModelBase::TrainStep(const float* x, const int32_t* y, int64_t n,
                                           int64_t* correct) {
  if (n < 1) return absl::InvalidArgumentError("a training batch needs at least one example");
  if (gradients_.empty()) {
    return absl::FailedPreconditionError("no layer is trainable: unfreeze a layer before training");
  }
  const int64_t units = output_units();
  if (auto s = CheckLabels(spec_.loss, y, n, units); !s.ok()) return s;
  dlogits_.resize(n * units);
  if (SplitsBatch(n)) {
    bool ran = false;
    absl::StatusOr<float> loss = TrainSplit(x, y, n, correct, &ran);
    if (ran) return loss;
  }

  auto logits = Forward(x, n, /*training=*/true, num_layers());
  if (!logits.ok()) return logits.status();
  const double loss = FusedLoss(spec_.loss, *logits, y, n, units, dlogits_.data(), correct);
  GradientReducer& reducer = reducer_ ? *reducer_ : LocalGradientReducer();
  if (auto s = BackwardHandingOver(reducer, n); !s.ok()) return s;
  auto examples = reducer.Reduce(gradients_, n);
  if (!examples.ok()) return examples.status();
  if (*examples < 1) return absl::InternalError("the gradient reducer reported no examples");
  ApplyOptimizer(NextOptimizerStep(*examples), 0, static_cast<int64_t>(gradients_.size()));
  ++optimizer_steps_;
  ++step_;
  return static_cast<float>(loss / static_cast<double>(n));
}

absl::Status ModelBase::BackwardHandingOver(GradientReducer& reducer, int64_t n) {
  overlap_bucket_floats_ = reducer.bucket_floats();
  handed_over_ = false;
  absl::Status backward = Backward(dlogits_.data(), n);
  overlap_bucket_floats_ = 0;
  // Sums the pass has started are finished, so that none outlives the step.
  if (!backward.ok() && handed_over_) reducer.Reduce(gradients_, n).IgnoreError();
  return backward;
}

bool ModelBase::SplitsBatch(int64_t n) const {
  // Fewer rows than this per shard and a shard's fixed costs (primitive calls,
  // the loops between them, the barriers) outweigh the halved arithmetic.
  constexpr int64_t kMinShardRows = 8;
  const int shards = shard_count();
  if (shards < 2 || n < shards * kMinShardRows) return false;
  for (int l = lowest_trainable_; l < num_layers(); ++l) {
    if (spec_.layers[l].kind == LayerKind::kBatchNorm && trainable_[l]) return false;
  }
  return true;
}

// The split step: each shard runs forward, loss and backward on its rows; once
// all have succeeded, the group sums their gradients and each shard updates its
// share of the weights. The loss and hits add up in shard order.
absl::StatusOr<float> ModelBase::TrainSplit(const float* x, const int32_t* y, int64_t n,
                                            int64_t* correct, bool* ran) {
  const int shards = shard_count();
  if (!group_ || group_->members() != shards) group_ = std::make_unique<ThreadGroup>(shards);
  group_->set_outer(reducer_);
  shard_gradients_.resize(shards - 1);
  for (std::vector<float>& g : shard_gradients_) g.resize(gradients_.size());

  struct Part {
    absl::Status status;
    double loss = 0.0;
    int64_t hits = 0;
    int64_t examples = 0;  // across the group (and the outer reducer's replicas)
  };
  std::vector<Part> parts(shards);
  const int64_t units = output_units();
  const int64_t input_size = ElementCount(spec_.input);
  const int64_t gradient_count = static_cast<int64_t>(gradients_.size());
  *ran = RunShards(shards, [&](int s) {
    Part& part = parts[s];
    const int64_t first = n * s / shards;
    const int64_t rows = n * (s + 1) / shards - first;
    float* dlogits = dlogits_.data() + first * units;
    auto logits = ForwardShard(s, x + first * input_size, rows, first);
    if (logits.ok()) {
      part.loss = FusedLoss(spec_.loss, *logits, y + first, rows, units, dlogits, &part.hits);
      part.status = BackwardShard(s, dlogits, rows);
    } else {
      part.status = logits.status();
    }
    if (!group_->AllSucceeded(s, part.status.ok())) return;
    std::span<float> mine = s == 0 ? std::span<float>(gradients_) : shard_gradients_[s - 1];
    absl::StatusOr<int64_t> examples = group_->reducer(s).Reduce(mine, rows);
    if (!examples.ok()) {
      part.status = examples.status();
      return;
    }
    part.examples = *examples;
    if (part.examples < 1) return;
    const auto [begin, end] = group_->Share(s, gradient_count);
    ApplyOptimizer(NextOptimizerStep(part.examples), begin, end);
  });
  if (!*ran) return 0.0f;
  double loss = 0.0;
  int64_t hits = 0;
  for (const Part& part : parts) {
    if (!part.status.ok()) return part.status;
    if (part.examples < 1) return absl::InternalError("the gradient reducer reported no examples");
    loss += part.loss;
    hits += part.hits;
  }
  if (correct) *correct = hits;
  ++optimizer_steps_;
  ++step_;
  return static_cast<float>(loss / static_cast<double>(n));
}

bool ModelBase::RunShards(int, const std::function<void(int)>&) { return false; }

absl::StatusOr<const float*> ModelBase::ForwardShard(int, const float*, int64_t, int64_t) {
  return absl::UnimplementedError("this backend does not split batches");
}

absl::Status ModelBase::BackwardShard(int, const float*, int64_t) {
  return absl::UnimplementedError("this backend does not split batches");
}

ModelBase::OptimizerStep ModelBase::NextOptimizerStep(int64_t examples) const {
  OptimizerStep step;
  step.scale = 1.0f / static_cast<float>(examples);
  const OptimizerSpec& o = optimizer_;
  if (o.kind == OptimizerKind::kAdam) {
    const double t = static_cast<double>(optimizer_steps_ + 1);
    step.adam_lr = static_cast<float>(o.learning_rate * std::sqrt(1.0 - std::pow(o.beta2, t)) /
                                      (1.0 - std::pow(o.beta1, t)));
  }
  return step;
}

// One pass over the trainable tensors' values in [begin, end) of the gradient
// buffer: gradients are sums over the step's examples, so they are scaled by
// 1/examples here (the mean loss's gradient). Every update is elementwise, so
// any split of the range gives the same bits.
void ModelBase::ApplyOptimizer(const OptimizerStep& step, int64_t begin, int64_t end) {
  const float scale = step.scale;
  const float adam_lr = step.adam_lr;
  const OptimizerSpec& o = optimizer_;
  const float lr = o.learning_rate;
  for (int l = lowest_trainable_; l < num_layers(); ++l) {
    for (size_t t = 0; t < grad_offset_[l].size(); ++t) {
      const int64_t tensor_begin = grad_offset_[l][t];
      if (tensor_begin < 0) continue;
      const int64_t from = std::max(begin, tensor_begin);
      const int64_t to = std::min(end, tensor_begin + ElementCount(shapes_.params[l][t]));
      if (from >= to) continue;
      const int64_t g_off = from;
      const int64_t count = to - from;
      float* __restrict w = Param(l, static_cast<int>(t)) + (from - tensor_begin);
      const float* __restrict g = gradients_.data() + g_off;
      // Decoupled weight decay, kernels only (not biases, nor a BatchNorm's gamma).
      const bool kernel = t == 0 && spec_.layers[l].kind != LayerKind::kBatchNorm;
      const float decay = kernel ? lr * o.weight_decay : 0.0f;
      if (decay > 0.0f) {
        for (int64_t i = 0; i < count; ++i) w[i] -= decay * w[i];
      }
      if (o.kind == OptimizerKind::kSgd && o.momentum == 0.0f) {
        const float step = lr * scale;
        for (int64_t i = 0; i < count; ++i) w[i] -= step * g[i];
      } else if (o.kind == OptimizerKind::kSgd) {
        float* __restrict v = slot1_.data() + g_off;
        const float mu = o.momentum;
        if (o.nesterov) {
          for (int64_t i = 0; i < count; ++i) {
            v[i] = mu * v[i] - lr * (g[i] * scale);
            w[i] += mu * v[i] - lr * (g[i] * scale);
          }
        } else {
          for (int64_t i = 0; i < count; ++i) {
            v[i] = mu * v[i] - lr * (g[i] * scale);
            w[i] += v[i];
          }
        }
      } else {
        float* __restrict m = slot1_.data() + g_off;
        float* __restrict v = slot2_.data() + g_off;
        const float b1 = o.beta1, b2 = o.beta2, eps = o.epsilon;
        for (int64_t i = 0; i < count; ++i) {
          const float gi = g[i] * scale;
          m[i] = b1 * m[i] + (1.0f - b1) * gi;
          v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
          w[i] -= adam_lr * m[i] / (std::sqrt(v[i]) + eps);
        }
      }
    }
  }
}

absl::Status ModelBase::Features(const float* x, int64_t n, int layers, float* out) {
  if (layers < 1 || layers >= num_layers()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Features: layers must be in [1, ", num_layers() - 1, "], got ", layers));
  }
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("Features: negative n ", n));
  // Chunks bound the activations a backend keeps (a CNN's first layers are wide).
  constexpr int64_t kChunk = 256;
  const int64_t in_size = ElementCount(spec_.input);
  const int64_t out_size = ElementCount(shapes_.outputs[layers - 1]);
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t m = std::min(kChunk, n - start);
    auto features = Forward(x + start * in_size, m, /*training=*/false, layers);
    if (!features.ok()) return features.status();
    std::copy(*features, *features + m * out_size, out + start * out_size);
  }
  return absl::OkStatus();
}

absl::StatusOr<EvalResult> ModelBase::Evaluate(const float* x, const int32_t* y, int64_t n,
                                               int64_t batch_size) {
  if (batch_size < 1) return absl::InvalidArgumentError("evaluation batch size must be >= 1");
  const int64_t units = output_units();
  if (auto s = CheckLabels(spec_.loss, y, n, units); !s.ok()) return s;
  EvalResult result;
  double total = 0.0;
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t m = std::min(batch_size, n - start);
    auto logits =
        Forward(x + start * ElementCount(spec_.input), m, /*training=*/false, num_layers());
    if (!logits.ok()) return logits.status();
    int64_t hits = 0;
    total += FusedLoss(spec_.loss, *logits, y + start, m, units, nullptr, &hits);
    correct += hits;
  }
  result.examples = n;
  result.loss_sum = total;
  result.correct = correct;
  if (n > 0) {
    result.loss = total / static_cast<double>(n);
    result.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  }
  return result;
}

absl::StatusOr<std::vector<Tensor>> ModelBase::GetWeights(int layer) const {
  if (auto s = CheckLayer(layer); !s.ok()) return s;
  std::vector<Tensor> tensors;
  for (size_t t = 0; t < shapes_.params[layer].size(); ++t) {
    const Shape& shape = shapes_.params[layer][t];
    const float* p = Param(layer, static_cast<int>(t));
    tensors.push_back({shape, std::vector<float>(p, p + ElementCount(shape))});
  }
  return tensors;
}

absl::Status ModelBase::SetWeights(int layer, const std::vector<Tensor>& tensors) {
  if (auto s = CheckLayer(layer); !s.ok()) return s;
  const auto& expected = shapes_.params[layer];
  if (tensors.size() != expected.size()) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " has ", expected.size(),
                                                   " weight tensors, got ", tensors.size()));
  }
  for (size_t t = 0; t < tensors.size(); ++t) {
    if (tensors[t].shape != expected[t] ||
        static_cast<int64_t>(tensors[t].values.size()) != ElementCount(expected[t])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", layer, " tensor ", t, ": expected shape ", ShapeToString(expected[t]), ", got ",
          ShapeToString(tensors[t].shape), " with ", tensors[t].values.size(), " values"));
    }
  }
  for (size_t t = 0; t < tensors.size(); ++t) {
    std::copy(tensors[t].values.begin(), tensors[t].values.end(),
              Param(layer, static_cast<int>(t)));
  }
  return absl::OkStatus();
}

absl::Status ModelBase::SetTrainable(int layer, bool trainable) {
  if (auto s = CheckLayer(layer); !s.ok()) return s;
  trainable_[layer] = trainable;
  RebuildGradientLayout();
  return absl::OkStatus();
}

bool ModelBase::trainable(int layer) const {
  return layer >= 0 && layer < num_layers() && trainable_[layer];
}

absl::Status ModelBase::SetOptimizer(const OptimizerSpec& optimizer) {
  if (auto s = ValidateOptimizer(optimizer); !s.ok()) return s;
  optimizer_ = optimizer;
  RebuildGradientLayout();
  return absl::OkStatus();
}

void ModelBase::SetGradientReducer(GradientReducer* reducer) { reducer_ = reducer; }

absl::StatusOr<std::unique_ptr<Model>> ModelBase::Clone() const {
  auto copy = MakeSibling(spec_);
  if (!copy.ok()) return copy.status();
  ModelBase& c = **copy;
  c.params_ = params_;
  c.trainable_ = trainable_;
  c.optimizer_ = optimizer_;
  c.RebuildGradientLayout();
  c.slot1_ = slot1_;
  c.slot2_ = slot2_;
  c.optimizer_steps_ = optimizer_steps_;
  c.reducer_ = reducer_;
  c.seed_ = seed_;
  c.step_ = step_;
  return std::unique_ptr<Model>(std::move(*copy));
}

absl::StatusOr<std::unique_ptr<Model>> ModelBase::Derive(int keep,
                                                         const std::vector<LayerSpec>& new_layers,
                                                         Loss loss, uint64_t seed) const {
  if (keep < 0 || keep > num_layers()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot keep ", keep, " layers of a model with ", num_layers()));
  }
  ModelSpec spec;
  spec.input = spec_.input;
  spec.layers.assign(spec_.layers.begin(), spec_.layers.begin() + keep);
  spec.layers.insert(spec.layers.end(), new_layers.begin(), new_layers.end());
  spec.loss = loss;
  auto made = MakeSibling(spec);
  if (!made.ok()) return made.status();
  ModelBase& d = **made;
  // The kept layers come first in both flat buffers, at the same offsets.
  int64_t kept = 0;
  for (int l = 0; l < keep; ++l) {
    for (const Shape& s : shapes_.params[l]) kept += ElementCount(s);
  }
  std::copy_n(params_.begin(), kept, d.params_.begin());
  d.InitializeParameters(seed, keep);
  std::copy_n(trainable_.begin(), keep, d.trainable_.begin());
  d.optimizer_ = optimizer_;
  d.reducer_ = reducer_;
  d.RebuildGradientLayout();
  return std::unique_ptr<Model>(std::move(*made));
}

ModelFileContents ModelBase::FileContents() const {
  ModelFileContents contents;
  contents.spec = spec_;
  contents.trainable = trainable_;
  contents.seed = seed_;
  contents.step = step_;
  contents.parameters = params_;
  return contents;
}

absl::Status ModelBase::Save(const std::string& path) const {
  return WriteModelFile(path, FileContents());
}

std::string ModelBase::SaveBytes() const { return EncodeModelFile(FileContents()); }

absl::Status ModelBase::RestoreState(std::span<const float> params,
                                     const std::vector<bool>& trainable, uint64_t seed,
                                     uint64_t step) {
  if (params.size() != params_.size() || trainable.size() != trainable_.size()) {
    return absl::InvalidArgumentError("the saved state does not fit this model");
  }
  std::copy(params.begin(), params.end(), params_.begin());
  trainable_ = trainable;
  seed_ = seed;
  step_ = step;
  RebuildGradientLayout();
  return absl::OkStatus();
}

namespace {

// Creates a model with `make` and fills it from a model file's contents.
absl::StatusOr<std::unique_ptr<Model>> MakeFromContents(
    const absl::StatusOr<ModelFileContents>& contents, const ModelMaker& make) {
  if (!contents.ok()) return contents.status();
  auto model = make(contents->spec);
  if (!model.ok()) return model.status();
  if (auto s = (*model)->RestoreState(contents->parameters, contents->trainable, contents->seed,
                                      contents->step);
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<Model>(std::move(*model));
}

class ModelBaseBackend final : public Backend {
 public:
  ModelBaseBackend(std::string name, ModelMaker make)
      : name_(std::move(name)), make_(std::move(make)) {}

  std::string name() const override { return name_; }

  absl::StatusOr<std::unique_ptr<Model>> Create(const ModelSpec& spec, uint64_t seed) override {
    absl::StatusOr<std::unique_ptr<ModelBase>> model = make_(spec);
    if (!model.ok()) return model.status();
    (*model)->InitializeParameters(seed);
    return std::unique_ptr<Model>(std::move(*model));
  }

  absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path) override {
    return MakeFromContents(ReadModelFile(path), make_);
  }
  absl::StatusOr<std::unique_ptr<Model>> LoadBytes(const std::string& bytes,
                                                   const std::string& name) override {
    return MakeFromContents(DecodeModelFile(bytes, name), make_);
  }

 private:
  const std::string name_;
  const ModelMaker make_;
};

}  // namespace

std::unique_ptr<Backend> MakeModelBaseBackend(std::string name, ModelMaker make) {
  return std::make_unique<ModelBaseBackend>(std::move(name), std::move(make));
}

}  // namespace seedproof
