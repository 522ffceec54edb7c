// INTERNAL: included only by the sweep spec parser's .cc files (sweep_parse*.cc,
// spec_yaml.cc), since it includes yaml-cpp. Everyone else reads specs through
// sweep_parse.h.
//
// The kit for reading a YAML spec: positions, field paths, the error list, and the
// reading primitives (Reader), each of which reports its own problems. yaml-cpp
// throws; every call into it must happen under the try in ParseSweepSpecText.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "experiments/sweep.h"
#include "experiments/sweep_parse.h"

namespace seedproof::spec_internal {

// ---------------------------------------------------------------------------
// Positions, fields and the error list

struct Where {
  int line = 1;  // 1-based
  int column = 1;
};

Where At(const YAML::Mark& mark);

// A value in the document: its node (absent for a missing key), its field path
// and where a message about it points (for a missing key, the parent mapping).
//
// yaml-cpp's Node::operator= writes through to the node it refers to (it would
// change the document), so a Field rebinds its node with reset() on assignment.
struct Field {
  YAML::Node node;
  bool present = false;
  std::string path;
  Where where;

  Field() = default;
  Field(const Field&) = default;
  Field& operator=(const Field& other);
};

std::string ChildPath(const std::string& parent, const std::string& key);
std::string ElementPath(const std::string& list, size_t i);

SpecPosition ToPosition(const Field& f);

// What one spec's errors may cost: the first kMaxKept are kept (the rest only
// counted), each field path and message cut to a bound, and a status carries the
// first kMaxReportedErrors (at most kMaxReportedChars of them) and a count of the
// others, so that it always fits in a gRPC status, which travels in metadata
// (the client's limit is 8 KiB, and an immediate error is sent with the initial
// metadata), and reaches the user.
inline constexpr size_t kMaxKept = 1000;
inline constexpr size_t kMaxFieldChars = 120;
inline constexpr size_t kMaxMessageChars = 240;
inline constexpr size_t kMaxReportedErrors = 20;
inline constexpr size_t kMaxReportedChars = 2000;

class Errors {
 public:
  void Add(Where where, std::string field, std::string message);
  void Add(const Field& f, std::string message) { Add(f.where, f.path, std::move(message)); }
  void Add(const SpecPosition& p, std::string message);
  size_t size() const { return errors_.size() + dropped_; }
  // Errors beyond the first kMaxKept: counted, not kept.
  size_t dropped() const { return dropped_; }
  // Sorted by position (stable, so one position keeps the order found), duplicates dropped.
  std::vector<SpecError> Sorted() const;

 private:
  std::vector<SpecError> errors_;
  size_t dropped_ = 0;
};

// INVALID_ARGUMENT with the first kMaxReportedErrors errors, one per line, as
// FormatSpecError writes them, and a last line counting the others (those not
// shown and the `dropped` ones never kept).
absl::Status ErrorsToStatus(const std::string& path, const std::vector<SpecError>& errors,
                            size_t dropped = 0);

// ---------------------------------------------------------------------------
// Reading values

bool IsQuoted(const YAML::Node& node);

// "a list", "a mapping", "nothing", "'five'", "the quoted string \"5\"".
std::string Describe(const YAML::Node& node);

size_t EditDistance(const std::string& a, const std::string& b);

// "a, b, c": the choices in a message.
std::string OneOf(const std::vector<std::string>& names);

// A mapping's entries in document order, with lookups by key.
class MapView {
 public:
  struct Entry {
    std::string key;
    Where key_where;
    Field value;
  };

  MapView(std::string path, Where where) : path_(std::move(path)), where_(where) {}

  void Append(Entry entry) { entries_.push_back(std::move(entry)); }
  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& path() const { return path_; }
  Where where() const { return where_; }

  bool Has(const std::string& key) const { return Find(key) != nullptr; }
  // The value of key; for a missing key, a Field that is not present, placed at
  // this mapping.
  Field Get(const std::string& key) const;
  Where KeyWhere(const std::string& key) const;

 private:
  const Entry* Find(const std::string& key) const;

  std::string path_;
  Where where_;
  std::vector<Entry> entries_;
};

// The reading primitives. Each reports its own problems and returns nullopt on
// any problem or when the value is absent.
class Reader {
 public:
  explicit Reader(Errors& errors) : errors_(errors) {}
  Errors& errors() { return errors_; }

  bool Require(const Field& f);

  // A mapping whose keys are among `allowed` (any key when allowed is empty).
  // Unknown and repeated keys are reported, and left out of the view. A null value
  // reads as an empty mapping when null_is_empty.
  std::optional<MapView> Map(const Field& f, const std::vector<std::string>& allowed,
                             const std::string& what = "a mapping", bool null_is_empty = false);

  // A list; a single scalar reads as a one-element list when scalar_ok.
  std::optional<std::vector<Field>> List(const Field& f, const std::string& what,
                                         bool scalar_ok = false);

  // The text of a scalar (plain or quoted).
  std::optional<std::string> Text(const Field& f, const std::string& what);

  // A name usable in arm names and ids.
  std::optional<std::string> Name(const Field& f);
  static bool ValidName(const std::string& s);

  // An integer in [min, max]; `what` names it in messages ("an integer >= 1").
  std::optional<int64_t> Int(const Field& f, int64_t min, int64_t max = INT64_MAX);

  std::optional<uint64_t> Unsigned(const Field& f);

  enum class Bound { kPositive, kNonNegative, kUnitInterval, kAny };
  std::optional<double> Number(const Field& f, Bound bound);

  std::optional<bool> Bool(const Field& f);

  // One of `choices`; returns its index. `what` is "optimizer", "padding", ...
  std::optional<size_t> Choice(const Field& f, const std::string& what,
                               const std::vector<std::string>& choices);

 private:
  static std::string RangeText(const std::string& kind, int64_t min, int64_t max);

  Errors& errors_;
};

}  // namespace seedproof::spec_internal
