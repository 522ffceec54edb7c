#include "experiments/spec_yaml.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace seedproof::spec_internal {

// ---------------------------------------------------------------------------
// Positions, fields and the error list

Where At(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

Field& Field::operator=(const Field& other) {
  if (this != &other) {
    node.reset(other.node);
    present = other.present;
    path = other.path;
    where = other.where;
  }
  return *this;
}

std::string ChildPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : absl::StrCat(parent, ".", key);
}
std::string ElementPath(const std::string& list, size_t i) {
  return absl::StrCat(list, "[", i, "]");
}

SpecPosition ToPosition(const Field& f) { return {f.where.line, f.where.column, f.path}; }

void Errors::Add(Where where, std::string field, std::string message) {
  if (errors_.size() == kMaxKept) {
    ++dropped_;
    return;
  }
  if (field.empty()) field = "(document)";
  // A field path or message can quote what the spec holds, which may be huge.
  if (field.size() > kMaxFieldChars) field = field.substr(0, kMaxFieldChars) + "...";
  if (message.size() > kMaxMessageChars) message = message.substr(0, kMaxMessageChars) + "...";
  errors_.push_back({where.line, where.column, std::move(field), std::move(message)});
}

void Errors::Add(const SpecPosition& p, std::string message) {
  Add(Where{std::max(p.line, 1), std::max(p.column, 1)}, p.field, std::move(message));
}

std::vector<SpecError> Errors::Sorted() const {
  std::vector<SpecError> out = errors_;
  std::stable_sort(out.begin(), out.end(), [](const SpecError& a, const SpecError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  // Duplicates share a position: compare each error with the ones kept at its
  // position only (linear in the errors; 300,000 unknown keys once took 56 s).
  std::vector<SpecError> unique;
  size_t group = 0;  // where the kept errors of the current position start
  for (SpecError& e : out) {
    if (unique.empty() || unique.back().line != e.line || unique.back().column != e.column) {
      group = unique.size();
    }
    const bool seen = std::any_of(
        unique.begin() + static_cast<std::ptrdiff_t>(group), unique.end(),
        [&](const SpecError& u) { return u.field == e.field && u.message == e.message; });
    if (!seen) unique.push_back(std::move(e));
  }
  return unique;
}

absl::Status ErrorsToStatus(const std::string& path, const std::vector<SpecError>& errors,
                            size_t dropped) {
  std::vector<std::string> lines;
  size_t shown = 0, chars = 0;
  for (; shown < errors.size() && shown < kMaxReportedErrors; ++shown) {
    std::string line = FormatSpecError(path, errors[shown]);
    if (shown > 0 && chars + line.size() > kMaxReportedChars) break;
    chars += line.size() + 1;
    lines.push_back(std::move(line));
  }
  if (const size_t more = errors.size() - shown + dropped; more > 0) {
    lines.push_back(absl::StrCat("... and ", more, " more error", more == 1 ? "" : "s",
                                 " (the first ", shown, " are shown)"));
  }
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

// ---------------------------------------------------------------------------
// Reading values

bool IsQuoted(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "!"; }

std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  std::string text = node.Scalar();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  if (IsQuoted(node)) return absl::StrCat("the quoted string \"", text, "\"");
  return absl::StrCat("'", text, "'");
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string OneOf(const std::vector<std::string>& names) { return absl::StrJoin(names, ", "); }

// ---------------------------------------------------------------------------
// MapView

Field MapView::Get(const std::string& key) const {
  if (const Entry* e = Find(key)) return e->value;
  Field f;
  f.path = ChildPath(path_, key);
  f.where = where_;
  return f;
}

Where MapView::KeyWhere(const std::string& key) const {
  const Entry* e = Find(key);
  return e ? e->key_where : where_;
}

const MapView::Entry* MapView::Find(const std::string& key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Reader

bool Reader::Require(const Field& f) {
  if (f.present) return true;
  errors_.Add(f, "required key is missing");
  return false;
}

std::optional<MapView> Reader::Map(const Field& f, const std::vector<std::string>& allowed,
                                   const std::string& what, bool null_is_empty) {
  if (!f.present) return std::nullopt;
  MapView view(f.path, f.where);
  if (f.node.IsNull() && null_is_empty) return view;
  if (!f.node.IsMap()) {
    errors_.Add(f, absl::StrCat("expected ", what, ", got ", Describe(f.node)));
    return std::nullopt;
  }
  std::set<std::string> seen;
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const Where key_where = At(key.Mark());
    if (!key.IsScalar()) {
      errors_.Add(key_where, f.path, absl::StrCat("keys must be names, got ", Describe(key)));
      continue;
    }
    const std::string name = key.Scalar();
    const std::string path = ChildPath(f.path, name);
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string message = absl::StrCat("unknown key '", name, "'");
      std::string close;
      for (const std::string& a : allowed) {
        if (EditDistance(a, name) <= std::max<size_t>(1, a.size() / 3)) close = a;
      }
      if (!close.empty()) absl::StrAppend(&message, " (did you mean '", close, "'?)");
      absl::StrAppend(&message, "; expected one of: ", OneOf(allowed));
      errors_.Add(key_where, path, message);
      continue;
    }
    if (!seen.insert(name).second) {
      errors_.Add(key_where, path, absl::StrCat("key '", name, "' appears twice"));
      continue;
    }
    Field child;
    child.node.reset(value);
    child.present = true;
    child.path = path;
    // A null value's mark points past the key (often to the next line).
    child.where = value.IsNull() ? key_where : At(value.Mark());
    view.Append({name, key_where, std::move(child)});
  }
  return view;
}

std::optional<std::vector<Field>> Reader::List(const Field& f, const std::string& what,
                                               bool scalar_ok) {
  if (!f.present) return std::nullopt;
  if (scalar_ok && f.node.IsScalar()) return std::vector<Field>{f};
  if (!f.node.IsSequence()) {
    errors_.Add(f, absl::StrCat("expected ", what, ", got ", Describe(f.node)));
    return std::nullopt;
  }
  std::vector<Field> out;
  size_t i = 0;
  for (auto it = f.node.begin(); it != f.node.end(); ++it, ++i) {
    Field element;
    element.node.reset(*it);
    element.present = true;
    element.path = ElementPath(f.path, i);
    element.where = it->IsNull() ? f.where : At(it->Mark());
    out.push_back(std::move(element));
  }
  return out;
}

std::optional<std::string> Reader::Text(const Field& f, const std::string& what) {
  if (!f.present) return std::nullopt;
  if (!f.node.IsScalar()) {
    errors_.Add(f, absl::StrCat("expected ", what, ", got ", Describe(f.node)));
    return std::nullopt;
  }
  return f.node.Scalar();
}

std::optional<std::string> Reader::Name(const Field& f) {
  auto text = Text(f, "a name");
  if (!text) return std::nullopt;
  if (!ValidName(*text)) {
    errors_.Add(f, absl::StrCat("expected a name of letters, digits, '_', '.', '+' or '-', got ",
                                Describe(f.node)));
    return std::nullopt;
  }
  return text;
}

bool Reader::ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' ||
           c == '-';
  });
}

