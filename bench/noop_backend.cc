// A backend plugin that trains nothing, for `seedproof bench coordinator`: its
// workers run the whole trial procedure (data, model, epochs, evaluation, model
// files) while the math costs almost nothing, so what is measured is the
// coordinator. Every logit and every gradient is zero: the weights keep their
// initial values, the losses are log 2 or log K, and the results are valid.
#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/model_base.h"
#include "backends/plugin.h"

namespace seedproof {
namespace {

int64_t Elements(const Shape& shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

class NoopModel final : public ModelBase {
 public:
  NoopModel(ModelSpec spec, ModelShapes shapes) : ModelBase(std::move(spec), std::move(shapes)) {}

 protected:
  absl::StatusOr<const float*> Forward(const float*, int64_t n, bool, int end_layer) override {
    if (n < 0) return absl::InvalidArgumentError(absl::StrCat("Forward: negative batch size ", n));
    out_.assign(static_cast<size_t>(n * Elements(shapes().outputs[end_layer - 1])), 0.0f);
    return out_.data();
  }

  absl::Status Backward(const float*, int64_t) override {
    const ModelShapes& s = shapes();
    for (int l = lowest_trainable_layer(); l < num_layers(); ++l) {
      for (int t = 0; t < static_cast<int>(s.params[l].size()); ++t) {
        if (float* g = Gradient(l, t)) std::fill_n(g, Elements(s.params[l][t]), 0.0f);
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<ModelBase>> MakeSibling(const ModelSpec& spec) const override {
    return Make(spec);
  }

 public:
  static absl::StatusOr<std::unique_ptr<ModelBase>> Make(const ModelSpec& spec) {
    auto shapes = InferShapes(spec);
    if (!shapes.ok()) return shapes.status();
    return std::unique_ptr<ModelBase>(std::make_unique<NoopModel>(spec, *std::move(shapes)));
  }

 private:
  std::vector<float> out_;
};

Backend* Create(const BackendOptions*) {
  return MakeModelBaseBackend("noop", &NoopModel::Make).release();
}

const SeedproofBackendPlugin kPlugin = {kSeedproofBackendAbiVersion, "noop", &Create};

}  // namespace
}  // namespace seedproof

extern "C" const SeedproofBackendPlugin* seedproof_backend_plugin(void) {
  return &seedproof::kPlugin;
}
