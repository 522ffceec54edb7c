// Gray <-> RGB on pixels stored (pixel, channel): the one conversion every reader
// and a task's preprocessing use. Gray -> RGB repeats the value; RGB -> gray is
// ITU-R 601-2 luma, on bytes as PIL's convert("L") computes it
// ((R*19595 + G*38470 + B*7471 + 0x8000) >> 16), on floats 0.299 R + 0.587 G + 0.114 B.
#pragma once

#include <cstdint>
#include <vector>

namespace seedproof {

// `from` and `to` are 1 or 3; the same count returns the pixels as they are.
std::vector<uint8_t> ConvertChannels(const std::vector<uint8_t>& pixels, int from, int to);
std::vector<float> ConvertChannels(const std::vector<float>& pixels, int from, int to);

}  // namespace seedproof