std::optional<int64_t> Reader::Int(const Field& f, int64_t min, int64_t max) {
  if (!f.present) return std::nullopt;
  const std::string expected = RangeText("an integer", min, max);
  if (!f.node.IsScalar() || IsQuoted(f.node)) {
    errors_.Add(f, absl::StrCat("expected ", expected, ", got ", Describe(f.node)));
    return std::nullopt;
  }
  const std::string& text = f.node.Scalar();
  int64_t value = 0;
  const bool digits = !text.empty() &&
                      std::all_of(text.begin() + (text[0] == '-' || text[0] == '+' ? 1 : 0),
                                  text.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                      text != "-" && text != "+";
  if (!digits || !absl::SimpleAtoi(text, &value)) {
    errors_.Add(f, absl::StrCat("expected ", expected, ", got ", Describe(f.node)));
    return std::nullopt;
  }
  if (value < min || value > max) {
    errors_.Add(f, absl::StrCat("expected ", expected, ", got ", value));
    return std::nullopt;
  }
  return value;
}

std::optional<uint64_t> Reader::Unsigned(const Field& f) {
  if (!f.present) return std::nullopt;
  const char* expected = "an integer in [0, 2^64)";
  uint64_t value = 0;
  if (!f.node.IsScalar() || IsQuoted(f.node) || f.node.Scalar().empty() ||
      !std::all_of(f.node.Scalar().begin(), f.node.Scalar().end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(f.node.Scalar(), &value)) {
    errors_.Add(f, absl::StrCat("expected ", expected, ", got ", Describe(f.node)));
    return std::nullopt;
  }
  return value;
}

std::optional<double> Reader::Number(const Field& f, Bound bound) {
  if (!f.present) return std::nullopt;
  const std::string expected =
      absl::StrCat("a number", bound == Bound::kPositive       ? " > 0"
                               : bound == Bound::kNonNegative  ? " >= 0"
                               : bound == Bound::kUnitInterval ? " in [0, 1)"
                                                               : "");
  double value = 0;
  bool ok = f.node.IsScalar() && !IsQuoted(f.node);
  if (ok) {
    const std::string& text = f.node.Scalar();
    ok = !text.empty() && text.find_first_not_of("0123456789+-.eE") == std::string::npos &&
         absl::SimpleAtod(text, &value) && std::isfinite(value);
  }
  if (!ok) {
    errors_.Add(f, absl::StrCat("expected ", expected, ", got ", Describe(f.node)));
    return std::nullopt;
  }
  const bool in_range = bound == Bound::kPositive       ? value > 0
                        : bound == Bound::kNonNegative  ? value >= 0
                        : bound == Bound::kUnitInterval ? value >= 0 && value < 1
                                                        : true;
  if (!in_range) {
    errors_.Add(f, absl::StrCat("expected ", expected, ", got ", absl::StrFormat("%g", value)));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Reader::Bool(const Field& f) {
  if (!f.present) return std::nullopt;
  if (f.node.IsScalar() && !IsQuoted(f.node)) {
    const std::string& t = f.node.Scalar();
    if (t == "true" || t == "True" || t == "TRUE") return true;
    if (t == "false" || t == "False" || t == "FALSE") return false;
  }
  errors_.Add(f, absl::StrCat("expected true or false, got ", Describe(f.node)));
  return std::nullopt;
}

std::optional<size_t> Reader::Choice(const Field& f, const std::string& what,
                                     const std::vector<std::string>& choices) {
  if (!f.present) return std::nullopt;
  if (!f.node.IsScalar()) {
    errors_.Add(f, absl::StrCat("expected ", what, " (one of: ", OneOf(choices), "), got ",
                                Describe(f.node)));
    return std::nullopt;
  }
  for (size_t i = 0; i < choices.size(); ++i) {
    if (choices[i] == f.node.Scalar()) return i;
  }
  errors_.Add(f, absl::StrCat("unknown ", what, " '", f.node.Scalar(),
                              "'; expected one of: ", OneOf(choices)));
  return std::nullopt;
}

std::string Reader::RangeText(const std::string& kind, int64_t min, int64_t max) {
  if (min == INT64_MIN && max == INT64_MAX) return kind;
  if (max == INT64_MAX) return absl::StrCat(kind, " >= ", min);
  return absl::StrCat(kind, " in [", min, ", ", max, "]");
}

}  // namespace seedproof::spec_internal
