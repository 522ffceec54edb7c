// The threads of one process that each ran part of a training batch, and how
// they sum their gradients: the in-process counterpart of an MPI group's
// reducer (worker/mpi.h), behind the same GradientReducer interface.
//
// Each member thread calls reducer(m).Reduce with its own buffer, all members at
// once. Reduce leaves in every member's buffer the sum over all members (then,
// if an outer reducer is set, over its replicas too) and returns the total
// example count. Element i is summed in member order, 0 first, whichever thread
// sums it, so the result depends only on the buffers: bit-identical run to run.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/backend.h"

namespace seedproof {

class ThreadGroup {
 public:
  explicit ThreadGroup(int members);
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;
  ~ThreadGroup();

  int members() const { return members_; }

  // What sums across processes once the members' sum is taken: an MPI group's
  // reducer, or nullptr. Not owned; set only while no member is in Reduce.
  void set_outer(GradientReducer* outer) { outer_ = outer; }

  // Member m's reducer; its Reduce must be called from m's thread, concurrently
  // with every other member's. Buffers must all have the same length.
  GradientReducer& reducer(int member);

  // A barrier that also votes: each member says whether its part went well, and
  // every member learns whether all did.
  bool AllSucceeded(int member, bool ok);

  // Waits until every member has called it (as often). Members spin: they are
  // meant to have a core each, and a step's waits are tens of microseconds,
  // shorter than a sleep and wake-up through the kernel.
  void Wait();

  // The range [begin, end) of a buffer of `size` floats that member m sums (and
  // that the same member then updates): contiguous, in member order, starting
  // on a 64-byte boundary so no two members write the same cache line.
  std::pair<int64_t, int64_t> Share(int member, int64_t size) const;

 private:
  class Member;
  absl::StatusOr<int64_t> Reduce(int member, std::span<float> gradients, int64_t local_examples);

  const int members_;
  GradientReducer* outer_ = nullptr;
  std::vector<std::unique_ptr<Member>> reducers_;
  // The barrier: arrivals in this round, and the round's number.
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<uint64_t> round_{0};
  // What each member brought to the current Reduce.
  std::vector<std::span<float>> buffers_;
  std::vector<int64_t> examples_;
  // Votes, by the parity of the vote's number: a member can be at most one vote
  // ahead of the slowest, so alternating two rows needs no second barrier.
  std::vector<char> ok_[2];
  std::vector<uint64_t> votes_;           // [member]: votes it has cast
  absl::StatusOr<int64_t> outer_result_;  // written by member 0 between barriers
};

}  // namespace seedproof
