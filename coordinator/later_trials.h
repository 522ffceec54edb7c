// Trials a sweep adds as it learns, through the same DAG: confirmation seeds
// (when the exploration trials have all ended, the arms the analysis picks run
// again on fresh seeds, the cure for trying many configurations and showing the
// best) and sequential steps (when a step's trials have all ended, the arms
// still open get the next step's seeds; docs/REPORTS.md, "Sequential seeds").
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "coordinator/store.h"

namespace seedproof {

// For every sweep ready for later trials (Store::SweepsReadyToExtend): analyses
// its results as they stand and adds what they call for (the chosen arms'
// confirmation trials, or the next step's trials of the open arms, with their
// baselines and source models), or ends the wait. Everything it needs is in the
// store, so after a crash the next call picks up where the last one stopped.
// Safe to call from several threads: a step is added once. A sweep whose spec or
// results cannot be analysed ends without later trials (logged); other errors
// are returned and the sweep stays ready, for the next call. The coordinator
// calls it from one background thread.
absl::Status AddLaterTrials(Store& store, int64_t now_ms);

}  // namespace seedproof
