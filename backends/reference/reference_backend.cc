#include "backends/reference/reference_backend.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace seedproof {
namespace {

// ---------------------------------------------------------------------------
// Activations. Forward works in place on a layer's pre-activation; backward
// multiplies dy in place by the derivative, computed from the activation's
// output y (which Forward keeps), with TensorFlow's choice at the kinks (the
// derivative at 0 is that of the positive side for selu and elu, 0 for relu).

constexpr float kSeluScale = 1.0507009873554805f;
constexpr float kSeluAlpha = 1.6732632423543772f;

float Sigmoid(float z) {
  // Two forms so that exp never overflows into a NaN.
  if (z >= 0.0f) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

// z is (count), overwritten with activation(z). alpha: leaky_relu's slope below 0.
void ActivateInPlace(Activation activation, float alpha, float* z, int64_t count) {
  switch (activation) {
    case Activation::kLinear:
      return;
    case Activation::kRelu:
      for (int64_t i = 0; i < count; ++i) z[i] = z[i] > 0.0f ? z[i] : 0.0f;
      return;
    case Activation::kLeakyRelu:
      for (int64_t i = 0; i < count; ++i) z[i] = z[i] > 0.0f ? z[i] : alpha * z[i];
      return;
    case Activation::kSelu:
      for (int64_t i = 0; i < count; ++i) {
        z[i] = kSeluScale * (z[i] > 0.0f ? z[i] : kSeluAlpha * std::expm1(z[i]));
      }
      return;
    case Activation::kElu:
      for (int64_t i = 0; i < count; ++i) z[i] = z[i] > 0.0f ? z[i] : std::expm1(z[i]);
      return;
    case Activation::kTanh:
      for (int64_t i = 0; i < count; ++i) z[i] = std::tanh(z[i]);
      return;
    case Activation::kSigmoid:
      for (int64_t i = 0; i < count; ++i) z[i] = Sigmoid(z[i]);
      return;
    case Activation::kSoftmax:
      return;  // Never reached: MakeReferenceModel rejects a hidden softmax.
  }
}

// y is (count), the activation's output; dy is (count), the gradient w.r.t. y,
// overwritten with the gradient w.r.t. the pre-activation.
void MultiplyByDerivative(Activation activation, float alpha, const float* y, float* dy,
                          int64_t count) {
  switch (activation) {
    case Activation::kLinear:
      return;
    case Activation::kRelu:
      for (int64_t i = 0; i < count; ++i) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
      return;
    case Activation::kLeakyRelu:
      // alpha >= 0, so y > 0 exactly where z > 0.
      for (int64_t i = 0; i < count; ++i) dy[i] = y[i] > 0.0f ? dy[i] : alpha * dy[i];
      return;
    case Activation::kSelu:
      // y < 0: d/dz scale*alpha*(e^z - 1) = scale*alpha*e^z = y + scale*alpha.
      for (int64_t i = 0; i < count; ++i) {
        dy[i] *= y[i] < 0.0f ? y[i] + kSeluScale * kSeluAlpha : kSeluScale;
      }
      return;
    case Activation::kElu:
      for (int64_t i = 0; i < count; ++i) dy[i] *= y[i] < 0.0f ? y[i] + 1.0f : 1.0f;
      return;
    case Activation::kTanh:
      for (int64_t i = 0; i < count; ++i) dy[i] *= 1.0f - y[i] * y[i];
      return;
    case Activation::kSigmoid:
      for (int64_t i = 0; i < count; ++i) dy[i] *= y[i] * (1.0f - y[i]);
      return;
    case Activation::kSoftmax:
      return;  // Never reached: MakeReferenceModel rejects a hidden softmax.
  }
}

// ---------------------------------------------------------------------------
// Dense.

// x is (n, in), kernel is (in, out), bias is (out), y is (n, out).
// y = x kernel + bias.
void DenseForward(const float* x, const float* kernel, const float* bias, int64_t n, int64_t in,
                  int64_t out, float* y) {
  for (int64_t b = 0; b < n; ++b) {
    float* yb = y + b * out;
    std::copy(bias, bias + out, yb);
    for (int64_t i = 0; i < in; ++i) {
      const float xi = x[b * in + i];
      const float* ki = kernel + i * out;
      for (int64_t o = 0; o < out; ++o) yb[o] += xi * ki[o];
    }
  }
}

// x is (n, in), kernel is (in, out), dy is (n, out): the gradient w.r.t. the
// pre-activation. Overwrites dkernel (in, out) and dbias (out) with sums over the
// batch, and dx (n, in); each is skipped when null.
void DenseBackward(const float* x, const float* kernel, const float* dy, int64_t n, int64_t in,
                   int64_t out, float* dkernel, float* dbias, float* dx) {
  if (dkernel != nullptr) {
    std::fill(dkernel, dkernel + in * out, 0.0f);
    for (int64_t b = 0; b < n; ++b) {
      const float* dyb = dy + b * out;
      for (int64_t i = 0; i < in; ++i) {
        const float xi = x[b * in + i];
        float* dki = dkernel + i * out;
        for (int64_t o = 0; o < out; ++o) dki[o] += xi * dyb[o];
      }
    }
  }
  if (dbias != nullptr) {
    std::fill(dbias, dbias + out, 0.0f);
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t o = 0; o < out; ++o) dbias[o] += dy[b * out + o];
    }
  }
  if (dx != nullptr) {
    for (int64_t b = 0; b < n; ++b) {
      const float* dyb = dy + b * out;
      for (int64_t i = 0; i < in; ++i) {
        const float* ki = kernel + i * out;
        float sum = 0.0f;
        for (int64_t o = 0; o < out; ++o) sum += ki[o] * dyb[o];
        dx[b * in + i] = sum;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// The sliding-window geometry that Conv2D and MaxPool2D share.

struct Window {
  int64_t in_h = 0, in_w = 0, in_c = 0;
  int64_t out_h = 0, out_w = 0, out_c = 0;
  int64_t k_h = 0, k_w = 0;
  int64_t stride_h = 1, stride_w = 1;
  // Zero rows above / columns left of the input ('same' padding). TensorFlow's
  // rule: pad_total = max((out - 1) * stride + k - in, 0), and the smaller half,
  // pad_total / 2, goes first (top, left); the rest at the bottom and right.
  int64_t pad_top = 0, pad_left = 0;
};

int64_t SamePadBefore(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return std::max<int64_t>((out - 1) * stride + k - in, 0) / 2;
}

// The output extent that 'valid' / 'same' / explicit padding (`pads`: before +
// after) gives, computed here rather than taken on trust from InferShapes.
int64_t WindowOutputExtent(Padding padding, int64_t in, int64_t k, int64_t stride, int64_t pads) {
  if (padding == Padding::kSame) return (in + stride - 1) / stride;
  if (padding == Padding::kExplicit) in += pads;
  return (in - k) / stride + 1;
}

Window MakeWindow(const LayerSpec& layer, const Shape& in, const Shape& out) {
  Window w;
  w.in_h = in[0], w.in_w = in[1], w.in_c = in[2];
  w.out_h = out[0], w.out_w = out[1], w.out_c = out[2];
  w.k_h = layer.kernel_h, w.k_w = layer.kernel_w;
  w.stride_h = layer.stride_h, w.stride_w = layer.stride_w;
  if (layer.padding == Padding::kSame) {
    w.pad_top = SamePadBefore(w.in_h, w.out_h, w.k_h, w.stride_h);
    w.pad_left = SamePadBefore(w.in_w, w.out_w, w.k_w, w.stride_w);
  } else if (layer.padding == Padding::kExplicit) {
    w.pad_top = layer.pad_top;
    w.pad_left = layer.pad_left;
  }
  return w;
}

// ---------------------------------------------------------------------------
// Conv2D: a cross-correlation (no kernel flip), as Keras.

// x is (n, in_h, in_w, in_c), kernel is (k_h, k_w, in_c, out_c), bias is (out_c),
// y is (n, out_h, out_w, out_c).
// y[b, oh, ow, f] = bias[f] + sum over (i, j, c) inside the input of
//                   x[b, oh*stride_h + i - pad_top, ow*stride_w + j - pad_left, c]
//                   * kernel[i, j, c, f].
void Conv2DForward(const Window& w, const float* x, const float* kernel, const float* bias,
                   int64_t n, float* y) {
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
      for (int64_t ow = 0; ow < w.out_w; ++ow) {
        float* yp = y + ((b * w.out_h + oh) * w.out_w + ow) * w.out_c;
        std::copy(bias, bias + w.out_c, yp);
        for (int64_t i = 0; i < w.k_h; ++i) {
          const int64_t ih = oh * w.stride_h + i - w.pad_top;
          if (ih < 0 || ih >= w.in_h) continue;
          for (int64_t j = 0; j < w.k_w; ++j) {
            const int64_t iw = ow * w.stride_w + j - w.pad_left;
            if (iw < 0 || iw >= w.in_w) continue;
            const float* xp = x + ((b * w.in_h + ih) * w.in_w + iw) * w.in_c;
            const float* kp = kernel + (i * w.k_w + j) * w.in_c * w.out_c;
            for (int64_t c = 0; c < w.in_c; ++c) {
              const float xc = xp[c];
              const float* kc = kp + c * w.out_c;
              for (int64_t f = 0; f < w.out_c; ++f) yp[f] += xc * kc[f];
            }
          }
        }
      }
    }
  }
}

// x is (n, in_h, in_w, in_c), kernel is (k_h, k_w, in_c, out_c), dy is
// (n, out_h, out_w, out_c): the gradient w.r.t. the pre-activation. Overwrites
// dkernel (k_h, k_w, in_c, out_c) and dbias (out_c) with sums over the batch,
// and dx (n, in_h, in_w, in_c); each is skipped when null.
void Conv2DBackward(const Window& w, const float* x, const float* kernel, const float* dy,
                    int64_t n, float* dkernel, float* dbias, float* dx) {
  if (dkernel != nullptr) std::fill(dkernel, dkernel + w.k_h * w.k_w * w.in_c * w.out_c, 0.0f);
  if (dbias != nullptr) std::fill(dbias, dbias + w.out_c, 0.0f);
  if (dx != nullptr) std::fill(dx, dx + n * w.in_h * w.in_w * w.in_c, 0.0f);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
      for (int64_t ow = 0; ow < w.out_w; ++ow) {
        const float* dyp = dy + ((b * w.out_h + oh) * w.out_w + ow) * w.out_c;
        if (dbias != nullptr) {
          for (int64_t f = 0; f < w.out_c; ++f) dbias[f] += dyp[f];
        }
        for (int64_t i = 0; i < w.k_h; ++i) {
          const int64_t ih = oh * w.stride_h + i - w.pad_top;
          if (ih < 0 || ih >= w.in_h) continue;
          for (int64_t j = 0; j < w.k_w; ++j) {
            const int64_t iw = ow * w.stride_w + j - w.pad_left;
            if (iw < 0 || iw >= w.in_w) continue;
            const int64_t x_at = ((b * w.in_h + ih) * w.in_w + iw) * w.in_c;
            const int64_t k_at = (i * w.k_w + j) * w.in_c * w.out_c;
            for (int64_t c = 0; c < w.in_c; ++c) {
              if (dkernel != nullptr) {
                const float xc = x[x_at + c];
                float* dkc = dkernel + k_at + c * w.out_c;
                for (int64_t f = 0; f < w.out_c; ++f) dkc[f] += xc * dyp[f];
              }
              if (dx != nullptr) {
                const float* kc = kernel + k_at + c * w.out_c;
                float sum = 0.0f;
                for (int64_t f = 0; f < w.out_c; ++f) sum += kc[f] * dyp[f];
                dx[x_at + c] += sum;
              }
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// MaxPool2D (in_c == out_c).

// x is (n, in_h, in_w, c), y is (n, out_h, out_w, c), winners is (n, out_h, out_w, c).
// y is the max over the window's positions inside the input (padding never wins);
// winners gets the flat index into x of the first maximum in row-major window
// order.
void MaxPool2DForward(const Window& w, const float* x, int64_t n, float* y, int64_t* winners) {
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
      for (int64_t ow = 0; ow < w.out_w; ++ow) {
        const int64_t y_at = ((b * w.out_h + oh) * w.out_w + ow) * w.out_c;
        for (int64_t c = 0; c < w.out_c; ++c) {
          int64_t best = -1;
          for (int64_t i = 0; i < w.k_h; ++i) {
            const int64_t ih = oh * w.stride_h + i - w.pad_top;
            if (ih < 0 || ih >= w.in_h) continue;
            for (int64_t j = 0; j < w.k_w; ++j) {
              const int64_t iw = ow * w.stride_w + j - w.pad_left;
              if (iw < 0 || iw >= w.in_w) continue;
              const int64_t at = ((b * w.in_h + ih) * w.in_w + iw) * w.in_c + c;
              if (best < 0 || x[at] > x[best]) best = at;
            }
          }
          // Every window holds at least one input position (with 'same' padding,
          // pad_total < k), so best >= 0.
          y[y_at + c] = x[best];
          winners[y_at + c] = best;
        }
      }
    }
  }
}

// dy is (n, out_h, out_w, c), winners as MaxPool2DForward gave them, dx is
// (n, in_h, in_w, c), overwritten: each dy goes to its window's winner.
void MaxPool2DBackward(const Window& w, const float* dy, const int64_t* winners, int64_t n,
                       float* dx) {
  std::fill(dx, dx + n * w.in_h * w.in_w * w.in_c, 0.0f);
  const int64_t count = n * w.out_h * w.out_w * w.out_c;
  for (int64_t o = 0; o < count; ++o) dx[winners[o]] += dy[o];
}

// ---------------------------------------------------------------------------
// AvgPool2D (in_c == out_c) and GlobalAvgPool2D.

// How many values the mean at output (oh, ow) divides by: the window's positions
// inside the input, or (count_include_pad) the whole window, padding included, as
// far as it reaches into the padded input.
int64_t AvgCount(const Window& w, const LayerSpec& layer, int64_t oh, int64_t ow) {
  int64_t rows = 0, cols = 0;
  for (int64_t i = 0; i < w.k_h; ++i) {
    const int64_t ih = oh * w.stride_h + i - w.pad_top;
    rows += layer.count_include_pad ? ih < w.in_h + layer.pad_bottom : ih >= 0 && ih < w.in_h;
  }
  for (int64_t j = 0; j < w.k_w; ++j) {
    const int64_t iw = ow * w.stride_w + j - w.pad_left;
    cols += layer.count_include_pad ? iw < w.in_w + layer.pad_right : iw >= 0 && iw < w.in_w;
  }
  return rows * cols;
}

// x is (n, in_h, in_w, c), y is (n, out_h, out_w, c): y is the sum over the
// window's positions inside the input divided by AvgCount.
void AvgPool2DForward(const Window& w, const LayerSpec& layer, const float* x, int64_t n,
                      float* y) {
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
      for (int64_t ow = 0; ow < w.out_w; ++ow) {
        const float count = static_cast<float>(AvgCount(w, layer, oh, ow));
        float* yp = y + ((b * w.out_h + oh) * w.out_w + ow) * w.out_c;
        for (int64_t c = 0; c < w.out_c; ++c) {
          float sum = 0.0f;
          for (int64_t i = 0; i < w.k_h; ++i) {
            const int64_t ih = oh * w.stride_h + i - w.pad_top;
            if (ih < 0 || ih >= w.in_h) continue;
            for (int64_t j = 0; j < w.k_w; ++j) {
              const int64_t iw = ow * w.stride_w + j - w.pad_left;
              if (iw < 0 || iw >= w.in_w) continue;
              sum += x[((b * w.in_h + ih) * w.in_w + iw) * w.in_c + c];
            }
          }
          yp[c] = sum / count;
        }
      }
    }
  }
}

// dy is (n, out_h, out_w, c), dx (n, in_h, in_w, c), overwritten: each dy / count
// goes to every input position of its window.
void AvgPool2DBackward(const Window& w, const LayerSpec& layer, const float* dy, int64_t n,
                       float* dx) {
  std::fill(dx, dx + n * w.in_h * w.in_w * w.in_c, 0.0f);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
      for (int64_t ow = 0; ow < w.out_w; ++ow) {
        const float count = static_cast<float>(AvgCount(w, layer, oh, ow));
        const float* dyp = dy + ((b * w.out_h + oh) * w.out_w + ow) * w.out_c;
        for (int64_t i = 0; i < w.k_h; ++i) {
          const int64_t ih = oh * w.stride_h + i - w.pad_top;
          if (ih < 0 || ih >= w.in_h) continue;
          for (int64_t j = 0; j < w.k_w; ++j) {
            const int64_t iw = ow * w.stride_w + j - w.pad_left;
            if (iw < 0 || iw >= w.in_w) continue;
            float* dxp = dx + ((b * w.in_h + ih) * w.in_w + iw) * w.in_c;
            for (int64_t c = 0; c < w.in_c; ++c) dxp[c] += dyp[c] / count;
          }
        }
      }
    }
  }
}

// x is (n, h, w, c) as (n, pixels, c), y is (n, c): each channel's mean.
void GlobalAvgPoolForward(const float* x, int64_t n, int64_t pixels, int64_t c, float* y) {
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t k = 0; k < c; ++k) {
      float sum = 0.0f;
      for (int64_t p = 0; p < pixels; ++p) sum += x[(b * pixels + p) * c + k];
      y[b * c + k] = sum / static_cast<float>(pixels);
    }
  }
}

