#include "worker/artifacts.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "experiments/fingerprint.h"
#include "proto/wire_limits.h"

namespace seedproof {

void CoordinatorArtifactStore::BeginAttempt(int64_t attempt_id, const std::string& source_trial,
                                            const std::string& source_sha256) {
  attempt_id_ = attempt_id;
  source_trial_ = source_trial;
  source_sha256_ = source_sha256;
}

absl::StatusOr<std::string> CoordinatorArtifactStore::Put(const std::string&, const Model& model) {
  return Upload(model.SaveBytes(), attempt_id_);
}

absl::StatusOr<std::string> CoordinatorArtifactStore::Upload(const std::string& bytes,
                                                             int64_t attempt_id) {
  const std::string sha = Sha256Hex(bytes);
  auto upload = [&]() -> absl::Status {
    grpc::ClientContext ctx;
    auth_.Apply(ctx, /*deadline_ms=*/60000);
    rpc::ArtifactRef ref;
    auto writer = stub_.UploadArtifact(&ctx, &ref);
    for (int64_t offset = 0; offset == 0 || offset < static_cast<int64_t>(bytes.size());
         offset += kChunkBytes) {
      rpc::ArtifactChunk chunk;
      if (offset == 0) {
        chunk.set_sha256(sha);
        chunk.set_attempt_id(attempt_id);
      }
      chunk.set_data(bytes.substr(offset, kChunkBytes));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return FromGrpc(writer->Finish(), "upload of a model");
  };
  if (auto s = RetryWhileUnavailable(upload); !s.ok()) return s;
  return sha;
}

absl::StatusOr<std::unique_ptr<Model>> CoordinatorArtifactStore::Get(const std::string& trial_id,
                                                                     Backend& backend,
                                                                     std::string* sha256) {
  if (trial_id != source_trial_ || source_sha256_.empty()) {
    return absl::NotFoundError(absl::StrCat("no artifact of trial ", trial_id, " was leased"));
  }
  if (sha256) *sha256 = source_sha256_;
  if (source_sha256_ != loaded_sha256_) {
    auto bytes = Download();
    if (!bytes.ok()) return bytes.status();
    auto model = backend.LoadBytes(*bytes, absl::StrCat("model ", source_sha256_));
    if (!model.ok()) return model.status();
    loaded_ = *std::move(model);
    loaded_sha256_ = source_sha256_;
  }
  return loaded_->Clone();
}

absl::StatusOr<std::string> CoordinatorArtifactStore::Download() {
  if (source_sha256_ == kept_sha256_) return kept_bytes_;
  std::string bytes;
  auto download = [&]() -> absl::Status {
    bytes.clear();
    grpc::ClientContext ctx;
    auth_.Apply(ctx, 60000);
    rpc::ArtifactRef ref;
    ref.set_sha256(source_sha256_);
    auto reader = stub_.DownloadArtifact(&ctx, ref);
    rpc::ArtifactChunk chunk;
    while (reader->Read(&chunk)) bytes += chunk.data();
    return FromGrpc(reader->Finish(), absl::StrCat("download of model ", source_sha256_));
  };
  if (auto s = RetryWhileUnavailable(download); !s.ok()) return s;
  if (Sha256Hex(bytes) != source_sha256_) {
    return absl::DataLossError(absl::StrCat("model ", source_sha256_, " arrived damaged"));
  }
  kept_sha256_ = source_sha256_;
  kept_bytes_ = bytes;
  return bytes;
}

void MemoryArtifactStore::Keep(const std::string& trial_id, std::string bytes) {
  models_[trial_id] = std::move(bytes);
}

std::string MemoryArtifactStore::BytesOf(const std::string& trial_id) const {
  auto it = models_.find(trial_id);
  return it == models_.end() ? std::string() : it->second;
}

absl::StatusOr<std::string> MemoryArtifactStore::Put(const std::string& trial_id,
                                                     const Model& model) {
  std::string bytes = model.SaveBytes();
  std::string sha = Sha256Hex(bytes);
  models_[trial_id] = std::move(bytes);
  return sha;
}

absl::StatusOr<std::unique_ptr<Model>> MemoryArtifactStore::Get(const std::string& trial_id,
                                                                Backend& backend,
                                                                std::string* sha256) {
  auto it = models_.find(trial_id);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("no model of trial ", trial_id, " was sent here"));
  }
  if (sha256) *sha256 = Sha256Hex(it->second);
  return backend.LoadBytes(it->second, absl::StrCat("the model of trial ", trial_id));
}

}  // namespace seedproof
