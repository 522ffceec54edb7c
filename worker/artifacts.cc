#include "worker/artifacts.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <functional>

#include "absl/strings/str_cat.h"
#include "experiments/fingerprint.h"
#include "proto/wire_limits.h"

namespace seedproof {

void CoordinatorArtifactStore::BeginAttempt(int64_t attempt_id, const TrialSpec& trial,
                                            const std::string& lease_source_sha256) {
  attempt_id_ = attempt_id;
  source_key_ = SourceKey(trial);
  // An imported model's file is named by the trial itself; a pretrained one by
  // the lease (the coordinator knows which model its source trial made).
  source_sha256_ = trial.source_onnx.empty() ? lease_source_sha256 : trial.source_onnx;
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

absl::StatusOr<std::unique_ptr<Model>> CoordinatorArtifactStore::Get(const std::string& key,
                                                                     Backend& backend,
                                                                     std::string* sha256) {
  if (key != source_key_ || source_sha256_.empty()) {
    return absl::NotFoundError(absl::StrCat("no source model ", key, " was leased"));
  }
  if (sha256) *sha256 = source_sha256_;
  if (source_sha256_ != loaded_sha256_) {
    auto bytes = Download();
    if (!bytes.ok()) return bytes.status();
    auto model = LoadSourceModel(backend, source_key_, *bytes,
                                 absl::StrCat("model ", source_sha256_));
    if (!model.ok()) return model.status();
    loaded_ = *std::move(model);
    loaded_sha256_ = source_sha256_;
  }
  return loaded_->Clone();
}

namespace {

// Streams artifact sha256 from the coordinator into on_chunk (after on_start with
// its size), retrying while the coordinator is unreachable; `what` names it.
absl::Status Download(rpc::Trials::Stub& stub, const RpcAuth& auth, const std::string& sha256,
                      const std::string& what, int64_t deadline_ms,
                      const std::function<void(int64_t total_bytes)>& on_start,
                      const std::function<void(std::string&& data)>& on_chunk) {
  auto download = [&]() -> absl::Status {
    grpc::ClientContext ctx;
    auth.Apply(ctx, deadline_ms);
    rpc::ArtifactRef ref;
    ref.set_sha256(sha256);
    auto reader = stub.DownloadArtifact(&ctx, ref);
    rpc::ArtifactChunk chunk;
    for (bool first = true; reader->Read(&chunk); first = false) {
      if (first) on_start(chunk.total_bytes());
      on_chunk(std::move(*chunk.mutable_data()));
    }
    return FromGrpc(reader->Finish(), absl::StrCat("download of ", what));
  };
  return RetryWhileUnavailable(download);
}

}  // namespace

absl::StatusOr<std::string> CoordinatorArtifactStore::Download() {
  if (source_sha256_ == kept_sha256_) return kept_bytes_;
  std::string bytes;
  const absl::Status downloaded = seedproof::Download(
      stub_, auth_, source_sha256_, absl::StrCat("model ", source_sha256_), 60000,
      [&](int64_t total) {
        bytes.clear();
        bytes.reserve(static_cast<size_t>(std::max<int64_t>(total, 0)));
      },
      [&](std::string&& data) { bytes += data; });
  if (!downloaded.ok()) return downloaded;
  if (Sha256Hex(bytes) != source_sha256_) {
    return absl::DataLossError(absl::StrCat("model ", source_sha256_, " arrived damaged"));
  }
  kept_sha256_ = source_sha256_;
  kept_bytes_ = bytes;
  return bytes;
}

absl::StatusOr<LoadedDataset> CoordinatorDatasets::Fetch(const DatasetSpec& dataset) {
  std::deque<std::string> pieces;
  std::unique_ptr<Sha256> hash;
  // A dataset may be hundreds of megabytes: ten minutes, not one.
  const absl::Status downloaded = Download(
      stub_, auth_, dataset.sha256, absl::StrCat("dataset '", dataset.name, "' (", dataset.sha256, ")"),
      600000,
      [&](int64_t) {
        pieces.clear();
        hash = std::make_unique<Sha256>();
      },
      [&](std::string&& data) {
        hash->Update(data.data(), data.size());
        pieces.push_back(std::move(data));
      });
  if (!downloaded.ok()) return downloaded;
  if (!hash) return absl::DataLossError(absl::StrCat("dataset '", dataset.name, "': no bytes came"));
  return LoadDatasetFromPieces(dataset, std::move(pieces), hash->Hex());
}

void MemoryDatasets::Keep(const std::string& sha256, std::string encoding) {
  encodings_[sha256] = std::move(encoding);
}

absl::StatusOr<LoadedDataset> MemoryDatasets::Fetch(const DatasetSpec& dataset) {
  auto it = encodings_.find(dataset.sha256);
  if (it == encodings_.end()) {
    return absl::NotFoundError(absl::StrCat("dataset '", dataset.name, "' (", dataset.sha256,
                                            ") was not sent to this rank"));
  }
  std::string encoding = std::move(it->second);
  encodings_.erase(it);
  return LoadDatasetFromBlob(dataset, std::move(encoding));
}

void MemoryArtifactStore::Keep(const std::string& key, std::string bytes) {
  models_[key] = std::move(bytes);
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

absl::StatusOr<std::unique_ptr<Model>> MemoryArtifactStore::Get(const std::string& key,
                                                                Backend& backend,
                                                                std::string* sha256) {
  auto it = models_.find(key);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("no source model ", key, " was sent here"));
  }
  if (sha256) *sha256 = Sha256Hex(it->second);
  return LoadSourceModel(backend, key, it->second, absl::StrCat("the source model ", key));
}

}  // namespace seedproof
