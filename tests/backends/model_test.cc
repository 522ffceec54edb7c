// What every Model promises, independent of how the math is done: checked on the
// reference backend (onednn_vs_reference_test checks the oneDNN backend agrees).
#include <cmath>
#include <cstring>

#include "backends/backend.h"
#include "backends/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backends/backend_testing.h"

namespace seedproof {
namespace {

using testing_support::CapturingReducer;

using ::testing::HasSubstr;

ModelSpec DenseSpec() {
  ModelSpec spec;
  spec.input = {6};
  spec.layers = {LayerSpec::Dense(5, Activation::kSelu), LayerSpec::Dense(4, Activation::kElu),
                 LayerSpec::Dense(3, Activation::kSoftmax)};
  spec.loss = Loss::kSparseCategoricalCrossEntropy;
  return spec;
}

struct Batch {
  std::vector<float> x;
  std::vector<int32_t> y;
};

Batch RandomBatch(int n, int features, int classes, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  for (int i = 0; i < n * features; ++i) b.x.push_back(rng.Uniform(-1.0f, 1.0f));
  for (int i = 0; i < n; ++i) b.y.push_back(static_cast<int32_t>(rng.Below(classes)));
  return b;
}

std::unique_ptr<Model> MakeModel(const ModelSpec& spec, uint64_t seed) {
  auto backend = MakeBackend("reference");
  EXPECT_TRUE(backend.ok());
  auto model = (*backend)->Create(spec, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(*model);
}

std::vector<float> Params(const Model& m) { return {m.parameters().begin(), m.parameters().end()}; }

void Train(Model& m, const Batch& b, int steps, int n) {
  for (int s = 0; s < steps; ++s) ASSERT_TRUE(m.TrainStep(b.x.data(), b.y.data(), n).ok());
}

TEST(Model, GlorotKernelsAreWithinTheirLimitAndBiasesStartAtZero) {
  auto m = MakeModel(DenseSpec(), 1);
  auto w = m->GetWeights(0);
  ASSERT_TRUE(w.ok());
  const float limit = std::sqrt(6.0f / (6 + 5));
  float max_abs = 0;
  for (float v : (*w)[0].values) max_abs = std::max(max_abs, std::fabs(v));
  EXPECT_LE(max_abs, limit);
  EXPECT_GT(max_abs, limit / 2);
  for (float v : (*w)[1].values) EXPECT_EQ(v, 0.0f);
}

TEST(Model, SameSeedSameWeightsOtherSeedOtherWeights) {
  EXPECT_EQ(Params(*MakeModel(DenseSpec(), 5)), Params(*MakeModel(DenseSpec(), 5)));
  EXPECT_NE(Params(*MakeModel(DenseSpec(), 5)), Params(*MakeModel(DenseSpec(), 6)));
}

TEST(Model, TwoTrainingsWithTheSameSeedAreBitIdentical) {
  ModelSpec spec = DenseSpec();
  spec.layers.insert(spec.layers.begin() + 1, LayerSpec::Dropout(0.3f));
  const Batch b = RandomBatch(8, 6, 3, 11);
  auto a = MakeModel(spec, 9);
  auto c = MakeModel(spec, 9);
  Train(*a, b, 20, 8);
  Train(*c, b, 20, 8);
  const auto pa = Params(*a), pc = Params(*c);
  ASSERT_EQ(pa.size(), pc.size());
  EXPECT_EQ(0, std::memcmp(pa.data(), pc.data(), pa.size() * sizeof(float)));
}

TEST(Model, FrozenLayersAreBitUnchangedAndGetNoGradient) {
  auto m = MakeModel(DenseSpec(), 2);
  CapturingReducer reducer;
  m->SetGradientReducer(&reducer);
  ASSERT_TRUE(m->SetTrainable(0, false).ok());
  const auto before = *m->GetWeights(0);
  const auto top_before = *m->GetWeights(2);
  Train(*m, RandomBatch(8, 6, 3, 4), 5, 8);
  const auto after = *m->GetWeights(0);
  EXPECT_EQ(0, std::memcmp(before[0].values.data(), after[0].values.data(),
                           before[0].values.size() * sizeof(float)));
  EXPECT_EQ(before[1].values, after[1].values);
  EXPECT_NE(top_before[0].values, (*m->GetWeights(2))[0].values);
  // Only layers 1 and 2 are in the reducer's buffer: 5*4+4 + 4*3+3.
  EXPECT_EQ(reducer.gradients.size(), 5u * 4 + 4 + 4 * 3 + 3);
  EXPECT_EQ(reducer.calls, 5);
}

TEST(Model, TrainingWithEveryLayerFrozenIsAnError) {
  auto m = MakeModel(DenseSpec(), 2);
  for (int l = 0; l < m->num_layers(); ++l) ASSERT_TRUE(m->SetTrainable(l, false).ok());
  const Batch b = RandomBatch(2, 6, 3, 1);
  auto loss = m->TrainStep(b.x.data(), b.y.data(), 2);
  EXPECT_EQ(loss.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(loss.status().message(), HasSubstr("no layer is trainable"));
}

TEST(Model, TrainingACloneLeavesTheOriginalBitUnchanged) {
  auto original = MakeModel(DenseSpec(), 3);
  const auto before = Params(*original);
  auto copy = original->Clone();
  ASSERT_TRUE(copy.ok());
  Train(**copy, RandomBatch(8, 6, 3, 5), 10, 8);
  EXPECT_EQ(Params(*original), before);
  EXPECT_NE(Params(**copy), before);
}

TEST(Model, CloneCarriesOptimizerStateSoBothContinueAlike) {
  auto a = MakeModel(DenseSpec(), 3);
  ASSERT_TRUE(a->SetOptimizer({.kind = OptimizerKind::kAdam, .learning_rate = 0.01f}).ok());
  const Batch b = RandomBatch(8, 6, 3, 5);
  Train(*a, b, 3, 8);
  auto c = a->Clone();
  ASSERT_TRUE(c.ok());
  Train(*a, b, 3, 8);
  Train(**c, b, 3, 8);
  EXPECT_EQ(Params(*a), Params(**c));
}

TEST(Model, DeriveKeepsTheFirstLayersAndInitialisesTheNewOnes) {
  auto source = MakeModel(DenseSpec(), 4);
  ASSERT_TRUE(source->SetTrainable(0, false).ok());
  auto derived =
      source->Derive(2, {LayerSpec::Dense(1, Activation::kSigmoid)}, Loss::kBinaryCrossEntropy, 99);
  ASSERT_TRUE(derived.ok()) << derived.status();
  ASSERT_EQ((*derived)->num_layers(), 3);
  for (int l = 0; l < 2; ++l) {
    EXPECT_EQ((*derived)->GetWeights(l)->at(0).values, source->GetWeights(l)->at(0).values);
    EXPECT_EQ((*derived)->trainable(l), source->trainable(l));
  }
  EXPECT_TRUE((*derived)->trainable(2));
  EXPECT_EQ((*derived)->output_units(), 1);
  // Training the derived model leaves the source alone.
  const auto before = Params(*source);
  Batch b = RandomBatch(6, 6, 2, 8);
  Train(**derived, b, 5, 6);
  EXPECT_EQ(Params(*source), before);
}

TEST(Model, DeriveRejectsImpossibleRequests) {
  auto source = MakeModel(DenseSpec(), 4);
  EXPECT_THAT(source->Derive(4, {}, Loss::kBinaryCrossEntropy, 1).status().message(),
              HasSubstr("cannot keep 4 layers of a model with 3"));
  EXPECT_THAT(
      source->Derive(2, {LayerSpec::Dense(2, Activation::kSigmoid)}, Loss::kBinaryCrossEntropy, 1)
          .status()
          .message(),
      HasSubstr("binary cross-entropy needs a sigmoid output layer with 1 unit"));
}

// The optimizers' update rules, checked against the gradient the step computed.
class OptimizerMath : public ::testing::Test {
 protected:
  void Step(const OptimizerSpec& o, int steps) {
    model_ = MakeModel(DenseSpec(), 21);
    ASSERT_TRUE(model_->SetOptimizer(o).ok());
    model_->SetGradientReducer(&reducer_);
    const Batch b = RandomBatch(4, 6, 3, 3);
    for (int s = 0; s < steps; ++s) {
      before_ = Params(*model_);
      ASSERT_TRUE(model_->TrainStep(b.x.data(), b.y.data(), 4).ok());
      grads_.push_back(reducer_.gradients);
    }
  }
  std::unique_ptr<Model> model_;
  CapturingReducer reducer_;
  std::vector<float> before_;
  std::vector<std::vector<float>> grads_;
};

TEST_F(OptimizerMath, PlainSgdSubtractsLearningRateTimesMeanGradient) {
  Step({.kind = OptimizerKind::kSgd, .learning_rate = 0.1f}, 1);
  const auto after = Params(*model_);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_FLOAT_EQ(after[i], before_[i] - 0.1f * (grads_[0][i] * 0.25f)) << i;
  }
}

TEST_F(OptimizerMath, NesterovMomentumFollowsKeras) {
  Step({.kind = OptimizerKind::kSgd, .learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true}, 2);
  const auto after = Params(*model_);
  for (size_t i = 0; i < after.size(); ++i) {
    const float g0 = grads_[0][i] * 0.25f, g1 = grads_[1][i] * 0.25f;
    const float v0 = -0.1f * g0;
    const float v1 = 0.9f * v0 - 0.1f * g1;
    EXPECT_NEAR(after[i], before_[i] + 0.9f * v1 - 0.1f * g1, 1e-6f) << i;
  }
}

TEST_F(OptimizerMath, AdamFollowsKerasWithBiasCorrection) {
  Step({.kind = OptimizerKind::kAdam, .learning_rate = 0.01f}, 1);
  const auto after = Params(*model_);
  const double lr_t = 0.01 * std::sqrt(1 - 0.999) / (1 - 0.9);
  for (size_t i = 0; i < after.size(); ++i) {
    const double g = grads_[0][i] * 0.25;
    const double m = 0.1 * g, v = 0.001 * g * g;
    EXPECT_NEAR(after[i], before_[i] - lr_t * m / (std::sqrt(v) + 1e-7), 1e-6) << i;
  }
}

TEST_F(OptimizerMath, WeightDecayShrinksKernelsButNotBiases) {
  Step({.kind = OptimizerKind::kSgd, .learning_rate = 0.1f, .weight_decay = 0.5f}, 1);
  const auto after = Params(*model_);
  // Layer 0: kernel 6*5 values then bias 5; the first bias starts at 0.
  for (int i = 0; i < 30; ++i) {
    const float decayed = before_[i] - 0.05f * before_[i];
    EXPECT_NEAR(after[i], decayed - 0.1f * grads_[0][i] * 0.25f, 1e-6f) << i;
  }
  for (int i = 30; i < 35; ++i) EXPECT_FLOAT_EQ(after[i], -0.1f * grads_[0][i] * 0.25f) << i;
}

TEST(Model, InvalidOptimizerSettingsNameTheField) {
  auto m = MakeModel(DenseSpec(), 1);
  EXPECT_THAT(m->SetOptimizer({.learning_rate = 0.0f}).message(),
              HasSubstr("optimizer learning_rate is 0; expected a finite value > 0"));
  EXPECT_THAT(m->SetOptimizer({.momentum = 1.0f}).message(), HasSubstr("momentum is 1"));
  EXPECT_THAT(m->SetOptimizer({.weight_decay = -1.0f}).message(), HasSubstr("weight_decay"));
}

TEST(Model, BadInputsAreRejected) {
  auto m = MakeModel(DenseSpec(), 1);
  Batch b = RandomBatch(2, 6, 3, 1);
  b.y[1] = 3;
  EXPECT_THAT(m->TrainStep(b.x.data(), b.y.data(), 2).status().message(),
              HasSubstr("label 3 of example 1 is outside [0, 3)"));
  EXPECT_THAT(m->Evaluate(b.x.data(), b.y.data(), 2, 8).status().message(), HasSubstr("label 3"));
  EXPECT_THAT(
      m->SetWeights(0, {{{6, 4}, std::vector<float>(24)}, {{5}, std::vector<float>(5)}}).message(),
      HasSubstr("expected shape (6, 5), got (6, 4)"));
  EXPECT_THAT(m->SetTrainable(7, false).message(), HasSubstr("layer 7 does not exist"));
  EXPECT_THAT(m->GetWeights(-1).status().message(), HasSubstr("layer -1 does not exist"));
}

TEST(Model, PredictGivesProbabilitiesAndEvaluateCountsHits) {
  auto m = MakeModel(DenseSpec(), 1);
  const Batch b = RandomBatch(5, 6, 3, 2);
  std::vector<float> p(5 * 3);
  ASSERT_TRUE(m->Predict(b.x.data(), 5, p.data()).ok());
  int hits = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2], 1.0f, 1e-6f);
    const int arg = static_cast<int>(std::max_element(&p[i * 3], &p[i * 3 + 3]) - &p[i * 3]);
    hits += arg == b.y[i];
  }
  auto eval = m->Evaluate(b.x.data(), b.y.data(), 5, 2);
  ASSERT_TRUE(eval.ok());
  EXPECT_DOUBLE_EQ(eval->accuracy, hits / 5.0);
  EXPECT_EQ(eval->examples, 5);
}