// dy is (n, c), dx (n, pixels, c), overwritten: dy / pixels everywhere.
void GlobalAvgPoolBackward(const float* dy, int64_t n, int64_t pixels, int64_t c, float* dx) {
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t p = 0; p < pixels; ++p) {
      for (int64_t k = 0; k < c; ++k) {
        dx[(b * pixels + p) * c + k] = dy[b * c + k] / static_cast<float>(pixels);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// BatchNorm over the last dimension: x and y are (rows, c), rows = n * H * W.

// Sets mean and inv_std (c each) to the batch's statistics (biased variance),
// summed in double, and moves the moving ones: m = momentum * m + (1 - momentum) *
// batch, the variance unbiased (rows / (rows - 1)) as PyTorch keeps it.
void BatchStatistics(const LayerSpec& layer, const float* x, int64_t rows, int64_t c,
                     float* moving_mean, float* moving_var, float* mean, float* inv_std) {
  for (int64_t k = 0; k < c; ++k) {
    double sum = 0.0;
    for (int64_t r = 0; r < rows; ++r) sum += x[r * c + k];
    const double m = sum / static_cast<double>(rows);
    double squares = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const double d = x[r * c + k] - m;
      squares += d * d;
    }
    const double var = squares / static_cast<double>(rows);
    mean[k] = static_cast<float>(m);
    inv_std[k] = static_cast<float>(1.0 / std::sqrt(var + layer.epsilon));
    const double unbiased = rows > 1 ? squares / static_cast<double>(rows - 1) : var;
    moving_mean[k] = layer.momentum * moving_mean[k] + (1.0f - layer.momentum) * static_cast<float>(m);
    moving_var[k] =
        layer.momentum * moving_var[k] + (1.0f - layer.momentum) * static_cast<float>(unbiased);
  }
}

// y = gamma * (x - mean) * inv_std + beta.
void NormalizeForward(const float* x, int64_t rows, int64_t c, const float* gamma,
                      const float* beta, const float* mean, const float* inv_std, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < c; ++k) {
      y[r * c + k] = gamma[k] * ((x[r * c + k] - mean[k]) * inv_std[k]) + beta[k];
    }
  }
}

