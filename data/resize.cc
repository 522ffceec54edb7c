#include "data/resize.h"

#include <algorithm>
#include <cmath>

namespace seedproof {

void ResizeImage(const float* src, int64_t ih, int64_t iw, int64_t c, float* dst, int64_t oh,
                 int64_t ow) {
  const double sy = static_cast<double>(ih) / static_cast<double>(oh);
  const double sx = static_cast<double>(iw) / static_cast<double>(ow);
  for (int64_t y = 0; y < oh; ++y) {
    const double fy =
        std::clamp((static_cast<double>(y) + 0.5) * sy - 0.5, 0.0, static_cast<double>(ih - 1));
    const int64_t y0 = static_cast<int64_t>(fy), y1 = std::min(y0 + 1, ih - 1);
    const float wy = static_cast<float>(fy - static_cast<double>(y0));
    for (int64_t x = 0; x < ow; ++x) {
      const double fx =
          std::clamp((static_cast<double>(x) + 0.5) * sx - 0.5, 0.0, static_cast<double>(iw - 1));
      const int64_t x0 = static_cast<int64_t>(fx), x1 = std::min(x0 + 1, iw - 1);
      const float wx = static_cast<float>(fx - static_cast<double>(x0));
      for (int64_t k = 0; k < c; ++k) {
        const float top = src[(y0 * iw + x0) * c + k] * (1 - wx) + src[(y0 * iw + x1) * c + k] * wx;
        const float bottom =
            src[(y1 * iw + x0) * c + k] * (1 - wx) + src[(y1 * iw + x1) * c + k] * wx;
        dst[(y * ow + x) * c + k] = top * (1 - wy) + bottom * wy;
      }
    }
  }
}

std::vector<uint8_t> ResizeImageBytes(const std::vector<uint8_t>& src, int64_t ih, int64_t iw,
                                      int64_t c, int64_t oh, int64_t ow) {
  const std::vector<float> in(src.begin(), src.end());
  std::vector<float> out(oh * ow * c);
  ResizeImage(in.data(), ih, iw, c, out.data(), oh, ow);
  std::vector<uint8_t> bytes(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    bytes[i] = static_cast<uint8_t>(std::clamp(std::floor(out[i] + 0.5f), 0.0f, 255.0f));
  }
  return bytes;
}

}  // namespace seedproof
