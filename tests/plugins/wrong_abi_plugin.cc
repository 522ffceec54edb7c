// A plugin built against a future ABI: loading it must be refused, not crash.
#include "backends/plugin.h"

namespace {
seedproof::Backend* Create(const seedproof::BackendOptions*) { return nullptr; }
const SeedproofBackendPlugin kPlugin = {kSeedproofBackendAbiVersion + 1, "from-the-future", &Create};
}  // namespace

extern "C" const SeedproofBackendPlugin* seedproof_backend_plugin(void) { return &kPlugin; }
