#include "experiments/linear_head.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace seedproof {
namespace {

// The objective 0.5·|W|² + C·Σ loss_i (bias unregularised, as scikit-learn) and
// its gradient, in double for a stable line search.
struct Problem {
  LinearHeadKind kind;
  const float* x;
  const int32_t* y;
  int64_t n, d, k;  // examples, inputs, outputs
  double c;

  // params: kernel (d, k) then bias (k).
  double Evaluate(const std::vector<double>& p, std::vector<double>* grad) const {
    const double* w = p.data();
    const double* b = p.data() + d * k;
    double value = 0.0;
    if (grad) grad->assign(p.size(), 0.0);
    for (int64_t j = 0; j < d * k; ++j) {
      value += 0.5 * w[j] * w[j];
      if (grad) (*grad)[j] = w[j];
    }
    std::vector<double> z(k), dz(k);
    for (int64_t i = 0; i < n; ++i) {
      const float* xi = x + i * d;
      for (int64_t o = 0; o < k; ++o) z[o] = b[o];
      for (int64_t a = 0; a < d; ++a) {
        for (int64_t o = 0; o < k; ++o) z[o] += xi[a] * w[a * k + o];
      }
      if (kind == LinearHeadKind::kLogistic && k == 1) {
        const double t = y[i] == 1 ? 1.0 : 0.0;
        value += c * (std::max(z[0], 0.0) - z[0] * t + std::log1p(std::exp(-std::fabs(z[0]))));
        dz[0] = c * (1.0 / (1.0 + std::exp(-z[0])) - t);
      } else if (kind == LinearHeadKind::kLogistic) {
        double max = z[0];
        for (int64_t o = 1; o < k; ++o) max = std::max(max, z[o]);
        double sum = 0.0;
        for (int64_t o = 0; o < k; ++o) sum += std::exp(z[o] - max);
        value += c * (std::log(sum) + max - z[y[i]]);
        for (int64_t o = 0; o < k; ++o) dz[o] = c * (std::exp(z[o] - max) / sum - (o == y[i]));
      } else {
        // Squared hinge per output, one-vs-rest (k == 1: class 1 is the positive side).
        for (int64_t o = 0; o < k; ++o) {
          const double t = (k == 1 ? y[i] == 1 : y[i] == o) ? 1.0 : -1.0;
          const double margin = std::max(0.0, 1.0 - t * z[o]);
          value += c * margin * margin;
          dz[o] = c * -2.0 * t * margin;
        }
      }
      if (!grad) continue;
      for (int64_t a = 0; a < d; ++a) {
        for (int64_t o = 0; o < k; ++o) (*grad)[a * k + o] += xi[a] * dz[o];
      }
      for (int64_t o = 0; o < k; ++o) (*grad)[d * k + o] += dz[o];
    }
    return value;
  }
};

}  // namespace

absl::StatusOr<LinearHead> FitLinearHead(LinearHeadKind kind, const float* x, const int32_t* y,
                                         int64_t n, int64_t inputs, int classes, double c,
                                         int max_iterations) {
  if (n < 1 || inputs < 1 || classes < 2 || !(c > 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot fit a linear head on ", n,
                                                   " examples of ", inputs, " features and ",
                                                   classes, " classes"));
  }
  const int64_t k = classes == 2 ? 1 : classes;
  const Problem problem{kind, x, y, n, inputs, k, c};
  std::vector<double> p(inputs * k + k, 0.0), grad, trial(p.size()), trial_grad;
  double value = problem.Evaluate(p, &grad);
  double step = 1.0;
  LinearHead head;
  for (; head.iterations < max_iterations; ++head.iterations) {
    double norm2 = 0.0;
    for (double g : grad) norm2 += g * g;
    if (std::sqrt(norm2) < 1e-6 * std::max(1.0, std::fabs(value))) break;
    // Armijo backtracking; the step grows again after each success.
    double next = 0.0;
    for (;;) {
      for (size_t j = 0; j < p.size(); ++j) trial[j] = p[j] - step * grad[j];
      next = problem.Evaluate(trial, nullptr);
      if (next <= value - 0.5 * step * norm2 || step < 1e-12) break;
      step *= 0.5;
    }
    if (step < 1e-12) break;
    p.swap(trial);
    value = problem.Evaluate(p, &grad);
    step *= 2.0;
  }
  head.inputs = inputs;
  head.outputs = k;
  head.kernel.assign(p.begin(), p.begin() + inputs * k);
  head.bias.assign(p.begin() + inputs * k, p.end());
  return head;
}

}  // namespace seedproof
