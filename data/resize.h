// Bilinear resizing of one image, half-pixel centres (TensorFlow 2's
// tf.image.resize, antialias off): what a spec's declared resize does.
#pragma once

#include <cstdint>
#include <vector>

namespace seedproof {

// src is (ih, iw, c), dst (oh, ow, c), both row-major; every size >= 1.
void ResizeImage(const float* src, int64_t ih, int64_t iw, int64_t c, float* dst, int64_t oh,
                 int64_t ow);

// The same on 8-bit pixels, each result rounded to the nearest byte.
std::vector<uint8_t> ResizeImageBytes(const std::vector<uint8_t>& src, int64_t ih, int64_t iw,
                                      int64_t c, int64_t oh, int64_t ow);

}  // namespace seedproof
