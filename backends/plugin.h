// The one C entry point a backend plugin exports. A plugin is a shared library
// built against this header; MakeBackend("path/to/libx.so") dlopens it, calls
// seedproof_backend_plugin() and refuses it unless abi_version equals
// kSeedproofBackendAbiVersion. The library stays loaded for the life of the
// process (models it made may outlive the Backend object).
//
// Bump kSeedproofBackendAbiVersion whenever backend.h or model_spec.h change in a
// way that alters the layout or the virtual methods of their classes.
#pragma once

#include <cstdint>

namespace seedproof {
class Backend;
struct BackendOptions;
}  // namespace seedproof

// 2: Model::SaveBytes and Backend::LoadBytes.
inline constexpr uint32_t kSeedproofBackendAbiVersion = 2;

extern "C" {

struct SeedproofBackendPlugin {
  uint32_t abi_version;  // kSeedproofBackendAbiVersion the plugin was built with
  const char* name;      // the backend's name, for messages
  // A new backend, owned by the caller; nullptr if it cannot be made.
  seedproof::Backend* (*create)(const seedproof::BackendOptions* options);
};

// Exported with this exact name by every plugin.
const SeedproofBackendPlugin* seedproof_backend_plugin(void);
}
