// An MPI worker group: the ranks of one `mpirun -np R` job. Only worker/ calls
// MPI, and only from the thread that joined (MPI_THREAD_FUNNELED).
//
//   auto group = MpiGroup::Join();           // MPI_Init_thread
//   group->set_bucket_floats(65536);          // optional: overlap with backward
//   context.reducer = &group->reducer();     // sums every step's gradients
//   context.replica = group->rank(); context.replicas = group->size();
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"

namespace seedproof {

// PyTorch DDP sums 25 MiB buckets on GPUs; the models here are a few MiB, and a
// bucket of 256 KiB (model A's 1.1 MB in five) lets the first sums start early.
inline constexpr int64_t kDefaultBucketKib = 256;

class MpiGroup {
 public:
  // True when this process was started by mpirun (or srun) as one of several ranks.
  static bool Launched();
  // Initialises MPI once for the process; MPI_Finalize when the group goes away.
  static absl::StatusOr<std::unique_ptr<MpiGroup>> Join();
  ~MpiGroup();
  MpiGroup(const MpiGroup&) = delete;
  MpiGroup& operator=(const MpiGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  void Barrier();
  // Rank 0's bytes to every rank (two MPI_Bcast: the length, then the bytes).
  absl::Status Broadcast(std::string& bytes);
  // True on every rank when `local` is true on any (MPI_Allreduce, MAX).
  bool AnyTrue(bool local);
  // Every rank's bytes, on rank 0 in rank order (an empty list elsewhere).
  absl::StatusOr<std::vector<std::string>> Gather(const std::string& bytes);

  // Sums each step's flat gradient buffer over the group and returns the group's
  // example count. With buckets (set_bucket_floats > 0, at most 2^28 floats) the
  // buffer is cut into buckets from its end, and each bucket's MPI_Iallreduce
  // starts in place as soon as the backward pass has made it final; the calls
  // that follow let it progress, and Reduce starts the rest and the count and
  // waits for all. A rank whose pass handed nothing over (a batch split across
  // threads) makes the same calls in Reduce, so ranks always match. Without
  // buckets, Reduce sums the whole buffer in place after the pass (in 1 GiB
  // pieces), then the count. Every rank must use the same bucket size: the sums
  // are collectives.
  GradientReducer& reducer();
  void set_bucket_floats(int64_t floats);
  // Time spent in the reduction's MPI calls (inside the backward pass too), of
  // that the time in Reduce (after the pass), and the Reduce calls, since the
  // last ResetTiming; and the share of the floats reduced whose sum started
  // before Reduce.
  double allreduce_seconds() const;
  double after_pass_seconds() const;
  int64_t allreduce_calls() const;
  double overlapped_share() const;
  void ResetTiming();

 private:
  MpiGroup(int rank, int size);
  class Reducer;
  int rank_ = 0, size_ = 1;
  std::unique_ptr<Reducer> reducer_;
};

}  // namespace seedproof
