#include "experiments/fingerprint.h"

namespace seedproof {

std::string CpuIsa() {
  if (__builtin_cpu_supports("avx512f")) return "avx512";
  if (__builtin_cpu_supports("avx2")) return "avx2";
  if (__builtin_cpu_supports("sse4.2")) return "sse4.2";
  return "baseline";
}

}  // namespace seedproof
