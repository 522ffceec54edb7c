// The oneDNN CPU backend: Dense layers as oneDNN matmuls on the Keras-layout
// weights, Conv2D and MaxPool2D as oneDNN convolutions and poolings on
// channels-last activations, activations fused as post-ops. Models run on
// BackendOptions::threads OpenMP threads and are bit-identical run to run for the
// same thread count and CPU.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace seedproof {

// Never null. Create fails (InvalidArgument) if options.threads < 1.
std::unique_ptr<Backend> MakeOnednnBackend(const BackendOptions& options);

}  // namespace seedproof
