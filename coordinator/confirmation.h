// Confirmation seeds: when a sweep's exploration trials have all ended, the
// analysis picks the arms to confirm (every robust gain, or the best arm) and
// their trials on fresh seeds join the sweep. The cure for trying many
// configurations and showing the best.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "coordinator/store.h"

namespace seedproof {

// For every sweep ready for confirmation (Store::SweepsReadyForConfirmation):
// analyses its results and adds the chosen arms' confirmation trials (with their
// baselines). Safe to call from several threads: a sweep is extended once. A
// sweep whose spec or results cannot be analysed ends without confirmation
// trials (logged); other errors are returned and the sweep stays ready, for the
// next call. The coordinator calls it from one background thread.
absl::Status StartConfirmations(Store& store, int64_t now_ms);

}  // namespace seedproof
