#include "backends/onednn/elementwise.h"

#include <algorithm>
#include <cmath>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace seedproof::onednn {
namespace {

constexpr float kSeluScale = 1.0507009873554805f;
constexpr float kSeluAlpha = 1.6732632423543772f;

// Below this many elements a parallel region costs more than it saves: these
// loops stream ~10 floats per ns on one core, and a fork-join costs 3-4 us on the
// 2-core VMs this runs on.
constexpr int64_t kParallelMin = 1 << 17;

// Runs body(begin, end) over [0, count) split into one contiguous range per
// thread, range edges on 16-float (one cache line) boundaries.
// Without OpenMP (see onednn_backend.cc) it runs on the calling thread.
template <typename Body>
void ParallelRanges(int64_t count, [[maybe_unused]] int threads, const Body& body) {
#ifdef _OPENMP
  if (count >= kParallelMin && threads > 1) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t threads = omp_get_num_threads();
      const int64_t chunk = ((count + threads - 1) / threads + 15) / 16 * 16;
      const int64_t begin = std::min(count, chunk * omp_get_thread_num());
      body(begin, std::min(count, begin + chunk));
    }
    return;
  }
#endif
  body(int64_t{0}, count);
}

// The loops are compiled for AVX-512 as well as the baseline ISA, picked at load
// time. Floating-point contraction is off (ISO C++ mode), so both give the
// same bits.
#define SEEDPROOF_VECTOR_CLONES __attribute__((target_clones("avx512f", "default")))

SEEDPROOF_VECTOR_CLONES
void DerivativeRange(Activation activation, float alpha, const float* __restrict y,
                     float* __restrict dy, int64_t begin, int64_t end) {
  switch (activation) {
    case Activation::kLinear:
    case Activation::kSoftmax:  // only ever the output layer's, fused into the loss
      return;
    case Activation::kRelu:
      for (int64_t i = begin; i < end; ++i) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
      return;
    case Activation::kLeakyRelu:  // alpha >= 0: y > 0 exactly where z > 0
      for (int64_t i = begin; i < end; ++i) dy[i] = y[i] > 0.0f ? dy[i] : alpha * dy[i];
      return;
    case Activation::kSelu:
      // y < 0: d/dz scale*alpha*(e^z - 1) = scale*alpha*e^z = y + scale*alpha.
      for (int64_t i = begin; i < end; ++i) {
        dy[i] *= y[i] < 0.0f ? y[i] + kSeluScale * kSeluAlpha : kSeluScale;
      }
      return;
    case Activation::kElu:
      for (int64_t i = begin; i < end; ++i) dy[i] *= y[i] < 0.0f ? y[i] + 1.0f : 1.0f;
      return;
    case Activation::kTanh:
      for (int64_t i = begin; i < end; ++i) dy[i] *= 1.0f - y[i] * y[i];
      return;
    case Activation::kSigmoid:
      for (int64_t i = begin; i < end; ++i) dy[i] *= y[i] * (1.0f - y[i]);
      return;
  }
}

float Sigmoid(float z) {
  // Two forms so that exp never overflows into a NaN.
  if (z >= 0.0f) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

void ActivateRange(Activation activation, float alpha, float* z, int64_t begin, int64_t end) {
  switch (activation) {
    case Activation::kLinear:
    case Activation::kSoftmax:
      return;
    case Activation::kRelu:
      for (int64_t i = begin; i < end; ++i) z[i] = z[i] > 0.0f ? z[i] : 0.0f;
      return;
    case Activation::kLeakyRelu:
      for (int64_t i = begin; i < end; ++i) z[i] = z[i] > 0.0f ? z[i] : alpha * z[i];
      return;
    case Activation::kSelu:
      for (int64_t i = begin; i < end; ++i) {
        z[i] = kSeluScale * (z[i] > 0.0f ? z[i] : kSeluAlpha * std::expm1(z[i]));
      }
      return;
    case Activation::kElu:
      for (int64_t i = begin; i < end; ++i) z[i] = z[i] > 0.0f ? z[i] : std::expm1(z[i]);
      return;
    case Activation::kTanh:
      for (int64_t i = begin; i < end; ++i) z[i] = std::tanh(z[i]);
      return;
    case Activation::kSigmoid:
      for (int64_t i = begin; i < end; ++i) z[i] = Sigmoid(z[i]);
      return;
  }
}

SEEDPROOF_VECTOR_CLONES
void ColumnSumsRange(const float* __restrict dz, int64_t rows, int64_t cols, float* __restrict sums,
                     int64_t begin, int64_t end) {
  for (int64_t c = begin; c < end; ++c) sums[c] = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = dz + r * cols;
    for (int64_t c = begin; c < end; ++c) sums[c] += row[c];
  }
}

SEEDPROOF_VECTOR_CLONES
void MultiplyRange(const float* a, const float* b, float* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = a[i] * b[i];
}

}  // namespace

void MultiplyByDerivative(Activation activation, float alpha, const float* y, float* dy,
                          int64_t count, int threads) {
  if (activation == Activation::kLinear) return;
  ParallelRanges(count, threads, [&](int64_t begin, int64_t end) {
    DerivativeRange(activation, alpha, y, dy, begin, end);
  });
}

void Activate(Activation activation, float alpha, float* z, int64_t count, int threads) {
  if (activation == Activation::kLinear) return;
  ParallelRanges(count, threads, [&](int64_t begin, int64_t end) {
    ActivateRange(activation, alpha, z, begin, end);
  });
}

void ColumnSums(const float* dz, int64_t rows, int64_t cols, float* sums,
                [[maybe_unused]] int threads) {
  // Split by columns so each sum keeps its row order; worth it only for wide
  // enough matrices.
#ifdef _OPENMP
  if (rows * cols >= kParallelMin && cols >= 64 && threads > 1) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t threads = omp_get_num_threads();
      const int64_t chunk = ((cols + threads - 1) / threads + 15) / 16 * 16;
      const int64_t begin = std::min(cols, chunk * omp_get_thread_num());
      ColumnSumsRange(dz, rows, cols, sums, begin, std::min(cols, begin + chunk));
    }
    return;
  }
#endif
  ColumnSumsRange(dz, rows, cols, sums, 0, cols);
}

void Multiply(const float* a, const float* b, float* out, int64_t count, int threads) {
  ParallelRanges(count, threads,
                 [&](int64_t begin, int64_t end) { MultiplyRange(a, b, out, begin, end); });
}

}  // namespace seedproof::onednn
