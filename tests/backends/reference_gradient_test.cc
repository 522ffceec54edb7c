// The reference backend is the oracle the oneDNN backend is tested against, so
// its own correctness is pinned here from first principles:
//   - gradients against central finite differences of the loss, for every layer
//     kind, every hidden activation and both losses (ReferenceGradients.*);
//   - forward values against hand-computed answers for the conventions a
//     gradient check cannot see: 'same' padding placement, kernel layout, padding
//     never winning a max, activation constants, dropout scaling
//     (ReferenceForward.*);
//   - the loss's stability and the backend glue (Create, Save/Load, Clone).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/model_base.h"
#include "backends/random.h"
#include "backends/reference/reference_backend.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_testing.h"

namespace seedproof {
namespace {

using testing_support::Batch;
using testing_support::CapturingReducer;
using testing_support::RandomBatch;

// ---------------------------------------------------------------------------
// Helpers.

bool HasWeights(const Model& model, int layer) { return model.spec().layers[layer].has_weights(); }

// Biases start at zero; nonzero ones make the check cover more than one point.
void RandomizeBiases(Model& model, uint64_t seed) {
  Rng rng(seed);
  for (int l = 0; l < model.num_layers(); ++l) {
    if (!HasWeights(model, l)) continue;
    std::vector<Tensor> weights = *model.GetWeights(l);
    for (float& v : weights[1].values) v = rng.Uniform(-0.2f, 0.2f);
    ASSERT_TRUE(model.SetWeights(l, weights).ok());
  }
}

std::unique_ptr<Model> CreateModel(const ModelSpec& spec, uint64_t seed = 7) {
  absl::StatusOr<std::unique_ptr<Model>> model = MakeReferenceBackend({})->Create(spec, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  RandomizeBiases(**model, seed + 1);
  return *std::move(model);
}

std::vector<std::vector<Tensor>> AllWeights(const Model& model) {
  std::vector<std::vector<Tensor>> all;
  for (int l = 0; l < model.num_layers(); ++l) all.push_back(*model.GetWeights(l));
  return all;
}

void SetAllWeights(Model& model, const std::vector<std::vector<Tensor>>& all) {
  for (int l = 0; l < model.num_layers(); ++l) ASSERT_TRUE(model.SetWeights(l, all[l]).ok());
}

// The gradient TrainStep computes, as the reducer sees it (summed over the
// batch). The weights are restored afterwards, so the step leaves the model as it
// was (apart from the step counter, which only dropout masks read).
std::vector<float> ReducedGradients(Model& model, const Batch& batch) {
  const std::vector<std::vector<Tensor>> saved = AllWeights(model);
  CapturingReducer reducer;
  model.SetGradientReducer(&reducer);
  absl::StatusOr<float> loss = model.TrainStep(batch.x.data(), batch.y.data(), batch.n);
  model.SetGradientReducer(nullptr);
  EXPECT_TRUE(loss.ok()) << loss.status();
  SetAllWeights(model, saved);
  return reducer.gradients;
}

double MeanLoss(Model& model, const Batch& batch) {
  absl::StatusOr<EvalResult> result =
      model.Evaluate(batch.x.data(), batch.y.data(), batch.n, batch.n);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->loss : NAN;
}

// Finite-difference settings.
//
// The model computes in float, so the loss L (about 1) carries a rounding error
// of a few 1e-7, and a central difference with step h has a rounding error of
// about 1e-7 / h plus a truncation error of h^2 |L'''| / 6. With h = 2e-3 the
// worst error measured on these nets (correct backend, several seeds) is 5e-5
// absolute, for gradients of the mean loss of ~1e-3 .. 1. The tolerance
//   |fd - analytic| <= kAbsTol * (kSteps[0] / h) + kRelTol * max(|fd|, |analytic|)
// with kAbsTol = 2e-4 and kRelTol = 2e-3 is 4x that worst error (the absolute
// part grows as 1/h, like the rounding error), while the bugs a gradient check
// is for (a wrong index, a missing term, a wrong derivative, a transposed
// kernel, a padding offset) give errors of the size of the gradient itself.
//
// Kinks (relu and selu at 0, a max pool's winner changing) make a difference
// meaningless when one lies within +-h of the current weights. They are rare
// for one unit but not for a conv weight that moves a few hundred units at
// once. So a parameter whose central difference misses is tried again with
// smaller steps (a kink 5e-4 .. 2e-3 away is then outside the interval), and at
// each step may instead be settled by a one-sided slope when the two sides
// disagree (a kink on the other side): that slope must match within
// kOneSidedTol (its truncation error is h |L''| / 2, measured up to 6e-4). At
// most kMaxLateShare of the parameters may need any of this, so a bug cannot
// hide behind it. (One near-tie in a max pool window touches every weight of
// its filter: a third of the conv kernel in these nets.)
constexpr float kSteps[] = {2e-3f, 1e-3f, 5e-4f};
constexpr double kAbsTol = 2e-4;
constexpr double kRelTol = 2e-3;
constexpr double kOneSidedTol = 2e-3;
constexpr double kMaxLateShare = 0.3;

struct Discrepancy {
  double worst_abs_error = 0.0;  // of central differences at the first step
  int late = 0;                  // parameters settled by a smaller step or one side
  int checked = 0;
};

// Compares analytic (the gradient of the mean loss, packed as the reducer
// packs it) with finite differences of loss(), perturbing every trainable
// parameter through SetWeights.
template <typename LossFn>
Discrepancy ExpectMatchesFiniteDifferences(Model& model, std::span<const float> analytic,
                                           LossFn loss) {
  Discrepancy d;
  const double loss0 = loss();
  size_t k = 0;
  for (int l = 0; l < model.num_layers(); ++l) {
    if (!HasWeights(model, l) || !model.trainable(l)) continue;
    std::vector<Tensor> weights = *model.GetWeights(l);
    // The loss with weights[t].values[e] set to `value`.
    const auto loss_at = [&](size_t t, size_t e, float value) {
      const float original = weights[t].values[e];
      weights[t].values[e] = value;
      EXPECT_TRUE(model.SetWeights(l, weights).ok());
      const double result = loss();
      weights[t].values[e] = original;
      EXPECT_TRUE(model.SetWeights(l, weights).ok());
      return result;
    };
    // Only the tensors gradients train (a BatchNorm's moving statistics are not).
    const size_t learned = static_cast<size_t>(model.spec().layers[l].trainable_tensors());
    for (size_t t = 0; t < learned; ++t) {
      for (size_t e = 0; e < weights[t].values.size(); ++e, ++k) {
        if (k >= analytic.size()) {
          ADD_FAILURE() << "the reduced gradient has only " << analytic.size() << " values";
          return d;
        }
        ++d.checked;
        const double g = analytic[k];
        const float original = weights[t].values[e];
        bool settled = false;
        std::string tried;
        for (const float step : kSteps) {
          // The steps actually taken, after rounding to float.
          const float plus = original + step, minus = original - step;
          const double loss_plus = loss_at(t, e, plus), loss_minus = loss_at(t, e, minus);
          const double central = (loss_plus - loss_minus) / (double{plus} - double{minus});
          const double right = (loss_plus - loss0) / (double{plus} - double{original});
          const double left = (loss0 - loss_minus) / (double{original} - double{minus});
          const double scale = std::max(std::fabs(g), std::fabs(central));
          const double tol = kAbsTol * (kSteps[0] / step) + kRelTol * scale;
          const double error = std::fabs(central - g);
          if (error <= tol) {
            if (step == kSteps[0]) {
              d.worst_abs_error = std::max(d.worst_abs_error, error);
            } else {
              ++d.late;
            }
            settled = true;
            break;
          }
          const bool kink = std::fabs(right - left) > tol;
          if (kink && std::min(std::fabs(right - g), std::fabs(left - g)) <= kOneSidedTol) {
            ++d.late;
            settled = true;
            break;
          }
          tried += "\n  step " + std::to_string(step) + ": central " + std::to_string(central) +
                   ", left " + std::to_string(left) + ", right " + std::to_string(right);
        }
        if (!settled) {
          ADD_FAILURE() << "layer " << l << " (" << LayerKindName(model.spec().layers[l].kind)
                        << ") tensor " << t << " [" << e << "]: analytic " << g << tried;
        }
      }
    }
  }
  EXPECT_EQ(k, analytic.size()) << "the reduced gradient has more values than trainable weights";
  EXPECT_LE(d.late, kMaxLateShare * d.checked)
      << "too many parameters needed a smaller step or a one-sided slope";
  return d;
}

// The whole check through the public API: TrainStep's reduced gradient divided
// by n against central differences of Evaluate's mean loss.
void ExpectGradientsMatchFiniteDifferences(const ModelSpec& spec, int64_t n = 4,
                                           uint64_t seed = 11) {
  std::unique_ptr<Model> model = CreateModel(spec, seed);
  ASSERT_NE(model, nullptr);
  const Batch batch = RandomBatch(spec, n, seed + 2);
  std::vector<float> gradient = ReducedGradients(*model, batch);
  ASSERT_FALSE(gradient.empty());
  for (float& g : gradient) g /= static_cast<float>(n);
  const Discrepancy d =
      ExpectMatchesFiniteDifferences(*model, gradient, [&] { return MeanLoss(*model, batch); });
  EXPECT_GT(d.checked, 0);
  ::testing::Test::RecordProperty("worst_abs_error", std::to_string(d.worst_abs_error));
  ::testing::Test::RecordProperty("late", d.late);
}

ModelSpec Spec(Shape input, std::vector<LayerSpec> layers,
               Loss loss = Loss::kSparseCategoricalCrossEntropy) {
  ModelSpec spec;
  spec.input = std::move(input);
  spec.layers = std::move(layers);
  spec.loss = loss;
  return spec;
}

// Three dense layers, so the hidden activation is differentiated twice and the
// gradient flows through two input-gradients.
ModelSpec DenseNet(Activation hidden) {
  return Spec({6}, {LayerSpec::Dense(5, hidden), LayerSpec::Dense(4, hidden),
                    LayerSpec::Dense(3, Activation::kSoftmax)});
}

// ---------------------------------------------------------------------------
// Gradients: dense layers, every hidden activation, both losses.

TEST(ReferenceGradients, DenseLinearWithSoftmaxCrossEntropyMatchesFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(DenseNet(Activation::kLinear));
}

TEST(ReferenceGradients, DenseReluMatchesFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(DenseNet(Activation::kRelu));
}

TEST(ReferenceGradients, DenseSeluMatchesFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(DenseNet(Activation::kSelu));
}

TEST(ReferenceGradients, DenseEluMatchesFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(DenseNet(Activation::kElu));
}

TEST(ReferenceGradients, DenseTanhMatchesFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(DenseNet(Activation::kTanh));
}

TEST(ReferenceGradients, DenseSigmoidMatchesFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(DenseNet(Activation::kSigmoid));
}

TEST(ReferenceGradients, BinaryCrossEntropyWithSigmoidOutputMatchesFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(
      Spec({6}, {LayerSpec::Dense(5, Activation::kTanh), LayerSpec::Dense(1, Activation::kSigmoid)},
           Loss::kBinaryCrossEntropy),
      /*n=*/6);
}

// ---------------------------------------------------------------------------
// Gradients: convolutions. Each net stacks two convolutions so the lower one's
// weight gradient depends on the upper one's input-gradient.

TEST(ReferenceGradients, Conv2DValidMatchesFiniteDifferences) {
  // 6x6x2 -> conv 3x3 valid -> 4x4x3 -> conv 2x2 valid -> 3x3x2.
  ExpectGradientsMatchFiniteDifferences(
      Spec({6, 6, 2}, {LayerSpec::Conv2D(3, 3, 1, Padding::kValid, Activation::kRelu),
                       LayerSpec::Conv2D(2, 2, 1, Padding::kValid, Activation::kSelu),
                       LayerSpec::Flatten(), LayerSpec::Dense(3, Activation::kSoftmax)}));
}

TEST(ReferenceGradients, Conv2DValidStride2MatchesFiniteDifferences) {
  // 6x6x2 -> conv 3x3 stride 2 valid -> 2x2x3 (the last row and column unused)
  // -> conv 2x2 stride 2 valid -> 1x1x2.
  ExpectGradientsMatchFiniteDifferences(
      Spec({6, 6, 2}, {LayerSpec::Conv2D(3, 3, 2, Padding::kValid, Activation::kTanh),
                       LayerSpec::Conv2D(2, 2, 2, Padding::kValid, Activation::kElu),
                       LayerSpec::Flatten(), LayerSpec::Dense(3, Activation::kSoftmax)}));
}

TEST(ReferenceGradients, Conv2DSameStride2MatchesFiniteDifferences) {
  // 5x5x2 -> conv 3x3 stride 2 same (pad 1 on every side) -> 3x3x3 -> conv 3x3
  // stride 2 same (pad_total 2: 1 top/left, 1 bottom/right) -> 2x2x2.
  ExpectGradientsMatchFiniteDifferences(
      Spec({5, 5, 2}, {LayerSpec::Conv2D(3, 3, 2, Padding::kSame, Activation::kElu),
                       LayerSpec::Conv2D(2, 3, 2, Padding::kSame, Activation::kSigmoid),
                       LayerSpec::Flatten(), LayerSpec::Dense(3, Activation::kSoftmax)}));
}

TEST(ReferenceGradients, Conv2DSameWithUnevenPaddingAndRectangularKernelMatchesFiniteDifferences) {
  // 5x6x2, kernel 2x4, strides (2, 1), same: height pad_total 1 (0 top, 1
  // bottom), width pad_total 3 (1 left, 2 right) -> 3x6x3.
  LayerSpec conv = LayerSpec::Conv2D(3, 2, 1, Padding::kSame, Activation::kSelu);
  conv.kernel_w = 4;
  conv.stride_h = 2;
  ExpectGradientsMatchFiniteDifferences(
      Spec({5, 6, 2}, {conv, LayerSpec::Conv2D(2, 2, 1, Padding::kSame, Activation::kTanh),
                       LayerSpec::Flatten(), LayerSpec::Dense(3, Activation::kSoftmax)}));
}

// ---------------------------------------------------------------------------
// Gradients: max pooling, with a convolution below it so the pool's
// input-gradient is used.

TEST(ReferenceGradients, MaxPoolValidMatchesFiniteDifferences) {
  // 6x6x2 -> conv 3x3 same -> 6x6x3 -> pool 2x2 -> 3x3x3.
  ExpectGradientsMatchFiniteDifferences(Spec(
      {6, 6, 2},
      {LayerSpec::Conv2D(3, 3, 1, Padding::kSame, Activation::kLinear), LayerSpec::MaxPool2D(2),
       LayerSpec::Flatten(), LayerSpec::Dense(3, Activation::kSoftmax)}));
}

TEST(ReferenceGradients, MaxPoolSamePaddingMatchesFiniteDifferences) {
  // 5x5x2 -> conv -> 5x5x3 -> pool 2x2 stride 2 same (pad_total 1: 0 top/left,
  // 1 bottom/right) -> 3x3x3, the last row and column of windows half padding.
  ExpectGradientsMatchFiniteDifferences(
      Spec({5, 5, 2}, {LayerSpec::Conv2D(3, 3, 1, Padding::kSame, Activation::kTanh),
                       LayerSpec::MaxPool2D(2, 2, Padding::kSame), LayerSpec::Flatten(),
                       LayerSpec::Dense(3, Activation::kSoftmax)}));
}

TEST(ReferenceGradients, OverlappingMaxPoolWindowsMatchFiniteDifferences) {
  // 5x5x2 -> conv -> 5x5x3 -> pool 3x3 stride 2 same (pad 1 each side) -> 3x3x3:
  // windows overlap, so one input can win several and collect their gradients.
  ExpectGradientsMatchFiniteDifferences(
      Spec({5, 5, 2}, {LayerSpec::Conv2D(3, 3, 1, Padding::kSame, Activation::kLinear),
                       LayerSpec::MaxPool2D(3, 2, Padding::kSame), LayerSpec::Flatten(),
                       LayerSpec::Dense(3, Activation::kSoftmax)}));
}

TEST(ReferenceGradients, MaxPoolTieSendsTheGradientToTheFirstMaximum) {
  // A 1x1 conv over a 2x2x2 image whose positions (0, 0) and (0, 1) hold the
  // one-hot vectors (1, 0) and (0, 1): with kernel (1, 1) and bias 0 both give
  // 1, a tie in the one 2x2 pool window (the other two positions give 0). The
  // first maximum in row-major order is (0, 0), so only kernel[0] (the weight
  // that position reads) gets a gradient.
  const ModelSpec spec =
      Spec({2, 2, 2}, {LayerSpec::Conv2D(1, 1, 1, Padding::kValid, Activation::kLinear),
                       LayerSpec::MaxPool2D(2), LayerSpec::Flatten(),
                       LayerSpec::Dense(2, Activation::kSoftmax)});
  std::unique_ptr<Model> model = CreateModel(spec);
  ASSERT_TRUE(model->SetWeights(0, {{{1, 1, 2, 1}, {1.0f, 1.0f}}, {{1}, {0.0f}}}).ok());
  const std::vector<float> gradient = ReducedGradients(*model, {{1, 0, 0, 1, 0, 0, 0, 0}, {1}, 1});
  ASSERT_GE(gradient.size(), 3u);
  EXPECT_NE(gradient[0], 0.0f);         // kernel[c=0]
  EXPECT_EQ(gradient[1], 0.0f);         // kernel[c=1]
  EXPECT_EQ(gradient[2], gradient[0]);  // bias: the winner's input at c=0 is 1
}

TEST(ReferenceGradients, ConvPoolConvDenseStackMatchesFiniteDifferences) {
  // Every layer kind in one net, the shape of a small image classifier.
  ExpectGradientsMatchFiniteDifferences(
      Spec({7, 7, 2},
           {LayerSpec::Conv2D(3, 3, 1, Padding::kSame, Activation::kRelu),
            LayerSpec::MaxPool2D(2, 2, Padding::kSame),
            LayerSpec::Conv2D(4, 2, 1, Padding::kValid, Activation::kSelu), LayerSpec::Flatten(),
            LayerSpec::Dense(5, Activation::kElu), LayerSpec::Dense(3, Activation::kSoftmax)}),
      /*n=*/3);
}

// ---------------------------------------------------------------------------
// Gradients: dropout. Evaluate runs without dropout, so TrainStep's gradient
// cannot be checked against it. Instead the test drives the model's own
// Forward(training=true) and Backward, which ReferenceModel makes public: the
// mask is a pure function of (seed, step, layer, index) and the step only moves
// in TrainStep, so every Forward here uses the same mask, and the loss with a
// fixed mask is an ordinary differentiable function of the weights.

// Exposes the gradient buffer that TrainStep would hand the reducer.
class ProbedReferenceModel : public ReferenceModel {
 public:
  ProbedReferenceModel(const ModelSpec& spec, ModelShapes shapes)
      : ReferenceModel(spec, std::move(shapes), BackendOptions{}) {}
  using ModelBase::Gradient;
};

// Mean softmax cross-entropy of logits (n, units), in double, and its gradient
// per example (not divided by n), as ModelBase hands it to Backward.
double SoftmaxCrossEntropy(const float* logits, const std::vector<int32_t>& y, int64_t units,
                           std::vector<float>* dlogits) {
  const int64_t n = static_cast<int64_t>(y.size());
  double total = 0.0;
  if (dlogits) dlogits->resize(n * units);
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits + i * units;
    const double max = *std::max_element(z, z + units);
    double sum = 0.0;
    for (int64_t k = 0; k < units; ++k) sum += std::exp(z[k] - max);
    total += std::log(sum) - (z[y[i]] - max);
    if (dlogits) {
      for (int64_t k = 0; k < units; ++k) {
        (*dlogits)[i * units + k] = static_cast<float>(std::exp(z[k] - max) / sum - (k == y[i]));
      }
    }
  }
  return total / static_cast<double>(n);
}

TEST(ReferenceGradients, DropoutWithFixedMaskMatchesFiniteDifferences) {
  const ModelSpec spec =
      Spec({6}, {LayerSpec::Dense(8, Activation::kTanh), LayerSpec::Dropout(0.5f),
                 LayerSpec::Dense(3, Activation::kSoftmax)});
  ProbedReferenceModel model(spec, *InferShapes(spec));
  model.InitializeParameters(3);
  RandomizeBiases(model, 4);
  const Batch batch = RandomBatch(spec, 4, 5);

  // The mask must drop something, or dropout's backward is not exercised.
  const float* eval_logits =
      *model.Forward(batch.x.data(), batch.n, /*training=*/false, model.num_layers());
  const std::vector<float> eval(eval_logits, eval_logits + batch.n * 3);
  const float* train_logits =
      *model.Forward(batch.x.data(), batch.n, /*training=*/true, model.num_layers());
  ASSERT_NE(eval, std::vector<float>(train_logits, train_logits + batch.n * 3));

  std::vector<float> dlogits;
  SoftmaxCrossEntropy(train_logits, batch.y, 3, &dlogits);
  ASSERT_TRUE(model.Backward(dlogits.data(), batch.n).ok());
  std::vector<float> gradient;
  for (int l : {0, 2}) {
    for (int t : {0, 1}) {
      const int64_t count = ElementCount(model.shapes().params[l][t]);
      const float* g = model.Gradient(l, t);
      for (int64_t i = 0; i < count; ++i) gradient.push_back(g[i] / static_cast<float>(batch.n));
    }
  }
  const auto training_loss = [&] {
    const float* logits =
        *model.Forward(batch.x.data(), batch.n, /*training=*/true, model.num_layers());
    return SoftmaxCrossEntropy(logits, batch.y, 3, nullptr);
  };
  ExpectMatchesFiniteDifferences(model, gradient, training_loss);
}

// ---------------------------------------------------------------------------
// Gradients: what imported models contain (LeakyRelu, explicit padding, average
// pooling, batch normalisation).

TEST(ReferenceGradients, DenseLeakyReluMatchesFiniteDifferences) {
  LayerSpec hidden = LayerSpec::Dense(5, Activation::kLeakyRelu);
  hidden.alpha = 0.2f;
  ExpectGradientsMatchFiniteDifferences(
      Spec({6}, {hidden, hidden, LayerSpec::Dense(3, Activation::kSoftmax)}));
}

LayerSpec Explicit(LayerSpec layer, int top, int bottom, int left, int right) {
  layer.padding = Padding::kExplicit;
  layer.pad_top = top, layer.pad_bottom = bottom, layer.pad_left = left, layer.pad_right = right;
  return layer;
}

TEST(ReferenceGradients, Conv2DAndMaxPoolWithExplicitUnevenPaddingMatchFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(
      Spec({7, 6, 2},
           {Explicit(LayerSpec::Conv2D(3, 3, 2, Padding::kValid, Activation::kTanh), 1, 0, 2, 1),
            Explicit(LayerSpec::MaxPool2D(2, 1), 1, 0, 0, 1), LayerSpec::Flatten(),
            LayerSpec::Dense(3, Activation::kSoftmax)}));
}

TEST(ReferenceGradients, AvgPoolExcludingAndIncludingPaddingMatchesFiniteDifferences) {
  for (bool include : {false, true}) {
    LayerSpec pool = Explicit(LayerSpec::AvgPool2D(3, 2), 1, 1, 0, 2);
    pool.count_include_pad = include;
    ExpectGradientsMatchFiniteDifferences(
        Spec({6, 5, 2}, {LayerSpec::Conv2D(3, 2, 1, Padding::kSame, Activation::kElu), pool,
                         LayerSpec::Flatten(), LayerSpec::Dense(3, Activation::kSoftmax)}));
  }
}

// An activation of its own (an imported graph's Relu after a pool, say).
TEST(ReferenceGradients, StandaloneActivationLayersMatchFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(
      Spec({5, 4, 2}, {LayerSpec::Conv2D(3, 2, 1, Padding::kSame, Activation::kLinear),
                       LayerSpec::MaxPool2D(2, 1), LayerSpec::ActivationLayer(Activation::kTanh),
                       LayerSpec::Flatten(), LayerSpec::ActivationLayer(Activation::kLeakyRelu, 0.2f),
                       LayerSpec::Dense(3, Activation::kSoftmax)}));
}

TEST(ReferenceGradients, GlobalAvgPoolMatchesFiniteDifferences) {
  ExpectGradientsMatchFiniteDifferences(
      Spec({4, 5, 2}, {LayerSpec::Conv2D(6, 3, 1, Padding::kSame, Activation::kSelu),
                       LayerSpec::GlobalAvgPool2D(), LayerSpec::Flatten(),
                       LayerSpec::Dense(3, Activation::kSoftmax)}));
}

// Batch normalisation trains with the batch's statistics, so its loss is the
// training forward pass's: the gradient runs through the mean and the variance.
void ExpectTrainingGradientsMatch(const ModelSpec& spec, int64_t n, uint64_t seed,
                                  const std::vector<int>& frozen = {}) {
  ProbedReferenceModel model(spec, *InferShapes(spec));
  model.InitializeParameters(seed);
  RandomizeBiases(model, seed + 1);
  // Moving statistics and gammas away from their start, so every term shows.
  Rng rng(seed + 2);
  for (int l = 0; l < model.num_layers(); ++l) {
    if (spec.layers[l].kind != LayerKind::kBatchNorm) continue;
    std::vector<Tensor> w = *model.GetWeights(l);
    for (float& v : w[0].values) v = rng.Uniform(0.5f, 1.5f);
    for (float& v : w[2].values) v = rng.Uniform(-0.5f, 0.5f);
    for (float& v : w[3].values) v = rng.Uniform(0.5f, 2.0f);
    ASSERT_TRUE(model.SetWeights(l, w).ok());
  }
  for (int l : frozen) ASSERT_TRUE(model.SetTrainable(l, false).ok());
  const Batch batch = RandomBatch(spec, n, seed + 3);
  const int64_t units = model.output_units();
  const float* logits =
      *model.Forward(batch.x.data(), batch.n, /*training=*/true, model.num_layers());
  std::vector<float> dlogits;
  SoftmaxCrossEntropy(logits, batch.y, units, &dlogits);
  ASSERT_TRUE(model.Backward(dlogits.data(), batch.n).ok());
  std::vector<float> gradient;
  for (int l = 0; l < model.num_layers(); ++l) {
    for (int t = 0; t < spec.layers[l].trainable_tensors(); ++t) {
      const float* g = model.Gradient(l, t);
      if (g == nullptr) continue;
      const int64_t count = ElementCount(model.shapes().params[l][t]);
      for (int64_t i = 0; i < count; ++i) gradient.push_back(g[i] / static_cast<float>(batch.n));
    }
  }
  const auto training_loss = [&] {
    const float* z = *model.Forward(batch.x.data(), batch.n, /*training=*/true, model.num_layers());
    return SoftmaxCrossEntropy(z, batch.y, units, nullptr);
  };
  const Discrepancy d = ExpectMatchesFiniteDifferences(model, gradient, training_loss);
  EXPECT_GT(d.checked, 0);
}

TEST(ReferenceGradients, BatchNormOnDenseFeaturesMatchesFiniteDifferences) {
  ExpectTrainingGradientsMatch(
      Spec({6}, {LayerSpec::Dense(5, Activation::kLinear),
                 LayerSpec::BatchNorm(1e-3f, 0.9f, Activation::kTanh),
                 LayerSpec::Dense(3, Activation::kSoftmax)}),
      /*n=*/6, /*seed=*/21);
}

TEST(ReferenceGradients, BatchNormOnConvChannelsMatchesFiniteDifferences) {
  ExpectTrainingGradientsMatch(
      Spec({4, 4, 2}, {LayerSpec::Conv2D(3, 3, 1, Padding::kSame, Activation::kLinear),
                       LayerSpec::BatchNorm(1e-5f, 0.9f, Activation::kElu), LayerSpec::Flatten(),
                       LayerSpec::Dense(3, Activation::kSoftmax)}),
      /*n=*/3, /*seed=*/31);
}

// A frozen BatchNorm normalises with its moving statistics even while the layers
// around it train (Keras's rule), and passes the gradient down through that.
TEST(ReferenceGradients, AFrozenBatchNormPassesGradientsThroughItsMovingStatistics) {
  ExpectTrainingGradientsMatch(
      Spec({6}, {LayerSpec::Dense(5, Activation::kLinear),
                 LayerSpec::BatchNorm(1e-3f, 0.9f, Activation::kSigmoid),
                 LayerSpec::Dense(3, Activation::kSoftmax)}),
      /*n=*/5, /*seed=*/41, /*frozen=*/{1});
}

// ---------------------------------------------------------------------------
// Gradients: freezing.

int64_t ParameterCount(const Model& model, int layer) {
  int64_t count = 0;
  for (const Shape& s : model.shapes().params[layer]) count += ElementCount(s);
  return count;
}

TEST(ReferenceGradients, FrozenLayersAreLeftOutOfTheReducedGradient) {
  const ModelSpec spec = DenseNet(Activation::kTanh);
  std::unique_ptr<Model> model = CreateModel(spec);
  const Batch batch = RandomBatch(spec, 4, 1);
  const std::vector<float> all = ReducedGradients(*model, batch);
  const int64_t p0 = ParameterCount(*model, 0), p1 = ParameterCount(*model, 1);
  ASSERT_EQ(static_cast<int64_t>(all.size()), model->shapes().parameter_count);

  // Frozen bottom: only layers 1 and 2, with the same values as before.
  ASSERT_TRUE(model->SetTrainable(0, false).ok());
  const std::vector<float> top = ReducedGradients(*model, batch);
  ASSERT_EQ(top.size(), all.size() - p0);
  for (size_t i = 0; i < top.size(); ++i) EXPECT_FLOAT_EQ(top[i], all[p0 + i]) << i;

  // Frozen middle: layer 1 has no gradient but still passes one down to layer 0.
  ASSERT_TRUE(model->SetTrainable(0, true).ok());
  ASSERT_TRUE(model->SetTrainable(1, false).ok());
  const std::vector<float> ends = ReducedGradients(*model, batch);
  ASSERT_EQ(ends.size(), all.size() - p1);
  for (int64_t i = 0; i < p0; ++i) EXPECT_FLOAT_EQ(ends[i], all[i]) << i;
  for (size_t i = p0; i < ends.size(); ++i) EXPECT_FLOAT_EQ(ends[i], all[p1 + i]) << i;
}

// ---------------------------------------------------------------------------
// The fused losses.

TEST(ReferenceLoss, BinaryCrossEntropyIsStableForLargeLogits) {
  const ModelSpec spec =
      Spec({1}, {LayerSpec::Dense(1, Activation::kSigmoid)}, Loss::kBinaryCrossEntropy);
  std::unique_ptr<Model> model = CreateModel(spec);
  ASSERT_TRUE(model->SetWeights(0, {{{1, 1}, {100.0f}}, {{1}, {0.0f}}}).ok());
  // x = 1 gives logit 100 (label 0: loss 100); x = -1 gives logit -100 (label 1:
  // loss 100). A naive -log(1 - sigmoid(100)) would be log(0) = inf.
  const float xs[] = {1.0f, -1.0f};
  const int32_t ys[] = {0, 1};
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<EvalResult> result = model->Evaluate(&xs[i], &ys[i], 1, 1);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(std::isfinite(result->loss));
    EXPECT_NEAR(result->loss, 100.0, 1e-3) << "x = " << xs[i];
  }
  // The gradient is finite too: dL/dlogit = sigmoid(z) - y is 1 and -1, so
  // dL/dkernel = x * dL/dlogit = 1 for both examples.
  const std::vector<float> gradient = ReducedGradients(*model, {{1.0f, -1.0f}, {0, 1}, 2});
  ASSERT_EQ(gradient.size(), 2u);
  EXPECT_NEAR(gradient[0], 2.0f, 1e-6f);  // kernel, summed over both examples
  EXPECT_NEAR(gradient[1], 0.0f, 1e-6f);  // bias: 1 + (-1)
}

// ---------------------------------------------------------------------------
// Forward values the gradient check cannot see. Each net ends in an identity
// dense output layer, so the logits Forward returns are the tested layer's
// output, flattened.

std::unique_ptr<ReferenceModel> MakeModel(const ModelSpec& spec) {
  absl::StatusOr<std::unique_ptr<ReferenceModel>> model = MakeReferenceModel(spec, {});
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

void SetIdentity(Model& model, int layer) {
  const Shape kernel = model.shapes().params[layer][0];
  ASSERT_EQ(kernel[0], kernel[1]);
  Tensor k{kernel, std::vector<float>(kernel[0] * kernel[1], 0.0f)};
  for (int64_t i = 0; i < kernel[0]; ++i) k.values[i * kernel[0] + i] = 1.0f;
  Tensor b{{kernel[1]}, std::vector<float>(kernel[1], 0.0f)};
  ASSERT_TRUE(model.SetWeights(layer, {k, b}).ok());
}

// A conv kernel that is 1 at (i, j, c, f) and 0 elsewhere; bias `bias`.
void SetOneHotKernel(Model& model, int layer, int i, int j, int c, int f, float bias = 0.0f) {
  const Shape shape = model.shapes().params[layer][0];
  Tensor k{shape, std::vector<float>(ElementCount(shape), 0.0f)};
  k.values[((i * shape[1] + j) * shape[2] + c) * shape[3] + f] = 1.0f;
  Tensor b{{shape[3]}, std::vector<float>(shape[3], bias)};
  ASSERT_TRUE(model.SetWeights(layer, {k, b}).ok());
}

std::vector<float> Logits(ReferenceModel& model, const std::vector<float>& x, int64_t n = 1,
                          bool training = false) {
  absl::StatusOr<const float*> logits = model.Forward(x.data(), n, training, model.num_layers());
  EXPECT_TRUE(logits.ok()) << logits.status();
  if (!logits.ok()) return {};
  return std::vector<float>(*logits, *logits + n * model.output_units());
}

// x[h, w] = 10 h + w + 1 for an (h_size, w_size, 1) image: every value names
// its position and none is 0, so a value read from padding shows as 0.
std::vector<float> PositionImage(int h_size, int w_size) {
  std::vector<float> x;
  for (int h = 0; h < h_size; ++h) {
    for (int w = 0; w < w_size; ++w) x.push_back(static_cast<float>(10 * h + w + 1));
  }
  return x;
}

TEST(ReferenceForward, Conv2DSamePaddingPutsTheSmallerHalfFirst) {
  // 4x4 input, 4x4 kernel, stride 1, same: pad_total 3, 1 on top/left and 2 at
  // the bottom/right. A kernel that is 1 at (0, 0) reads x[oh - 1, ow - 1]; one
  // that is 1 at (3, 3) reads x[oh + 2, ow + 2].
  const ModelSpec spec =
      Spec({4, 4, 1}, {LayerSpec::Conv2D(1, 4, 1, Padding::kSame, Activation::kLinear),
                       LayerSpec::Flatten(), LayerSpec::Dense(16, Activation::kSoftmax)});
  std::unique_ptr<ReferenceModel> model = MakeModel(spec);
  SetIdentity(*model, 2);
  const std::vector<float> x = PositionImage(4, 4);
  for (const int corner : {0, 3}) {
    SetOneHotKernel(*model, 0, corner, corner, 0, 0);
    const int shift = corner - 1;
    const std::vector<float> y = Logits(*model, x);
    for (int oh = 0; oh < 4; ++oh) {
      for (int ow = 0; ow < 4; ++ow) {
        const int h = oh + shift, w = ow + shift;
        const float expected = h >= 0 && h < 4 && w >= 0 && w < 4 ? x[h * 4 + w] : 0.0f;
        EXPECT_EQ(y[oh * 4 + ow], expected)
            << "kernel corner " << corner << " at " << oh << "," << ow;
      }
    }
  }
}

TEST(ReferenceForward, Conv2DSameStride2StartsAtMinusThePadding) {
  // 5x5 input, 3x3 kernel, stride 2, same: 3x3 output, pad_total 2, 1 on top/left.
  // A kernel that is 1 at (0, 0) reads x[2 oh - 1, 2 ow - 1].
  const ModelSpec spec =
      Spec({5, 5, 1}, {LayerSpec::Conv2D(1, 3, 2, Padding::kSame, Activation::kLinear),
                       LayerSpec::Flatten(), LayerSpec::Dense(9, Activation::kSoftmax)});
  std::unique_ptr<ReferenceModel> model = MakeModel(spec);
  SetIdentity(*model, 2);
  SetOneHotKernel(*model, 0, 0, 0, 0, 0);
  const std::vector<float> x = PositionImage(5, 5);
  const std::vector<float> y = Logits(*model, x);
  const std::vector<float> expected = {0, 0,  0,   //
                                       0, 12, 14,  //
                                       0, 32, 34};
  EXPECT_EQ(y, expected);
}

TEST(ReferenceForward, Conv2DKernelIsHeightWidthInOutAndNotFlipped) {
  // 3x3x2 input, two 3x3 filters, valid: a 1x1x2 output. The kernel is 1 only at
  // (i=0, j=2, c=1, f=0), so filter 0 reads x[0, 2, 1] and filter 1 only its bias.
  const ModelSpec spec =
      Spec({3, 3, 2}, {LayerSpec::Conv2D(2, 3, 1, Padding::kValid, Activation::kLinear),
                       LayerSpec::Flatten(), LayerSpec::Dense(2, Activation::kSoftmax)});
  std::unique_ptr<ReferenceModel> model = MakeModel(spec);
  SetIdentity(*model, 2);
  SetOneHotKernel(*model, 0, 0, 2, 1, 0, /*bias=*/0.5f);
  std::vector<float> x(18);
  for (int i = 0; i < 18; ++i) x[i] = static_cast<float>(i + 1);  // x[h, w, c] = 6h + 2w + c + 1
  EXPECT_EQ(Logits(*model, x), (std::vector<float>{6.0f + 0.5f, 0.5f}));
}

TEST(ReferenceForward, MaxPoolSamePaddingNeverPicksPadding) {
  // 3x3 all-negative input, pool 2x2 stride 2 same: pad_total 1, at the
  // bottom/right. Were padding a 0, it would win every window but the first.
  const ModelSpec spec =
      Spec({3, 3, 1}, {LayerSpec::MaxPool2D(2, 2, Padding::kSame), LayerSpec::Flatten(),
                       LayerSpec::Dense(4, Activation::kSoftmax)});
  std::unique_ptr<ReferenceModel> model = MakeModel(spec);
  SetIdentity(*model, 2);
  const std::vector<float> x = {-9, -3, -7,  //
                                -4, -8, -6,  //
                                -2, -5, -1};
  EXPECT_EQ(Logits(*model, x), (std::vector<float>{-3, -6, -2, -1}));
}

TEST(ReferenceForward, DenseIsInputTimesKernelPlusBiasWithoutTheOutputActivation) {
  const ModelSpec spec = Spec({2}, {LayerSpec::Dense(3, Activation::kSoftmax)});
  std::unique_ptr<ReferenceModel> model = MakeModel(spec);
  // Kernel (in=2, out=3), row-major.
  ASSERT_TRUE(
      model->SetWeights(0, {{{2, 3}, {1, 2, 3, 4, 5, 6}}, {{3}, {0.5f, 0.0f, -0.5f}}}).ok());
  EXPECT_EQ(Logits(*model, {1.0f, -1.0f}), (std::vector<float>{-2.5f, -3.0f, -3.5f}));
}

TEST(ReferenceForward, HiddenActivationsFollowKerasDefinitions) {
  const double kScale = 1.0507009873554805, kAlpha = 1.6732632423543772;
  const std::vector<float> x = {-3.0f, -0.5f, 0.25f, 2.0f};
  const std::vector<std::pair<Activation, double (*)(double)>> cases = {
      {Activation::kLinear, [](double v) { return v; }},
      {Activation::kRelu, [](double v) { return std::max(v, 0.0); }},
      {Activation::kSelu,
       [](double v) {
         return 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * std::expm1(v));
       }},
      {Activation::kElu, [](double v) { return v > 0 ? v : std::expm1(v); }},
      {Activation::kTanh, [](double v) { return std::tanh(v); }},
      {Activation::kSigmoid, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }},
  };
  EXPECT_NEAR(cases[2].second(-1.0), kScale * kAlpha * (std::exp(-1.0) - 1.0), 1e-12);
  for (const auto& [activation, f] : cases) {
    const ModelSpec spec =
        Spec({4}, {LayerSpec::Dense(4, activation), LayerSpec::Dense(4, Activation::kSoftmax)});
    std::unique_ptr<ReferenceModel> model = MakeModel(spec);
    SetIdentity(*model, 0);
    SetIdentity(*model, 1);
    const std::vector<float> y = Logits(*model, x);
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_NEAR(y[i], f(x[i]), 1e-6) << ActivationName(activation) << "(" << x[i] << ")";
    }
  }
}

