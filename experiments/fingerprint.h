// What names content and the machine a result came from: the SHA-256 that
// artifacts and datasets are addressed by (data/content_hash.h), and the CPU's
// vector ISA that results depend on. No backend, no I/O.
#pragma once

#include <string>

#include "data/content_hash.h"

namespace seedproof {

// The widest x86 vector ISA this CPU offers ("avx512", "avx2", "sse4.2", "baseline").
std::string CpuIsa();

}  // namespace seedproof
