// The sweep spec's reader: YAML (yaml-cpp) in, a validated SweepSpec or every error
// out. This file holds the spec's top level (SpecParser::Parse) and the functions of
// sweep_parse.h; spec_yaml.{h,cc} is the YAML reading kit, sweep_parse_model.cc and
// sweep_parse_axes.cc the rest of SpecParser (spec_parser.h). yaml-cpp throws; every
// call into it happens under the try in ParseSweepSpecText, so nothing escapes the
// parser. docs/SWEEP_SPEC.md is the user's reference for every key handled here.
#include "experiments/sweep_parse.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "experiments/spec_parser.h"
#include "experiments/spec_yaml.h"

namespace seedproof {
namespace spec_internal {
namespace {

constexpr double kMaxTrials = 1e6;

}  // namespace

std::optional<SweepSpec> SpecParser::Parse(const YAML::Node& root) {
  Field top_field;
  top_field.node.reset(root);
  top_field.present = true;
  top_field.where = At(root.Mark());
  auto top = r_.Map(top_field,
                    {"name", "description", "dataset", "datasets", "source", "target", "targets",
                     "model", "pretrain", "transfer", "baseline", "seeds", "analysis"},
                    "a mapping (the sweep spec)");
  if (!top) return std::nullopt;

  const Field name = top->Get("name");
  if (r_.Require(name)) {
    if (auto n = r_.Name(name)) spec_.name = *n;
  }
  if (auto d = r_.Text(top->Get("description"), "text")) spec_.description = *d;
  ParseDatasets(*top);
  // The source's dataset gives the model's default input; a task's dataset is
  // known before its mapping is parsed (ParseTask), so peek at the source's.
  const Field source_field = top->Get("source");
  const DatasetSpec* source_dataset = spec_.datasets.empty() ? nullptr : &spec_.datasets[0];
  if (source_field.present && source_field.node.IsMap() && source_field.node["dataset"] &&
      source_field.node["dataset"].IsScalar()) {
    const std::string wanted = source_field.node["dataset"].Scalar();
    source_dataset = nullptr;
    for (const DatasetSpec& d : spec_.datasets) {
      if (d.name == wanted) source_dataset = &d;
    }
  }
  facts_ = source_dataset ? FactsOf(*source_dataset) : nullptr;

  // model: input, defaults, layers.
  Shape input = facts_ ? facts_->example_shape : Shape{28, 28, 1};
  const Field model_field = top->Get("model");
  spec_.positions.input = ToPosition(model_field);
  std::optional<MapView> model;
  if (r_.Require(model_field)) {
    model = r_.Map(model_field, {"input", "layers", "activation", "init", "onnx"},
                   "a mapping like {input: [28, 28, 1], layers: [{dense: 300}]} or "
                   "{onnx: model.onnx}");
  }
  bool model_ok = model.has_value();
  const bool imported = model && model->Has("onnx");
  if (imported) {
    spec_.positions.input = ToPosition(model->Get("onnx"));
    model_ok = ParseImportedModel(*model);
    if (model_ok) input = spec_.source_model.input;
    // The data's examples must fit the file's input, or be resized by declaration.
    if (model_ok && facts_ && input != facts_->example_shape &&
        !(source_dataset->resize && input.size() == 3 && input[2] == facts_->example_shape[2])) {
      r_.errors().Add(
          model->Get("onnx"),
          absl::StrCat("the ONNX model's input ", ShapeToString(input), " differs from ",
                       facts_->name, "'s examples ", ShapeToString(facts_->example_shape),
                       input.size() == 3 && input[2] == facts_->example_shape[2]
                           ? "; declare resize: true on the dataset to resize them"
                           : ""));
      model_ok = false;
    }
  } else if (model) {
    const Field input_field = model->Get("input");
    if (input_field.present) spec_.positions.input = ToPosition(input_field);
    if (!input_field.present && source_dataset && !facts_ && datasets_ok_) {
      r_.errors().Add(Where{model->where()}, ChildPath(model_field.path, "input"),
                      absl::StrCat("required: the input shape, like [28, 28, 1] (dataset '",
                                   source_dataset->name, "' is known only once it is read)"));
      model_ok = false;
    }
    if (input_field.present) {
      if (auto shape = ParseInput(input_field))
        input = *shape;
      else
        model_ok = false;
    }
    // The defaults of every listed layer, read as one layer's own keys are.
    LayerSpec defaults;
    defaults.activation = default_activation_;
    defaults.init = default_init_;
    if (!ParseLayerActivationInit(*model, &defaults)) model_ok = false;
    default_activation_ = defaults.activation;
    default_init_ = defaults.init;
    const Field layers = model->Get("layers");
    if (r_.Require(layers) && model_ok) listed_ = ParseLayers(layers, /*allow_empty=*/false);
    if (!listed_) model_ok = false;

    // The data's images must fit the model's input, or be resized by declaration
    // (for datasets known only once read, ValidateAgainstData checks this).
    const bool resize = source_dataset && source_dataset->resize;
    if (facts_ && input_field.present && input != facts_->example_shape) {
      const std::string key = resize_keys_.contains(source_dataset->name)
                                  ? resize_keys_[source_dataset->name]
                                  : std::string("dataset.resize");
      if (!resize) {
        r_.errors().Add(
            input_field,
            absl::StrCat("model.input ", ShapeToString(input), " differs from ", facts_->name,
                         "'s image shape ", ShapeToString(facts_->example_shape), "; declare ", key,
                         ": true to resize the "
                         "images, or use [",
                         absl::StrJoin(facts_->example_shape, ", "), "]"));
        model_ok = false;
      } else if (input.size() != 3 || input[2] != facts_->example_shape[2]) {
        r_.errors().Add(input_field,
                        absl::StrCat(key, " changes height and width only; model.input ",
                                     ShapeToString(input), " cannot be made from ", facts_->name,
                                     "'s images ", ShapeToString(facts_->example_shape)));
        model_ok = false;
      }
    }
  }

  // source and targets
  TaskPositions source_positions;
  bool others = false;
  std::optional<TaskSpec> source;
  if (imported && source_field.present) {
    r_.errors().Add(top->KeyWhere("source"), "source",
                    "an imported model is not pretrained here, so there is no source task; "
                    "remove source (the model's own training was its source task)");
  } else if (!imported && r_.Require(source_field)) {
    source = ParseTask(source_field, true, &source_positions, &others);
  }
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
  facts_ = source && !spec_.datasets.empty() ? FactsOf(spec_.DatasetOf(*source)) : nullptr;
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

  // Each task's dataset's resize declaration reaches it. The shape it resizes
  // from is the dataset's (a dataset known only once read gets it in LoadStudy).
  auto declare_resize = [&](TaskSpec& t) {
    const DatasetSpec& d = spec_.DatasetOf(t);
    if (!d.resize) return;
    const DatasetFacts* facts = FactsOf(d);
    if (!facts) {
      t.resize_from = std::vector<int64_t>{};
    } else if (input != facts->example_shape) {
      t.resize_from = facts->example_shape;
    }
  };
  if (!spec_.datasets.empty()) {
    declare_resize(spec_.source);
    for (TaskSpec& t : spec_.targets) declare_resize(t);
    for (TaskSpec& t : spec_.target_sources) declare_resize(t);
  }

  // The source model: listed layers (+ flattens, one before the output when the
  // last listed layer is not flat) + Dense(source classes, softmax).
  if (imported) {
    // ParseImportedModel set the source model.
  } else if (model_ok && listed_) {
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
  if (imported) {
    // Nothing is pretrained: the baseline's settings are where every phase starts.
    if (pretrain.present) {
      r_.errors().Add(top->KeyWhere("pretrain"), "pretrain",
                      "an imported model is not pretrained; give the training settings under "
                      "baseline.scratch (the transfer phases start from them too)");
    }
    const Field baseline = top->Get("baseline");
    if (r_.Require(baseline)) {
      if (auto b = r_.Map(baseline, {"scratch"},
                          "a mapping like {scratch: {optimizer: adam, lr: 1.0e-3, epochs: 10}}")) {
        const Field scratch = b->Get("scratch");
        if (r_.Require(scratch)) {
          if (auto p = ParsePretrain(scratch)) {
            spec_.pretrain = spec_.scratch = *p;
            pretrain_ok_ = !pretrain.present;
          }
        }
      }
    }
  } else if (r_.Require(pretrain)) {
    if (auto p = ParsePretrain(pretrain)) {
      spec_.pretrain = *p;
      pretrain_ok_ = true;
    }
  }
  if (pretrain_ok_ && !imported) {
    spec_.scratch = spec_.pretrain;
    ParseBaseline(top->Get("baseline"));
  }
  const Field seeds = top->Get("seeds");
  if (r_.Require(seeds)) ParseSeeds(seeds);
  if (imported && spec_.seeds.source_seeds > 1) {
    r_.errors().Add(seeds, "an imported model is one source model; remove seeds.source");
  }
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

}  // namespace spec_internal

using spec_internal::At;
using spec_internal::ClassList;
using spec_internal::Errors;
using spec_internal::ErrorsToStatus;
using spec_internal::SpecParser;
using spec_internal::Where;

namespace {

// yaml-cpp 0.7 (Debian 12) never returns from LoadAll on some malformed streams
// (a document that starts with ',': jbeder/yaml-cpp#1040, fixed upstream by
// #1319): it parses an empty document at the same place again and again, each
// one kept, until memory runs out. A one-byte spec once took a worker's 24 GB
// (found by tests/fuzz). So the documents are first counted on the parser's
// events, stopping at the second one, or where an empty document did not move
// the parser on.
class DocumentCounter final : public YAML::EventHandler {
 public:
  int documents = 0;
  YAML::Mark start;    // of the last document
  bool stuck = false;  // the last document started where the one before it did

  void OnDocumentStart(const YAML::Mark& mark) override {
    stuck = documents > 0 && mark.pos == start.pos;
    start = mark;
  }
  void OnDocumentEnd() override { ++documents; }
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// The spec's one document; nullopt when errors has what is wrong instead: where
// yaml-cpp cannot go on from, or the second document. Throws what yaml-cpp
// throws. The text is parsed twice (events, then nodes): yaml-cpp builds nodes
// only through Load, and a spec is at most 1 MiB.
std::optional<YAML::Node> LoadOneDocument(const std::string& text, Errors& errors) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  while (counter.documents < 2 && parser.HandleNextDocument(counter)) {
    if (counter.stuck) {
      const size_t pos = static_cast<size_t>(std::max(counter.start.pos, 0));
      const std::string found =
          pos < text.size() ? absl::StrCat("'", text.substr(pos, 1), "'") : "the end of the text";
      errors.Add(At(counter.start), "(yaml)",
                 absl::StrCat("unexpected ", found, " where a document's content should start"));
      return std::nullopt;
    }
    if (counter.documents == 2) {
      errors.Add(At(counter.start), "(document)",
                 "a spec is one YAML document; remove the second '---' part");
      return std::nullopt;
    }
  }
  return YAML::Load(text);
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
                                             std::vector<SpecError>* errors_out,
                                             const ImportedModelLoader& loader) {
  Errors errors;
  std::optional<SweepSpec> spec;
  try {
    const std::optional<YAML::Node> document = LoadOneDocument(text, errors);
    if (!document) {
      // errors says what and where
    } else if (!document->IsDefined() || document->IsNull()) {
      errors.Add(Where{}, "(document)", "the spec is empty; expected a mapping (the sweep spec)");
    } else {
      SpecParser parser(errors, path_for_messages, loader);
      spec = parser.Parse(*document);
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
    return ErrorsToStatus(path_for_messages, sorted, errors.dropped());
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

DataFacts FactsOfData(const DatasetSpec& dataset, const LoadedDataset& loaded) {
  DataFacts facts;
  const Dataset& train = loaded.data.train;
  facts.example_shape = train.example_shape;
  if (dataset.channels != 0 && facts.example_shape.size() == 3) {
    facts.example_shape[2] = dataset.channels;
  }
  facts.num_classes = train.num_classes;
  facts.class_names = loaded.class_names;
  facts.train_examples = train.size();
  facts.train_counts_per_class.assign(static_cast<size_t>(train.num_classes), 0);
  for (int64_t i = std::min(dataset.validation, train.size()); i < train.size(); ++i) {
    ++facts.train_counts_per_class[static_cast<size_t>(train.y[i])];
  }
  return facts;
}

absl::Status ValidateAgainstData(const SweepSpec& spec, const DataFactsByName& all_facts,
                                 std::vector<SpecError>* errors_out) {
  Errors errors;
  auto check = [&](const TaskSpec& task, const TaskPositions& at) {
    const DatasetSpec& dataset = spec.DatasetOf(task);
    const auto found = all_facts.find(dataset.name);
    if (found == all_facts.end()) return;
    const DataFacts& facts = found->second;
    const std::vector<int64_t>& counts = facts.train_counts_per_class;
    const std::string split =
        absl::StrCat(WithCommas(dataset.validation), "-image validation split");
    const Shape& input = spec.source_model.input;
    if (!input.empty() && facts.example_shape != input) {
      const Shape& have = facts.example_shape;
      const bool images = have.size() == 3 && input.size() == 3;
      std::string fix;
      if (!images && spec.imported) {
        fix = "; give the dataset's examples the model's shape (a CSV's shape key)";
      } else if (!images) {
        fix = absl::StrCat("; use model.input [", absl::StrJoin(have, ", "),
                           "], or give the dataset's examples that shape (a CSV's shape key)");
      } else if (have[2] != input[2]) {
        fix =
            absl::StrCat("; declare channels: ", input[2], " on the dataset to convert its images");
      } else if (!dataset.resize) {
        fix = "; declare resize: true on the dataset to resize its images";
      }
      if (!fix.empty()) {
        errors.Add(spec.positions.input,
                   absl::StrCat(spec.imported ? "the ONNX model's input " : "model.input ",
                                ShapeToString(input), " differs from the examples of dataset '",
                                dataset.name, "', ", ShapeToString(have), fix));
      }
    }
    // A validation split that takes every example is reported once, for the dataset.
    if (dataset.validation >= facts.train_examples) return;
    const std::vector<int32_t> classes = TaskClasses(task);
    int64_t available = 0;
    bool ok = true;
    for (int32_t c : classes) {
      const bool negative =
          std::find(task.negative.begin(), task.negative.end(), c) != task.negative.end();
      const SpecPosition& list = negative ? at.negative : at.classes;
      if (c < 0 || static_cast<size_t>(c) >= counts.size()) {
        errors.Add(list, absl::StrCat("class ", c, " is not in the data (dataset '", dataset.name,
                                      "' has ", counts.size(), " classes)"));
        ok = false;
      } else if (counts[static_cast<size_t>(c)] == 0) {
        errors.Add(list, absl::StrCat("class ", c, " has no training examples after the ", split));
        ok = false;
      } else {
        available += counts[static_cast<size_t>(c)];
      }
    }
    if (ok && task.train_size > available) {
      errors.Add(at.train_size, absl::StrCat("train_size ", task.train_size,
                                             " is larger than the task's training data (",
                                             WithCommas(available), " images of classes ",
                                             ClassList(classes), " after the ", split, ")"));
    }
  };
  for (const DatasetSpec& d : spec.datasets) {
    const auto found = all_facts.find(d.name);
    if (found == all_facts.end() || d.validation < found->second.train_examples) continue;
    const auto at = spec.positions.dataset_validation.find(d.name);
    errors.Add(
        at == spec.positions.dataset_validation.end() ? spec.positions.validation : at->second,
        absl::StrCat("validation ", d.validation, " leaves no training examples: dataset '", d.name,
                     "' has ", WithCommas(found->second.train_examples)));
  }
  if (spec.imported) {
    // No source task: the imported model's training was its own.
  } else if (spec.target_sources.empty()) {
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
  return ErrorsToStatus(spec.path, sorted, errors.dropped());
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
