// Sizes both ends of the wire agree on: the coordinator's server and its clients.
#pragma once

#include <cstdint>

namespace seedproof {

// The largest gRPC message either side sends or accepts (gRPC's default receive
// limit is 4 MiB).
inline constexpr int kMaxMessageBytes = 8 << 20;
// The longest strings the coordinator stores from a client: a worker's id, CPU,
// backend names and metrics address (kMaxNameBytes each, at most kMaxBackends
// backends); a sweep spec's text and path; a failed attempt's reason (a longer
// one is cut to this, the rest is not worth a refusal).
inline constexpr int kMaxNameBytes = 256;
inline constexpr int kMaxBackends = 16;
inline constexpr int kMaxSpecBytes = 1 << 20;
inline constexpr int kMaxPathBytes = 4096;
inline constexpr int kMaxReasonBytes = 4096;
// A trial's spec as JSON, which its lease carries (a few KB in practice).
inline constexpr int kMaxTrialSpecBytes = 1 << 20;
// Artifacts stream in chunks of this size.
inline constexpr int64_t kChunkBytes = 1 << 20;

}  // namespace seedproof
