#include "experiments/sweep.h"

#include "absl/strings/str_format.h"

namespace seedproof {

const char* TrialKindName(TrialKind kind) {
  switch (kind) {
    case TrialKind::kPretrain:
      return "pretrain";
    case TrialKind::kScratch:
      return "scratch";
    case TrialKind::kTransfer:
      return "transfer";
  }
  return "unknown";
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
