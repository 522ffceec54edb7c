#include "experiments/trial_json.h"

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace seedproof {
namespace {

using Json = nlohmann::json;

template <typename Enum>
int64_t Number(Enum value) {
  return static_cast<int64_t>(value);
}

Json LayerToJson(const LayerSpec& l) {
  return {{"kind", Number(l.kind)},
          {"activation", Number(l.activation)},
          {"init", Number(l.init)},
          {"units", l.units},
          {"kernel_h", l.kernel_h},
          {"kernel_w", l.kernel_w},
          {"stride_h", l.stride_h},
          {"stride_w", l.stride_w},
          {"padding", Number(l.padding)},
          {"pads", {l.pad_top, l.pad_bottom, l.pad_left, l.pad_right}},
          {"rate", l.rate},
          {"alpha", l.alpha},
          {"epsilon", l.epsilon},
          {"momentum", l.momentum},
          {"count_include_pad", l.count_include_pad}};
}

Json PhaseToJson(const PhaseSpec& p) {
  const OptimizerSpec& o = p.optimizer;
  return {{"epochs", p.epochs},
          {"train", {{"kind", Number(p.train.kind)}, {"top", p.train.top}}},
          {"optimizer",
           {{"kind", Number(o.kind)},
            {"learning_rate", o.learning_rate},
            {"momentum", o.momentum},
            {"nesterov", o.nesterov},
            {"beta1", o.beta1},
            {"beta2", o.beta2},
            {"epsilon", o.epsilon},
            {"weight_decay", o.weight_decay}}},
          {"batch_size", p.batch_size}};
}

// Reads fields of one JSON object, naming each by its path in errors.
class Reader {
 public:
  Reader(const Json& json, std::string path) : json_(json), path_(std::move(path)) {}

  absl::Status status() const { return status_; }

  template <typename T>
  T Get(const char* name) {
    const Json* field = Find(name);
    if (field == nullptr) return T{};
    T value{};
    if (!Convert(*field, &value)) {
      Error(name, absl::StrCat("expected ", Expected<T>(), ", got ", field->dump()));
    }
    return value;
  }

  // An enum sent as its number: one of [first, last].
  template <typename Enum>
  Enum GetEnum(const char* name, int64_t first, int64_t last, const char* what) {
    const int64_t number = Get<int64_t>(name);
    if (status_.ok() && (number < first || number > last)) {
      Error(name, absl::StrCat(number, " is not ", what));
    }
    return static_cast<Enum>(status_.ok() ? number : first);
  }

  // A nested object or array, read by `read(reader_of_it)` / for each element.
  template <typename Read>
  void Object(const char* name, const Read& read) {
    const Json* field = Find(name);
    if (field == nullptr) return;
    if (!field->is_object()) return Error(name, "expected an object");
    Reader inner(*field, absl::StrCat(path_, ".", name));
    read(inner);
    if (status_.ok()) status_ = inner.status();
  }
  template <typename Read>
  void Array(const char* name, const Read& read) {
    const Json* field = Find(name);
    if (field == nullptr) return;
    if (!field->is_array()) return Error(name, "expected an array");
    for (size_t i = 0; i < field->size() && status_.ok(); ++i) {
      if (!(*field)[i].is_object())
        return Error(name, absl::StrCat("[", i, "]: expected an object"));
      Reader inner((*field)[i], absl::StrCat(path_, ".", name, "[", i, "]"));
      read(inner);
      status_ = inner.status();
    }
  }
  bool Has(const char* name) const { return json_.contains(name) && !json_[name].is_null(); }
  // A field that is present and typed but not acceptable.
  void Fail(const char* name, const std::string& message) { Error(name, message); }

 private:
  // Exact conversions only: an integer out of T's range, a fraction where an
  // integer belongs, or a string where a number belongs is refused, not cast.
  template <typename T>
  static bool Convert(const Json& j, T* out) {
    if constexpr (std::is_same_v<T, std::string>) {
      if (!j.is_string()) return false;
      *out = j.get<std::string>();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!j.is_boolean()) return false;
      *out = j.get<bool>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!j.is_number()) return false;
      *out = j.get<T>();
    } else if constexpr (std::is_integral_v<T>) {
      if (j.is_number_unsigned()) {
        const uint64_t v = j.get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
        *out = static_cast<T>(v);
      } else if (j.is_number_integer()) {
        const int64_t v = j.get<int64_t>();
        if constexpr (std::is_unsigned_v<T>) {
          if (v < 0) return false;
        } else if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
          return false;
        }
        *out = static_cast<T>(v);
      } else {
        return false;
      }
    } else {  // std::vector of integers
      if (!j.is_array()) return false;
      out->resize(j.size());
      for (size_t i = 0; i < j.size(); ++i) {
        if (!Convert(j[i], &(*out)[i])) return false;
      }
    }
    return true;
  }

  template <typename T>
  static const char* Expected() {
    if constexpr (std::is_same_v<T, std::string>) return "a string";
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    if constexpr (std::is_integral_v<T>) return "an integer in range";
    return "an array of integers";
  }
  const Json* Find(const char* name) {
    if (!status_.ok()) return nullptr;
    if (!json_.is_object() || !json_.contains(name)) {
      Error(name, "missing");
      return nullptr;
    }
    return &json_[name];
  }
  void Error(const char* name, const std::string& message) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrCat(path_, ".", name, ": ", message));
    }
  }

  const Json& json_;
  const std::string path_;
  absl::Status status_;
};

