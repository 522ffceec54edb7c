// Backends by name, and plugins by path.
#include <dlfcn.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/backend.h"
#include "backends/onednn/onednn_backend.h"
#include "backends/plugin.h"
#include "backends/reference/reference_backend.h"

namespace seedproof {
namespace {

struct Builtin {
  const char* name;
  std::unique_ptr<Backend> (*make)(const BackendOptions&);
};

constexpr Builtin kBuiltins[] = {
    {"onednn", &MakeOnednnBackend},
    {"reference", &MakeReferenceBackend},
};

absl::StatusOr<std::unique_ptr<Backend>> LoadPlugin(const std::string& path,
                                                    const BackendOptions& options) {
  // RTLD_LOCAL keeps the plugin's symbols to itself. The handle is never closed:
  // models the plugin made may outlive its Backend, and their code lives there.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot load backend plugin ", path, ": ", dlerror()));
  }
  using EntryPoint = const SeedproofBackendPlugin* (*)();
  auto entry = reinterpret_cast<EntryPoint>(dlsym(handle, "seedproof_backend_plugin"));
  if (entry == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a seedproof backend plugin (it exports no seedproof_backend_plugin)"));
  }
  const SeedproofBackendPlugin* plugin = entry();
  if (plugin == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": seedproof_backend_plugin returned null"));
  }
  if (plugin->abi_version != kSeedproofBackendAbiVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": backend plugin ABI version ", plugin->abi_version, ", this build needs version ",
        kSeedproofBackendAbiVersion, "; rebuild the plugin against this seedproof"));
  }
  if (plugin->create == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the plugin has no create function"));
  }
  std::unique_ptr<Backend> backend(plugin->create(&options));
  if (backend == nullptr) {
    return absl::InternalError(absl::StrCat(path, ": the plugin could not create its backend"));
  }
  return backend;
}

}  // namespace

std::vector<std::string> BuiltinBackendNames() {
  std::vector<std::string> names;
  for (const Builtin& b : kBuiltins) names.emplace_back(b.name);
  return names;
}

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(const std::string& name_or_path,
                                                     const BackendOptions& options) {
  if (options.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("backend threads must be >= 1, got ", options.threads));
  }
  if (name_or_path.find('/') != std::string::npos) return LoadPlugin(name_or_path, options);
  for (const Builtin& b : kBuiltins) {
    if (name_or_path == b.name) return b.make(options);
  }
  return absl::NotFoundError(absl::StrCat("unknown backend '", name_or_path,
                                          "'; built-in backends are ",
                                          absl::StrJoin(BuiltinBackendNames(), ", "),
                                          ", or give a path to a plugin (.so)"));
}

}  // namespace seedproof
