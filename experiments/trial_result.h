// What a trial measured: the one result type every layer passes around, from
// the trial procedure through the worker, the wire and the store to the reports.
// Value types only (no backend behind them); JSON is experiments/results.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "experiments/sweep.h"

namespace seedproof {

struct EpochRecord {
  int phase = 0;  // index into the trial's phases
  int epoch = 0;  // 1-based, counted across phases
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0;
  double seconds = 0;
  // Training steps and examples of the epoch, for throughput metrics; not in the
  // results file.
  int64_t steps = 0, examples = 0;
};

// kBlocked: never ran because a trial it depends on did not produce its model.
enum class TrialOutcome { kCompleted = 1, kDiverged = 2, kBlocked = 3 };
// "completed", "diverged", "blocked": the words of results files and the database.
const char* TrialOutcomeName(TrialOutcome outcome);
// The outcome whose name is `name`; nullopt for any other text.
std::optional<TrialOutcome> TrialOutcomeNamed(std::string_view name);

struct Provenance {
  SeedStreams seeds;
  int threads = 1;
  std::string cpu_isa;  // widest vector ISA the CPU offers (results depend on it)
  std::string backend;
  std::string source_model_sha256;  // transfer: the reused model's content hash
  // The content hash of the dataset it trained and was tested on (the worker
  // refuses a copy that hashes otherwise); "" for a trial planned before datasets
  // were hashed.
  std::string dataset_sha256;
};

struct TrialResult {
  std::string trial_id;
  TrialKind kind = TrialKind::kPretrain;
  std::string arm, target;
  int seed_index = 0;
  TrialOutcome outcome = TrialOutcome::kCompleted;
  int diverged_epoch = 0;  // the epoch whose loss was not finite
  std::string blocked_by;  // kBlocked: the trial whose failure blocked this one
  std::vector<EpochRecord> epochs;
  // Wall time of each phase (a fitted head: one), everything it does: computing or
  // finding cached prefix outputs, the epochs, their validation.
  std::vector<double> phase_seconds;
  double test_loss = 0, test_accuracy = 0;
  int64_t test_examples = 0;
  double wall_seconds = 0;
  Provenance provenance;
  std::string model_sha256;  // pretrain: the artifact it produced
};

// A result naming the trial (id, kind, arm, target, seed index, seed streams),
// nothing measured yet: what RunTrial starts from.
TrialResult ResultFor(const TrialSpec& trial);

// The result of a trial that never ran because `blocked_by` produced no model.
TrialResult BlockedResultFor(const TrialSpec& trial, const std::string& blocked_by);

}  // namespace seedproof
