// The loops the oneDNN backend runs itself between primitives: activation
// derivatives, bias gradients and dropout. Each result element is computed in a
// fixed order whatever the thread count, so these give the same bits on any
// number of threads. `threads` is the most they may use (with OpenMP); they use
// more than one only for arrays big enough to repay a fork-join.
#pragma once

#include <cstdint>

#include "backends/model_spec.h"

namespace seedproof::onednn {

// y and dy are (count): y is an activation's output, dy the gradient w.r.t. it.
// dy becomes the gradient w.r.t. the activation's input, computed from y, with
// TensorFlow's choice at the kinks (relu: 0 at 0; selu, elu: the positive side).
// alpha: leaky_relu's slope below 0.
void MultiplyByDerivative(Activation activation, float alpha, const float* y, float* dy,
                          int64_t count, int threads);

// z (count) becomes activation(z), with the reference backend's formulas, for the
// layers whose primitive takes no fused activation (BatchNorm).
void Activate(Activation activation, float alpha, float* z, int64_t count, int threads);

// dz is (rows, cols); sums is (cols): sums[c] = dz[0][c] + dz[1][c] + ... in row
// order, starting from 0.
void ColumnSums(const float* dz, int64_t rows, int64_t cols, float* sums, int threads);

// out = a * b elementwise, (count); out may be a.
void Multiply(const float* a, const float* b, float* out, int64_t count, int threads);

}  // namespace seedproof::onednn