// dy is the gradient w.r.t. y's pre-activation. With the batch's statistics
// (batch_stats), x's own gradient goes through the mean and variance too:
//   dx = gamma * inv_std / rows * (rows * dy - sum(dy) - xhat * sum(dy * xhat));
// with fixed statistics dx = gamma * inv_std * dy. dgamma = sum(dy * xhat) and
// dbeta = sum(dy), each skipped when null; dx when null.
void NormalizeBackward(const float* x, const float* dy, int64_t rows, int64_t c,
                       const float* gamma, const float* mean, const float* inv_std,
                       bool batch_stats, float* dgamma, float* dbeta, float* dx) {
  for (int64_t k = 0; k < c; ++k) {
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const double xhat = (x[r * c + k] - mean[k]) * inv_std[k];
      sum_dy += dy[r * c + k];
      sum_dy_xhat += dy[r * c + k] * xhat;
    }
    if (dgamma != nullptr) dgamma[k] = static_cast<float>(sum_dy_xhat);
    if (dbeta != nullptr) dbeta[k] = static_cast<float>(sum_dy);
    if (dx == nullptr) continue;
    const double scale = gamma[k] * inv_std[k];
    for (int64_t r = 0; r < rows; ++r) {
      if (!batch_stats) {
        dx[r * c + k] = static_cast<float>(scale * dy[r * c + k]);
        continue;
      }
      const double xhat = (x[r * c + k] - mean[k]) * inv_std[k];
      dx[r * c + k] = static_cast<float>(
          scale / static_cast<double>(rows) *
          (static_cast<double>(rows) * dy[r * c + k] - sum_dy - xhat * sum_dy_xhat));
    }
  }
}

