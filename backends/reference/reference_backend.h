// The reference backend: plain single-threaded float loops, written to be
// obviously correct rather than fast. It is the oracle the oneDNN backend is
// tested against, and runs small models anywhere.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/backend.h"
#include "backends/model_base.h"

namespace seedproof {

// Models are single-threaded whatever options.threads says.
std::unique_ptr<Backend> MakeReferenceBackend(const BackendOptions& options);

// A reference model. Exposed (rather than hidden in the .cc) so that tests can
// drive Forward and Backward directly: Forward(training=true) called twice in the
// same step uses the same dropout mask, which lets a test check dropout's gradient
// by finite differences.
class ReferenceModel : public ModelBase {
 public:
  // `shapes` must be InferShapes(spec). The weights are all zero until
  // InitializeParameters or RestoreState. Prefer MakeReferenceModel, which checks.
  ReferenceModel(ModelSpec spec, ModelShapes shapes, const BackendOptions& options);

  // ModelBase's contracts (model_base.h), public here for tests.
  absl::StatusOr<const float*> Forward(const float* x, int64_t n, bool training,
                                       int end_layer) override;
  absl::Status Backward(const float* dlogits, int64_t n) override;

 protected:
  absl::StatusOr<std::unique_ptr<ModelBase>> MakeSibling(const ModelSpec& spec) const override;

 private:
  BackendOptions options_;

  // What the last Forward kept for Backward. All buffers only grow, so once warmed
  // up neither Forward nor Backward allocates.
  int64_t batch_ = 0;               // n of the last Forward
  bool kept_for_backward_ = false;  // the last Forward had training=true
  std::vector<float> input_;        // (n, input...): a copy of x
  // outputs_[l]: layer l's output after its activation, (n, outputs[l]...); for the
  // output layer, the logits.
  std::vector<std::vector<float>> outputs_;
  std::vector<std::vector<float>> dropout_masks_;  // [l]: (n, outputs[l]...), Dropout only
  // [l]: for each output of a MaxPool2D, the flat index into its (n, H, W, C) input
  // of the value that won.
  std::vector<std::vector<int64_t>> pool_winners_;
  // [l]: a BatchNorm's per-channel mean and 1/sqrt(variance + epsilon) of the last
  // Forward (the batch's, training a trainable one; else the moving ones).
  std::vector<std::vector<float>> norm_mean_, norm_inv_std_;
  std::vector<float> dy_, dx_;  // Backward's gradient w.r.t. a layer's output / input
};

// An uninitialised ReferenceModel for `spec` (all weights zero), after checking
// the spec and that the reference backend supports it.
absl::StatusOr<std::unique_ptr<ReferenceModel>> MakeReferenceModel(const ModelSpec& spec,
                                                                   const BackendOptions& options);

}  // namespace seedproof