TEST(ReferenceForward, DropoutScalesKeptUnitsOnlyWhenTraining) {
  // rate 0.5: each unit is dropped (0) or kept and doubled while training, and
  // passed through unchanged otherwise.
  constexpr int kUnits = 64;
  const ModelSpec spec =
      Spec({kUnits}, {LayerSpec::Dropout(0.5f), LayerSpec::Dense(kUnits, Activation::kSoftmax)});
  std::unique_ptr<ReferenceModel> model = MakeModel(spec);
  model->InitializeParameters(1);
  SetIdentity(*model, 1);
  std::vector<float> x(kUnits);
  for (int i = 0; i < kUnits; ++i) x[i] = static_cast<float>(i + 1);
  EXPECT_EQ(Logits(*model, x), x);
  const std::vector<float> y = Logits(*model, x, 1, /*training=*/true);
  int dropped = 0;
  for (int i = 0; i < kUnits; ++i) {
    if (y[i] == 0.0f) {
      ++dropped;
    } else {
      EXPECT_EQ(y[i], 2.0f * x[i]) << i;
    }
  }
  // 64 fair coins: 10..54 dropped fails with probability ~1e-8 per seed.
  EXPECT_GT(dropped, 10);
  EXPECT_LT(dropped, 54);
}

// ---------------------------------------------------------------------------
// The backend's glue: Create, Save/Load, Clone (which goes through MakeSibling).

