#include "bench/data_bench.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/dataset_blob.h"
#include "data/load.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

namespace fs = std::filesystem;

double SecondsOf(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

absl::Status RunDataBench(const DataBenchOptions& options) {
  const fs::path dir(options.dir);
  std::vector<std::pair<std::string, DatasetSpec>> formats;
  auto add = [&](const std::string& label, DatasetFormat format, const fs::path& path) {
    DatasetSpec spec;
    spec.name = label;
    spec.format = format;
    spec.path = path.string();
    formats.emplace_back(label, spec);
    return &formats.back().second;
  };
  add("fashion-mnist idx.gz (Debian's, 70,000)", DatasetFormat::kIdx, kFashionMnistDir);
  add("idx", DatasetFormat::kIdx, dir / "idx");
  add("png", DatasetFormat::kImages, dir / "png");
  add("jpeg", DatasetFormat::kImages, dir / "jpeg");
  add("npy", DatasetFormat::kNpy, dir / "npy");
  add("npz (compressed)", DatasetFormat::kNpz, dir / "data.npz");
  DatasetSpec* csv = add("csv", DatasetFormat::kCsv, dir / "csv");
  csv->label_column = "label";
  csv->csv_shape = {28, 28, 1};
  for (const auto& [label, spec] : formats) {
    double best = 0;
    int64_t images = 0;
    std::string sha;
    TrainTest data;
    for (int r = 0; r < options.repeats; ++r) {
      absl::StatusOr<LoadedDataset> loaded;
      const double seconds = SecondsOf([&] { loaded = LoadDataset(spec); });
      if (!loaded.ok()) return loaded.status();
      if (r == 0 || seconds < best) best = seconds;
      images = loaded->data.train.size() + loaded->data.test.size();
      sha = loaded->sha256;
      data = std::move(loaded->data);
    }
    const double hash = SecondsOf([&] { DatasetSha256(data); });
    nlohmann::ordered_json line = {{"format", label},
                                   {"images", images},
                                   {"seconds", best},
                                   {"images_per_s", static_cast<double>(images) / best},
                                   {"hash_seconds", hash},
                                   {"sha256", sha.substr(0, 12)}};
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace seedproof
