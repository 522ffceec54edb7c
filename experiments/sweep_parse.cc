// The sweep spec's reader: YAML (yaml-cpp) in, a validated SweepSpec or every error
// out. yaml-cpp throws; every call into it happens under the try in
// ParseSweepSpecText, so nothing escapes this file. docs/SWEEP_SPEC.md is the
// user's reference for every key handled here.
#include "experiments/sweep_parse.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/dataset.h"
#include "experiments/idx.h"

namespace seedproof {
namespace {

// ---------------------------------------------------------------------------
// Positions, fields and the error list

struct Where {
  int line = 1;  // 1-based
  int column = 1;
};

Where At(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

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
  Field& operator=(const Field& other) {
    if (this != &other) {
      node.reset(other.node);
      present = other.present;
      path = other.path;
      where = other.where;
    }
    return *this;
  }
};

std::string ChildPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : absl::StrCat(parent, ".", key);
}
std::string ElementPath(const std::string& list, size_t i) {
  return absl::StrCat(list, "[", i, "]");
}

SpecPosition ToPosition(const Field& f) { return {f.where.line, f.where.column, f.path}; }

class Errors {
 public:
  void Add(Where where, std::string field, std::string message) {
    if (field.empty()) field = "(document)";
    errors_.push_back({where.line, where.column, std::move(field), std::move(message)});
  }
  void Add(const Field& f, std::string message) { Add(f.where, f.path, std::move(message)); }
  void Add(const SpecPosition& p, std::string message) {
    Add(Where{std::max(p.line, 1), std::max(p.column, 1)}, p.field, std::move(message));
  }
  size_t size() const { return errors_.size(); }
  // Sorted by position (stable, so one position keeps the order found), duplicates dropped.
  std::vector<SpecError> Sorted() const {
    std::vector<SpecError> out = errors_;
    std::stable_sort(out.begin(), out.end(), [](const SpecError& a, const SpecError& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::vector<SpecError> unique;
    for (SpecError& e : out) {
      const bool seen = std::any_of(unique.begin(), unique.end(), [&](const SpecError& u) {
        return u.line == e.line && u.column == e.column && u.field == e.field &&
               u.message == e.message;
      });
      if (!seen) unique.push_back(std::move(e));
    }
    return unique;
  }

 private:
  std::vector<SpecError> errors_;
};

absl::Status ErrorsToStatus(const std::string& path, const std::vector<SpecError>& errors) {
  std::vector<std::string> lines;
  for (const SpecError& e : errors) lines.push_back(FormatSpecError(path, e));
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

// ---------------------------------------------------------------------------
// Reading values

bool IsQuoted(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "!"; }

// "a list", "a mapping", "nothing", "'five'", "the quoted string \"5\"".
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
  Field Get(const std::string& key) const {
    if (const Entry* e = Find(key)) return e->value;
    Field f;
    f.path = ChildPath(path_, key);
    f.where = where_;
    return f;
  }
  Where KeyWhere(const std::string& key) const {
    const Entry* e = Find(key);
    return e ? e->key_where : where_;
  }

 private:
  const Entry* Find(const std::string& key) const {
    for (const Entry& e : entries_) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }

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

  bool Require(const Field& f) {
    if (f.present) return true;
    errors_.Add(f, "required key is missing");
    return false;
  }

  // A mapping whose keys are among `allowed` (any key when allowed is empty).
  // Unknown and repeated keys are reported, and left out of the view. A null value
  // reads as an empty mapping when null_is_empty.
  std::optional<MapView> Map(const Field& f, const std::vector<std::string>& allowed,
                             const std::string& what = "a mapping", bool null_is_empty = false) {
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

  // A list; a single scalar reads as a one-element list when scalar_ok.
  std::optional<std::vector<Field>> List(const Field& f, const std::string& what,
                                         bool scalar_ok = false) {
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

  // The text of a scalar (plain or quoted).
  std::optional<std::string> Text(const Field& f, const std::string& what) {
    if (!f.present) return std::nullopt;
    if (!f.node.IsScalar()) {
      errors_.Add(f, absl::StrCat("expected ", what, ", got ", Describe(f.node)));
      return std::nullopt;
    }
    return f.node.Scalar();
  }

  // A name usable in arm names and ids.
  std::optional<std::string> Name(const Field& f) {
    auto text = Text(f, "a name");
    if (!text) return std::nullopt;
    if (!ValidName(*text)) {
      errors_.Add(f, absl::StrCat("expected a name of letters, digits, '_', '.', '+' or '-', got ",
                                  Describe(f.node)));
      return std::nullopt;
    }
    return text;
  }
  static bool ValidName(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' ||
             c == '-';
    });
  }

  // An integer in [min, max]; `what` names it in messages ("an integer >= 1").
  std::optional<int64_t> Int(const Field& f, int64_t min, int64_t max = INT64_MAX) {
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

  std::optional<uint64_t> Unsigned(const Field& f) {
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

  enum class Bound { kPositive, kNonNegative, kUnitInterval, kAny };
  std::optional<double> Number(const Field& f, Bound bound) {
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

  std::optional<bool> Bool(const Field& f) {
    if (!f.present) return std::nullopt;
    if (f.node.IsScalar() && !IsQuoted(f.node)) {
      const std::string& t = f.node.Scalar();
      if (t == "true" || t == "True" || t == "TRUE") return true;
      if (t == "false" || t == "False" || t == "FALSE") return false;
    }
    errors_.Add(f, absl::StrCat("expected true or false, got ", Describe(f.node)));
    return std::nullopt;
  }

  // One of `choices`; returns its index. `what` is "optimizer", "padding", ...
  std::optional<size_t> Choice(const Field& f, const std::string& what,
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

 private:
  static std::string RangeText(const std::string& kind, int64_t min, int64_t max) {
    if (min == INT64_MIN && max == INT64_MAX) return kind;
    if (max == INT64_MAX) return absl::StrCat(kind, " >= ", min);
    return absl::StrCat(kind, " in [", min, ", ", max, "]");
  }

  Errors& errors_;
};

// ---------------------------------------------------------------------------
// Domain helpers

constexpr double kMaxTrials = 1e6;
const std::vector<std::string> kOptimizerNames = {"sgd", "adam"};
const std::vector<std::string> kOptimizerKeys = {
    "optimizer", "momentum", "nesterov", "weight_decay", "beta1", "beta2", "epsilon"};

std::string ClassList(const std::vector<int32_t>& classes, const char* sep = ", ") {
  return absl::StrJoin(classes, sep);
}

std::vector<int32_t> TaskClasses(const TaskSpec& task) {
  if (!task.binary()) return task.classes;
  std::vector<int32_t> all = task.positive;
  all.insert(all.end(), task.negative.begin(), task.negative.end());
  return all;
}

std::string DefaultTaskName(const TaskSpec& task) {
  if (task.binary()) {
    return absl::StrCat(ClassList(task.positive, "+"), "-vs-", ClassList(task.negative, "+"));
  }
  return absl::StrCat("classes-", ClassList(task.classes, "+"));
}

// The optimizer keys a block sets; applied onto a base by Resolve.
struct OptimizerOverrides {
  std::optional<OptimizerKind> kind;
  std::optional<double> lr, momentum, weight_decay, beta1, beta2, epsilon;
  std::optional<bool> nesterov;
  std::map<std::string, Field> fields;  // the keys given, for messages

  bool any_optimizer_key() const {
    return kind || momentum || weight_decay || beta1 || beta2 || epsilon || nesterov;
  }
};

// Keys naming a different optimizer kind than the base start from that kind's
// defaults; otherwise the base's settings carry over. Then every given key applies.
OptimizerSpec Resolve(const OptimizerSpec& base, const OptimizerOverrides& o) {
  OptimizerSpec out = base;
  if (o.kind && *o.kind != base.kind) {
    out = OptimizerSpec{};
    out.kind = *o.kind;
    out.learning_rate = base.learning_rate;
  }
  if (o.lr) out.learning_rate = static_cast<float>(*o.lr);
  if (o.momentum) out.momentum = static_cast<float>(*o.momentum);
  if (o.nesterov) out.nesterov = *o.nesterov;
  if (o.weight_decay) out.weight_decay = static_cast<float>(*o.weight_decay);
  if (o.beta1) out.beta1 = static_cast<float>(*o.beta1);
  if (o.beta2) out.beta2 = static_cast<float>(*o.beta2);
  if (o.epsilon) out.epsilon = static_cast<float>(*o.epsilon);
  return out;
}

const char* OptimizerName(OptimizerKind kind) {
  return kind == OptimizerKind::kAdam ? "adam" : "sgd";
}

// A listed layer and where it was listed.
struct ListedLayer {
  LayerSpec spec;
  Field field;
};

// Inserts a Flatten before each dense layer that would get a non-flat input; with
// flatten_end, also one at the end when the output is not flat. `map[i]` receives
// the index of listed layer i in the result. input_rank is 1 or 3.
std::vector<LayerSpec> WithFlattens(const std::vector<ListedLayer>& listed, size_t input_rank,
                                    bool flatten_end, std::vector<int>* map = nullptr) {
  std::vector<LayerSpec> out;
  size_t rank = input_rank;
  for (const ListedLayer& l : listed) {
    if (l.spec.kind == LayerKind::kDense && rank != 1) {
      out.push_back(LayerSpec::Flatten());
      rank = 1;
    }
    if (map) map->push_back(static_cast<int>(out.size()));
    out.push_back(l.spec);
    if (l.spec.kind == LayerKind::kFlatten || l.spec.kind == LayerKind::kDense) rank = 1;
    if (l.spec.kind == LayerKind::kConv2D || l.spec.kind == LayerKind::kMaxPool2D) rank = 3;
  }
  if (flatten_end && rank != 1) out.push_back(LayerSpec::Flatten());
  return out;
}

// InferShapes' messages start "layer N (kind): "; the field path already says
// which layer, so that prefix goes.
std::string WithoutLayerPrefix(const std::string& message) {
  if (message.rfind("layer ", 0) == 0) {
    const size_t close = message.find("): ");
    if (close != std::string::npos) return message.substr(close + 3);
  }
  return message;
}

// The first layer of `model` that InferShapes rejects, found by checking ever
// longer prefixes closed by Flatten + Dense(2, softmax); nullopt when valid.
struct LayerProblem {
  size_t layer;
  std::string message;
};
std::optional<LayerProblem> FindLayerProblem(const ModelSpec& model) {
  auto full = InferShapes(model);
  if (full.ok()) return std::nullopt;
  for (size_t n = 1; n < model.layers.size(); ++n) {
    ModelSpec probe;
    probe.input = model.input;
    probe.layers.assign(model.layers.begin(), model.layers.begin() + static_cast<ptrdiff_t>(n));
    probe.layers.push_back(LayerSpec::Flatten());
    probe.layers.push_back(LayerSpec::Dense(2, Activation::kSoftmax));
    auto shapes = InferShapes(probe);
    if (!shapes.ok())
      return LayerProblem{n - 1, WithoutLayerPrefix(std::string(shapes.status().message()))};
  }
  return LayerProblem{model.layers.size() - 1,
                      WithoutLayerPrefix(std::string(full.status().message()))};
}

// One parsed phase of a schedule, before the optimizer axis is applied.
struct SchedulePhase {
  PhaseSpec phase;  // optimizer resolved from pretrain and this phase's keys
  OptimizerOverrides overrides;
  Field train_field;
};
struct Schedule {
  std::string name;
  std::vector<SchedulePhase> phases;
};
struct OptimizerEntry {
  std::string name;
  OptimizerOverrides overrides;
};
struct NewLayerSet {
  std::string name;
  std::vector<ListedLayer> layers;
  Field field;
};
// Every transfer axis, parsed.
struct TransferAxes {
  std::vector<int> reuse;
  std::vector<NewLayerSet> new_sets;
  std::vector<HeadSpec> heads;
  std::vector<OptimizerEntry> optimizers;  // empty: the axis is absent
  std::vector<double> scales;              // empty: the axis is absent
  std::vector<Schedule> schedules;
  // Which optional axes appear in arm names: those the spec has.
  bool name_new_layers = false, name_optimizer = false, name_lr_scale = false;
};
// (reuse depth, new layer set index) -> the set's layers with flattens inserted.
using Stacks = std::map<std::pair<int, size_t>, std::vector<LayerSpec>>;

// ---------------------------------------------------------------------------
// The spec

class SpecParser {
 public:
  SpecParser(Errors& errors, std::string path) : r_(errors), errors_(errors) {
    spec_.path = std::move(path);
  }

  std::optional<SweepSpec> Parse(const YAML::Node& root);

 private:
  // Parts, each reporting its own errors.
  void ParseDataset(const Field& f);
  std::optional<TaskSpec> ParseTask(const Field& f, bool is_source, TaskPositions* positions,
                                    bool* others);
  std::optional<std::vector<int32_t>> ParseClasses(const Field& f);
  std::optional<Shape> ParseInput(const Field& f);
  std::optional<std::vector<ListedLayer>> ParseLayers(const Field& f, bool allow_empty);
  std::optional<LayerSpec> ParseLayer(const Field& f);
  bool ParseWindow(const Field& f, int* h, int* w);
  bool ParseLayerActivationInit(const MapView& m, LayerSpec* layer);
  OptimizerOverrides ParseOptimizerKeys(const MapView& m, bool with_lr);
  void CheckOptimizerKeys(const OptimizerOverrides& o, const OptimizerSpec& resolved);
  std::optional<PhaseSpec> ParsePretrain(const Field& f);
  void ParseBaseline(const Field& f);
  void ParseSeeds(const Field& f);
  void ParseAnalysis(const Field& f);
  void ParseTransfer(const Field& f);
  std::vector<int> ParseReuse(const Field& f);
  std::vector<NewLayerSet> ParseNewLayerSets(const Field& f);
  std::vector<HeadSpec> ParseHeads(const Field& f, bool* ok);
  std::vector<OptimizerEntry> ParseOptimizerAxis(const Field& f);
  std::vector<double> ParseLrScales(const Field& f);
  std::vector<Schedule> ParseSchedules(const Field& f, bool optimizer_axis);
  Stacks AssembleStacks(const std::vector<int>& reuse, const std::vector<NewLayerSet>& new_sets);
  void BuildArms(const TransferAxes& axes, const Stacks& stacks);

  Reader r_;
  Errors& errors_;
  SweepSpec spec_;
  const DatasetFacts* facts_ = nullptr;  // nullptr: unknown dataset, class checks skipped
  bool resize_ = false;
  Field resize_field_;

  // model
  Activation default_activation_ = Activation::kRelu;
  Initializer default_init_ = Initializer::kGlorotUniform;
  std::optional<std::vector<ListedLayer>> listed_;  // model.layers as listed
  std::vector<int> listed_to_model_;                // listed layer i -> source_model index
  std::optional<ModelShapes> source_shapes_;        // when the source model is valid
  bool model_ok_ = false;
  bool pretrain_ok_ = false;
};

void SpecParser::ParseDataset(const Field& f) {
  spec_.positions.validation = ToPosition(f);
  if (!f.present) {
    spec_.positions.validation = {1, 1, "dataset.validation"};
    facts_ = FindDatasetFacts(spec_.dataset.name);
    return;
  }
  auto m = r_.Map(f, {"name", "dir", "validation", "resize"},
                  "a mapping like {name: fashion-mnist, validation: 5000}");
  if (!m) return;
  spec_.positions.validation = ToPosition(m->Get("validation"));
  const Field name = m->Get("name");
  if (name.present) {
    std::vector<std::string> known = {"fashion-mnist"};
    if (auto i = r_.Choice(name, "dataset", known))
      spec_.dataset.name = known[*i];
    else
      return;  // later class checks would only repeat this error
  }
  facts_ = FindDatasetFacts(spec_.dataset.name);
  if (auto dir = r_.Text(m->Get("dir"), "a folder path")) spec_.dataset.dir = *dir;
  const int64_t max_validation = facts_ ? facts_->train_examples - 1 : INT64_MAX;
  if (auto v = r_.Int(m->Get("validation"), 0, max_validation)) spec_.dataset.validation = *v;
  resize_field_ = m->Get("resize");
  if (auto resize = r_.Bool(resize_field_)) resize_ = *resize;
}

std::optional<std::vector<int32_t>> SpecParser::ParseClasses(const Field& f) {
  auto elements = r_.List(f, "a list of class ids like [5, 6]", /*scalar_ok=*/true);
  if (!elements) return std::nullopt;
  if (elements->empty()) {
    r_.errors().Add(f, "expected a non-empty list of class ids");
    return std::nullopt;
  }
  const int num_classes = facts_ ? facts_->num_classes : 256;
  std::vector<int32_t> classes;
  bool ok = true;
  for (Field e : *elements) {
    e.path = f.path;  // messages about one value of a scalar list name the value
    auto id = r_.Int(e, INT64_MIN);
    if (id && (*id < 0 || *id >= num_classes)) {
      r_.errors().Add(e, absl::StrCat("class ", *id, " is out of range; ",
                                      facts_ ? facts_->name : std::string("the dataset"),
                                      " has classes 0..", num_classes - 1));
      id.reset();
    }
    if (!id) {
      ok = false;
      continue;
    }
    if (std::find(classes.begin(), classes.end(), *id) != classes.end()) {
      r_.errors().Add(e, absl::StrCat("class ", *id, " is listed twice"));
      ok = false;
      continue;
    }
    classes.push_back(static_cast<int32_t>(*id));
  }
  if (!ok) return std::nullopt;
  return classes;
}

std::optional<TaskSpec> SpecParser::ParseTask(const Field& f, bool is_source,
                                              TaskPositions* positions, bool* others) {
  positions->task = positions->classes = positions->train_size = ToPosition(f);
  auto m = r_.Map(f, {"name", "classes", "positive", "negative", "train_size", "subset"},
                  is_source ? "a mapping like {classes: [0, 1, 2]}"
                            : "a mapping like {positive: [6], negative: [5]}");
  if (!m) return std::nullopt;
  TaskSpec task;
  bool ok = true;
  const Field classes = m->Get("classes"), positive = m->Get("positive"),
              negative = m->Get("negative");
  positions->classes = ToPosition(classes.present ? classes : positive.present ? positive : f);
  positions->negative = ToPosition(negative.present ? negative : f);
  if (classes.present && (positive.present || negative.present)) {
    r_.errors().Add(Where{f.where}, f.path,
                    "give either classes (a multi-class task) or positive and negative (a binary "
                    "task), not both");
    ok = false;
  } else if (classes.present) {
    if (is_source && classes.node.IsScalar() && classes.node.Scalar() == "others") {
      *others = true;
    } else if (auto list = ParseClasses(classes)) {
      task.classes = *list;
      if (task.classes.size() < 2) {
        r_.errors().Add(classes,
                        "a multi-class task needs at least 2 classes; for one class against "
                        "others use positive and negative");
        ok = false;
      }
    } else {
      ok = false;
    }
  } else if (positive.present || negative.present) {
    if (!r_.Require(positive) || !r_.Require(negative)) ok = false;
    auto pos = ParseClasses(positive);
    auto neg = ParseClasses(negative);
    if (pos && neg) {
      task.positive = *pos;
      task.negative = *neg;
      auto elements = r_.List(negative, "a list", /*scalar_ok=*/true);
      for (size_t i = 0; i < task.negative.size(); ++i) {
        const int32_t c = task.negative[i];
        if (std::find(task.positive.begin(), task.positive.end(), c) != task.positive.end()) {
          Field at = elements && i < elements->size() ? (*elements)[i] : negative;
          at.path = negative.path;
          r_.errors().Add(at, absl::StrCat("class ", c,
                                           " is also in positive; the two sets must "
                                           "not overlap"));
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  } else {
    r_.errors().Add(Where{f.where}, ChildPath(f.path, "classes"),
                    "required: classes: [...] for a multi-class task, or positive: [...] and "
                    "negative: [...] for a binary one");
    ok = false;
  }

  const Field name = m->Get("name");
  if (name.present) {
    if (auto n = r_.Name(name))
      task.name = *n;
    else
      ok = false;
  } else if (is_source) {
    task.name = "source";
  } else if (ok) {
    task.name = DefaultTaskName(task);
  }

  const Field train_size = m->Get("train_size");
  if (train_size.present) positions->train_size = ToPosition(train_size);
  if (auto n = r_.Int(train_size, 1)) {
    task.train_size = *n;
    // Without the data, an upper bound: every class's full training split.
    const std::vector<int32_t> all = TaskClasses(task);
    if (facts_ && !all.empty() &&
        *n > facts_->max_train_per_class * static_cast<int64_t>(all.size())) {
      r_.errors().Add(
          train_size,
          absl::StrCat("train_size ", *n, " is larger than the task's training data (at most ",
                       WithCommas(facts_->max_train_per_class * static_cast<int64_t>(all.size())),
                       " images: ", all.size(), " classes of ", spec_.dataset.name, ")"));
      ok = false;
    }
  } else if (train_size.present) {
    ok = false;
  }
  const Field subset = m->Get("subset");
  if (auto s = r_.Choice(subset, "subset", {"first", "random"})) {
    task.subset = *s == 0 ? TaskSpec::Subset::kFirst : TaskSpec::Subset::kRandom;
    if (!train_size.present) {
      r_.errors().Add(subset, "subset chooses which train_size examples; set train_size too");
      ok = false;
    }
  } else if (subset.present) {
    ok = false;
  }
  if (!ok) return std::nullopt;
  return task;
}

std::optional<Shape> SpecParser::ParseInput(const Field& f) {
  auto dims = r_.List(f, "a shape like [28, 28, 1] or [784]");
  if (!dims) return std::nullopt;
  if (dims->size() != 1 && dims->size() != 3) {
    r_.errors().Add(f, absl::StrCat("expected [height, width, channels] or [features], got ",
                                    dims->size(), " dimensions"));
    return std::nullopt;
  }
  Shape shape;
  for (const Field& d : *dims) {
    auto v = r_.Int(d, 1, 1 << 20);
    if (!v) return std::nullopt;
    shape.push_back(*v);
  }
  return shape;
}

bool SpecParser::ParseWindow(const Field& f, int* h, int* w) {
  if (f.node.IsSequence()) {
    auto items = r_.List(f, "a size");
    if (!items) return false;
    if (items->size() != 2) {
      r_.errors().Add(
          f, absl::StrCat("expected a size like 3 or [3, 3], got ", items->size(), " values"));
      return false;
    }
    auto a = r_.Int((*items)[0], 1, 4096), b = r_.Int((*items)[1], 1, 4096);
    if (!a || !b) return false;
    *h = static_cast<int>(*a);
    *w = static_cast<int>(*b);
    return true;
  }
  auto v = r_.Int(f, 1, 4096);
  if (!v) return false;
  *h = *w = static_cast<int>(*v);
  return true;
}

bool SpecParser::ParseLayerActivationInit(const MapView& m, LayerSpec* layer) {
  bool ok = true;
  const Field activation = m.Get("activation");
  if (auto text = r_.Text(activation, "an activation name")) {
    auto a = ParseActivation(*text);
    if (!a.ok()) {
      r_.errors().Add(activation, std::string(a.status().message()));
      ok = false;
    } else if (*a == Activation::kSoftmax) {
      r_.errors().Add(activation, "softmax is only for the output layer, which the sweep adds");
      ok = false;
    } else {
      layer->activation = *a;
    }
  } else if (activation.present) {
    ok = false;
  }
  const Field init = m.Get("init");
  if (auto text = r_.Text(init, "an initializer name")) {
    auto i = ParseInitializer(*text);
    if (!i.ok()) {
      r_.errors().Add(init, std::string(i.status().message()));
      ok = false;
    } else {
      layer->init = *i;
    }
  } else if (init.present) {
    ok = false;
  }
  return ok;
}

std::optional<LayerSpec> SpecParser::ParseLayer(const Field& f) {
  const std::string kinds = "flatten, dense, conv2d, maxpool2d, dropout";
  if (f.node.IsScalar() && f.node.Scalar() == "flatten") return LayerSpec::Flatten();
  if (!f.node.IsMap() || f.node.size() != 1) {
    r_.errors().Add(
        f, absl::StrCat("expected one layer like {dense: 300} (one of: ", kinds, "), got ",
                        f.node.IsMap() ? absl::StrCat("a mapping with ", f.node.size(), " keys")
                                       : Describe(f.node)));
    return std::nullopt;
  }
  auto m = r_.Map(f, {});
  if (!m || m->entries().empty()) return std::nullopt;
  const MapView::Entry& entry = m->entries().front();
  const Field& value = entry.value;
  auto kind = ParseLayerKind(entry.key);
  if (!kind.ok()) {
    r_.errors().Add(entry.key_where, value.path, std::string(kind.status().message()));
    return std::nullopt;
  }
  LayerSpec layer;
  layer.kind = *kind;
  const bool scalar = value.node.IsScalar();
  switch (*kind) {
    case LayerKind::kFlatten: {
      if (!value.node.IsNull() && !(value.node.IsMap() && value.node.size() == 0)) {
        r_.errors().Add(value, absl::StrCat("flatten takes no settings: expected {}, got ",
                                            Describe(value.node)));
        return std::nullopt;
      }
      return LayerSpec::Flatten();
    }
    case LayerKind::kDense: {
      layer.activation = default_activation_;
      layer.init = default_init_;
      if (scalar) {
        auto units = r_.Int(value, 1, 1 << 24);
        if (!units) return std::nullopt;
        layer.units = static_cast<int>(*units);
        return layer;
      }
      auto d = r_.Map(value, {"units", "activation", "init"},
                      "a unit count or a mapping like {units: 300, activation: relu}");
      if (!d) return std::nullopt;
      bool ok = r_.Require(d->Get("units"));
      if (auto units = r_.Int(d->Get("units"), 1, 1 << 24))
        layer.units = static_cast<int>(*units);
      else
        ok = false;
      ok = ParseLayerActivationInit(*d, &layer) && ok;
      if (!ok) return std::nullopt;
      return layer;
    }
    case LayerKind::kConv2D: {
      layer.activation = default_activation_;
      layer.init = default_init_;
      auto c = r_.Map(value, {"filters", "kernel", "stride", "padding", "activation", "init"},
                      "a mapping like {filters: 32, kernel: 3, padding: same}");
      if (!c) return std::nullopt;
      bool ok = r_.Require(c->Get("filters"));
      ok = r_.Require(c->Get("kernel")) && ok;
      if (auto filters = r_.Int(c->Get("filters"), 1, 1 << 20))
        layer.units = static_cast<int>(*filters);
      else
        ok = false;
      if (c->Has("kernel"))
        ok = ParseWindow(c->Get("kernel"), &layer.kernel_h, &layer.kernel_w) && ok;
      if (c->Has("stride"))
        ok = ParseWindow(c->Get("stride"), &layer.stride_h, &layer.stride_w) && ok;
      if (auto p = r_.Choice(c->Get("padding"), "padding", {"valid", "same"})) {
        layer.padding = *p == 0 ? Padding::kValid : Padding::kSame;
      } else if (c->Has("padding")) {
        ok = false;
      }
      ok = ParseLayerActivationInit(*c, &layer) && ok;
      if (!ok) return std::nullopt;
      return layer;
    }
    case LayerKind::kMaxPool2D: {
      if (scalar) {
        auto window = r_.Int(value, 1, 4096);
        if (!window) return std::nullopt;
        return LayerSpec::MaxPool2D(static_cast<int>(*window));
      }
      auto p = r_.Map(value, {"window", "stride", "padding"},
                      "a window size or a mapping like {window: 2, stride: 2}");
      if (!p) return std::nullopt;
      bool ok = r_.Require(p->Get("window"));
      if (p->Has("window"))
        ok = ParseWindow(p->Get("window"), &layer.kernel_h, &layer.kernel_w) && ok;
      layer.stride_h = layer.kernel_h;
      layer.stride_w = layer.kernel_w;
      if (p->Has("stride"))
        ok = ParseWindow(p->Get("stride"), &layer.stride_h, &layer.stride_w) && ok;
      if (auto pad = r_.Choice(p->Get("padding"), "padding", {"valid", "same"})) {
        layer.padding = *pad == 0 ? Padding::kValid : Padding::kSame;
      } else if (p->Has("padding")) {
        ok = false;
      }
      if (!ok) return std::nullopt;
      return layer;
    }
    case LayerKind::kDropout: {
      Field rate = value;
      if (!scalar) {
        auto d = r_.Map(value, {"rate"}, "a rate or a mapping like {rate: 0.2}");
        if (!d) return std::nullopt;
        if (!r_.Require(d->Get("rate"))) return std::nullopt;
        rate = d->Get("rate");
      }
      auto v = r_.Number(rate, Reader::Bound::kUnitInterval);
      if (!v) return std::nullopt;
      return LayerSpec::Dropout(static_cast<float>(*v));
    }
  }
  return std::nullopt;
}

std::optional<std::vector<ListedLayer>> SpecParser::ParseLayers(const Field& f, bool allow_empty) {
  auto entries = r_.List(f, "a list of layers like [{dense: 300}, {dense: 100}]");
  if (!entries) return std::nullopt;
  if (entries->empty() && !allow_empty) {
    r_.errors().Add(f, "expected at least one layer (the output layer is added by the sweep)");
    return std::nullopt;
  }
  std::vector<ListedLayer> layers;
  bool ok = true;
  for (const Field& e : *entries) {
    if (auto layer = ParseLayer(e))
      layers.push_back({*layer, e});
    else
      ok = false;
  }
  if (!ok) return std::nullopt;
  return layers;
}

OptimizerOverrides SpecParser::ParseOptimizerKeys(const MapView& m, bool with_lr) {
  OptimizerOverrides o;
  for (const std::string& key : kOptimizerKeys) {
    if (m.Has(key)) o.fields[key] = m.Get(key);
  }
  if (auto i = r_.Choice(m.Get("optimizer"), "optimizer", kOptimizerNames)) {
    o.kind = *i == 0 ? OptimizerKind::kSgd : OptimizerKind::kAdam;
  }
  if (with_lr) {
    if (m.Has("lr")) o.fields["lr"] = m.Get("lr");
    o.lr = r_.Number(m.Get("lr"), Reader::Bound::kPositive);
  }
  o.momentum = r_.Number(m.Get("momentum"), Reader::Bound::kUnitInterval);
  o.nesterov = r_.Bool(m.Get("nesterov"));
  o.weight_decay = r_.Number(m.Get("weight_decay"), Reader::Bound::kNonNegative);
  o.beta1 = r_.Number(m.Get("beta1"), Reader::Bound::kUnitInterval);
  o.beta2 = r_.Number(m.Get("beta2"), Reader::Bound::kUnitInterval);
  o.epsilon = r_.Number(m.Get("epsilon"), Reader::Bound::kPositive);
  return o;
}

// Keys that do not apply to the optimizer a block ends up with.
void SpecParser::CheckOptimizerKeys(const OptimizerOverrides& o, const OptimizerSpec& resolved) {
  const char* name = OptimizerName(resolved.kind);
  if (resolved.kind == OptimizerKind::kAdam) {
    for (const char* key : {"momentum", "nesterov"}) {
      auto it = o.fields.find(key);
      if (it != o.fields.end()) {
        r_.errors().Add(it->second,
                        absl::StrCat(key, " applies to sgd only; this block uses ", name));
      }
    }
  } else {
    for (const char* key : {"beta1", "beta2", "epsilon"}) {
      auto it = o.fields.find(key);
      if (it != o.fields.end()) {
        r_.errors().Add(it->second,
                        absl::StrCat(key, " applies to adam only; this block uses ", name));
      }
    }
    auto it = o.fields.find("nesterov");
    if (it != o.fields.end() && resolved.nesterov && resolved.momentum <= 0.0f) {
      r_.errors().Add(it->second, "nesterov needs momentum > 0");
    }
  }
}

std::optional<PhaseSpec> SpecParser::ParsePretrain(const Field& f) {
  std::vector<std::string> keys = kOptimizerKeys;
  keys.insert(keys.begin(), {"epochs", "lr", "batch_size"});
  auto m = r_.Map(f, keys, "a mapping like {optimizer: sgd, lr: 1.0e-3, epochs: 20}");
  if (!m) return std::nullopt;
  PhaseSpec phase;
  phase.train.kind = TrainSelection::Kind::kAll;
  const size_t before = errors_.size();
  r_.Require(m->Get("epochs"));
  r_.Require(m->Get("lr"));
  if (auto e = r_.Int(m->Get("epochs"), 1, 100000)) phase.epochs = static_cast<int>(*e);
  if (auto b = r_.Int(m->Get("batch_size"), 1, 1 << 20)) phase.batch_size = *b;
  OptimizerOverrides o = ParseOptimizerKeys(*m, /*with_lr=*/true);
  phase.optimizer = Resolve(OptimizerSpec{}, o);
  CheckOptimizerKeys(o, phase.optimizer);
  if (errors_.size() != before) return std::nullopt;
  return phase;
}

void SpecParser::ParseBaseline(const Field& f) {
  spec_.scratch = spec_.pretrain;
  auto m = r_.Map(f, {"scratch"}, "a mapping like {scratch: {epochs: 20, lr: 1.0e-3}}");
  if (!m) return;
  std::vector<std::string> keys = kOptimizerKeys;
  keys.insert(keys.begin(), {"epochs", "lr", "batch_size"});
  auto s = r_.Map(m->Get("scratch"), keys, "a mapping like {epochs: 20, lr: 1.0e-3}",
                  /*null_is_empty=*/true);
  if (!s) return;
  if (auto e = r_.Int(s->Get("epochs"), 1, 100000)) spec_.scratch.epochs = static_cast<int>(*e);
  if (auto b = r_.Int(s->Get("batch_size"), 1, 1 << 20)) spec_.scratch.batch_size = *b;
  OptimizerOverrides o = ParseOptimizerKeys(*s, /*with_lr=*/true);
  spec_.scratch.optimizer = Resolve(spec_.pretrain.optimizer, o);
  CheckOptimizerKeys(o, spec_.scratch.optimizer);
}

void SpecParser::ParseSeeds(const Field& f) {
  if (!f.present) return;
  SeedPolicy& seeds = spec_.seeds;
  if (f.node.IsScalar()) {
    if (auto n = r_.Int(f, 1, 100000)) seeds.count = static_cast<int>(*n);
    return;
  }
  auto m = r_.Map(f, {"count", "source", "base", "fixed"},
                  "a seed count or a mapping like {count: 20, source: 1}");
  if (!m) return;
  r_.Require(m->Get("count"));
  if (auto n = r_.Int(m->Get("count"), 1, 100000))
    seeds.count = static_cast<int>(*n);
  else
    return;  // source is checked against count
  if (auto s = r_.Int(m->Get("source"), 1, seeds.count)) seeds.source_seeds = static_cast<int>(*s);
  if (auto b = r_.Unsigned(m->Get("base"))) seeds.base = *b;
  auto fixed = r_.Map(m->Get("fixed"), {"init", "order", "subset"},
                      "a mapping like {init: 7} of streams held fixed");
  if (fixed) {
    if (auto v = r_.Unsigned(fixed->Get("init"))) seeds.fixed_init = *v;
    if (auto v = r_.Unsigned(fixed->Get("order"))) seeds.fixed_order = *v;
    if (auto v = r_.Unsigned(fixed->Get("subset"))) seeds.fixed_subset = *v;
  }
}

void SpecParser::ParseAnalysis(const Field& f) {
  if (!f.present) return;
  auto m = r_.Map(f, {"level", "correction", "confirmation"},
                  "a mapping like {level: 0.95, correction: holm}", /*null_is_empty=*/true);
  if (!m) return;
  AnalysisSpec& analysis = spec_.analysis;
  const Field level = m->Get("level");
  if (auto v = r_.Number(level, Reader::Bound::kUnitInterval)) {
    if (*v < 0.5) {
      r_.errors().Add(level, absl::StrFormat("expected a confidence level in [0.5, 1), like 0.95; "
                                             "got %g",
                                             *v));
    } else {
      analysis.level = *v;
    }
  }
  if (auto c = r_.Choice(m->Get("correction"), "correction", {"holm", "bh", "none"})) {
    analysis.correction =
        std::array{Correction::kHolm, Correction::kBenjaminiHochberg, Correction::kNone}[*c];
  }
  auto confirm =
      r_.Map(m->Get("confirmation"), {"seeds", "arms"}, "a mapping like {seeds: 10, arms: robust}");
  if (!confirm) return;
  r_.Require(confirm->Get("seeds"));
  // Fewer than 5 paired seeds can never be called anything (docs/REPORTS.md); nor
  // can so few that the signed-rank test's smallest p (2 / 2^n) is not below alpha.
  const Field seeds = confirm->Get("seeds");
  if (auto n = r_.Int(seeds, 5, 100000)) {
    int needed = 5;
    while (2 * std::pow(0.5, needed) >= 1 - analysis.level) ++needed;
    if (*n < needed) {
      r_.errors().Add(seeds,
                      absl::StrFormat("%d confirmation seeds can never show a gain at "
                                      "level %g (the smallest p on %d seeds is %g); at "
                                      "least %d are needed",
                                      *n, analysis.level, *n, 2 * std::pow(0.5, *n), needed));
    } else {
      analysis.confirmation.seeds = static_cast<int>(*n);
    }
  }
  if (auto a = r_.Choice(confirm->Get("arms"), "arms to confirm", {"robust", "best"})) {
    analysis.confirmation.arms =
        *a == 0 ? ConfirmationSpec::Arms::kRobust : ConfirmationSpec::Arms::kBest;
  }
}

void SpecParser::ParseTransfer(const Field& f) {
  auto m = r_.Map(f, {"reuse", "new_layers", "heads", "schedules", "optimizers", "lr_scale"},
                  "a mapping like {reuse: [1, 2], schedules: {...}}");
  if (!m) return;
  const size_t errors_before = errors_.size();
  TransferAxes axes;
  r_.Require(m->Get("reuse"));
  axes.reuse = ParseReuse(m->Get("reuse"));
  axes.new_sets = ParseNewLayerSets(m->Get("new_layers"));
  bool heads_ok = true;
  axes.heads = ParseHeads(m->Get("heads"), &heads_ok);
  axes.optimizers = ParseOptimizerAxis(m->Get("optimizers"));
  axes.scales = ParseLrScales(m->Get("lr_scale"));
  const bool any_dense = std::any_of(axes.heads.begin(), axes.heads.end(), [](const HeadSpec& h) {
    return h.kind == HeadSpec::Kind::kDense;
  });
  const Field sched_field = m->Get("schedules");
  if (any_dense) r_.Require(sched_field);
  axes.schedules = ParseSchedules(sched_field, !axes.optimizers.empty());
  if (!any_dense && heads_ok && sched_field.present) {
    r_.errors().Add(sched_field, "schedules train dense heads only, and heads has none");
  }
  if (errors_.size() != errors_before || !model_ok_ || !pretrain_ok_) return;

  const Stacks stacks = AssembleStacks(axes.reuse, axes.new_sets);
  if (errors_.size() != errors_before) return;
  axes.name_new_layers = m->Has("new_layers");
  axes.name_optimizer = !axes.optimizers.empty();
  axes.name_lr_scale = !axes.scales.empty();
  BuildArms(axes, stacks);
}

std::vector<int> SpecParser::ParseReuse(const Field& reuse_field) {
  std::vector<int> reuse;
  const int listed = listed_ ? static_cast<int>(listed_->size()) : 0;
  if (auto items = r_.List(reuse_field, "a reuse depth or a list of them like [1, 2, 3]", true)) {
    if (items->empty()) r_.errors().Add(reuse_field, "expected at least one reuse depth");
    for (Field item : *items) {
      item.path = reuse_field.path;
      auto k = r_.Int(item, INT64_MIN);
      if (!k) continue;
      if (*k < 1) {
        r_.errors().Add(item, absl::StrCat("reuse depth ", *k,
                                           " must be >= 1 (the scratch baseline is the arm without "
                                           "reuse)"));
      } else if (listed_ && *k > listed) {
        r_.errors().Add(item, absl::StrCat(*k, " is deeper than the source model (", listed,
                                           " reusable layers)"));
      } else if (std::find(reuse.begin(), reuse.end(), *k) != reuse.end()) {
        r_.errors().Add(item, absl::StrCat("reuse depth ", *k, " is listed twice"));
      } else {
        reuse.push_back(static_cast<int>(*k));
      }
    }
  }
  return reuse;
}

std::vector<NewLayerSet> SpecParser::ParseNewLayerSets(const Field& new_field) {
  std::vector<NewLayerSet> new_sets;
  if (!new_field.present) {
    new_sets.push_back({"none", {}, new_field});
  } else if (auto sets =
                 r_.Map(new_field, {},
                        "a mapping of named layer lists like {none: [], wide: [{dense: 100}]}")) {
    if (sets->entries().empty())
      r_.errors().Add(new_field, "expected at least one named layer list");
    for (const MapView::Entry& e : sets->entries()) {
      if (!Reader::ValidName(e.key)) {
        r_.errors().Add(e.key_where, e.value.path,
                        "expected a name of letters, digits, '_', '.', '+' or '-'");
        continue;
      }
      if (e.value.node.IsNull()) {
        new_sets.push_back({e.key, {}, e.value});
      } else if (auto layers = ParseLayers(e.value, /*allow_empty=*/true)) {
        new_sets.push_back({e.key, *layers, e.value});
      }
    }
  }
  return new_sets;
}

// *ok is false when some entry was rejected.
std::vector<HeadSpec> SpecParser::ParseHeads(const Field& heads_field, bool* ok) {
  std::vector<HeadSpec> heads;
  const size_t errors_before = errors_.size();
  if (!heads_field.present) {
    heads.push_back(HeadSpec{});
  } else if (auto items = r_.List(heads_field, "a list of heads like [dense, logistic]", true)) {
    if (items->empty()) r_.errors().Add(heads_field, "expected at least one head");
    const std::vector<std::string> names = {"dense", "logistic", "linear_svm"};
    for (Field item : *items) {
      HeadSpec head;
      Field kind_field = item;
      std::optional<MapView> settings;
      if (item.node.IsMap()) {
        auto hm = r_.Map(item, {});
        if (!hm) continue;
        if (hm->entries().size() != 1) {
          r_.errors().Add(item, "expected one head like logistic or {logistic: {c: 0.1}}");
          continue;
        }
        const MapView::Entry& e = hm->entries().front();
        kind_field = e.value;
        kind_field.node.reset(YAML::Node(e.key));
        kind_field.where = e.key_where;
        kind_field.path = item.path;
        settings = r_.Map(e.value, {"c"}, "a mapping like {c: 1.0}", /*null_is_empty=*/true);
        if (!settings) continue;
      } else {
        kind_field.path = heads_field.path;
      }
      auto kind = r_.Choice(kind_field, "head", names);
      if (!kind) continue;
      head.kind = *kind == 0   ? HeadSpec::Kind::kDense
                  : *kind == 1 ? HeadSpec::Kind::kLogistic
                               : HeadSpec::Kind::kLinearSvm;
      if (settings && settings->Has("c")) {
        if (head.kind == HeadSpec::Kind::kDense) {
          r_.errors().Add(settings->Get("c"), "c applies to logistic and linear_svm heads only");
          continue;
        }
        auto c = r_.Number(settings->Get("c"), Reader::Bound::kPositive);
        if (!c) continue;
        head.c = *c;
      }
      const bool twice = std::any_of(heads.begin(), heads.end(), [&](const HeadSpec& h) {
        return h.kind == head.kind && h.c == head.c;
      });
      if (twice) {
        r_.errors().Add(kind_field, absl::StrCat("head '", head.name(), "' is listed twice"));
        continue;
      }
      heads.push_back(head);
    }
  }
  *ok = errors_.size() == errors_before;
  return heads;
}

std::vector<OptimizerEntry> SpecParser::ParseOptimizerAxis(const Field& opt_field) {
  std::vector<OptimizerEntry> optimizers;
  if (opt_field.present && opt_field.node.IsMap()) {
    std::vector<std::string> keys = kOptimizerKeys;
    if (auto entries = r_.Map(opt_field, {})) {
      for (const MapView::Entry& e : entries->entries()) {
        if (!Reader::ValidName(e.key)) {
          r_.errors().Add(e.key_where, e.value.path,
                          "expected a name of letters, digits, '_', '.', '+' or '-'");
          continue;
        }
        auto settings = r_.Map(e.value, keys, "a mapping like {optimizer: sgd, momentum: 0.9}",
                               /*null_is_empty=*/true);
        if (!settings) continue;
        OptimizerEntry entry{e.key, ParseOptimizerKeys(*settings, /*with_lr=*/false)};
        if (!settings->Has("optimizer")) {
          if (e.key == "sgd" || e.key == "adam") {
            entry.overrides.kind = e.key == "sgd" ? OptimizerKind::kSgd : OptimizerKind::kAdam;
          } else {
            r_.errors().Add(settings->Get("optimizer"),
                            absl::StrCat("required key is missing (the name '", e.key,
                                         "' is not an optimizer: sgd, adam)"));
            continue;
          }
        }
        CheckOptimizerKeys(entry.overrides, Resolve(spec_.pretrain.optimizer, entry.overrides));
        optimizers.push_back(std::move(entry));
      }
      if (entries->entries().empty()) r_.errors().Add(opt_field, "expected at least one optimizer");
    }
  } else if (auto items = r_.List(
                 opt_field, "a list of optimizers like [sgd, adam] or a mapping of named settings",
                 true)) {
    if (items->empty()) r_.errors().Add(opt_field, "expected at least one optimizer");
    for (Field item : *items) {
      item.path = opt_field.path;
      auto i = r_.Choice(item, "optimizer", kOptimizerNames);
      if (!i) continue;
      if (std::any_of(optimizers.begin(), optimizers.end(),
                      [&](const OptimizerEntry& o) { return o.name == kOptimizerNames[*i]; })) {
        r_.errors().Add(item,
                        absl::StrCat("optimizer '", kOptimizerNames[*i], "' is listed twice"));
        continue;
      }
      OptimizerEntry entry{kOptimizerNames[*i], {}};
      entry.overrides.kind = *i == 0 ? OptimizerKind::kSgd : OptimizerKind::kAdam;
      optimizers.push_back(std::move(entry));
    }
  }
  return optimizers;
}

std::vector<double> SpecParser::ParseLrScales(const Field& scale_field) {
  std::vector<double> scales;
  if (auto items = r_.List(scale_field, "a number or a list of numbers like [1.0, 0.1]", true)) {
    if (items->empty()) r_.errors().Add(scale_field, "expected at least one scale");
    for (Field item : *items) {
      item.path = scale_field.path;
      auto s = r_.Number(item, Reader::Bound::kPositive);
      if (!s) continue;
      if (std::find(scales.begin(), scales.end(), *s) != scales.end()) {
        r_.errors().Add(item, absl::StrFormat("lr_scale %g is listed twice", *s));
        continue;
      }
      scales.push_back(*s);
    }
  }
  return scales;
}

// Phases inherit from pretrain; with optimizer_axis they may not set optimizer keys.
std::vector<Schedule> SpecParser::ParseSchedules(const Field& sched_field, bool optimizer_axis) {
  std::vector<Schedule> schedules;
  int weighted = 0;
  if (listed_) {
    for (const ListedLayer& l : *listed_) weighted += l.spec.has_weights() ? 1 : 0;
  }
  if (auto entries =
          r_.Map(sched_field, {},
                 "a mapping of named phase lists like {geron: [{epochs: 4, train: head}]}")) {
    if (entries->entries().empty()) r_.errors().Add(sched_field, "expected at least one schedule");
    std::vector<std::string> phase_keys = kOptimizerKeys;
    phase_keys.insert(phase_keys.begin(), {"epochs", "train", "lr", "batch_size"});
    for (const MapView::Entry& e : entries->entries()) {
      if (!Reader::ValidName(e.key)) {
        r_.errors().Add(e.key_where, e.value.path,
                        "expected a name of letters, digits, '_', '.', '+' or '-'");
        continue;
      }
      auto phases =
          r_.List(e.value, "a list of phases like [{epochs: 4, train: head, lr: 1.0e-3}]");
      if (!phases) continue;
      if (phases->empty()) {
        r_.errors().Add(e.value, "expected at least one phase");
        continue;
      }
      Schedule schedule{e.key, {}};
      for (const Field& p : *phases) {
        auto pm = r_.Map(p, phase_keys, "a phase like {epochs: 4, train: head, lr: 1.0e-3}");
        if (!pm) continue;
        SchedulePhase phase;
        phase.phase.batch_size = spec_.pretrain.batch_size;
        r_.Require(pm->Get("epochs"));
        if (auto n = r_.Int(pm->Get("epochs"), 1, 100000))
          phase.phase.epochs = static_cast<int>(*n);
        if (auto b = r_.Int(pm->Get("batch_size"), 1, 1 << 20)) phase.phase.batch_size = *b;
        phase.train_field = pm->Get("train");
        if (auto text = r_.Text(phase.train_field, "head, all or top-N")) {
          TrainSelection& t = phase.phase.train;
          int64_t n = 0;
          if (*text == "head") {
            t.kind = TrainSelection::Kind::kHead;
          } else if (*text == "all") {
            t.kind = TrainSelection::Kind::kAll;
          } else if (text->rfind("top-", 0) == 0 && absl::SimpleAtoi(text->substr(4), &n) &&
                     n >= 1 &&
                     text->substr(4).find_first_not_of("0123456789") == std::string::npos) {
            t.kind = TrainSelection::Kind::kTopReused;
            t.top = static_cast<int>(std::min<int64_t>(n, 1 << 20));
            if (listed_ && n > weighted) {
              r_.errors().Add(phase.train_field,
                              absl::StrCat(*text, " asks for more layers than the model's ",
                                           weighted, " layers with weights; use all"));
            }
          } else {
            r_.errors().Add(phase.train_field,
                            absl::StrCat("expected head, all or top-N (N >= 1), got ",
                                         Describe(phase.train_field.node)));
          }
        }
        phase.overrides = ParseOptimizerKeys(*pm, /*with_lr=*/true);
        if (optimizer_axis) {
          for (const std::string& key : kOptimizerKeys) {
            if (pm->Has(key)) {
              r_.errors().Add(pm->Get(key),
                              "transfer.optimizers sets the optimizer of every "
                              "phase; remove this key or that axis");
            }
          }
        } else {
          phase.phase.optimizer = Resolve(spec_.pretrain.optimizer, phase.overrides);
          CheckOptimizerKeys(phase.overrides, phase.phase.optimizer);
        }
        schedule.phases.push_back(std::move(phase));
      }
      schedules.push_back(std::move(schedule));
    }
  }
  return schedules;
}

// Each (reuse depth, new layer set) must assemble into a valid target model; the
// result maps each to its new layers with the flattens inserted.
Stacks SpecParser::AssembleStacks(const std::vector<int>& reuse,
                                  const std::vector<NewLayerSet>& new_sets) {
  Stacks stacks;
  std::set<size_t> reported_sets;
  for (int k : reuse) {
    const int keep = listed_to_model_[static_cast<size_t>(k - 1)] + 1;
    const size_t rank = source_shapes_->outputs[static_cast<size_t>(keep - 1)].size();
    for (size_t s = 0; s < new_sets.size(); ++s) {
      std::vector<int> map;
      std::vector<LayerSpec> added = WithFlattens(new_sets[s].layers, rank, true, &map);
      ModelSpec model;
      model.input = spec_.source_model.input;
      model.layers.assign(spec_.source_model.layers.begin(),
                          spec_.source_model.layers.begin() + keep);
      model.layers.insert(model.layers.end(), added.begin(), added.end());
      model.layers.push_back(LayerSpec::Dense(2, Activation::kSoftmax));
      if (auto problem = FindLayerProblem(model)) {
        if (reported_sets.insert(s).second) {
          const int at = static_cast<int>(problem->layer) - keep;
          size_t listed_index = 0;
          for (size_t i = 0; i < map.size(); ++i) {
            if (map[i] <= at) listed_index = i;
          }
          const Field where = new_sets[s].layers.empty() ? new_sets[s].field
                                                         : new_sets[s].layers[listed_index].field;
          r_.errors().Add(where, absl::StrCat("on reuse ", k, ": ", problem->message));
        }
        continue;
      }
      stacks[{k, s}] = std::move(added);
    }
  }
  return stacks;
}

// The cross product of the axes, in the order of the arm name's parts.
void SpecParser::BuildArms(const TransferAxes& a, const Stacks& stacks) {
  std::vector<OptimizerEntry> optimizers = a.optimizers;
  if (optimizers.empty()) optimizers.push_back({"", {}});
  std::vector<double> scales = a.scales;
  if (scales.empty()) scales.push_back(1.0);
  for (int k : a.reuse) {
    const int keep = listed_to_model_[static_cast<size_t>(k - 1)] + 1;
    for (const HeadSpec& head : a.heads) {
      if (head.kind != HeadSpec::Kind::kDense) {
        ArmSpec arm;
        arm.name = absl::StrCat("reuse", k, "/", head.name());
        arm.reuse = k;
        arm.keep_layers = keep;
        const size_t rank = source_shapes_->outputs[static_cast<size_t>(keep - 1)].size();
        if (rank != 1) arm.new_layers.push_back(LayerSpec::Flatten());
        arm.head = head;
        spec_.arms.push_back(std::move(arm));
        continue;
      }
      for (size_t s = 0; s < a.new_sets.size(); ++s) {
        for (const Schedule& schedule : a.schedules) {
          for (const OptimizerEntry& opt : optimizers) {
            for (double scale : scales) {
              ArmSpec arm;
              std::vector<std::string> parts = {absl::StrCat("reuse", k)};
              if (a.name_new_layers) parts.push_back(a.new_sets[s].name);
              parts.push_back(schedule.name);
              parts.push_back(head.name());
              if (a.name_optimizer) parts.push_back(opt.name);
              if (a.name_lr_scale) parts.push_back(absl::StrFormat("lr%g", scale));
              arm.name = absl::StrJoin(parts, "/");
              arm.reuse = k;
              arm.keep_layers = keep;
              arm.new_layers_name =
                  a.new_sets[s].layers.empty() && !a.name_new_layers ? "" : a.new_sets[s].name;
              arm.new_layers = stacks.at({k, s});
              arm.head = head;
              arm.schedule = schedule.name;
              arm.optimizer_name = opt.name;
              arm.lr_scale = scale;
              for (const SchedulePhase& p : schedule.phases) {
                PhaseSpec phase = p.phase;
                if (!opt.name.empty()) {
                  phase.optimizer = Resolve(spec_.pretrain.optimizer, opt.overrides);
                  if (p.overrides.lr)
                    phase.optimizer.learning_rate = static_cast<float>(*p.overrides.lr);
                }
                phase.optimizer.learning_rate =
                    static_cast<float>(phase.optimizer.learning_rate * scale);
                arm.phases.push_back(phase);
              }
              spec_.arms.push_back(std::move(arm));
            }
          }
        }
      }
    }
  }
}

std::optional<SweepSpec> SpecParser::Parse(const YAML::Node& root) {
  Field top_field;
  top_field.node.reset(root);
  top_field.present = true;
  top_field.where = At(root.Mark());
  auto top = r_.Map(top_field,
                    {"name", "description", "dataset", "source", "target", "targets", "model",
                     "pretrain", "transfer", "baseline", "seeds", "analysis"},
                    "a mapping (the sweep spec)");
  if (!top) return std::nullopt;

  const Field name = top->Get("name");
  if (r_.Require(name)) {
    if (auto n = r_.Name(name)) spec_.name = *n;
  }
  if (auto d = r_.Text(top->Get("description"), "text")) spec_.description = *d;
  ParseDataset(top->Get("dataset"));

  // model: input, defaults, layers.
  Shape input = facts_ ? facts_->example_shape : Shape{28, 28, 1};
  const Field model_field = top->Get("model");
  std::optional<MapView> model;
  if (r_.Require(model_field)) {
    model = r_.Map(model_field, {"input", "layers", "activation", "init"},
                   "a mapping like {input: [28, 28, 1], layers: [{dense: 300}]}");
  }
  bool model_ok = model.has_value();
  if (model) {
    const Field input_field = model->Get("input");
    if (input_field.present) {
      if (auto shape = ParseInput(input_field))
        input = *shape;
      else
        model_ok = false;
    }
    const Field activation = model->Get("activation");
    if (auto text = r_.Text(activation, "an activation name")) {
      auto a = ParseActivation(*text);
      if (!a.ok()) {
        r_.errors().Add(activation, std::string(a.status().message()));
        model_ok = false;
      } else if (*a == Activation::kSoftmax) {
        r_.errors().Add(activation, "softmax is only for the output layer, which the sweep adds");
        model_ok = false;
      } else {
        default_activation_ = *a;
      }
    } else if (activation.present) {
      model_ok = false;
    }
    const Field init = model->Get("init");
    if (auto text = r_.Text(init, "an initializer name")) {
      auto i = ParseInitializer(*text);
      if (!i.ok()) {
        r_.errors().Add(init, std::string(i.status().message()));
        model_ok = false;
      } else {
        default_init_ = *i;
      }
    } else if (init.present) {
      model_ok = false;
    }
    const Field layers = model->Get("layers");
    if (r_.Require(layers) && model_ok) listed_ = ParseLayers(layers, /*allow_empty=*/false);
    if (!listed_) model_ok = false;

    // The data's images must fit the model's input, or be resized by declaration.
    if (facts_ && input_field.present && input != facts_->example_shape) {
      if (!resize_) {
        r_.errors().Add(input_field, absl::StrCat("model.input ", ShapeToString(input),
                                                  " differs from ", facts_->name, "'s image shape ",
                                                  ShapeToString(facts_->example_shape),
                                                  "; declare dataset.resize: true to resize the "
                                                  "images, or use [",
                                                  absl::StrJoin(facts_->example_shape, ", "), "]"));
        model_ok = false;
      } else if (input.size() != 3 || input[2] != facts_->example_shape[2]) {
        r_.errors().Add(input_field,
                        absl::StrCat("dataset.resize changes height and width only; model.input ",
                                     ShapeToString(input), " cannot be made from ", facts_->name,
                                     "'s images ", ShapeToString(facts_->example_shape)));
        model_ok = false;
      }
    }
  }

  // source and targets
  TaskPositions source_positions;
  bool others = false;
  const Field source_field = top->Get("source");
  std::optional<TaskSpec> source;
  if (r_.Require(source_field)) source = ParseTask(source_field, true, &source_positions, &others);
  spec_.positions.source = source_positions;

  const Field target_field = top->Get("target"), targets_field = top->Get("targets");
  std::vector<Field> target_fields;
  if (target_field.present && targets_field.present) {
    r_.errors().Add(top->KeyWhere("targets"), "targets",
                    "give either target (one task) or targets (a list), not both");
  } else if (target_field.present) {
    target_fields.push_back(target_field);
  } else if (targets_field.present) {
    if (auto items =
            r_.List(targets_field, "a list of tasks like [{positive: [6], negative: [5]}]")) {
      if (items->empty()) r_.errors().Add(targets_field, "expected at least one target task");
      target_fields = *items;
    }
  } else {
    r_.errors().Add(top->where(), "target",
                    "required: target (one task) or targets (a list of tasks)");
  }
  bool targets_ok = true;
  std::map<std::string, std::string> target_names;  // name -> field path
  for (const Field& tf : target_fields) {
    TaskPositions positions;
    bool unused = false;
    auto task = ParseTask(tf, false, &positions, &unused);
    if (!task) {
      targets_ok = false;
      continue;
    }
    auto [it, inserted] = target_names.emplace(task->name, tf.path);
    if (!inserted) {
      r_.errors().Add(tf, absl::StrCat("target name '", task->name, "' is already used by ",
                                       it->second, "; give each target a distinct name"));
      targets_ok = false;
      continue;
    }
    spec_.targets.push_back(*task);
    spec_.positions.targets.push_back(positions);
  }

  // Source classes: a list, or every class outside each target ("others").
  if (source && others) {
    if (!facts_) {
      r_.errors().Add(source_positions.classes, "classes: others needs a known dataset");
      source.reset();
    } else if (targets_ok) {
      for (const TaskSpec& target : spec_.targets) {
        const std::vector<int32_t> used = TaskClasses(target);
        TaskSpec task = *source;
        for (int32_t c = 0; c < facts_->num_classes; ++c) {
          if (std::find(used.begin(), used.end(), c) == used.end()) task.classes.push_back(c);
        }
        std::vector<int32_t> sorted = used;
        std::sort(sorted.begin(), sorted.end());
        task.name = absl::StrCat(source->name, "-without-", ClassList(sorted, "-"));
        if (task.classes.size() < 2) {
          r_.errors().Add(source_positions.classes,
                          absl::StrCat("others leaves ", task.classes.size(), " class for target '",
                                       target.name, "'; a source task needs at least 2"));
          source.reset();
          break;
        }
        spec_.target_sources.push_back(std::move(task));
      }
    }
  }
  if (source) spec_.source = *source;

  // The resize declaration reaches every task.
  if (resize_ && facts_ && input != facts_->example_shape) {
    spec_.source.resize_from = facts_->example_shape;
    for (TaskSpec& t : spec_.targets) t.resize_from = facts_->example_shape;
    for (TaskSpec& t : spec_.target_sources) t.resize_from = facts_->example_shape;
  }

  // The source model: listed layers (+ flattens, one before the output when the
  // last listed layer is not flat) + Dense(source classes, softmax).
  if (model_ok && listed_) {
    std::vector<LayerSpec> layers = WithFlattens(*listed_, input.size(), true, &listed_to_model_);
    const int outputs = source && (!others || !spec_.target_sources.empty())
                            ? spec_.SourceTaskOf(0).num_classes()
                            : 2;
    layers.push_back(LayerSpec::Dense(std::max(outputs, 2), Activation::kSoftmax, default_init_));
    spec_.source_model.input = input;
    spec_.source_model.layers = layers;
    spec_.source_model.loss = Loss::kSparseCategoricalCrossEntropy;
    if (auto problem = FindLayerProblem(spec_.source_model)) {
      const Field layers_field = model->Get("layers");
      Field where = layers_field;
      for (size_t i = 0; i < listed_to_model_.size(); ++i) {
        if (static_cast<size_t>(listed_to_model_[i]) == problem->layer) where = (*listed_)[i].field;
      }
      r_.errors().Add(where, problem->message);
      model_ok = false;
    } else {
      source_shapes_ = *InferShapes(spec_.source_model);
    }
  } else {
    model_ok = false;
  }
  model_ok_ = model_ok;

  // Training settings: pretrain, then everything that inherits from it.
  const Field pretrain = top->Get("pretrain");
  if (r_.Require(pretrain)) {
    if (auto p = ParsePretrain(pretrain)) {
      spec_.pretrain = *p;
      pretrain_ok_ = true;
    }
  }
  if (pretrain_ok_) {
    spec_.scratch = spec_.pretrain;
    ParseBaseline(top->Get("baseline"));
  }
  const Field seeds = top->Get("seeds");
  if (r_.Require(seeds)) ParseSeeds(seeds);
  const Field transfer = top->Get("transfer");
  if (r_.Require(transfer)) ParseTransfer(transfer);
  ParseAnalysis(top->Get("analysis"));

  // A typo in seeds or an axis can multiply a sweep beyond any cluster.
  const double trials = (1.0 + static_cast<double>(spec_.arms.size())) *
                        static_cast<double>(spec_.targets.size()) *
                        (spec_.seeds.count + spec_.analysis.confirmation.seeds);
  if (errors_.size() == 0 && trials > kMaxTrials) {
    r_.errors().Add(seeds, absl::StrFormat("the sweep expands to %.0f trials; a sweep may have at "
                                           "most %.0f (fewer seeds, arms or targets)",
                                           trials, kMaxTrials));
  }

  if (errors_.size() != 0) return std::nullopt;
  return std::move(spec_);
}

}  // namespace

std::string FormatSpecError(const std::string& path, const SpecError& error) {
  return absl::StrCat(path, ":", error.line, ":", error.column, ": ", error.field, ": ",
                      error.message);
}

const DatasetFacts* FindDatasetFacts(std::string_view name) {
  static const DatasetFacts kFashionMnist = {"fashion-mnist", {28, 28, 1}, 10, 60000, 10000, 6000};
  if (name == kFashionMnist.name) return &kFashionMnist;
  return nullptr;
}

absl::StatusOr<SweepSpec> ParseSweepSpecText(const std::string& text,
                                             const std::string& path_for_messages,
                                             std::vector<SpecError>* errors_out) {
  Errors errors;
  std::optional<SweepSpec> spec;
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(text);
    if (documents.empty() || documents[0].IsNull()) {
      errors.Add(Where{}, "(document)", "the spec is empty; expected a mapping (the sweep spec)");
    } else if (documents.size() > 1) {
      errors.Add(At(documents[1].Mark()), "(document)",
                 "a spec is one YAML document; remove the second '---' part");
    } else {
      SpecParser parser(errors, path_for_messages);
      spec = parser.Parse(documents[0]);
    }
  } catch (const YAML::Exception& e) {
    errors.Add(At(e.mark), "(yaml)", e.msg);
  } catch (const std::exception& e) {
    errors.Add(Where{}, "(yaml)", e.what());
  }
  std::vector<SpecError> sorted = errors.Sorted();
  if (errors_out) *errors_out = sorted;
  if (!sorted.empty() || !spec) {
    if (sorted.empty()) sorted.push_back({1, 1, "(document)", "invalid spec"});
    return ErrorsToStatus(path_for_messages, sorted);
  }
  return std::move(*spec);
}

absl::StatusOr<SweepSpec> ParseSweepSpec(const std::string& path, std::vector<SpecError>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return absl::Status(
        err == ENOENT ? absl::StatusCode::kNotFound : absl::StatusCode::kFailedPrecondition,
        absl::StrCat(path, ": cannot read: ", std::strerror(err)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseSweepSpecText(text.str(), path, errors);
}

absl::Status ValidateAgainstData(const SweepSpec& spec,
                                 const std::vector<int64_t>& train_counts_per_class,
                                 std::vector<SpecError>* errors_out) {
  Errors errors;
  auto check = [&](const TaskSpec& task, const TaskPositions& at) {
    const std::vector<int32_t> classes = TaskClasses(task);
    int64_t available = 0;
    bool ok = true;
    for (int32_t c : classes) {
      const bool negative =
          std::find(task.negative.begin(), task.negative.end(), c) != task.negative.end();
      const SpecPosition& list = negative ? at.negative : at.classes;
      if (c < 0 || static_cast<size_t>(c) >= train_counts_per_class.size()) {
        errors.Add(list, absl::StrCat("class ", c, " is not in the data (it has ",
                                      train_counts_per_class.size(), " classes)"));
        ok = false;
      } else if (train_counts_per_class[static_cast<size_t>(c)] == 0) {
        errors.Add(list, absl::StrCat("class ", c, " has no training examples after the ",
                                      spec.dataset.validation, "-image validation split"));
        ok = false;
      } else {
        available += train_counts_per_class[static_cast<size_t>(c)];
      }
    }
    if (ok && task.train_size > available) {
      errors.Add(at.train_size,
                 absl::StrCat("train_size ", task.train_size,
                              " is larger than the task's training data (", WithCommas(available),
                              " images of classes ", ClassList(classes), " after the ",
                              WithCommas(spec.dataset.validation), "-image validation split)"));
    }
  };
  if (spec.target_sources.empty()) {
    check(spec.source, spec.positions.source);
  } else {
    // One message per distinct problem: the sources share the spec's positions.
    for (const TaskSpec& s : spec.target_sources) check(s, spec.positions.source);
  }
  for (size_t i = 0; i < spec.targets.size(); ++i) {
    const TaskPositions at =
        i < spec.positions.targets.size() ? spec.positions.targets[i] : TaskPositions{};
    check(spec.targets[i], at);
  }
  std::vector<SpecError> sorted = errors.Sorted();
  if (errors_out) *errors_out = sorted;
  if (sorted.empty()) return absl::OkStatus();
  return ErrorsToStatus(spec.path, sorted);
}

absl::StatusOr<std::vector<int64_t>> LoadTrainCountsPerClass(const DatasetSpec& dataset) {
  const DatasetFacts* facts = FindDatasetFacts(dataset.name);
  if (!facts)
    return absl::InvalidArgumentError(absl::StrCat("unknown dataset '", dataset.name, "'"));
  const std::string dir = dataset.dir.empty() ? std::string(kFashionMnistDir) : dataset.dir;
  const std::string path = dir + "/train-labels-idx1-ubyte.gz";
  auto labels = ReadIdxLabels(path, facts->num_classes);
  if (!labels.ok()) return labels.status();
  const int64_t n = static_cast<int64_t>(labels->data.size());
  if (dataset.validation > n) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": validation ", dataset.validation,
                                                   " is more than the ", n, " training labels"));
  }
  std::vector<int64_t> counts(static_cast<size_t>(facts->num_classes), 0);
  for (int64_t i = dataset.validation; i < n; ++i) ++counts[labels->data[static_cast<size_t>(i)]];
  return counts;
}

std::string WithCommas(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace seedproof
