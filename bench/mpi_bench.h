// Data-parallel pretraining of Géron's model A across an MPI worker group (run
// it under mpirun): the same global batches split over R ranks, gradients summed
// once per step after the backward pass, or during it in buckets. Rank 0 prints JSON lines
// (docs/PERFORMANCE.md).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "worker/mpi.h"

namespace seedproof {

struct MpiBenchOptions {
  std::string backend = "onednn";
  int64_t batch = 256;      // global batch, split across the ranks
  int epochs = 1;           // timed data-parallel epochs
  int64_t examples = 0;     // the first N task-A training images; 0: all 43,986
  int threads = 1;          // backend threads per rank
  uint64_t seed = 42;       // weight initialisation (the epoch orders follow from it)
  int64_t bucket_kib = kDefaultBucketKib;  // 0: one reduction after the backward pass
  std::string dataset_dir;  // empty: Debian's Fashion-MNIST
};

// Rank 0 prints, per epoch, {"ranks","batch","epoch","train_loss","train_accuracy",
// "samples_per_s","allreduce_ms_per_step","single_rank_samples_per_s","efficiency",
// "bucket_kib","overlapped_share","after_backward_ms_per_step"}
// and at the end {"ranks","test_accuracy","test_correct","test_examples"}. The
// single-rank figure is rank 0 training the same first epoch alone (the others
// wait), measured in the same run; efficiency = samples_per_s / (ranks x it).
absl::Status RunMpiBench(const MpiBenchOptions& options);

}  // namespace seedproof