// ---------------------------------------------------------------------------
// Checks, once per model.

absl::Status CheckSupported(const ModelSpec& spec, const ModelShapes& shapes) {
  const int num_layers = static_cast<int>(spec.layers.size());
  if (num_layers == 0) {
    return absl::InvalidArgumentError("reference backend: the model has no layers");
  }
  for (int l = 0; l < num_layers; ++l) {
    const LayerSpec& layer = spec.layers[l];
    const std::string where =
        absl::StrCat("reference backend: layer ", l, " (", LayerKindName(layer.kind), ")");
    if (layer.has_weights() && layer.activation == Activation::kSoftmax && l + 1 < num_layers) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": softmax is only supported on the output layer"));
    }
    if (layer.kind != LayerKind::kConv2D && layer.kind != LayerKind::kMaxPool2D &&
        layer.kind != LayerKind::kAvgPool2D) {
      continue;
    }
    const Shape& in = shapes.inputs[l];
    const Shape& out = shapes.outputs[l];
    if (in.size() != 3 || out.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": needs an (H, W, C) input, got ", ShapeToString(in)));
    }
    // Shape inference is someone else's code: cross-check it, since an oracle
    // that trusted it would agree with its mistakes.
    const int64_t out_c = layer.kind == LayerKind::kConv2D ? layer.units : in[2];
    const Shape expected = {WindowOutputExtent(layer.padding, in[0], layer.kernel_h,
                                               layer.stride_h, layer.pad_top + layer.pad_bottom),
                            WindowOutputExtent(layer.padding, in[1], layer.kernel_w,
                                               layer.stride_w, layer.pad_left + layer.pad_right),
                            out_c};
    if (out != expected) {
      return absl::InternalError(absl::StrCat(where, ": shape inference gave ", ShapeToString(out),
                                              " for input ", ShapeToString(in), ", expected ",
                                              ShapeToString(expected)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<Backend> MakeReferenceBackend(const BackendOptions& options) {
  return MakeModelBaseBackend(
      "reference", [options](const ModelSpec& spec) -> absl::StatusOr<std::unique_ptr<ModelBase>> {
        auto model = MakeReferenceModel(spec, options);
        if (!model.ok()) return model.status();
        return std::unique_ptr<ModelBase>(std::move(*model));
      });
}

absl::StatusOr<std::unique_ptr<ReferenceModel>> MakeReferenceModel(const ModelSpec& spec,
                                                                   const BackendOptions& options) {
  absl::StatusOr<ModelShapes> shapes = InferShapes(spec);
  if (!shapes.ok()) return shapes.status();
  if (absl::Status status = CheckSupported(spec, *shapes); !status.ok()) return status;
  return std::make_unique<ReferenceModel>(spec, *std::move(shapes), options);
}

ReferenceModel::ReferenceModel(ModelSpec spec, ModelShapes shapes, const BackendOptions& options)
    : ModelBase(std::move(spec), std::move(shapes)), options_(options) {
  outputs_.resize(num_layers());
  dropout_masks_.resize(num_layers());
  pool_winners_.resize(num_layers());
  norm_mean_.resize(num_layers());
  norm_inv_std_.resize(num_layers());
}

absl::StatusOr<std::unique_ptr<ModelBase>> ReferenceModel::MakeSibling(
    const ModelSpec& spec) const {
  absl::StatusOr<std::unique_ptr<ReferenceModel>> model = MakeReferenceModel(spec, options_);
  if (!model.ok()) return model.status();
  return std::unique_ptr<ModelBase>(std::move(*model));
}

absl::StatusOr<const float*> ReferenceModel::Forward(const float* x, int64_t n, bool training,
                                                     int end_layer) {
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("Forward: negative batch size ", n));
  const ModelShapes& s = shapes();
  const int last = num_layers() - 1;
  const int end = std::clamp(end_layer, 1, num_layers());
  // Backward needs layer 0's input after the caller's buffer may be gone.
  input_.assign(x, x + n * ElementCount(spec().input));
  const float* in = input_.data();
  for (int l = 0; l < end; ++l) {
    const LayerSpec& layer = spec().layers[l];
    const int64_t in_size = ElementCount(s.inputs[l]);
    const int64_t out_size = ElementCount(s.outputs[l]);
    std::vector<float>& y = outputs_[l];
    y.resize(n * out_size);
    switch (layer.kind) {
      case LayerKind::kFlatten:
        // (n, H, W, C) -> (n, H*W*C): the same bytes, row-major, channels fastest.
        std::copy(in, in + n * in_size, y.data());
        break;
      case LayerKind::kDense:
        DenseForward(in, Param(l, 0), Param(l, 1), n, in_size, out_size, y.data());
        break;
      case LayerKind::kConv2D:
        Conv2DForward(MakeWindow(layer, s.inputs[l], s.outputs[l]), in, Param(l, 0), Param(l, 1), n,
                      y.data());
        break;
      case LayerKind::kMaxPool2D:
        pool_winners_[l].resize(n * out_size);
        MaxPool2DForward(MakeWindow(layer, s.inputs[l], s.outputs[l]), in, n, y.data(),
                         pool_winners_[l].data());
        break;
      case LayerKind::kAvgPool2D:
        AvgPool2DForward(MakeWindow(layer, s.inputs[l], s.outputs[l]), layer, in, n, y.data());
        break;
      case LayerKind::kGlobalAvgPool2D:
        GlobalAvgPoolForward(in, n, s.inputs[l][0] * s.inputs[l][1], s.inputs[l][2], y.data());
        break;
      case LayerKind::kActivation:
        std::copy(in, in + n * in_size, y.data());  // activated in place below
        break;
      case LayerKind::kBatchNorm: {
        const int64_t c = s.inputs[l].back();
        const int64_t rows = n * in_size / c;
        std::vector<float>& mean = norm_mean_[l];
        std::vector<float>& inv_std = norm_inv_std_[l];
        mean.resize(c);
        inv_std.resize(c);
        if (training && trainable(l)) {
          BatchStatistics(layer, in, rows, c, Param(l, 2), Param(l, 3), mean.data(),
                          inv_std.data());
        } else {
          // Frozen, or not training: the moving statistics (Keras's rule).
          const float* moving_var = Param(l, 3);
          std::copy_n(Param(l, 2), c, mean.data());
          for (int64_t k = 0; k < c; ++k) {
            inv_std[k] = static_cast<float>(
                1.0 / std::sqrt(static_cast<double>(moving_var[k]) + layer.epsilon));
          }
        }
        NormalizeForward(in, rows, c, Param(l, 0), Param(l, 1), mean.data(), inv_std.data(),
                         y.data());
        break;
      }
      case LayerKind::kDropout:
        // x and y are (n, size...). Training: y = x * mask, mask values 0 or
        // 1/(1-rate); otherwise the identity.
        if (training) {
          std::vector<float>& mask = dropout_masks_[l];
          mask.resize(n * out_size);
          DropoutMask(l, n * out_size, mask.data());
          for (int64_t i = 0; i < n * out_size; ++i) y[i] = in[i] * mask[i];
        } else {
          std::copy(in, in + n * in_size, y.data());
        }
        break;
    }
    // The output layer's activation (softmax or sigmoid) is fused into the loss.
    if (layer.takes_activation() && l < last) {
      ActivateInPlace(layer.activation, layer.alpha, y.data(), n * out_size);
    }
    in = y.data();
  }
  batch_ = n;
  kept_for_backward_ = training && end == num_layers();
  return outputs_[end - 1].data();
}

absl::Status ReferenceModel::Backward(const float* dlogits, int64_t n) {
  if (!kept_for_backward_ || n != batch_) {
    return absl::FailedPreconditionError(
        absl::StrCat("Backward on ", n, " examples needs Forward(training=true) on as many first"));
  }
  const ModelShapes& s = shapes();
  const int last = num_layers() - 1;
  const int lowest = lowest_trainable_layer();
  if (lowest > last) return absl::OkStatus();  // nothing trains

  // dy_ holds the gradient w.r.t. layer l's output (for the output layer, its
  // logits); each layer turns it into the gradient w.r.t. its input.
  dy_.assign(dlogits, dlogits + n * ElementCount(s.outputs[last]));
  for (int l = last; l >= lowest; --l) {
    const LayerSpec& layer = spec().layers[l];
    const int64_t in_size = ElementCount(s.inputs[l]);
    const int64_t out_size = ElementCount(s.outputs[l]);
    const float* x = l == 0 ? input_.data() : outputs_[l - 1].data();
    // No input gradient for the lowest trainable layer: nothing below it learns.
    const bool want_dx = l > lowest;
    if (layer.takes_activation() && l < last) {
      MultiplyByDerivative(layer.activation, layer.alpha, outputs_[l].data(), dy_.data(),
                           n * out_size);
    }
    if (want_dx) dx_.resize(n * in_size);
    float* dx = want_dx ? dx_.data() : nullptr;
    switch (layer.kind) {
      case LayerKind::kFlatten:
        // Same bytes in and out: dy is already dx.
        continue;
      case LayerKind::kDropout:
        // dx = dy * mask, in place.
        for (int64_t i = 0; i < n * out_size; ++i) dy_[i] *= dropout_masks_[l][i];
        continue;
      case LayerKind::kDense:
        // Gradient() is null for a frozen layer, which then only passes dx down.
        DenseBackward(x, Param(l, 0), dy_.data(), n, in_size, out_size, Gradient(l, 0),
                      Gradient(l, 1), dx);
        break;
      case LayerKind::kConv2D:
        Conv2DBackward(MakeWindow(layer, s.inputs[l], s.outputs[l]), x, Param(l, 0), dy_.data(), n,
                       Gradient(l, 0), Gradient(l, 1), dx);
        break;
      case LayerKind::kMaxPool2D:
        // Only reached when want_dx: a layer without weights is never the lowest
        // trainable one.
        MaxPool2DBackward(MakeWindow(layer, s.inputs[l], s.outputs[l]), dy_.data(),
                          pool_winners_[l].data(), n, dx);
        break;
      case LayerKind::kAvgPool2D:
        AvgPool2DBackward(MakeWindow(layer, s.inputs[l], s.outputs[l]), layer, dy_.data(), n, dx);
        break;
      case LayerKind::kGlobalAvgPool2D:
        GlobalAvgPoolBackward(dy_.data(), n, s.inputs[l][0] * s.inputs[l][1], s.inputs[l][2], dx);
        break;
      case LayerKind::kActivation:
        continue;  // its derivative is applied above: dy is now dx
      case LayerKind::kBatchNorm: {
        // A trainable one normalised with the batch's statistics (it trained); a
        // frozen one with the moving ones, and only passes dx down.
        const int64_t c = s.inputs[l].back();
        NormalizeBackward(x, dy_.data(), n * in_size / c, c, Param(l, 0), norm_mean_[l].data(),
                          norm_inv_std_[l].data(), trainable(l), Gradient(l, 0), Gradient(l, 1),
                          dx);
        break;
      }
    }
    if (want_dx) std::swap(dy_, dx_);
  }
  return absl::OkStatus();
}

}  // namespace seedproof