TEST(ReferenceBackend, LoadAndCloneGiveTheSameWeightsAndPredictions) {
  std::unique_ptr<Backend> backend = MakeReferenceBackend({});
  EXPECT_EQ(backend->name(), "reference");
  const ModelSpec spec =
      Spec({5, 5, 2}, {LayerSpec::Conv2D(3, 3, 1, Padding::kSame, Activation::kRelu),
                       LayerSpec::MaxPool2D(2, 2, Padding::kSame), LayerSpec::Flatten(),
                       LayerSpec::Dense(3, Activation::kSoftmax)});
  std::unique_ptr<Model> model = CreateModel(spec);
  ASSERT_NE(model, nullptr);
  for (int l = 0; l < model->num_layers(); ++l) EXPECT_TRUE(model->trainable(l));
  ASSERT_TRUE(model->SetTrainable(0, false).ok());
  const Batch batch = RandomBatch(spec, 3, 9);
  std::vector<float> expected(3 * 3);
  ASSERT_TRUE(model->Predict(batch.x.data(), batch.n, expected.data()).ok());

  const std::string path =
      (std::filesystem::path(testing::TempDir()) / "reference.spmodel").string();
  ASSERT_TRUE(model->Save(path).ok());
  absl::StatusOr<std::unique_ptr<Model>> loaded = backend->Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  absl::StatusOr<std::unique_ptr<Model>> clone = model->Clone();
  ASSERT_TRUE(clone.ok()) << clone.status();
  for (Model* copy : {loaded->get(), clone->get()}) {
    EXPECT_EQ(copy->spec(), spec);
    EXPECT_FALSE(copy->trainable(0));
    EXPECT_TRUE(std::ranges::equal(copy->parameters(), model->parameters()));
    std::vector<float> probabilities(3 * 3);
    ASSERT_TRUE(copy->Predict(batch.x.data(), batch.n, probabilities.data()).ok());
    EXPECT_EQ(probabilities, expected);
  }
  std::filesystem::remove(path);
}