LayerSpec ReadLayer(Reader& r) {
  LayerSpec l;
  l.kind = r.GetEnum<LayerKind>("kind", 1, 9, "a layer kind");
  l.activation = r.GetEnum<Activation>("activation", 1, 8, "an activation");
  l.init = r.GetEnum<Initializer>("init", 1, 3, "an initializer");
  l.units = r.Get<int>("units");
  l.kernel_h = r.Get<int>("kernel_h");
  l.kernel_w = r.Get<int>("kernel_w");
  l.stride_h = r.Get<int>("stride_h");
  l.stride_w = r.Get<int>("stride_w");
  l.padding = r.GetEnum<Padding>("padding", 1, 3, "a padding");
  l.rate = r.Get<float>("rate");
  // Trials stored before these settings existed have none: the defaults.
  if (r.Has("pads")) {
    const auto pads = r.Get<std::vector<int>>("pads");
    if (r.status().ok() && pads.size() != 4) r.Fail("pads", "expected 4 values");
    if (pads.size() == 4) l.pad_top = pads[0], l.pad_bottom = pads[1], l.pad_left = pads[2],
                          l.pad_right = pads[3];
  }
  if (r.Has("alpha")) l.alpha = r.Get<float>("alpha");
  if (r.Has("epsilon")) l.epsilon = r.Get<float>("epsilon");
  if (r.Has("momentum")) l.momentum = r.Get<float>("momentum");
  if (r.Has("count_include_pad")) l.count_include_pad = r.Get<bool>("count_include_pad");
  return l;
}

PhaseSpec ReadPhase(Reader& r) {
  PhaseSpec p;
  p.epochs = r.Get<int>("epochs");
  r.Object("train", [&](Reader& t) {
    p.train.kind = t.GetEnum<TrainSelection::Kind>("kind", 0, 2, "a train selection");
    p.train.top = t.Get<int>("top");
  });
  r.Object("optimizer", [&](Reader& o) {
    OptimizerSpec& opt = p.optimizer;
    opt.kind = o.GetEnum<OptimizerKind>("kind", 1, 2, "an optimizer");
    opt.learning_rate = o.Get<float>("learning_rate");
    opt.momentum = o.Get<float>("momentum");
    opt.nesterov = o.Get<bool>("nesterov");
    opt.beta1 = o.Get<float>("beta1");
    opt.beta2 = o.Get<float>("beta2");
    opt.epsilon = o.Get<float>("epsilon");
    opt.weight_decay = o.Get<float>("weight_decay");
  });
  p.batch_size = r.Get<int64_t>("batch_size");
  return p;
}

Json DatasetToJson(const DatasetSpec& d) {
  return {{"name", d.name},
          {"format", DatasetFormatName(d.format)},
          {"path", d.path},
          {"sha256", d.sha256},
          {"example_shape", d.example_shape},
          {"ship", d.ship},
          {"class_names", d.class_names},
          {"classes", d.classes},
          {"test_split", d.test_split},
          {"split_seed", d.split_seed},
          {"channels_first", d.channels_first},
          {"image_size", d.image_size ? Json(*d.image_size) : Json(nullptr)},
          {"arrays", {d.x_train, d.y_train, d.x_test, d.y_test}},
          {"csv", {{"header", d.csv_header},
                   {"label_column", d.label_column},
                   {"label_index", d.label_index},
                   {"shape", d.csv_shape}}},
          {"channels", d.channels},
          {"resize", d.resize},
          {"scale", d.scale ? Json(*d.scale) : Json(nullptr)},
          {"mean", d.mean},
          {"std", d.std},
          {"validation", d.validation}};
}

