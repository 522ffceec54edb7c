// The oneDNN backend against the reference backend (the plain-loop oracle): the
// same spec and seed on both give the same start bit for bit, and then forward
// outputs, gradients and trained weights that agree within float rounding. Plus
// what the oneDNN backend promises on its own: frozen layers stay bit-unchanged,
// training is bit-reproducible, clones are independent.
//
// Tolerances. Both backends compute in float32, but oneDNN sums matmul and
// convolution products in a different order (blocked, vectorised, FMA) and uses
// its own exp/tanh/logistic approximations for the fused activations, so they
// agree to float rounding, not bitwise. Every comparison checks
//   |onednn - reference| <= atol + rtol * |reference|
// elementwise, with constants 10-30x above the worst error these tests measure
// here (run with SEEDPROOF_PRINT_TOLERANCE=1 to see worst |diff| / allowance per
// check), which leaves room for another ISA's kernels while any real bug (a wrong
// padding, bias, transpose or derivative) is orders of magnitude outside.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/onednn/onednn_backend.h"
#include "backends/random.h"
#include "backends/reference/reference_backend.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_testing.h"

namespace seedproof {
namespace {

using testing_support::Batch;
using testing_support::CapturingReducer;
using testing_support::RandomBatch;

// Probabilities out of Predict, in [0, 1]: measured worst |diff| ~1e-7.
constexpr double kProbAtol = 2e-6;
constexpr double kProbRtol = 1e-5;
// Gradients (sums over a batch of 32): float32 sums of products in a different
// order differ by ~1e-7 relative; sums that nearly cancel get an absolute
// allowance scaled by the buffer's largest |gradient| (ExpectGradientsClose).
// Measured worst: 3% of this allowance.
constexpr double kGradRtol = 1e-4;
constexpr double kGradAtolOfMax = 1e-5;
// Weights (O(0.1)) after 10 steps: each step adds lr * (gradient with ~1e-7
// relative error) and the forward passes drift apart by as much. Measured worst
// |diff| ~2e-7 with SGD (lr 0.05, momentum 0.9).
constexpr double kSgdWeightAtol = 2e-6;
// Adam divides by sqrt(v), so its steps are ~lr in size whatever the gradient's
// scale and a weight moves by ~lr * (relative gradient error) more per step; the
// sign of a gradient that is rounding noise could even flip a step, so this one
// gets more room. Measured worst |diff| ~8e-7 (lr 1e-3).
constexpr double kAdamWeightAtol = 1e-5;
// Behind a BatchNorm trained on batch statistics, a gradient is a difference of
// nearly equal sums (dy minus its mean, minus xhat times its correlation), so its
// rounding error relative to a small gradient is larger, and Adam turns relative
// error into a share of a step: measured worst |diff| 4.3e-5 after 10 steps of lr
// 1e-3. A wrong term moves weights by whole steps (1e-3 each), 20x more than this.
constexpr double kAdamNormWeightAtol = 1e-4;
constexpr double kWeightRtol = 1e-5;

// A small Géron model A: SELU stack, LeCun init, softmax output.
ModelSpec DenseSpec(Loss loss) {
  ModelSpec spec;
  spec.input = {40};
  spec.layers = {LayerSpec::Dense(30, Activation::kSelu, Initializer::kLecunNormal),
                 LayerSpec::Dense(20, Activation::kSelu, Initializer::kLecunNormal),
                 LayerSpec::Dense(16, Activation::kSelu, Initializer::kLecunNormal),
                 LayerSpec::Dense(16, Activation::kSelu, Initializer::kLecunNormal)};
  if (loss == Loss::kBinaryCrossEntropy) {
    spec.layers.push_back(LayerSpec::Dense(1, Activation::kSigmoid));
  } else {
    spec.layers.push_back(LayerSpec::Dense(8, Activation::kSoftmax));
  }
  spec.loss = loss;
  return spec;
}

// Every other activation, and a Dropout between dense layers.
ModelSpec MixedDenseSpec(Loss loss) {
  ModelSpec spec;
  spec.input = {24};
  spec.layers = {LayerSpec::Dense(20, Activation::kRelu, Initializer::kHeNormal),
                 LayerSpec::Dense(18, Activation::kElu),
                 LayerSpec::Dropout(0.3f),
                 LayerSpec::Dense(16, Activation::kTanh),
                 LayerSpec::Dense(14, Activation::kSigmoid),
                 LayerSpec::Dense(12, Activation::kLinear)};
  if (loss == Loss::kBinaryCrossEntropy) {
    spec.layers.push_back(LayerSpec::Dense(1, Activation::kSigmoid));
  } else {
    spec.layers.push_back(LayerSpec::Dense(5, Activation::kSoftmax));
  }
  spec.loss = loss;
  return spec;
}

// (16, 16, 2) -> Conv2D same s1 (16, 16, 8) -> MaxPool2D 3 s2 same (8, 8, 8),
// padding 0 before and 1 after -> Conv2D 3 s2 valid (3, 3, 6) where (8 - 3) is
// not a multiple of 2 -> Conv2D 3 s2 same (2, 2, 5), padding 0/1 -> Dropout ->
// Flatten (20) -> Dense 12 -> Dropout -> output.
ModelSpec ConvSpec(Loss loss) {
  ModelSpec spec;
  spec.input = {16, 16, 2};
  spec.layers = {
      LayerSpec::Conv2D(8, 3, 1, Padding::kSame, Activation::kRelu, Initializer::kHeNormal),
      LayerSpec::MaxPool2D(3, 2, Padding::kSame),
      LayerSpec::Conv2D(6, 3, 2, Padding::kValid, Activation::kSelu, Initializer::kLecunNormal),
      LayerSpec::Conv2D(5, 3, 2, Padding::kSame, Activation::kElu),
      LayerSpec::Dropout(0.25f),
      LayerSpec::Flatten(),
      LayerSpec::Dense(12, Activation::kTanh),
      LayerSpec::Dropout(0.2f)};
  if (loss == Loss::kBinaryCrossEntropy) {
    spec.layers.push_back(LayerSpec::Dense(1, Activation::kSigmoid));
  } else {
    spec.layers.push_back(LayerSpec::Dense(4, Activation::kSoftmax));
  }
  spec.loss = loss;
  return spec;
}

// Conv model with a 2x2 valid pooling, a 5x5 kernel and a sigmoid conv.
ModelSpec ConvSpec2() {
  ModelSpec spec;
  spec.input = {11, 13, 3};
  spec.layers = {LayerSpec::Conv2D(7, 5, 2, Padding::kSame, Activation::kSigmoid),
                 LayerSpec::MaxPool2D(2),
                 LayerSpec::Conv2D(9, 2, 1, Padding::kValid, Activation::kTanh),
                 LayerSpec::Flatten(), LayerSpec::Dense(3, Activation::kSoftmax)};
  spec.loss = Loss::kSparseCategoricalCrossEntropy;
  return spec;
}

LayerSpec Explicit(LayerSpec layer, int top, int bottom, int left, int right) {
  layer.padding = Padding::kExplicit;
  layer.pad_top = top, layer.pad_bottom = bottom, layer.pad_left = left, layer.pad_right = right;
  return layer;
}

// What imported models contain, on dense features: batch normalisation (with a
// leaky relu, and PyTorch's epsilon and momentum) between dense layers.
ModelSpec NormDenseSpec() {
  LayerSpec leaky_norm = LayerSpec::BatchNorm(1e-3f, 0.9f, Activation::kLeakyRelu);
  leaky_norm.alpha = 0.1f;
  ModelSpec spec;
  spec.input = {20};
  spec.layers = {LayerSpec::Dense(16, Activation::kLinear), leaky_norm,
                 LayerSpec::Dense(12, Activation::kSelu, Initializer::kLecunNormal),
                 LayerSpec::BatchNorm(1e-5f, 0.99f), LayerSpec::Dense(5, Activation::kSoftmax)};
  return spec;
}

// And on images: conv with uneven explicit padding, batch normalisation, average
// pooling counting its padding, max pooling with explicit padding, the global
// pool of a ResNet head.
ModelSpec NormConvSpec() {
  LayerSpec avg = Explicit(LayerSpec::AvgPool2D(3, 2), 1, 1, 1, 0);
  avg.count_include_pad = true;
  ModelSpec spec;
  spec.input = {12, 11, 3};
  spec.layers = {
      Explicit(LayerSpec::Conv2D(6, 3, 1, Padding::kValid, Activation::kLinear), 1, 2, 0, 1),
      LayerSpec::BatchNorm(1e-5f, 0.9f, Activation::kRelu),
      avg,
      LayerSpec::Conv2D(8, 3, 1, Padding::kSame, Activation::kLinear),
      LayerSpec::BatchNorm(1e-3f, 0.99f, Activation::kTanh),
      Explicit(LayerSpec::MaxPool2D(2, 1), 0, 1, 1, 0),
      LayerSpec::ActivationLayer(Activation::kElu),
      LayerSpec::GlobalAvgPool2D(),
      LayerSpec::Flatten(),
      LayerSpec::Dense(1, Activation::kSigmoid)};
  spec.loss = Loss::kBinaryCrossEntropy;
  return spec;
}

struct Case {
  const char* name;
  ModelSpec spec;
};

std::vector<Case> AllCases() {
  return {{"dense/scce", DenseSpec(Loss::kSparseCategoricalCrossEntropy)},
          {"dense/bce", DenseSpec(Loss::kBinaryCrossEntropy)},
          {"mixed/scce", MixedDenseSpec(Loss::kSparseCategoricalCrossEntropy)},
          {"mixed/bce", MixedDenseSpec(Loss::kBinaryCrossEntropy)},
          {"conv/scce", ConvSpec(Loss::kSparseCategoricalCrossEntropy)},
          {"conv/bce", ConvSpec(Loss::kBinaryCrossEntropy)},
          {"conv2/scce", ConvSpec2()},
          {"norm-dense/scce", NormDenseSpec()},
          {"norm-conv/bce", NormConvSpec()}};
}

std::unique_ptr<Model> Create(Backend& backend, const ModelSpec& spec, uint64_t seed) {
  auto model = backend.Create(spec, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

std::unique_ptr<Backend> Onednn(int threads = 1) {
  BackendOptions options;
  options.threads = threads;
  return MakeOnednnBackend(options);
}

std::unique_ptr<Backend> Reference() { return MakeReferenceBackend(BackendOptions{}); }

std::vector<float> Params(const Model& m) { return {m.parameters().begin(), m.parameters().end()}; }

// Checks |actual - expected| <= atol + rtol * |expected| everywhere and reports
// the worst element.
void ExpectClose(std::span<const float> actual, std::span<const float> expected, double atol,
                 double rtol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double worst_ratio = 0.0;  // |difference| / allowance; > 1 is a failure
  size_t worst = 0, bad = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_TRUE(std::isfinite(actual[i])) << what << " [" << i << "] = " << actual[i];
    const double diff = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    const double ratio = diff / (atol + rtol * std::fabs(expected[i]));
    if (ratio > 1.0) ++bad;
    if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
  }
  if (std::getenv("SEEDPROOF_PRINT_TOLERANCE") != nullptr) {
    std::printf("%-50s worst |diff| / allowance = %.3g\n", what.c_str(), worst_ratio);
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << actual.size()
                     << " values outside tolerance; worst at [" << worst << "]: onednn "
                     << actual[worst] << " vs reference " << expected[worst];
}

// Gradients: relative tolerance, plus an absolute one scaled by the buffer's
// largest gradient for sums that nearly cancel.
void ExpectGradientsClose(const std::vector<float>& actual, const std::vector<float>& expected,
                          const std::string& what) {
  float max_abs = 0.0f;
  for (float v : expected) max_abs = std::max(max_abs, std::fabs(v));
  ASSERT_GT(max_abs, 0.0f) << what << ": all gradients are zero";
  ExpectClose(actual, expected, kGradAtolOfMax * max_abs, kGradRtol, what);
}

void Train(Model& m, const Batch& b, int steps, int64_t batch) {
  for (int s = 0; s < steps; ++s) {
    const int64_t start = (s * batch) % b.n;
    const int64_t n = std::min(batch, b.n - start);
    const int64_t features = static_cast<int64_t>(b.x.size()) / b.n;
    auto loss = m.TrainStep(b.x.data() + start * features, b.y.data() + start, n);
    ASSERT_TRUE(loss.ok()) << loss.status();
    ASSERT_TRUE(std::isfinite(*loss));
  }
}

TEST(OnednnVsReference, BackendIsNamedOnednn) { EXPECT_EQ(Onednn()->name(), "onednn"); }

TEST(OnednnVsReference, ZeroThreadsIsRejected) {
  auto model = Onednn(0)->Create(DenseSpec(Loss::kSparseCategoricalCrossEntropy), 1);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OnednnVsReference, InitialParametersAreBitIdentical) {
  for (const Case& c : AllCases()) {
    auto a = Create(*Onednn(), c.spec, 42);
    auto b = Create(*Reference(), c.spec, 42);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(Params(*a), Params(*b)) << c.name;
  }
}

void ExpectForwardMatches(const Case& c, int threads) {
  auto a = Create(*Onednn(threads), c.spec, 7);
  auto b = Create(*Reference(), c.spec, 7);
  ASSERT_TRUE(a && b);
  // Several batch sizes, each with its own primitives, in an order that revisits one.
  for (int64_t n : {16, 5, 1, 16, 33}) {
    const Batch batch = RandomBatch(c.spec, n, 100 + n);
    std::vector<float> pa(n * a->output_units()), pb(n * b->output_units());
    ASSERT_TRUE(a->Predict(batch.x.data(), n, pa.data()).ok());
    ASSERT_TRUE(b->Predict(batch.x.data(), n, pb.data()).ok());
    ExpectClose(pa, pb, kProbAtol, kProbRtol,
                std::string(c.name) + " predict n=" + std::to_string(n));
  }
}

TEST(OnednnVsReference, DenseForwardMatchesWithinTolerance) {
  for (const Case& c : AllCases()) {
    if (c.spec.input.size() == 1) ExpectForwardMatches(c, 1);
  }
}

TEST(OnednnVsReference, ConvForwardMatchesWithinTolerance) {
  for (const Case& c : AllCases()) {
    if (c.spec.input.size() == 3) ExpectForwardMatches(c, 1);
  }
}

TEST(OnednnVsReference, ForwardMatchesOnTwoThreads) {
  for (const Case& c : AllCases()) ExpectForwardMatches(c, 2);
}

// Every proper prefix, on more examples than Features' chunk, with training
// steps in between (the backend's buffers for the full model stay valid).
TEST(OnednnVsReference, FeaturesMatchWithinTolerance) {
  for (const Case& c : AllCases()) {
    auto a = Create(*Onednn(2), c.spec, 5);
    auto b = Create(*Reference(), c.spec, 5);
    ASSERT_TRUE(a && b);
    const Batch batch = RandomBatch(c.spec, 300, 12);
    for (int layers = 1; layers < a->num_layers(); ++layers) {
      const int64_t width = ElementCount(a->shapes().outputs[layers - 1]);
      std::vector<float> fa(batch.n * width), fb(batch.n * width);
      ASSERT_TRUE(a->Features(batch.x.data(), batch.n, layers, fa.data()).ok());
      ASSERT_TRUE(b->Features(batch.x.data(), batch.n, layers, fb.data()).ok());
      ExpectClose(fa, fb, kProbAtol, kProbRtol,
                  std::string(c.name) + " layers=" + std::to_string(layers));
      ASSERT_TRUE(a->TrainStep(batch.x.data(), batch.y.data(), 16).ok());
      ASSERT_TRUE(b->TrainStep(batch.x.data(), batch.y.data(), 16).ok());
    }
  }
}

TEST(OnednnVsReference, EvaluateMatchesWithinTolerance) {
  for (const Case& c : AllCases()) {
    auto a = Create(*Onednn(), c.spec, 3);
    auto b = Create(*Reference(), c.spec, 3);
    const Batch batch = RandomBatch(c.spec, 50, 9);
    auto ea = a->Evaluate(batch.x.data(), batch.y.data(), batch.n, 16);
    auto eb = b->Evaluate(batch.x.data(), batch.y.data(), batch.n, 16);
    ASSERT_TRUE(ea.ok() && eb.ok());
    // Mean losses: the probabilities' tolerance carried through the log.
    EXPECT_NEAR(ea->loss, eb->loss, 1e-5 * std::max(1.0, eb->loss)) << c.name;
    EXPECT_EQ(ea->accuracy, eb->accuracy) << c.name;
    EXPECT_EQ(ea->examples, 50);
  }
}

// The gradients of one training step (with dropout on), as handed to the reducer.
void ExpectGradientsMatch(const Case& c, int threads) {
  auto a = Create(*Onednn(threads), c.spec, 11);
  auto b = Create(*Reference(), c.spec, 11);
  ASSERT_TRUE(a && b);
  CapturingReducer ra, rb;
  a->SetGradientReducer(&ra);
  b->SetGradientReducer(&rb);
  const Batch batch = RandomBatch(c.spec, 32, 5);
  auto la = a->TrainStep(batch.x.data(), batch.y.data(), batch.n);
  auto lb = b->TrainStep(batch.x.data(), batch.y.data(), batch.n);
  ASSERT_TRUE(la.ok()) << la.status();
  ASSERT_TRUE(lb.ok()) << lb.status();
  EXPECT_NEAR(*la, *lb, 1e-5 * std::max(1.0f, *lb)) << c.name;
  // Every parameter but a BatchNorm's moving statistics has a gradient.
  int64_t learned = 0;
  for (int l = 0; l < a->num_layers(); ++l) {
    for (int t = 0; t < c.spec.layers[l].trainable_tensors(); ++t) {
      learned += ElementCount(a->shapes().params[l][t]);
    }
  }
  ASSERT_EQ(ra.gradients.size(), static_cast<size_t>(learned));
  ExpectGradientsClose(ra.gradients, rb.gradients, std::string(c.name) + " gradients");
}

TEST(OnednnVsReference, DenseGradientsMatchWithinTolerance) {
  for (const Case& c : AllCases()) {
    if (c.spec.input.size() == 1) ExpectGradientsMatch(c, 1);
  }
}

TEST(OnednnVsReference, ConvGradientsMatchWithinTolerance) {
  for (const Case& c : AllCases()) {
    if (c.spec.input.size() == 3) ExpectGradientsMatch(c, 1);
  }
}

TEST(OnednnVsReference, GradientsMatchOnTwoThreads) {
  for (const Case& c : AllCases()) ExpectGradientsMatch(c, 2);
}

// Model A's first layers at full width, at a batch (448) big enough that on two
// threads the matmuls split (>= 96 rows) and so do the backend's own loops
// (activation derivatives, bias sums: >= 128K elements), which the small models
// above never do.
ModelSpec WideDenseSpec() {
  ModelSpec spec;
  spec.input = {784};
  spec.layers = {LayerSpec::Dense(300, Activation::kSelu, Initializer::kLecunNormal),
                 LayerSpec::Dense(100, Activation::kRelu, Initializer::kHeNormal),
                 LayerSpec::Dense(8, Activation::kSoftmax)};
  return spec;
}

TEST(OnednnVsReference, WideDenseGradientsMatchOnOneAndTwoThreads) {
  for (int threads : {1, 2}) {
    const Case c = {"wide dense", WideDenseSpec()};
    auto a = Create(*Onednn(threads), c.spec, 91);
    auto b = Create(*Reference(), c.spec, 91);
    CapturingReducer ra, rb;
    a->SetGradientReducer(&ra);
    b->SetGradientReducer(&rb);
    const Batch batch = RandomBatch(c.spec, 448, 43);
    Train(*a, batch, 1, 448);
    Train(*b, batch, 1, 448);
    ExpectGradientsClose(ra.gradients, rb.gradients,
                         "wide dense gradients on " + std::to_string(threads) + " threads");
  }
}

// On two threads a training batch is split: each thread runs the whole network on
// its half, one thread per primitive, and the halves' gradients are summed. So
// the gradient the reducer sees is, bit for bit, the sum of what a one-thread
// model computes on each half alone (the same primitives on the same rows).
// Models without dropout, whose masks depend on the rows' place in the batch.
TEST(OnednnVsReference, ASplitBatchsGradientIsTheSumOfItsHalvesOnOneThread) {
  const std::vector<Case> cases = {{"dense/scce", DenseSpec(Loss::kSparseCategoricalCrossEntropy)},
                                   {"dense/bce", DenseSpec(Loss::kBinaryCrossEntropy)},
                                   {"conv2", ConvSpec2()},
                                   {"wide dense", WideDenseSpec()}};
  for (const Case& c : cases) {
    for (int64_t n : {16, 33, 256}) {
      const Batch batch = RandomBatch(c.spec, n, 71);
      auto split = Create(*Onednn(2), c.spec, 13);
      CapturingReducer whole;
      split->SetGradientReducer(&whole);
      auto loss = split->TrainStep(batch.x.data(), batch.y.data(), n);
      ASSERT_TRUE(loss.ok()) << loss.status();
      ASSERT_EQ(whole.calls, 1);

      std::vector<float> sum;
      const int64_t features = ElementCount(c.spec.input);
      for (int64_t first : {int64_t{0}, n / 2}) {
        const int64_t rows = first == 0 ? n / 2 : n - n / 2;
        auto one = Create(*Onednn(1), c.spec, 13);
        CapturingReducer half;
        one->SetGradientReducer(&half);
        ASSERT_TRUE(
            one->TrainStep(batch.x.data() + first * features, batch.y.data() + first, rows).ok());
        if (sum.empty()) {
          sum = half.gradients;
        } else {
          for (size_t i = 0; i < sum.size(); ++i) sum[i] += half.gradients[i];
        }
      }
      EXPECT_EQ(whole.gradients, sum) << c.name << ", batch " << n;
    }
  }
}

// A reducer that overlaps the backward pass: it keeps where each Ready said the
// final part begins and a copy of that part, to check in Reduce that nothing the
// pass called final changed afterwards.
class OverlappingReducer final : public GradientReducer {
 public:
  explicit OverlappingReducer(int64_t bucket) : bucket_(bucket) {}
  int64_t bucket_floats() const override { return bucket_; }
  void Ready(std::span<float> g, int64_t begin) override {
    begins.push_back(begin);
    finals.emplace_back(g.begin() + begin, g.end());
  }
  absl::StatusOr<int64_t> Reduce(std::span<float> g, int64_t local_examples) override {
    gradients.assign(g.begin(), g.end());
    ++calls;
    return local_examples;
  }
  std::vector<int64_t> begins;
  std::vector<std::vector<float>> finals;
  std::vector<float> gradients;
  int calls = 0;

 private:
  const int64_t bucket_;
};

// With a reducer that overlaps, the whole batch's backward pass hands over each
// trainable layer's gradients as soon as they are final, top down, a wide dense
// layer's kernel in blocks of rows; what it hands over never changes again, and
// the gradients are those of a pass that does not overlap. A split batch (two
// threads) sums its halves first and hands over nothing early.
TEST(OnednnVsReference, AnOverlappedBackwardPassHandsOverFinalGradientsTopDown) {
  constexpr int64_t kBucket = 4096;  // floats
  const std::vector<std::pair<Case, int>> cases = {
      {{"wide dense", WideDenseSpec()}, -1},
      {{"wide dense, layer 0 frozen", WideDenseSpec()}, 0},
      {{"conv2", ConvSpec2()}, -1},
      {{"norm-dense/scce", NormDenseSpec()}, -1}};
  for (const auto& [c, frozen] : cases) {
    const Batch batch = RandomBatch(c.spec, 64, 79);
    auto plain = Create(*Onednn(1), c.spec, 19);
    auto overlapped = Create(*Onednn(1), c.spec, 19);
    if (frozen >= 0) {
      ASSERT_TRUE(plain->SetTrainable(frozen, false).ok());
      ASSERT_TRUE(overlapped->SetTrainable(frozen, false).ok());
    }
    CapturingReducer after;
    OverlappingReducer during(kBucket);
    plain->SetGradientReducer(&after);
    overlapped->SetGradientReducer(&during);
    ASSERT_TRUE(plain->TrainStep(batch.x.data(), batch.y.data(), batch.n).ok());
    ASSERT_TRUE(overlapped->TrainStep(batch.x.data(), batch.y.data(), batch.n).ok());
    ASSERT_EQ(during.calls, 1) << c.name;

    int trainable_layers = 0;
    for (int l = 0; l < overlapped->num_layers(); ++l) {
      trainable_layers += c.spec.layers[l].has_weights() && overlapped->trainable(l);
    }
    ASSERT_GE(during.begins.size(), static_cast<size_t>(trainable_layers)) << c.name;
    EXPECT_EQ(during.begins.back(), 0) << c.name << ": the lowest layer's gradients come last";
    for (size_t i = 0; i < during.begins.size(); ++i) {
      if (i > 0) {
        EXPECT_LE(during.begins[i], during.begins[i - 1]) << c.name << ", call " << i;
      }
      const std::vector<float> now(during.gradients.begin() + during.begins[i],
                                   during.gradients.end());
      EXPECT_EQ(during.finals[i], now) << c.name << ": changed after Ready call " << i;
    }
    ExpectGradientsClose(during.gradients, after.gradients, std::string(c.name) + " overlapped");
  }
  // Top down: the output layer's 100x8 kernel at once, the 300x100 one in blocks
  // of 40 rows and the 784x300 one in blocks of 13 rows: 1 + 8 + 61 calls.
  const Batch batch = RandomBatch(WideDenseSpec(), 64, 79);
  auto wide = Create(*Onednn(1), WideDenseSpec(), 19);
  OverlappingReducer during(kBucket);
  wide->SetGradientReducer(&during);
  ASSERT_TRUE(wide->TrainStep(batch.x.data(), batch.y.data(), batch.n).ok());
  EXPECT_EQ(during.begins.size(), 70u);

  auto split = Create(*Onednn(2), WideDenseSpec(), 19);
  OverlappingReducer unused(kBucket);
  split->SetGradientReducer(&unused);
  ASSERT_TRUE(split->TrainStep(batch.x.data(), batch.y.data(), batch.n).ok());
  EXPECT_TRUE(unused.begins.empty());
  EXPECT_EQ(unused.calls, 1);
}

// Below 8 rows a thread, and with a trainable BatchNorm (whose batch statistics
// a half would change), the batch runs whole: at these sizes every primitive
// gets one thread, so two threads give one thread's bits.
TEST(OnednnVsReference, SmallBatchesAndTrainableBatchNormAreNotSplit) {
  const std::vector<std::pair<Case, int64_t>> runs = {
      {{"dense/scce", DenseSpec(Loss::kSparseCategoricalCrossEntropy)}, 15},
      {{"norm-dense/scce", NormDenseSpec()}, 32},
      {{"norm-conv/bce", NormConvSpec()}, 32}};
  for (const auto& [c, n] : runs) {
    const Batch batch = RandomBatch(c.spec, n, 73);
    std::vector<float> gradients[2];
    for (int threads : {1, 2}) {
      auto m = Create(*Onednn(threads), c.spec, 17);
      CapturingReducer reducer;
      m->SetGradientReducer(&reducer);
      ASSERT_TRUE(m->TrainStep(batch.x.data(), batch.y.data(), n).ok());
      gradients[threads - 1] = reducer.gradients;
    }
    EXPECT_EQ(gradients[0], gradients[1]) << c.name << ", batch " << n;
  }
}

TEST(OnednnVsReference, WideDenseTrainingIsBitIdenticalRunToRun) {
  for (int threads : {1, 2}) {
    std::vector<float> runs[2];
    for (auto& run : runs) {
      auto m = Create(*Onednn(threads), WideDenseSpec(), 93);
      Train(*m, RandomBatch(WideDenseSpec(), 1000, 47), 4, 448);
      run = Params(*m);
    }
    EXPECT_EQ(runs[0], runs[1]) << threads << " threads";
  }
}

// Batch sizes vary inside the run (the last partial batch), so several sets of
// primitives train the same weights.
void ExpectTrainingMatches(const Case& c, const OptimizerSpec& optimizer, double atol,
                           const char* label) {
  auto a = Create(*Onednn(), c.spec, 21);
  auto b = Create(*Reference(), c.spec, 21);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->SetOptimizer(optimizer).ok());
  ASSERT_TRUE(b->SetOptimizer(optimizer).ok());
  const Batch batch = RandomBatch(c.spec, 70, 13);
  Train(*a, batch, 10, 32);
  Train(*b, batch, 10, 32);
  const std::vector<float> start = Params(*Create(*Reference(), c.spec, 21));
  EXPECT_NE(Params(*a), start) << c.name << ": training changed nothing";
  std::vector<float> pa = Params(*a), pb = Params(*b);
  if (optimizer.kind == OptimizerKind::kAdam) {
    // A bias right before a BatchNorm has a gradient of exactly zero in exact
    // arithmetic (the normalisation takes the mean out), so each backend's is its
    // own rounding noise; Adam divides by that noise's root mean square and steps
    // by ~lr in its direction, and the BatchNorm's moving mean follows the bias.
    // Both are left out here (SGD compares them).
    std::vector<float> ka, kb;
    int64_t offset = 0;
    for (int l = 0; l < a->num_layers(); ++l) {
      const bool normalised =
          l + 1 < a->num_layers() && c.spec.layers[l + 1].kind == LayerKind::kBatchNorm;
      const bool follows_bias = c.spec.layers[l].kind == LayerKind::kBatchNorm && l > 0 &&
                                c.spec.layers[l - 1].has_weights();
      for (size_t t = 0; t < a->shapes().params[l].size(); ++t) {
        const int64_t count = ElementCount(a->shapes().params[l][t]);
        if (!(normalised && t == 1) && !(follows_bias && t == 2)) {
          ka.insert(ka.end(), pa.begin() + offset, pa.begin() + offset + count);
          kb.insert(kb.end(), pb.begin() + offset, pb.begin() + offset + count);
        }
        offset += count;
      }
    }
    pa = std::move(ka);
    pb = std::move(kb);
  }
  const bool normalised =
      std::any_of(c.spec.layers.begin(), c.spec.layers.end(),
                  [](const auto& l) { return l.kind == LayerKind::kBatchNorm; });
  if (optimizer.kind == OptimizerKind::kAdam && normalised) atol = kAdamNormWeightAtol;
  ExpectClose(pa, pb, atol, kWeightRtol,
              std::string(c.name) + " weights after 10 " + label + " steps");
}

OptimizerSpec Sgd() {
  OptimizerSpec o;
  o.kind = OptimizerKind::kSgd;
  o.learning_rate = 0.05f;
  o.momentum = 0.9f;
  return o;
}

OptimizerSpec Adam() {
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdam;
  o.learning_rate = 1e-3f;
  return o;
}

TEST(OnednnVsReference, DenseWeightsAfterTenSgdStepsMatchWithinTolerance) {
  for (const Case& c : AllCases()) {
    if (c.spec.input.size() == 1) ExpectTrainingMatches(c, Sgd(), kSgdWeightAtol, "SGD");
  }
}

TEST(OnednnVsReference, DenseWeightsAfterTenAdamStepsMatchWithinTolerance) {
  for (const Case& c : AllCases()) {
    if (c.spec.input.size() == 1) ExpectTrainingMatches(c, Adam(), kAdamWeightAtol, "Adam");
  }
}

TEST(OnednnVsReference, ConvWeightsAfterTenSgdStepsMatchWithinTolerance) {
  for (const Case& c : AllCases()) {
    if (c.spec.input.size() == 3) ExpectTrainingMatches(c, Sgd(), kSgdWeightAtol, "SGD");
  }
}

TEST(OnednnVsReference, ConvWeightsAfterTenAdamStepsMatchWithinTolerance) {
  for (const Case& c : AllCases()) {
    if (c.spec.input.size() == 3) ExpectTrainingMatches(c, Adam(), kAdamWeightAtol, "Adam");
  }
}

// Freezes layers [0, k): their weights must not move by a bit, the gradients the
// reducer sees (only the trainable tensors) must match the reference's, and the
// trained top must match too.
void ExpectFrozenPrefixStaysBitUnchanged(const Case& c, int k) {
  auto a = Create(*Onednn(), c.spec, 31);
  auto b = Create(*Reference(), c.spec, 31);
  ASSERT_TRUE(a && b);
  for (int l = 0; l < k; ++l) {
    ASSERT_TRUE(a->SetTrainable(l, false).ok());
    ASSERT_TRUE(b->SetTrainable(l, false).ok());
  }
  std::vector<std::vector<Tensor>> before;
  for (int l = 0; l < a->num_layers(); ++l) before.push_back(*a->GetWeights(l));
  CapturingReducer ra, rb;
  a->SetGradientReducer(&ra);
  b->SetGradientReducer(&rb);
  const Batch batch = RandomBatch(c.spec, 64, 17);
  Train(*a, batch, 1, 32);
  Train(*b, batch, 1, 32);
  const std::string what = std::string(c.name) + " frozen below " + std::to_string(k);
  ExpectGradientsClose(ra.gradients, rb.gradients, what + " gradients");
  a->SetGradientReducer(nullptr);
  b->SetGradientReducer(nullptr);
  Train(*a, batch, 5, 32);
  Train(*b, batch, 5, 32);
  for (int l = 0; l < a->num_layers(); ++l) {
    const std::vector<Tensor> after = *a->GetWeights(l);
    for (size_t t = 0; t < after.size(); ++t) {
      if (l < k) {
        EXPECT_EQ(after[t].values, before[l][t].values) << what << ": layer " << l << " moved";
      } else {
        EXPECT_NE(after[t].values, before[l][t].values)
            << what << ": layer " << l << " did not train";
      }
    }
  }
  ExpectClose(Params(*a), Params(*b), kSgdWeightAtol, kWeightRtol, what + " weights");
}

TEST(OnednnVsReference, FrozenDenseLayersStayBitUnchangedAndTheTopTrains) {
  const Case c = {"dense/scce", DenseSpec(Loss::kSparseCategoricalCrossEntropy)};
  for (int k = 1; k < static_cast<int>(c.spec.layers.size()); ++k)
    ExpectFrozenPrefixStaysBitUnchanged(c, k);
}

TEST(OnednnVsReference, FrozenConvLayersStayBitUnchangedAndTheTopTrains) {
  const Case c = {"conv/scce", ConvSpec(Loss::kSparseCategoricalCrossEntropy)};
  // Below the first conv, below the second (past a pooling), below the dense.
  for (int k : {1, 3, 6}) ExpectFrozenPrefixStaysBitUnchanged(c, k);
}

// Frozen BatchNorm layers normalise with their moving statistics and keep them
// (Keras's rule), in both backends alike.
TEST(OnednnVsReference, FrozenBatchNormLayersStayBitUnchangedAndTheTopTrains) {
  const Case dense = {"norm-dense/scce", NormDenseSpec()};
  for (int k : {2, 4}) ExpectFrozenPrefixStaysBitUnchanged(dense, k);
  const Case conv = {"norm-conv/bce", NormConvSpec()};
  for (int k : {2, 5}) ExpectFrozenPrefixStaysBitUnchanged(conv, k);
}

// A frozen layer above trainable ones still passes gradients down.
TEST(OnednnVsReference, FrozenMiddleLayerPassesGradientsDownAndStaysBitUnchanged) {
  for (const Case& c : {Case{"dense/scce", DenseSpec(Loss::kSparseCategoricalCrossEntropy)},
                        Case{"conv/bce", ConvSpec(Loss::kBinaryCrossEntropy)}}) {
    const int frozen = 2;
    auto a = Create(*Onednn(), c.spec, 41);
    auto b = Create(*Reference(), c.spec, 41);
    ASSERT_TRUE(a->SetTrainable(frozen, false).ok());
    ASSERT_TRUE(b->SetTrainable(frozen, false).ok());
    const std::vector<Tensor> before = *a->GetWeights(frozen);
    CapturingReducer ra, rb;
    a->SetGradientReducer(&ra);
    b->SetGradientReducer(&rb);
    const Batch batch = RandomBatch(c.spec, 32, 19);
    Train(*a, batch, 1, 32);
    Train(*b, batch, 1, 32);
    ExpectGradientsClose(ra.gradients, rb.gradients, std::string(c.name) + " gradients");
    Train(*a, batch, 4, 32);
    EXPECT_EQ((*a->GetWeights(frozen))[0].values, before[0].values) << c.name;
    EXPECT_EQ((*a->GetWeights(frozen))[1].values, before[1].values) << c.name;
  }
}

TEST(OnednnVsReference, TrainingWithNothingTrainableFails) {
  const ModelSpec spec = DenseSpec(Loss::kSparseCategoricalCrossEntropy);
  auto a = Create(*Onednn(), spec, 1);
  for (int l = 0; l < a->num_layers(); ++l) ASSERT_TRUE(a->SetTrainable(l, false).ok());
  const Batch batch = RandomBatch(spec, 8, 1);
  EXPECT_FALSE(a->TrainStep(batch.x.data(), batch.y.data(), batch.n).ok());
}

TEST(OnednnVsReference, SameSeedTrainingIsBitIdenticalOnOneAndTwoThreads) {
  for (int threads : {1, 2}) {
    for (const Case& c : AllCases()) {
      std::vector<float> runs[2];
      for (auto& run : runs) {
        auto m = Create(*Onednn(threads), c.spec, 51);
        ASSERT_TRUE(m->SetOptimizer(Adam()).ok());
        Train(*m, RandomBatch(c.spec, 300, 23), 10, 64);
        run = Params(*m);
      }
      EXPECT_EQ(runs[0], runs[1]) << c.name << " on " << threads << " threads";
    }
  }
}

TEST(OnednnVsReference, TrainingACloneLeavesTheOriginalBitUnchanged) {
  for (const Case& c : AllCases()) {
    auto original = Create(*Onednn(), c.spec, 61);
    const Batch batch = RandomBatch(c.spec, 64, 29);
    Train(*original, batch, 3, 32);  // the original has its own primitives warm
    const std::vector<float> before = Params(*original);
    auto clone = original->Clone();
    ASSERT_TRUE(clone.ok()) << clone.status();
    EXPECT_EQ(Params(**clone), before) << c.name;
    Train(**clone, batch, 5, 32);
    EXPECT_NE(Params(**clone), before) << c.name;
    EXPECT_EQ(Params(*original), before) << c.name;
    // And the original still trains exactly as the clone did from the same state.
    Train(*original, batch, 5, 32);
    EXPECT_EQ(Params(*original), Params(**clone)) << c.name;
  }
}

// The weights live only in the flat buffer: SetWeights between calls is seen by
// the next forward pass of primitives that already ran.
TEST(OnednnVsReference, SetWeightsIsSeenByTheNextForwardPass) {
  for (const Case& c : AllCases()) {
    auto a = Create(*Onednn(), c.spec, 71);
    auto b = Create(*Reference(), c.spec, 72);
    const Batch batch = RandomBatch(c.spec, 16, 31);
    std::vector<float> pa(batch.n * a->output_units()), pb(pa.size());
    ASSERT_TRUE(a->Predict(batch.x.data(), batch.n, pa.data()).ok());
    for (int l = 0; l < a->num_layers(); ++l) ASSERT_TRUE(a->SetWeights(l, *b->GetWeights(l)).ok());
    ASSERT_TRUE(a->Predict(batch.x.data(), batch.n, pa.data()).ok());
    ASSERT_TRUE(b->Predict(batch.x.data(), batch.n, pb.data()).ok());
    ExpectClose(pa, pb, kProbAtol, kProbRtol, std::string(c.name) + " after SetWeights");
  }
}

TEST(OnednnVsReference, ModelSavedByOnednnLoadsBitIdenticalOnBoth) {
  const ModelSpec spec = ConvSpec(Loss::kSparseCategoricalCrossEntropy);
  auto a = Create(*Onednn(), spec, 81);
  Train(*a, RandomBatch(spec, 64, 37), 3, 32);
  const std::string path =
      (std::filesystem::temp_directory_path() / "onednn_vs_reference_test.model").string();
  ASSERT_TRUE(a->Save(path).ok());
  auto from_onednn = Onednn()->Load(path);
  auto from_reference = Reference()->Load(path);
  std::remove(path.c_str());
  ASSERT_TRUE(from_onednn.ok()) << from_onednn.status();
  ASSERT_TRUE(from_reference.ok()) << from_reference.status();
  EXPECT_EQ(Params(**from_onednn), Params(*a));
  EXPECT_EQ(Params(**from_reference), Params(*a));
  // Same weights and the same dropout stream: training goes on as the original.
  const Batch batch = RandomBatch(spec, 32, 39);
  Train(*a, batch, 2, 32);
  Train(**from_onednn, batch, 2, 32);
  EXPECT_EQ(Params(**from_onednn), Params(*a));
}

}  // namespace
}  // namespace seedproof