// Training normalises each channel with the batch's statistics and moves the
// moving ones (variance unbiased, as PyTorch); outside training, and frozen, the
// moving ones normalise.
TEST(ReferenceForward, BatchNormUsesTheBatchWhileTrainingAndTheMovingStatisticsOtherwise) {
  const ModelSpec spec =
      Spec({2}, {LayerSpec::BatchNorm(1e-5f, 0.9f), LayerSpec::Dense(2, Activation::kSoftmax)});
  std::unique_ptr<ReferenceModel> model = MakeModel(spec);
  model->InitializeParameters(1);
  // x: channel 0 is 1, 2, 3, 6 (mean 3, biased variance 3.5), channel 1 constant 5.
  const std::vector<float> x = {1, 5, 2, 5, 3, 5, 6, 5};
  const float* y = *model->Forward(x.data(), 4, /*training=*/true, 1);
  const float inv = 1.0f / std::sqrt(3.5f + 1e-5f);
  EXPECT_NEAR(y[0], (1 - 3) * inv, 1e-6);
  EXPECT_NEAR(y[6], (6 - 3) * inv, 1e-6);
  EXPECT_NEAR(y[1], 0.0f, 1e-6);  // a constant channel normalises to beta
  std::vector<Tensor> w = *model->GetWeights(0);
  EXPECT_FLOAT_EQ(w[2].values[0], 0.1f * 3.0f);                  // 0.9 * 0 + 0.1 * mean
  EXPECT_FLOAT_EQ(w[3].values[0], 0.9f + 0.1f * (14.0f / 3.0f));  // unbiased: 14 / 3
  EXPECT_FLOAT_EQ(w[3].values[1], 0.9f);
  // Outside training: (x - moving mean) / sqrt(moving var + eps), nothing moves.
  const float* z = *model->Forward(x.data(), 4, /*training=*/false, 1);
  EXPECT_NEAR(z[0], (1 - 0.3f) / std::sqrt(w[3].values[0] + 1e-5f), 1e-6);
  EXPECT_EQ(model->GetWeights(0)->at(2).values, w[2].values);
  // Frozen and training: the moving statistics too, and they stay.
  ASSERT_TRUE(model->SetTrainable(0, false).ok());
  const float* f = *model->Forward(x.data(), 4, /*training=*/true, 1);
  EXPECT_EQ(f[0], z[0]);
  EXPECT_EQ(model->GetWeights(0)->at(3).values, w[3].values);
}