// Features of the first two layers, pushed through the output layer by hand, give
// back Predict's probabilities: they are exactly what the head sees.
TEST(Model, FeaturesAreWhatTheHeadSees) {
  auto m = MakeModel(DenseSpec(), 4);
  const int n = 300;  // more than one of Features' chunks
  const Batch b = RandomBatch(n, 6, 3, 8);
  std::vector<float> f(n * 4), p(n * 3);
  ASSERT_TRUE(m->Features(b.x.data(), n, 2, f.data()).ok());
  ASSERT_TRUE(m->Predict(b.x.data(), n, p.data()).ok());
  const std::vector<Tensor> head = *m->GetWeights(2);
  for (int i = 0; i < n; ++i) {
    float z[3], max = -1e30f, sum = 0.0f;
    for (int k = 0; k < 3; ++k) {
      z[k] = head[1].values[k];
      for (int j = 0; j < 4; ++j) z[k] += f[i * 4 + j] * head[0].values[j * 3 + k];
      max = std::max(max, z[k]);
    }
    for (float& v : z) sum += (v = std::exp(v - max));
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(z[k] / sum, p[i * 3 + k], 1e-5f) << i;
  }
}

TEST(Model, FeaturesNeedAProperPrefix) {
  auto m = MakeModel(DenseSpec(), 4);
  std::vector<float> x(6), f(5);
  EXPECT_THAT(m->Features(x.data(), 1, 0, f.data()).message(),
              HasSubstr("layers must be in [1, 2]"));
  EXPECT_THAT(m->Features(x.data(), 1, 3, f.data()).message(), HasSubstr("got 3"));
}