void ReadDataset(Reader& r, DatasetSpec& d) {
  d.name = r.Get<std::string>("name");
  if (!r.Has("format") && r.Has("dir")) {
    // A trial stored before datasets were hashed: Fashion-MNIST's IDX files.
    d.path = r.Get<std::string>("dir");
    d.validation = r.Get<int64_t>("validation");
    return;
  }
  const std::string format = r.Get<std::string>("format");
  if (auto f = DatasetFormatNamed(format)) {
    d.format = *f;
  } else if (r.status().ok()) {
    r.Fail("format", absl::StrCat("'", format, "' is not a dataset format"));
  }
  d.path = r.Get<std::string>("path");
  d.sha256 = r.Get<std::string>("sha256");
  d.example_shape = r.Get<std::vector<int64_t>>("example_shape");
  d.ship = r.Get<bool>("ship");
  d.class_names = r.Get<std::vector<std::string>>("class_names");
  d.classes = r.Get<int>("classes");
  d.test_split = r.Get<double>("test_split");
  d.split_seed = r.Get<uint64_t>("split_seed");
  d.channels_first = r.Get<bool>("channels_first");
  if (r.Has("image_size")) d.image_size = r.Get<std::vector<int64_t>>("image_size");
  const auto arrays = r.Get<std::vector<std::string>>("arrays");
  if (r.status().ok() && arrays.size() != 4) r.Fail("arrays", "expected 4 names");
  if (arrays.size() == 4) {
    d.x_train = arrays[0], d.y_train = arrays[1], d.x_test = arrays[2], d.y_test = arrays[3];
  }
  r.Object("csv", [&](Reader& c) {
    d.csv_header = c.Get<bool>("header");
    d.label_column = c.Get<std::string>("label_column");
    d.label_index = c.Get<int>("label_index");
    d.csv_shape = c.Get<std::vector<int64_t>>("shape");
  });
  d.channels = r.Get<int>("channels");
  d.resize = r.Get<bool>("resize");
  if (r.Has("scale")) d.scale = r.Get<float>("scale");
  d.mean = r.Get<std::vector<float>>("mean");
  d.std = r.Get<std::vector<float>>("std");
  d.validation = r.Get<int64_t>("validation");
}

Json ModelToJson(const ModelSpec& m) {
  Json layers = Json::array();
  for (const LayerSpec& l : m.layers) layers.push_back(LayerToJson(l));
  return {{"input", m.input}, {"layers", layers}, {"loss", Number(m.loss)}};
}

void ReadModel(Reader& m, ModelSpec& model) {
  model.input = m.Get<std::vector<int64_t>>("input");
  m.Array("layers", [&](Reader& l) { model.layers.push_back(ReadLayer(l)); });
  model.loss = m.GetEnum<Loss>("loss", 1, 2, "a loss");
}

Json ImportedToJson(const ImportedModel& imported) {
  Json units = Json::array();
  for (const OnnxUnit& u : imported.units) {
    units.push_back({{"first_layer", u.first_layer},
                     {"end_layer", u.end_layer},
                     {"description", u.description}});
  }
  return {{"path", imported.path},         {"sha256", imported.sha256},
          {"producer", imported.producer}, {"opset", imported.opset},
          {"units", units},                {"model", ModelToJson(imported.model)}};
}

void ReadImported(Reader& r, ImportedModel& imported) {
  imported.path = r.Get<std::string>("path");
  imported.sha256 = r.Get<std::string>("sha256");
  imported.producer = r.Get<std::string>("producer");
  imported.opset = r.Get<int64_t>("opset");
  r.Array("units", [&](Reader& u) {
    OnnxUnit unit;
    unit.first_layer = u.Get<int>("first_layer");
    unit.end_layer = u.Get<int>("end_layer");
    unit.description = u.Get<std::string>("description");
    imported.units.push_back(std::move(unit));
  });
  r.Object("model", [&](Reader& m) { ReadModel(m, imported.model); });
}

}  // namespace

std::string DatasetJsonText(const DatasetSpec& dataset) { return DatasetToJson(dataset).dump(); }

std::string StudyInputsToJsonText(const std::vector<DatasetSpec>& datasets,
                                  const std::optional<ImportedModel>& imported) {
  Json array = Json::array();
  for (const DatasetSpec& d : datasets) array.push_back(DatasetToJson(d));
  // A study without an imported model keeps the array it has always stored.
  if (!imported) return array.dump();
  return Json{{"datasets", array}, {"onnx", ImportedToJson(*imported)}}.dump();
}

