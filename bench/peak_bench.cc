#include "bench/peak_bench.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "experiments/geron.h"
#include "experiments/plan.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

// Independent accumulators: an FMA's latency (4 cycles) times the FMA units (2)
// is 8 in flight; 12 leaves slack and still fits the register file.
constexpr int kChains = 12;
constexpr int64_t kIterationsPerCall = 1 << 20;

// Runs kIterationsPerCall rounds of kChains vector FMAs; returns FLOPs done. The
// operands stay in registers: this measures the FMA units, not memory.
__attribute__((target("avx512f"))) double FmaLoopAvx512(float seed) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(seed + static_cast<float>(c));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < kIterationsPerCall; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  }
  __m512 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  volatile float sink = lanes[0];  // keeps the loop from being optimised away
  (void)sink;
  return 2.0 * 16 * kChains * static_cast<double>(kIterationsPerCall);
}

__attribute__((target("avx2,fma"))) double FmaLoopAvx2(float seed) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(seed + static_cast<float>(c));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < kIterationsPerCall; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  volatile float sink = lanes[0];
  (void)sink;
  return 2.0 * 8 * kChains * static_cast<double>(kIterationsPerCall);
}

double FmaLoop(bool avx512) { return avx512 ? FmaLoopAvx512(1.0f) : FmaLoopAvx2(1.0f); }

// FLOP/s of `threads` threads running the loop at once: the best of 5 slices of
// seconds/5 each (all threads the same work, timed until the last one ends), so
// a slice in which the VM ran something else does not count against the hardware.
double Peak(bool avx512, int threads, double seconds) {
  const auto start = std::chrono::steady_clock::now();
  const double flops_per_call = FmaLoop(avx512);
  const double call_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int calls = std::max(1, static_cast<int>(seconds / 5 / call_seconds));
  double best = 0.0;
  for (int slice = 0; slice < 5; ++slice) {
    const auto slice_start = std::chrono::steady_clock::now();
    std::vector<std::thread> running;
    for (int t = 0; t < threads; ++t) {
      running.emplace_back([&] {
        for (int c = 0; c < calls; ++c) FmaLoop(avx512);
      });
    }
    for (std::thread& t : running) t.join();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - slice_start).count();
    best = std::max(best, flops_per_call * calls * threads / elapsed);
  }
  return best;
}

}  // namespace

absl::Status RunPeakBench(const PeakBenchOptions& options) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    return absl::FailedPreconditionError("bench peak: this CPU has neither AVX-512 nor AVX2+FMA");
  }
  const double model_a_flops = TrainingFlopsPerExample(GeronModelA(), 0, 0);
  for (int threads : options.threads) {
    const double total = Peak(avx512, threads, options.seconds);
    nlohmann::ordered_json line = {
        {"isa", avx512 ? "avx512f" : "avx2+fma"},
        {"threads", threads},
        {"gflops", total / 1e9},
        {"gflops_per_thread", total / 1e9 / threads},
        {"geron_a_flops_per_sample", model_a_flops},
        {"geron_a_samples_per_s_ceiling", total / model_a_flops},
    };
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace seedproof
