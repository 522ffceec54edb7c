#include "worker/mpi.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace seedproof {

class MpiGroup::Reducer final : public GradientReducer {
 public:
  absl::StatusOr<int64_t> Reduce(std::span<float> gradients, int64_t local_examples) override {
    buffer_.resize(gradients.size() + 1);
    std::copy(gradients.begin(), gradients.end(), buffer_.begin());
    buffer_.back() = static_cast<float>(local_examples);
    const auto start = std::chrono::steady_clock::now();
    const int rc = MPI_Allreduce(MPI_IN_PLACE, buffer_.data(), static_cast<int>(buffer_.size()),
                                 MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++calls_;
    if (rc != MPI_SUCCESS) return absl::InternalError(absl::StrCat("MPI_Allreduce failed: ", rc));
    std::copy(buffer_.begin(), buffer_.end() - 1, gradients.begin());
    return static_cast<int64_t>(buffer_.back());
  }
  double seconds_ = 0;
  int64_t calls_ = 0;

 private:
  std::vector<float> buffer_;
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

void MpiGroup::Barrier() { MPI_Barrier(MPI_COMM_WORLD); }
GradientReducer& MpiGroup::reducer() { return *reducer_; }
double MpiGroup::allreduce_seconds() const { return reducer_->seconds_; }
int64_t MpiGroup::allreduce_calls() const { return reducer_->calls_; }
void MpiGroup::ResetTiming() {
  reducer_->seconds_ = 0;
  reducer_->calls_ = 0;
}

}  // namespace seedproof
