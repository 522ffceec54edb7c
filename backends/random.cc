#include "backends/random.h"

#include <cmath>
#include <numbers>

namespace seedproof {

uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t StreamSeed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  return Mix64(Mix64(Mix64(Mix64(seed) ^ a) ^ b) ^ c);
}

uint64_t Rng::NextU64() {
  state_ += 0x9e3779b97f4a7c15ULL;
  return Mix64(state_);
}

float Rng::Uniform() { return static_cast<float>(NextU64() >> 40) * (1.0f / 16777216.0f); }

double Rng::Normal() {
  // Box-Muller; u1 in (0, 1] so the log is finite.
  const double u1 = (static_cast<double>(NextU64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  const double u2 = static_cast<double>(NextU64() >> 11) * (1.0 / 9007199254740992.0);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double Rng::TruncatedNormal(double stddev) {
  for (;;) {
    const double z = Normal();
    if (std::fabs(z) <= 2.0) return z * stddev;
  }
}

uint64_t Rng::Below(uint64_t n) {
  // Lemire's multiply-shift with rejection: unbiased.
  for (;;) {
    const unsigned __int128 m = static_cast<unsigned __int128>(NextU64()) * n;
    const uint64_t low = static_cast<uint64_t>(m);
    if (low >= n || low >= (-n) % n) return static_cast<uint64_t>(m >> 64);
  }
}

}  // namespace seedproof
