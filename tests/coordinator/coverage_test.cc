// What a report says its verdicts cover (CoverageOf): the streams the seeds
// varied, and in words what the verdicts are conditional on — a fixed stream, the
// first examples of a target, one source model, source models shared by seeds.
#include <filesystem>
#include <string>

#include "absl/strings/str_replace.h"
#include "coordinator/analysis.h"
#include "experiments/sweep_parse.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kSpec[] = R"(name: coverage
source: {classes: [0, 1, 2, 3, 4, 7, 8, 9]}
target: {positive: [6], negative: [5], train_size: 200, subset: SUBSET}
model: {layers: [{dense: 30}]}
pretrain: {lr: 0.01, epochs: 2}
transfer:
  reuse: [1]
  schedules:
    geron: [{epochs: 1, train: head}]
seeds: SEEDS
)";

Coverage Of(const std::string& seeds, const std::string& subset = "random") {
  const std::string text = absl::StrReplaceAll(kSpec, {{"SEEDS", seeds}, {"SUBSET", subset}});
  auto spec = ParseSweepSpecText(text, "coverage.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? CoverageOf(*spec) : Coverage{};
}

// The shipped Géron study varies the source model with the seed; what it still
// fixes is Géron's choice of the first 200 training images, and the report says so.
TEST(Coverage, GeronsShippedSpecVariesTheSourceModelAndIsConditionalOnTheFirst200Images) {
  const fs::path repo = fs::path(__FILE__).parent_path().parent_path().parent_path();
  auto spec = ParseSweepSpec((repo / "experiments/specs/geron.yaml").string());
  ASSERT_TRUE(spec.ok()) << spec.status();
  const Coverage c = CoverageOf(*spec);
  EXPECT_THAT(c.varied, ElementsAre("weight initialisation", "data order",
                                    "source model (a fresh one per seed)"));
  ASSERT_EQ(c.conditional.size(), 1u);
  EXPECT_EQ(c.conditional[0],
            "the first training examples (subset: first; 200 of target 6-vs-5): says nothing "
            "about other samples of the same size");
  EXPECT_EQ(c.source_models, 20);
}

TEST(Coverage, OneSourceModelIsNamedAsWhatTheVerdictsAreConditionalOn) {
  const Coverage c = Of("{count: 6, source: 1}");
  ASSERT_EQ(c.conditional.size(), 1u);
  EXPECT_EQ(c.conditional[0],
            "one source model (source seed 0), reused by every seed: says nothing about other "
            "source models");
  EXPECT_EQ(c.source_models, 1);
}

TEST(Coverage, AFreshSourceModelPerSeedAndRandomSubsetsLeaveNothingConditional) {
  const Coverage c = Of("{count: 6, source: 6}");
  EXPECT_THAT(c.varied, ElementsAre("weight initialisation", "data order", "training subset",
                                    "source model (a fresh one per seed)"));
  EXPECT_THAT(c.conditional, IsEmpty());
  EXPECT_EQ(c.source_models, 6);
}

TEST(Coverage, SharedSourceModelsAreNamedAsNotIndependent) {
  const Coverage c = Of("{count: 6, source: 3}");
  EXPECT_THAT(c.varied.back(), HasSubstr("source model (3 of them; seed i reuses model i mod 3)"));
  ASSERT_EQ(c.conditional.size(), 1u);
  EXPECT_THAT(c.conditional[0], HasSubstr("seeds that share one are not independent"));
}

TEST(Coverage, EachFixedStreamIsConditional) {
  const Coverage c = Of("{count: 6, source: 6, fixed: {init: 5, order: 7, subset: 9}}");
  EXPECT_THAT(c.varied, ElementsAre("source model (a fresh one per seed)"));
  EXPECT_THAT(c.conditional,
              ElementsAre("weight initialisation held fixed (stream 5): says nothing about "
                          "other initialisations",
                          "data order held fixed (stream 7): says nothing about other orders of "
                          "the training data",
                          "training subset held fixed (stream 9): says nothing about other "
                          "samples of the same size"));
}

}  // namespace
}  // namespace seedproof