// Padded zeros count in the mean only when asked (ONNX's count_include_pad);
// the global pool is each channel's mean.
TEST(ReferenceForward, AveragePoolsDivideByWhatTheyCover) {
  const std::vector<float> image = PositionImage(3, 3);  // value 10 * h + w + 1, one channel
  for (bool include : {false, true}) {
    LayerSpec pool = LayerSpec::AvgPool2D(2, 2);
    pool.padding = Padding::kExplicit;
    pool.pad_top = pool.pad_left = 1;
    pool.count_include_pad = include;
    const ModelSpec spec = Spec({3, 3, 1}, {pool, LayerSpec::Flatten(), LayerSpec::Dense(4, Activation::kSoftmax)});
    std::unique_ptr<ReferenceModel> model = MakeModel(spec);
    const float* y = *model->Forward(image.data(), 1, /*training=*/false, 1);
    // Output (0, 0) covers only input (0, 0): 1 / 1, or 1 / 4 with the padding.
    EXPECT_FLOAT_EQ(y[0], include ? 0.25f : 1.0f);
    // Output (1, 1) covers inputs (1..2, 1..2): (12 + 13 + 22 + 23) / 4 either way.
    EXPECT_FLOAT_EQ(y[3], 70.0f / 4);
    // Output (0, 1) covers inputs (0, 1..2): 5 / 2, or 5 / 4 with the padding.
    EXPECT_FLOAT_EQ(y[1], include ? 5.0f / 4 : 5.0f / 2);
  }
  const ModelSpec global = Spec({3, 3, 1}, {LayerSpec::GlobalAvgPool2D(), LayerSpec::Flatten(),
                                            LayerSpec::Dense(2, Activation::kSoftmax)});
  std::unique_ptr<ReferenceModel> model = MakeModel(global);
  EXPECT_FLOAT_EQ(**model->Forward(image.data(), 1, /*training=*/false, 1), 108.0f / 9);
}

}  // namespace
}  // namespace seedproof
