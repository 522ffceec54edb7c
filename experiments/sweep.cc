#include "experiments/sweep.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "experiments/enum_names.h"

namespace seedproof {

namespace {

constexpr std::pair<TrialKind, const char*> kTrialKindNames[] = {
    {TrialKind::kPretrain, "pretrain"},
    {TrialKind::kScratch, "scratch"},
    {TrialKind::kTransfer, "transfer"},
};

}  // namespace

const char* TrialKindName(TrialKind kind) { return NameIn(kTrialKindNames, kind); }

std::optional<TrialKind> TrialKindNamed(std::string_view text) {
  return ValueNamed(kTrialKindNames, text);
}

const char* CorrectionName(Correction correction) {
  switch (correction) {
    case Correction::kHolm:
      return "holm";
    case Correction::kBenjaminiHochberg:
      return "bh";
    case Correction::kNone:
      return "none";
  }
  return "unknown";
}

std::vector<int> SeedLooks(const SeedPolicy& seeds) {
  if (!seeds.sequential()) return {seeds.count};
  std::vector<int> looks;
  for (int n = seeds.min; n < seeds.count; n += std::max(1, seeds.step)) looks.push_back(n);
  looks.push_back(seeds.count);
  return looks;
}

std::string HeadSpec::name() const {
  std::string base;
  switch (kind) {
    case Kind::kDense:
      base = "dense";
      break;
    case Kind::kLogistic:
      base = "logistic";
      break;
    case Kind::kLinearSvm:
      base = "linear_svm";
      break;
  }
  if (kind != Kind::kDense && c != 1.0) base += absl::StrFormat("-c%g", c);
  return base;
}

}  // namespace seedproof
