// `seedproof demo`: trains Géron's model A on the real Fashion-MNIST task A and
// prints per-epoch loss, accuracy and throughput. (The sweep runner will make the
// main job a whole study.)
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace seedproof {

struct DemoOptions {
  std::string backend = "onednn";
  int threads = 1;
  int epochs = 20;
  int64_t batch = 32;
  uint64_t seed = 42;
  std::string dataset_dir;  // empty: Debian's Fashion-MNIST
  std::string save_path;    // where to write the trained model; empty: nowhere
};

absl::Status RunDemo(const DemoOptions& options);

}  // namespace seedproof