TEST(ModelSpecValidation, ErrorsNameTheLayer) {
  ModelSpec spec;
  spec.input = {28, 28, 1};
  spec.layers = {LayerSpec::Dense(10, Activation::kRelu),
                 LayerSpec::Dense(2, Activation::kSoftmax)};
  EXPECT_THAT(InferShapes(spec).status().message(),
              HasSubstr("layer 0 (dense): needs a flat input but gets (28, 28, 1); add a flatten"));
  spec.layers = {LayerSpec::Conv2D(4, 30, 1, Padding::kValid, Activation::kRelu),
                 LayerSpec::Flatten(), LayerSpec::Dense(2, Activation::kSoftmax)};
  EXPECT_THAT(InferShapes(spec).status().message(),
              HasSubstr("layer 0 (conv2d): window 30x30 is larger than its 28x28 input"));
  spec.layers = {LayerSpec::Flatten(), LayerSpec::Dense(4, Activation::kSoftmax),
                 LayerSpec::Dense(2, Activation::kSoftmax)};
  EXPECT_THAT(InferShapes(spec).status().message(),
              HasSubstr("layer 1 (dense): softmax is only supported on the output layer"));
  spec.layers = {LayerSpec::Flatten(), LayerSpec::Dropout(1.0f),
                 LayerSpec::Dense(2, Activation::kSoftmax)};
  EXPECT_THAT(InferShapes(spec).status().message(), HasSubstr("rate 1 must be in [0, 1)"));
}

TEST(ModelSpecValidation, SameAndValidPaddingFollowTensorFlow) {
  ModelSpec spec;
  spec.input = {28, 28, 1};
  spec.layers = {LayerSpec::Conv2D(8, 3, 2, Padding::kSame, Activation::kRelu),
                 LayerSpec::Conv2D(8, 3, 2, Padding::kValid, Activation::kRelu),
                 LayerSpec::MaxPool2D(2), LayerSpec::Flatten(),
                 LayerSpec::Dense(2, Activation::kSoftmax)};
  auto shapes = InferShapes(spec);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  EXPECT_EQ(shapes->outputs[0], (Shape{14, 14, 8}));
  EXPECT_EQ(shapes->outputs[1], (Shape{6, 6, 8}));
  EXPECT_EQ(shapes->outputs[2], (Shape{3, 3, 8}));
  EXPECT_EQ(shapes->outputs[3], (Shape{72}));
  EXPECT_EQ(shapes->parameter_count, 3 * 3 * 1 * 8 + 8 + 3 * 3 * 8 * 8 + 8 + 72 * 2 + 2);
}

}  // namespace
}  // namespace seedproof
