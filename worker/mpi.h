// An MPI worker group: the ranks of one `mpirun -np R` job. Only worker/ calls
// MPI, and only from the thread that joined (MPI_THREAD_FUNNELED).
//
//   auto group = MpiGroup::Join();           // MPI_Init_thread
//   context.reducer = &group->reducer();     // one MPI_Allreduce per step
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

  // Sums each step's flat gradient buffer over the group with one MPI_Allreduce
  // (the local example count rides along as one more float: exact below 2^24)
  // and returns the group's example count.
  GradientReducer& reducer();
  // Time spent in MPI_Allreduce and the calls, since the last ResetTiming.
  double allreduce_seconds() const;
  int64_t allreduce_calls() const;
  void ResetTiming();

 private:
  MpiGroup(int rank, int size);
  class Reducer;
  int rank_ = 0, size_ = 1;
  std::unique_ptr<Reducer> reducer_;
};

}  // namespace seedproof
