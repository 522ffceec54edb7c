// Deterministic random numbers that are the same on every platform and standard
// library (std:: distributions are implementation-defined, so they are not used
// for anything that must reproduce bit for bit).
#pragma once

#include <cstdint>

namespace seedproof {

// SplitMix64 finaliser: a strong 64-bit mix. Mix(a ^ Mix(b)) derives independent
// streams from (seed, purpose) pairs.
uint64_t Mix64(uint64_t x);
// A stream identified by several integers: Mix of each in turn.
uint64_t StreamSeed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0);

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t NextU64();
  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  float Uniform();
  // Uniform in [lo, hi).
  float Uniform(float lo, float hi) { return lo + (hi - lo) * Uniform(); }
  // Standard normal (Box-Muller on 53-bit uniforms, computed in double).
  double Normal();
  // Normal with the given stddev, redrawn while |x| > 2*stddev (Keras's truncated normal).
  double TruncatedNormal(double stddev);
  // Uniform integer in [0, n).
  uint64_t Below(uint64_t n);

 private:
  uint64_t state_;
};

}  // namespace seedproof
