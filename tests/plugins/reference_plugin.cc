// A backend plugin for the plugin-loading tests: the reference backend, built as a
// shared library exporting the one C entry point of backends/plugin.h.
#include "backends/plugin.h"

#include "backends/backend.h"
#include "backends/reference/reference_backend.h"

namespace {
seedproof::Backend* Create(const seedproof::BackendOptions* options) {
  return seedproof::MakeReferenceBackend(*options).release();
}
const SeedproofBackendPlugin kPlugin = {kSeedproofBackendAbiVersion, "reference-plugin", &Create};
}  // namespace

extern "C" const SeedproofBackendPlugin* seedproof_backend_plugin(void) { return &kPlugin; }