absl::StatusOr<StudyInputs> StudyInputsFromJsonText(const std::string& text) {
  const Json json = Json::parse(text, nullptr, false);
  const bool object = json.is_object() && json.contains("datasets");
  const Json& array = object ? json["datasets"] : json;
  if (!array.is_array()) {
    return absl::InvalidArgumentError("datasets: expected a JSON array");
  }
  StudyInputs inputs;
  for (size_t i = 0; i < array.size(); ++i) {
    DatasetSpec d;
    Reader r(array[i], absl::StrCat("datasets[", i, "]"));
    ReadDataset(r, d);
    if (!r.status().ok()) return r.status();
    inputs.datasets.push_back(std::move(d));
  }
  if (object) {
    Reader r(json, "study");
    ImportedModel imported;
    r.Object("onnx", [&](Reader& o) { ReadImported(o, imported); });
    if (!r.status().ok()) return r.status();
    if (imported.sha256.empty()) return absl::InvalidArgumentError("study.onnx: missing");
    inputs.imported = std::move(imported);
  }
  return inputs;
}

Json TrialSpecToJson(const TrialSpec& t) {
  Json task = {{"name", t.task.name},
               {"dataset", t.task.dataset},
               {"classes", t.task.classes},
               {"positive", t.task.positive},
               {"negative", t.task.negative},
               {"train_size", t.task.train_size},
               {"subset", Number(t.task.subset)},
               {"resize_from", t.task.resize_from ? Json(*t.task.resize_from) : Json(nullptr)}};
  Json phases = Json::array(), new_layers = Json::array();
  for (const PhaseSpec& p : t.phases) phases.push_back(PhaseToJson(p));
  for (const LayerSpec& l : t.new_layers) new_layers.push_back(LayerToJson(l));
  Json json = {
      {"id", t.id},
      {"kind", Number(t.kind)},
      {"arm", t.arm},
      {"target", t.target},
      {"seed_index", t.seed_index},
      {"seeds", {{"init", t.seeds.init}, {"order", t.seeds.order}, {"subset", t.seeds.subset}}},
      {"dataset", DatasetToJson(t.dataset)},
      {"task", task},
      {"model", ModelToJson(t.model)},
      {"phases", phases},
      {"source_trial", t.source_trial},
      {"keep_layers", t.keep_layers},
      {"new_layers", new_layers},
      {"head", {{"kind", Number(t.head.kind)}, {"c", t.head.c}}}};
  if (!t.source_onnx.empty()) json["source_onnx"] = t.source_onnx;
  return json;
}

absl::StatusOr<TrialSpec> TrialSpecFromJson(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("trial: expected an object");
  TrialSpec t;
  Reader r(json, "trial");
  t.id = r.Get<std::string>("id");
  t.kind = r.GetEnum<TrialKind>("kind", 1, 3, "a trial kind");
  t.arm = r.Get<std::string>("arm");
  t.target = r.Get<std::string>("target");
  t.seed_index = r.Get<int>("seed_index");
  r.Object("seeds", [&](Reader& s) {
    t.seeds.init = s.Get<uint64_t>("init");
    t.seeds.order = s.Get<uint64_t>("order");
    t.seeds.subset = s.Get<uint64_t>("subset");
  });
  r.Object("dataset", [&](Reader& d) { ReadDataset(d, t.dataset); });
  r.Object("task", [&](Reader& k) {
    t.task.name = k.Get<std::string>("name");
    if (k.Has("dataset")) t.task.dataset = k.Get<std::string>("dataset");  // else stored before
    t.task.classes = k.Get<std::vector<int32_t>>("classes");
    t.task.positive = k.Get<std::vector<int32_t>>("positive");
    t.task.negative = k.Get<std::vector<int32_t>>("negative");
    t.task.train_size = k.Get<int64_t>("train_size");
    t.task.subset = k.GetEnum<TaskSpec::Subset>("subset", 0, 1, "a subset rule");
    if (k.Has("resize_from")) t.task.resize_from = k.Get<std::vector<int64_t>>("resize_from");
  });
  r.Object("model", [&](Reader& m) { ReadModel(m, t.model); });
  r.Array("phases", [&](Reader& p) { t.phases.push_back(ReadPhase(p)); });
  t.source_trial = r.Get<std::string>("source_trial");
  if (r.Has("source_onnx")) t.source_onnx = r.Get<std::string>("source_onnx");
  t.keep_layers = r.Get<int>("keep_layers");
  r.Array("new_layers", [&](Reader& l) { t.new_layers.push_back(ReadLayer(l)); });
  r.Object("head", [&](Reader& h) {
    t.head.kind = h.GetEnum<HeadSpec::Kind>("kind", 0, 2, "a head kind");
    t.head.c = h.Get<double>("c");
  });
  if (!r.status().ok()) return r.status();
  return t;
}

std::string TrialSpecJsonText(const TrialSpec& trial) { return TrialSpecToJson(trial).dump(); }

absl::StatusOr<TrialSpec> TrialSpecFromJsonText(const std::string& text) {
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("trial: not JSON");
  return TrialSpecFromJson(json);
}

}  // namespace seedproof
