// The in-process gradient reducer, with real threads: sums in member order,
// every member's buffer holds the sum, the outer reducer composes, failures
// reach every member, and nothing hangs.
#include "backends/thread_group.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace seedproof {
namespace {

using ::testing::HasSubstr;

// Runs body(m) on `members` threads at once and waits for them.
void RunMembers(int members, const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  for (int m = 0; m < members; ++m) threads.emplace_back(body, m);
  for (std::thread& t : threads) t.join();
}

// Member m's buffer: values whose float sum depends on the order they are added in.
std::vector<float> Buffer(int member, size_t size) {
  std::vector<float> b(size);
  for (size_t i = 0; i < size; ++i) {
    const float big = (i % 3 == 0) ? 1e8f : 1.0f;
    b[i] = (member % 2 == 0 ? big : -big) + 0.25f * static_cast<float>(member + i % 7);
  }
  return b;
}

TEST(ThreadGroup, EveryMemberEndsWithTheSumTakenInMemberOrder) {
  for (int members : {2, 3, 4}) {
    constexpr size_t kSize = 1003;  // not a multiple of a cache line's floats
    std::vector<std::vector<float>> buffers;
    std::vector<float> expected(kSize, 0.0f);
    for (int m = 0; m < members; ++m) buffers.push_back(Buffer(m, kSize));
    for (size_t i = 0; i < kSize; ++i) {
      float sum = buffers[0][i];
      for (int m = 1; m < members; ++m) sum += buffers[m][i];
      expected[i] = sum;
    }
    ThreadGroup group(members);
    std::vector<absl::StatusOr<int64_t>> totals(members, int64_t{0});
    RunMembers(members, [&](int m) { totals[m] = group.reducer(m).Reduce(buffers[m], 10 + m); });
    const int64_t examples = 10 * members + members * (members - 1) / 2;
    for (int m = 0; m < members; ++m) {
      ASSERT_TRUE(totals[m].ok()) << totals[m].status();
      EXPECT_EQ(*totals[m], examples);
      EXPECT_EQ(buffers[m], expected) << members << " members, member " << m;
    }
  }
}

TEST(ThreadGroup, SharesTileTheBufferOnCacheLineBoundaries) {
  for (int members : {1, 2, 3, 5}) {
    for (int64_t size : {0, 1, 15, 16, 17, 1000, 266610}) {
      ThreadGroup group(members);
      int64_t next = 0;
      for (int m = 0; m < members; ++m) {
        const auto [begin, end] = group.Share(m, size);
        EXPECT_EQ(begin, next) << members << " members, size " << size;
        EXPECT_LE(begin, end);
        if (begin < size) {
          EXPECT_EQ(begin % 16, 0);
        }
        next = end;
      }
      EXPECT_EQ(next, size) << members << " members, size " << size;
    }
  }
}

// Doubles every value and counts 100 more examples: another process's share.
class DoublingReducer : public GradientReducer {
 public:
  absl::StatusOr<int64_t> Reduce(std::span<float> g, int64_t local_examples) override {
    ++calls;
    if (fail) return absl::UnavailableError("the other rank is gone");
    for (float& v : g) v *= 2.0f;
    return local_examples + 100;
  }
  bool fail = false;
  int calls = 0;
};

TEST(ThreadGroup, TheOuterReducerRunsOnceOnTheMembersSumAndEveryMemberSeesItsResult) {
  constexpr int kMembers = 3;
  std::vector<std::vector<float>> buffers;
  for (int m = 0; m < kMembers; ++m) buffers.push_back(std::vector<float>(40, 1.0f + m));
  DoublingReducer outer;
  ThreadGroup group(kMembers);
  group.set_outer(&outer);
  std::vector<absl::StatusOr<int64_t>> totals(kMembers, int64_t{0});
  RunMembers(kMembers, [&](int m) { totals[m] = group.reducer(m).Reduce(buffers[m], 4); });
  EXPECT_EQ(outer.calls, 1);
  for (int m = 0; m < kMembers; ++m) {
    ASSERT_TRUE(totals[m].ok()) << totals[m].status();
    EXPECT_EQ(*totals[m], 112);
    EXPECT_EQ(buffers[m], std::vector<float>(40, 12.0f)) << "member " << m;
  }
}

TEST(ThreadGroup, AnOuterFailureReachesEveryMember) {
  constexpr int kMembers = 2;
  std::vector<std::vector<float>> buffers(kMembers, std::vector<float>(8, 1.0f));
  DoublingReducer outer;
  outer.fail = true;
  ThreadGroup group(kMembers);
  group.set_outer(&outer);
  std::vector<absl::StatusOr<int64_t>> totals(kMembers, int64_t{0});
  RunMembers(kMembers, [&](int m) { totals[m] = group.reducer(m).Reduce(buffers[m], 4); });
  for (int m = 0; m < kMembers; ++m) {
    EXPECT_EQ(totals[m].status().code(), absl::StatusCode::kUnavailable) << "member " << m;
  }
}

TEST(ThreadGroup, BuffersOfDifferentLengthsFailOnEveryMemberWithoutHanging) {
  std::vector<float> a(10, 1.0f), b(12, 1.0f);
  ThreadGroup group(2);
  std::vector<absl::StatusOr<int64_t>> totals(2, int64_t{0});
  RunMembers(2, [&](int m) { totals[m] = group.reducer(m).Reduce(m == 0 ? a : b, 1); });
  for (int m = 0; m < 2; ++m) {
    EXPECT_EQ(totals[m].status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(totals[m].status().message(), HasSubstr("gradient buffer"));
  }
  EXPECT_EQ(a, std::vector<float>(10, 1.0f));  // nothing summed
  // The group is usable again afterwards.
  std::vector<float> c(12, 2.0f);
  RunMembers(2, [&](int m) { totals[m] = group.reducer(m).Reduce(m == 0 ? c : b, 1); });
  ASSERT_TRUE(totals[0].ok() && totals[1].ok());
  EXPECT_EQ(c, std::vector<float>(12, 3.0f));
}

TEST(ThreadGroup, VotesAgreeRoundAfterRoundAndOneFailureFailsAll) {
  constexpr int kMembers = 3;
  constexpr int kRounds = 2000;
  ThreadGroup group(kMembers);
  // Member r % kMembers fails round r when r % 5 == 0; every member must see
  // the same outcome every round, with votes of consecutive rounds in flight.
  std::vector<std::vector<char>> seen(kMembers, std::vector<char>(kRounds));
  RunMembers(kMembers, [&](int m) {
    for (int r = 0; r < kRounds; ++r) {
      const bool ok = !(r % 5 == 0 && r % kMembers == m);
      seen[m][r] = group.AllSucceeded(m, ok) ? 1 : 0;
    }
  });
  for (int r = 0; r < kRounds; ++r) {
    for (int m = 0; m < kMembers; ++m) {
      ASSERT_EQ(seen[m][r], r % 5 == 0 ? 0 : 1) << "round " << r << ", member " << m;
    }
  }
}

TEST(ThreadGroup, ManyReducesInARowStayExact) {
  constexpr int kMembers = 2;
  ThreadGroup group(kMembers);
  std::vector<int> wrong(kMembers, 0);
  RunMembers(kMembers, [&](int m) {
    std::vector<float> g(257);
    for (int r = 0; r < 3000; ++r) {
      for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(r + m + i);
      auto total = group.reducer(m).Reduce(g, 1);
      if (!total.ok() || *total != 2) ++wrong[m];
      for (size_t i = 0; i < g.size(); ++i) {
        if (g[i] != static_cast<float>(2 * (r + i) + 1)) {
          ++wrong[m];
          break;
        }
      }
    }
  });
  EXPECT_EQ(wrong, std::vector<int>(kMembers, 0));
}

}  // namespace
}  // namespace seedproof
