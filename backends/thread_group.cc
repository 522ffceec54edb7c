#include "backends/thread_group.h"

#include <algorithm>
#include <numeric>
#include <thread>

#include "absl/strings/str_cat.h"

namespace seedproof {

class ThreadGroup::Member final : public GradientReducer {
 public:
  Member(ThreadGroup& group, int index) : group_(group), index_(index) {}
  absl::StatusOr<int64_t> Reduce(std::span<float> gradients, int64_t local_examples) override {
    return group_.Reduce(index_, gradients, local_examples);
  }

 private:
  ThreadGroup& group_;
  const int index_;
};

ThreadGroup::ThreadGroup(int members)
    : members_(members),
      buffers_(members),
      examples_(members, 0),
      ok_{std::vector<char>(members, 0), std::vector<char>(members, 0)},
      votes_(members, 0),
      outer_result_(int64_t{0}) {
  for (int m = 0; m < members; ++m) reducers_.push_back(std::make_unique<Member>(*this, m));
}

ThreadGroup::~ThreadGroup() = default;

GradientReducer& ThreadGroup::reducer(int member) { return *reducers_[member]; }

void ThreadGroup::Wait() {
  const uint64_t round = round_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == members_) {
    arrived_.store(0, std::memory_order_relaxed);
    round_.store(round + 1, std::memory_order_release);
    return;
  }
  for (int spins = 0; round_.load(std::memory_order_acquire) == round; ++spins) {
    // After 20,000 pauses (tens to hundreds of microseconds, by CPU), give the
    // core away between checks: a member may have been descheduled, or the
    // machine may have fewer cores than members.
    if (spins < 20000) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

bool ThreadGroup::AllSucceeded(int member, bool ok) {
  std::vector<char>& votes = ok_[votes_[member]++ % 2];
  votes[member] = ok ? 1 : 0;
  Wait();
  return std::all_of(votes.begin(), votes.end(), [](char v) { return v != 0; });
}

std::pair<int64_t, int64_t> ThreadGroup::Share(int member, int64_t size) const {
  constexpr int64_t kLine = 64 / sizeof(float);
  auto start = [&](int m) {
    if (m >= members_) return size;
    return std::min(size, size * m / members_ / kLine * kLine);
  };
  return {start(member), start(member + 1)};
}

absl::StatusOr<int64_t> ThreadGroup::Reduce(int member, std::span<float> gradients,
                                            int64_t local_examples) {
  buffers_[member] = gradients;
  examples_[member] = local_examples;
  Wait();
  // Every member reaches the same verdict from the same data, so all take the
  // same path through the barriers below.
  const size_t size = buffers_[0].size();
  const auto odd = std::find_if(buffers_.begin(), buffers_.end(),
                                [&](std::span<float> b) { return b.size() != size; });
  absl::StatusOr<int64_t> result = std::accumulate(examples_.begin(), examples_.end(), int64_t{0});
  if (odd != buffers_.end()) {
    result = absl::InternalError(absl::StrCat("thread group: member ", odd - buffers_.begin(),
                                              "'s gradient buffer has ", odd->size(),
                                              " values, member 0's ", size));
  } else {
    const auto [begin, end] = Share(member, static_cast<int64_t>(size));
    // The sum gathers in member 0's buffer, one member at a time (in member
    // order), and is copied to the others once it is complete.
    float* __restrict sum = buffers_[0].data();
    for (int m = 1; m < members_; ++m) {
      const float* __restrict part = buffers_[m].data();
      for (int64_t i = begin; i < end; ++i) sum[i] += part[i];
    }
    if (outer_ != nullptr) {
      Wait();
      if (member == 0) outer_result_ = outer_->Reduce(buffers_[0], *result);
      Wait();
      result = outer_result_;
    }
    if (result.ok()) {
      for (int m = 1; m < members_; ++m)
        std::copy(sum + begin, sum + end, buffers_[m].data() + begin);
    }
  }
  // Nobody may start the next Reduce (and overwrite buffers_) before everyone
  // has finished with this one.
  Wait();
  return result;
}

}  // namespace seedproof
