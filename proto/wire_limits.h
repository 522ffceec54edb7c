// Sizes both ends of the wire agree on: the coordinator's server and its clients.
#pragma once

#include <cstdint>

namespace seedproof {

// The largest gRPC message either side sends or accepts (gRPC's default receive
// limit is 4 MiB).
inline constexpr int kMaxMessageBytes = 8 << 20;
// Artifacts stream in chunks of this size.
inline constexpr int64_t kChunkBytes = 1 << 20;

}  // namespace seedproof
