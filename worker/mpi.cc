#include "worker/mpi.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace seedproof {

class MpiGroup::Reducer final : public GradientReducer {
 public:
  // Every rank makes the same MPI calls whichever pass it ran (whole or split
  // across threads, with or without hand-overs): the buckets are fixed by the
  // buffer's size, [end - B, end), [end - 2B, end - B), ..., each summed in
  // place by one MPI_Iallreduce, in that order, then the example count. Without
  // buckets, B is the largest MPI count: one sum for any model under 1 GiB.
  absl::StatusOr<int64_t> Reduce(std::span<float> gradients, int64_t local_examples) override {
    Clock clock(seconds_), after(after_pass_seconds_);
    ++calls_;
    floats_ += static_cast<int64_t>(gradients.size());
    if (pass_ != nullptr && pass_ != gradients.data()) {
      Fail("a reduction on another buffer than its backward pass's");
    }
    if (pass_ != gradients.data()) Begin(gradients);
    StartBuckets(0);
    int64_t examples = local_examples;
    requests_.push_back(MPI_REQUEST_NULL);
    Check(MPI_Iallreduce(MPI_IN_PLACE, &examples, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD,
                         &requests_.back()),
          "MPI_Iallreduce");
    Check(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE),
          "MPI_Waitall");
    requests_.clear();
    pass_ = nullptr;
    absl::Status failed = std::exchange(failed_, absl::OkStatus());
    if (!failed.ok()) return failed;
    return examples;
  }

  int64_t bucket_floats() const override { return bucket_floats_; }

  void Ready(std::span<float> gradients, int64_t begin) override {
    Clock clock(seconds_);
    if (pass_ == nullptr) Begin(gradients);
    early_floats_ += StartBuckets(begin);
    // Nonblocking collectives move only inside MPI calls: each Ready lets the
    // buckets in flight take their next steps.
    int done = 0;
    Check(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done,
                      MPI_STATUSES_IGNORE),
          "MPI_Testall");
  }

  // 1 GiB: within MPI's int counts.
  static constexpr int64_t kMaxBucketFloats = int64_t{1} << 28;
  int64_t bucket_floats_ = 0;
  double seconds_ = 0, after_pass_seconds_ = 0;  // all, and in Reduce
  int64_t calls_ = 0;
  int64_t floats_ = 0, early_floats_ = 0;  // reduced, and of those during a backward pass

 private:
  // Adds the time of a call to `total`.
  class Clock {
   public:
    explicit Clock(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
    ~Clock() {
      total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

   private:
    double& total_;
    const std::chrono::steady_clock::time_point start_;
  };

  void Begin(std::span<float> gradients) {
    pass_ = gradients.data();
    unsent_ = static_cast<int64_t>(gradients.size());
  }

  // Starts the sum of every bucket not yet started that lies within [begin, end)
  // of the pass's buffer; returns the floats started.
  int64_t StartBuckets(int64_t begin) {
    int64_t started = 0;
    while (unsent_ > 0) {
      const int64_t bucket = bucket_floats_ > 0 ? bucket_floats_ : kMaxBucketFloats;
      const int64_t first = std::max<int64_t>(0, unsent_ - bucket);
      if (first < begin) break;
      requests_.push_back(MPI_REQUEST_NULL);
      Check(MPI_Iallreduce(MPI_IN_PLACE, pass_ + first, static_cast<int>(unsent_ - first),
                           MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &requests_.back()),
            "MPI_Iallreduce");
      started += unsent_ - first;
      unsent_ = first;
    }
    return started;
  }

  // The first failure of a pass; Reduce returns it once every request has ended.
  void Check(int rc, const char* call) {
    if (rc != MPI_SUCCESS) Fail(absl::StrCat(call, " failed: ", rc));
  }
  void Fail(std::string message) {
    if (failed_.ok()) failed_ = absl::InternalError(std::move(message));
  }

  // The pass in flight: its buffer (nullptr: none), the end of the part whose
  // buckets are not yet started, the sums started, and its first failure.
  float* pass_ = nullptr;
  int64_t unsent_ = 0;
  std::vector<MPI_Request> requests_;
  absl::Status failed_;
};

absl::StatusOr<std::unique_ptr<MpiGroup>> MpiGroup::Join() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return absl::FailedPreconditionError("MPI is already initialised");
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    return absl::UnavailableError("MPI_Init_thread failed");
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return std::unique_ptr<MpiGroup>(new MpiGroup(rank, size));
}

