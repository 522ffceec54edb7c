// The sweep spec's model part: dataset, source and target tasks, the model's
// layers, optimizer keys and the training settings that the transfer axes inherit
// (pretrain, baseline), seeds and analysis. docs/SWEEP_SPEC.md is the user's
// reference for every key handled here.
#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "data/content_hash.h"
#include "data/file_bytes.h"
#include "experiments/spec_parser.h"
#include "onnx_io/onnx_model.h"

namespace seedproof {
namespace spec_internal {
namespace {

std::string DefaultTaskName(const TaskSpec& task) {
  if (task.binary()) {
    return absl::StrCat(ClassList(task.positive, "+"), "-vs-", ClassList(task.negative, "+"));
  }
  return absl::StrCat("classes-", ClassList(task.classes, "+"));
}

const char* OptimizerName(OptimizerKind kind) {
  return kind == OptimizerKind::kAdam ? "adam" : "sgd";
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

}  // namespace

std::string ClassList(const std::vector<int32_t>& classes, const char* sep) {
  return absl::StrJoin(classes, sep);
}

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

std::vector<LayerSpec> WithFlattens(const std::vector<ListedLayer>& listed, size_t input_rank,
                                    bool flatten_end, std::vector<int>* map) {
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
  auto m = r_.Map(f, {"name", "dataset", "classes", "positive", "negative", "train_size", "subset"},
                  is_source ? "a mapping like {classes: [0, 1, 2]}"
                            : "a mapping like {positive: [6], negative: [5]}");
  if (!m) return std::nullopt;
  TaskSpec task;
  bool ok = true;
  if (auto dataset = TaskDataset(*m)) {
    task.dataset = *dataset;
  } else {
    ok = false;
  }
  facts_ = spec_.datasets.empty() ? nullptr : FactsOf(spec_.DatasetOf(task));
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
                       " images: ", all.size(), " classes of ", facts_->name, ")"));
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
      // Keras's LeakyReLU default; a layer's `alpha` key sets another.
      if (*a == Activation::kLeakyRelu) layer->alpha = 0.3f;
    }
  } else if (activation.present) {
    ok = false;
  }
  const Field alpha = m.Get("alpha");
  if (alpha.present && layer->activation != Activation::kLeakyRelu) {
    r_.errors().Add(alpha, "alpha is leaky_relu's slope below 0: set activation: leaky_relu");
    ok = false;
  } else if (auto v = r_.Number(alpha, Reader::Bound::kUnitInterval)) {
    layer->alpha = static_cast<float>(*v);
  } else if (alpha.present) {
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
  const std::string kinds =
      "flatten, dense, conv2d, maxpool2d, avgpool2d, globalavgpool2d, batchnorm, activation, "
      "dropout";
  if (f.node.IsScalar() && f.node.Scalar() == "flatten") return LayerSpec::Flatten();
  if (f.node.IsScalar() && f.node.Scalar() == "globalavgpool2d") {
    return LayerSpec::GlobalAvgPool2D();
  }
  if (f.node.IsScalar() && f.node.Scalar() == "batchnorm") return LayerSpec::BatchNorm();
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
      auto d = r_.Map(value, {"units", "activation", "alpha", "init"},
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
      auto c =
          r_.Map(value, {"filters", "kernel", "stride", "padding", "activation", "alpha", "init"},
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
    case LayerKind::kActivation: {
      // {activation: relu}, or {activation: {activation: leaky_relu, alpha: 0.1}}.
      layer = LayerSpec::ActivationLayer(Activation::kLinear);
      if (scalar) {
        auto text = r_.Text(value, "an activation name");
        if (!text) return std::nullopt;
        auto a = ParseActivation(*text);
        if (!a.ok() || *a == Activation::kSoftmax) {
          r_.errors().Add(value, a.ok() ? "softmax is only for the output layer, which the "
                                          "sweep adds"
                                        : std::string(a.status().message()));
          return std::nullopt;
        }
        layer.activation = *a;
        if (*a == Activation::kLeakyRelu) layer.alpha = 0.3f;
        return layer;
      }
      auto m = r_.Map(value, {"activation", "alpha"},
                      "an activation name, or a mapping like {activation: leaky_relu, alpha: 0.1}");
      if (!m || !r_.Require(m->Get("activation"))) return std::nullopt;
      if (!ParseLayerActivationInit(*m, &layer)) return std::nullopt;
      return layer;
    }
    case LayerKind::kGlobalAvgPool2D:
      if (!value.node.IsNull() && !(value.node.IsMap() && value.node.size() == 0)) {
        r_.errors().Add(value, absl::StrCat("globalavgpool2d takes no settings: expected {}, got ",
                                            Describe(value.node)));
        return std::nullopt;
      }
      return LayerSpec::GlobalAvgPool2D();
    case LayerKind::kBatchNorm: {
      layer = LayerSpec::BatchNorm();  // linear unless its own activation is given
      if (value.node.IsNull()) return layer;
      auto b = r_.Map(value, {"epsilon", "momentum", "activation", "alpha"},
                      "a mapping like {momentum: 0.99, activation: relu}");
      if (!b) return std::nullopt;
      bool ok = true;
      if (auto e = r_.Number(b->Get("epsilon"), Reader::Bound::kPositive)) {
        layer.epsilon = static_cast<float>(*e);
      } else if (b->Has("epsilon")) {
        ok = false;
      }
      if (auto m = r_.Number(b->Get("momentum"), Reader::Bound::kUnitInterval)) {
        layer.momentum = static_cast<float>(*m);
      } else if (b->Has("momentum")) {
        ok = false;
      }
      if (b->Has("init")) ok = false;
      ok = ParseLayerActivationInit(*b, &layer) && ok;
      if (!ok) return std::nullopt;
      return layer;
    }
    case LayerKind::kMaxPool2D:
    case LayerKind::kAvgPool2D: {
      const LayerKind pool = *kind;
      if (scalar) {
        auto window = r_.Int(value, 1, 4096);
        if (!window) return std::nullopt;
        return pool == LayerKind::kMaxPool2D ? LayerSpec::MaxPool2D(static_cast<int>(*window))
                                             : LayerSpec::AvgPool2D(static_cast<int>(*window));
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
  auto m = r_.Map(f, {"count", "min", "max", "step", "source", "base", "fixed", "crossed"},
                  "a seed count or a mapping like {count: 20, source: 1}");
  if (!m) return;
  if (m->Get("min").present || m->Get("max").present || m->Get("step").present) {
    if (!ParseSequentialSeeds(*m)) return;
    if (m->Get("crossed").present) {
      r_.errors().Add(m->Get("crossed"),
                      "crossed streams need the whole grid of seeds; sequential seeds stop arms "
                      "part way: use one or the other");
      return;
    }
  } else if (m->Get("crossed").present) {
    if (!ParseCrossedSeeds(*m)) return;
  } else {
    r_.Require(m->Get("count"));
    if (auto n = r_.Int(m->Get("count"), 1, 100000))
      seeds.count = static_cast<int>(*n);
    else
      return;  // source is checked against count
  }
  const Field source = m->Get("source");
  if (auto s = r_.Int(source, 1, seeds.count)) {
    seeds.source_seeds = static_cast<int>(*s);
    // A step adds seeds to some arms only: source models shared across seeds
    // would make clusters that grow unevenly, which the sequential test does not
    // model. One model for all, or a fresh one per seed.
    if (seeds.sequential() && *s != 1 && *s != seeds.count) {
      r_.errors().Add(source, absl::StrFormat("with sequential seeds, source is 1 (one source "
                                              "model) or %d (max: a fresh one per seed); got %d",
                                              seeds.count, *s));
    }
  }
  if (auto b = r_.Unsigned(m->Get("base"))) seeds.base = *b;
  auto fixed = r_.Map(m->Get("fixed"), {"init", "order", "subset"},
                      "a mapping like {init: 7} of streams held fixed");
  if (fixed) {
    if (auto v = r_.Unsigned(fixed->Get("init"))) seeds.fixed_init = *v;
    if (auto v = r_.Unsigned(fixed->Get("order"))) seeds.fixed_order = *v;
    if (auto v = r_.Unsigned(fixed->Get("subset"))) seeds.fixed_subset = *v;
  }
}

bool SpecParser::ParseCrossedSeeds(const MapView& m) {
  SeedPolicy& seeds = spec_.seeds;
  const Field crossed = m.Get("crossed");
  auto grid = r_.Map(crossed, {"init", "order"}, "a mapping like {init: 4, order: 5}");
  if (!grid) return false;
  const bool both = r_.Require(grid->Get("init")) & r_.Require(grid->Get("order"));
  const auto init = r_.Int(grid->Get("init"), 2, 1000);
  const auto order = r_.Int(grid->Get("order"), 2, 1000);
  if (!both || !init || !order) return false;
  const int cells = static_cast<int>(*init * *order);
  if (m.Get("count").present) {
    const auto count = r_.Int(m.Get("count"), 1, 100000);
    if (!count) return false;
    if (*count != cells) {
      r_.errors().Add(m.Get("count"),
                      absl::StrFormat("crossed streams make %d x %d = %d seeds; got count %d "
                                      "(or leave count out)",
                                      *init, *order, cells, *count));
      return false;
    }
  }
  const Field fixed = m.Get("fixed");
  if (fixed.present && fixed.node.IsMap() && (fixed.node["init"] || fixed.node["order"])) {
    r_.errors().Add(fixed, "a fixed init or order stream cannot also be crossed");
    return false;
  }
  seeds.count = cells;
  seeds.crossed_init = static_cast<int>(*init);
  seeds.crossed_order = static_cast<int>(*order);
  return true;
}

bool SpecParser::ParseSequentialSeeds(const MapView& m) {
  SeedPolicy& seeds = spec_.seeds;
  if (m.Get("count").present) {
    r_.errors().Add(m.Get("count"),
                    "count and min/max/step exclude each other: a fixed number of seeds, or "
                    "sequential seeds from min to max, step at a time");
    return false;
  }
  bool ok = r_.Require(m.Get("min")) & r_.Require(m.Get("max")) & r_.Require(m.Get("step"));
  // At least 5 paired seeds before anything can be called (docs/REPORTS.md).
  const auto min = r_.Int(m.Get("min"), 5, 100000);
  const auto max = r_.Int(m.Get("max"), 6, 100000);
  const auto step = r_.Int(m.Get("step"), 1, 100000);
  if (!ok || !min || !max || !step) return false;
  if (*max <= *min) {
    r_.errors().Add(m.Get("max"),
                    absl::StrFormat("expected more than min (%d); got %d", *min, *max));
    return false;
  }
  if (*step > *max - *min) {
    r_.errors().Add(m.Get("step"),
                    absl::StrFormat("expected at most max - min (%d); got %d", *max - *min, *step));
    return false;
  }
  seeds.count = static_cast<int>(*max);
  seeds.min = static_cast<int>(*min);
  seeds.step = static_cast<int>(*step);
  return true;
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
  if (spec_.seeds.sequential()) {
    // Sequential seeds already decide each arm under error control as the seeds
    // accrue; confirming on fresh seeds after them is a second answer to the same
    // question, with its own error budget.
    r_.errors().Add(m->Get("confirmation"),
                    "sequential seeds (seeds: {min, max, step}) decide arms as they go; "
                    "use either them or confirmation seeds");
    return;
  }
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

bool SpecParser::ParseImportedModel(const MapView& model) {
  bool ok = true;
  for (const char* key : {"input", "layers"}) {
    if (!model.Has(key)) continue;
    r_.errors().Add(model.Get(key), absl::StrCat("the ONNX file gives the model's ", key,
                                                 "; remove ", key, " (or onnx)"));
    ok = false;
  }
  // activation and init are the defaults of the new layers a transfer adds.
  LayerSpec defaults;
  defaults.activation = default_activation_;
  defaults.init = default_init_;
  if (!ParseLayerActivationInit(model, &defaults)) ok = false;
  default_activation_ = defaults.activation;
  default_init_ = defaults.init;

  const Field onnx = model.Get("onnx");
  const std::optional<std::string> path = r_.Text(onnx, "a file name like model.onnx");
  if (!path) return false;
  const std::string resolved = ResolvePath(spec_.path, *path);
  absl::StatusOr<ImportedModel> imported = loader_ ? loader_(resolved) : ImportModelFile(resolved);
  if (!imported.ok()) {
    r_.errors().Add(onnx, std::string(imported.status().message()));
    return false;
  }
  if (imported->units.size() < 2) {
    r_.errors().Add(
        onnx, absl::StrCat(resolved, ": the model is its output layer alone (",
                           imported->units.empty() ? "no layers" : imported->units[0].description,
                           "); there is nothing to reuse"));
    return false;
  }
  auto shapes = InferShapes(imported->model);
  if (!shapes.ok()) {
    r_.errors().Add(onnx, absl::StrCat(resolved, ": ", shapes.status().message()));
    return false;
  }
  // A reuse depth counts units; the output layer's unit is never reused.
  listed_.emplace();
  listed_to_model_.clear();
  for (size_t u = 0; u + 1 < imported->units.size(); ++u) {
    const OnnxUnit& unit = imported->units[u];
    ListedLayer listed;
    listed.field = onnx;
    listed.spec = imported->model.layers[static_cast<size_t>(unit.first_layer)];
    for (int l = unit.first_layer; l < unit.end_layer; ++l) {
      const LayerSpec& layer = imported->model.layers[static_cast<size_t>(l)];
      if (layer.kind == LayerKind::kDense || layer.kind == LayerKind::kConv2D) {
        listed.spec = layer;
        break;
      }
    }
    listed_->push_back(std::move(listed));
    listed_to_model_.push_back(unit.end_layer - 1);
  }
  spec_.source_model = imported->model;
  spec_.imported = *std::move(imported);
  source_shapes_ = *std::move(shapes);
  return ok;
}

}  // namespace spec_internal

absl::StatusOr<ImportedModel> ImportModelFile(const std::string& path, std::string* bytes_out) {
  auto read = ReadFileString(path, kMaxOnnxBytes);
  if (!read.ok()) return read.status();
  std::string bytes = *std::move(read);
  auto graph = ReadOnnx(bytes, path);
  if (!graph.ok()) return graph.status();
  auto model = SourceModelSpec(*graph);
  if (!model.ok())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", model.status().message()));
  ImportedModel imported;
  imported.path = path;
  imported.sha256 = Sha256Hex(bytes);
  imported.producer = graph->producer;
  imported.opset = graph->opset;
  imported.units = graph->units;
  imported.model = *std::move(model);
  if (bytes_out) *bytes_out = std::move(bytes);
  return imported;
}

}  // namespace seedproof
