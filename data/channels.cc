#include "data/channels.h"

#include <cstddef>

namespace seedproof {
namespace {

uint8_t Luma(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

float Luma(const float* rgb) { return 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2]; }

template <typename T>
std::vector<T> Convert(const std::vector<T>& in, int from, int to) {
  if (from == to) return in;
  const std::size_t pixels = in.size() / static_cast<std::size_t>(from);
  std::vector<T> out(pixels * static_cast<std::size_t>(to));
  for (std::size_t p = 0; p < pixels; ++p) {
    if (to == 3) {
      out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = in[p];
    } else {
      out[p] = Luma(&in[p * 3]);
    }
  }
  return out;
}

}  // namespace

std::vector<uint8_t> ConvertChannels(const std::vector<uint8_t>& pixels, int from, int to) {
  return Convert(pixels, from, to);
}

std::vector<float> ConvertChannels(const std::vector<float>& pixels, int from, int to) {
  return Convert(pixels, from, to);
}

}  // namespace seedproof