MpiGroup::MpiGroup(int rank, int size)
    : rank_(rank), size_(size), reducer_(std::make_unique<Reducer>()) {}

MpiGroup::~MpiGroup() { MPI_Finalize(); }

bool MpiGroup::Launched() {
  const auto above_one = [](const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && std::atoi(value) > 1;
  };
  // Open MPI's mpirun says the size (and then it is the size, whatever Slurm
  // variables the job inherited); srun --mpi=pmix gives each task a PMIx rank,
  // and the size is the step's task count.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) return above_one("OMPI_COMM_WORLD_SIZE");
  return above_one("PMI_SIZE") || above_one("PMIX_SIZE") ||
         (std::getenv("PMIX_RANK") != nullptr && above_one("SLURM_STEP_NUM_TASKS"));
}

void MpiGroup::Barrier() { MPI_Barrier(MPI_COMM_WORLD); }

absl::Status MpiGroup::Broadcast(std::string& bytes) {
  int64_t size = static_cast<int64_t>(bytes.size());
  if (MPI_Bcast(&size, 1, MPI_INT64_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
    return absl::InternalError("MPI_Bcast failed");
  }
  bytes.resize(static_cast<size_t>(size));
  // In pieces below 2^31 bytes: MPI counts are ints.
  for (int64_t offset = 0; offset < size; offset += 1 << 30) {
    const int count = static_cast<int>(std::min<int64_t>(size - offset, 1 << 30));
    if (MPI_Bcast(bytes.data() + offset, count, MPI_CHAR, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
      return absl::InternalError("MPI_Bcast failed");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MpiGroup::Gather(const std::string& bytes) {
  const int size = static_cast<int>(bytes.size());
  std::vector<int> sizes(rank_ == 0 ? size_ : 0), offsets(sizes.size());
  if (MPI_Gather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
    return absl::InternalError("MPI_Gather failed");
  }
  std::string all;
  if (rank_ == 0) {
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = static_cast<int>(total);
      total += sizes[r];
    }
    if (total > (int64_t{1} << 31) - 1) return absl::ResourceExhaustedError("gather over 2 GiB");
    all.resize(static_cast<size_t>(total));
  }
  if (MPI_Gatherv(bytes.data(), size, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR,
                  0, MPI_COMM_WORLD) != MPI_SUCCESS) {
    return absl::InternalError("MPI_Gatherv failed");
  }
  std::vector<std::string> parts;
  for (int r = 0; r < static_cast<int>(sizes.size()); ++r)
    parts.push_back(all.substr(offsets[r], sizes[r]));
  return parts;
}

bool MpiGroup::AnyTrue(bool local) {
  int value = local ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return value != 0;
}
GradientReducer& MpiGroup::reducer() { return *reducer_; }
double MpiGroup::allreduce_seconds() const { return reducer_->seconds_; }
double MpiGroup::after_pass_seconds() const { return reducer_->after_pass_seconds_; }
int64_t MpiGroup::allreduce_calls() const { return reducer_->calls_; }
void MpiGroup::ResetTiming() {
  reducer_->seconds_ = 0;
  reducer_->after_pass_seconds_ = 0;
  reducer_->calls_ = 0;
  reducer_->floats_ = 0;
  reducer_->early_floats_ = 0;
}
void MpiGroup::set_bucket_floats(int64_t floats) {
  reducer_->bucket_floats_ = std::clamp<int64_t>(floats, 0, Reducer::kMaxBucketFloats);
}
double MpiGroup::overlapped_share() const {
  return reducer_->floats_ > 0
             ? static_cast<double>(reducer_->early_floats_) / static_cast<double>(reducer_->floats_)
             : 0.0;
}

}  // namespace seedproof
