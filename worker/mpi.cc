#include "worker/mpi.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

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
int64_t MpiGroup::allreduce_calls() const { return reducer_->calls_; }
void MpiGroup::ResetTiming() {
  reducer_->seconds_ = 0;
  reducer_->calls_ = 0;
}

}  // namespace seedproof
