// What names content and the machine a result came from: the SHA-256 that
// artifacts (and, later, datasets) are addressed by, and the CPU's vector ISA
// that results depend on. No backend, no I/O.
#pragma once

#include <string>

namespace seedproof {

// SHA-256 of bytes, 64 lowercase hex digits: how artifacts are named and checked.
std::string Sha256Hex(const std::string& bytes);

// The widest x86 vector ISA this CPU offers ("avx512", "avx2", "sse4.2", "baseline").
std::string CpuIsa();

}  // namespace seedproof
