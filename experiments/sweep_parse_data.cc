// The sweep spec's datasets: `dataset` (one, the Géron form) or `datasets` (several,
// by name), each a DatasetSpec; and which dataset each task reads.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "experiments/spec_parser.h"

namespace seedproof::spec_internal {
namespace {

const std::vector<std::string> kDatasetKeys = {
    "name",   "format", "path",     "dir",   "validation", "resize", "ship",
    "classes", "test_split", "split_seed", "layout", "arrays", "size", "header",
    "label",  "shape",  "channels", "scale", "mean",       "std"};

}  // namespace

std::string ResolvePath(const std::string& spec_path, const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (p.is_relative()) p = fs::path(spec_path).parent_path() / p;
  std::error_code ec;
  const fs::path absolute = fs::absolute(p, ec);
  return (ec ? p : absolute).lexically_normal().string();
}

const DatasetFacts* SpecParser::FactsOf(const DatasetSpec& d) const {
  if (d.format != DatasetFormat::kIdx || d.name != "fashion-mnist" || d.channels == 3) {
    return nullptr;  // known only once read (LoadStudy checks it against the data)
  }
  return FindDatasetFacts(d.name);
}

std::optional<DatasetSpec> SpecParser::ParseOneDataset(const Field& f, const std::string& name,
                                                       bool single, SpecPosition* validation_at) {
  auto m = r_.Map(f, kDatasetKeys,
                  single ? "a mapping like {name: fashion-mnist, validation: 5000}"
                         : "a mapping like {format: csv, path: data.csv, validation: 100}");
  if (!m) return std::nullopt;
  DatasetSpec d;
  d.name = name;
  bool ok = true;
  auto fail = [&ok](bool good) { ok = ok && good; };
  const Field name_field = m->Get("name");
  if (!single && name_field.present) {
    r_.errors().Add(name_field, "a dataset of `datasets` is named by its key; remove name");
    ok = false;
  } else if (name_field.present) {
    auto n = r_.Name(name_field);
    if (!n) return std::nullopt;  // later class checks would only repeat this error
    d.name = *n;
  }
  if (name_field.present && single && d.name != "fashion-mnist" && !m->Has("path") &&
      !m->Has("dir")) {
    r_.errors().Add(name_field, absl::StrCat("unknown dataset '", d.name,
                                             "': fashion-mnist is the one built in; give your "
                                             "own data's format and path"));
    return std::nullopt;
  }
  const Field format = m->Get("format");
  if (auto i = r_.Choice(format, "format", {"idx", "images", "npy", "npz", "csv"})) {
    d.format = static_cast<DatasetFormat>(*i);
  } else {
    fail(!format.present);
  }
  const Field path = m->Get("path"), dir = m->Get("dir");
  if (path.present && dir.present) {
    r_.errors().Add(dir, "give path (dir is its old name), not both");
    ok = false;
  }
  if (auto p = r_.Text(path.present ? path : dir, "a path")) {
    if (p->empty()) {
      r_.errors().Add(path.present ? path : dir, "expected a path, got an empty string");
      ok = false;
    }
    d.path = ResolvePath(spec_.path, *p);
  }
  if (d.path.empty() && d.name != "fashion-mnist") {
    r_.errors().Add(Where{m->where()}, ChildPath(f.path, "path"),
                    "required: where the dataset's files are (only fashion-mnist has a default)");
    ok = false;
  }
  const DatasetFacts* facts = FindDatasetFacts(d.name);
  const int64_t max_validation =
      facts && d.path.empty() ? facts->train_examples - 1 : INT64_MAX;
  const Field validation = m->Get("validation");
  *validation_at = ToPosition(validation);
  if (auto v = r_.Int(validation, 0, max_validation)) {
    d.validation = *v;
  } else if (validation.present) {
    ok = false;
  } else if (d.name != "fashion-mnist") {
    r_.errors().Add(Where{m->where()}, ChildPath(f.path, "validation"),
                    "required: how many of the first training examples form the validation "
                    "split (Géron uses 5000 of Fashion-MNIST's 60,000)");
    ok = false;
  }
  if (auto b = r_.Bool(m->Get("resize"))) d.resize = *b;
  if (auto b = r_.Bool(m->Get("ship"))) d.ship = *b;
  const Field classes = m->Get("classes");
  if (classes.present) {
    if (classes.node.IsScalar()) {
      if (auto n = r_.Int(classes, 2, 65536)) d.classes = static_cast<int>(*n); else ok = false;
    } else if (auto items = r_.List(classes, "a class count, or a list of class names")) {
      for (const Field& item : *items) {
        if (auto n = r_.Text(item, "a class name")) d.class_names.push_back(*n); else ok = false;
      }
      if (d.class_names.size() < 2) {
        r_.errors().Add(classes, "expected at least 2 class names");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  const Field split = m->Get("test_split");
  if (auto s = r_.Number(split, Reader::Bound::kUnitInterval)) {
    if (*s <= 0 || *s >= 1) {
      r_.errors().Add(split, absl::StrCat("expected a share in (0, 1), like 0.2, got ", *s));
      ok = false;
    }
    d.test_split = *s;
  } else {
    fail(!split.present);
  }
  if (auto s = r_.Unsigned(m->Get("split_seed"))) d.split_seed = *s;
  if (m->Get("split_seed").present && !split.present) {
    r_.errors().Add(m->Get("split_seed"), "split_seed needs test_split");
    ok = false;
  }
  const Field layout = m->Get("layout");
  if (auto i = r_.Choice(layout, "layout", {"channels_last", "channels_first"})) {
    d.channels_first = *i == 1;
  } else {
    fail(!layout.present);
  }
  const Field size = m->Get("size");
  if (auto dims = r_.List(size, "a size like [28, 28]")) {
    std::vector<int64_t> hw;
    for (const Field& dim : *dims) {
      if (auto v = r_.Int(dim, 1, 1 << 16)) hw.push_back(*v);
    }
    if (dims->size() != 2) {
      r_.errors().Add(size, absl::StrCat("expected [height, width], got ", dims->size(), " values"));
    }
    if (hw.size() == 2 && dims->size() == 2) d.image_size = hw; else ok = false;
  } else {
    fail(!size.present);
  }
  if (auto a = r_.Map(m->Get("arrays"), {"x_train", "y_train", "x_test", "y_test"},
                      "a mapping like {x_train: images, y_train: labels}")) {
    for (auto [key, to] : {std::pair{"x_train", &d.x_train}, {"y_train", &d.y_train},
                           {"x_test", &d.x_test}, {"y_test", &d.y_test}}) {
      if (auto t = r_.Text(a->Get(key), "an array name")) *to = *t;
    }
  }
  if (auto b = r_.Bool(m->Get("header"))) d.csv_header = *b;
  const Field label = m->Get("label");
  if (label.present) {
    if (auto t = r_.Text(label, "a column name or index")) {
      int64_t index = 0;
      if (!IsQuoted(label.node) && absl::SimpleAtoi(*t, &index)) {
        d.label_index = static_cast<int>(index);
      } else {
        d.label_column = *t;
      }
    }
  }
  if (!d.label_column.empty() && !d.csv_header) {
    r_.errors().Add(label, "a label column by name needs header: true; give its index instead");
    ok = false;
  }
  const Field shape = m->Get("shape");
  if (shape.present) {
    if (auto s = ParseInput(shape)) d.csv_shape = *s; else ok = false;
  }
  const Field channels = m->Get("channels");
  if (auto c = r_.Int(channels, 1, 3)) {
    if (*c == 2) {
      r_.errors().Add(channels, "expected 1 (gray) or 3 (RGB)");
      ok = false;
    }
    d.channels = static_cast<int>(*c);
  } else {
    fail(!channels.present);
  }
  if (auto s = r_.Number(m->Get("scale"), Reader::Bound::kPositive)) d.scale = static_cast<float>(*s);
  const Field mean = m->Get("mean"), std = m->Get("std");
  for (auto [field, to] : {std::pair{&mean, &d.mean}, {&std, &d.std}}) {
    if (!field->present) continue;
    if (auto items = r_.List(*field, "one number per channel", /*scalar_ok=*/true)) {
      for (const Field& item : *items) {
        auto v = r_.Number(item, field == &std ? Reader::Bound::kPositive : Reader::Bound::kAny);
        if (v) to->push_back(static_cast<float>(*v)); else ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (mean.present != std.present || d.mean.size() != d.std.size()) {
    r_.errors().Add(mean.present ? std : mean,
                    "mean and std go together, with one number per channel each");
    ok = false;
  }
  // Which keys make sense for the format.
  const bool arrays = d.format == DatasetFormat::kNpy || d.format == DatasetFormat::kNpz;
  for (auto [key, allowed, formats] :
       {std::tuple{"layout", arrays, "npy and npz"},
        {"arrays", arrays, "npy and npz"},
        {"size", d.format == DatasetFormat::kImages, "images"},
        {"header", d.format == DatasetFormat::kCsv, "csv"},
        {"label", d.format == DatasetFormat::kCsv, "csv"},
        {"shape", d.format == DatasetFormat::kCsv, "csv"}}) {
    if (!allowed && m->Has(key)) {
      r_.errors().Add(m->Get(key), absl::StrCat(key, " is for ", formats, " datasets, not ",
                                                DatasetFormatName(d.format)));
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return d;
}

void SpecParser::ParseDatasets(const MapView& top) {
  const Field one = top.Get("dataset"), many = top.Get("datasets");
  spec_.positions.validation = {1, 1, "dataset.validation"};
  spec_.datasets.clear();
  if (one.present && many.present) {
    r_.errors().Add(top.KeyWhere("datasets"), "datasets",
                    "give either dataset (one) or datasets (several, by name), not both");
    datasets_ok_ = false;
    return;
  }
  if (!many.present) {
    if (!one.present) {
      spec_.datasets.push_back(DatasetSpec{});
      return;
    }
    auto d = ParseOneDataset(one, "fashion-mnist", /*single=*/true, &spec_.positions.validation);
    if (!d) {
      datasets_ok_ = false;
      return;
    }
    spec_.positions.dataset_validation[d->name] = spec_.positions.validation;
    spec_.datasets.push_back(*std::move(d));
    resize_keys_[spec_.datasets.back().name] = "dataset.resize";
    return;
  }
  auto m = r_.Map(many, {}, "a mapping of names to datasets, like {digits: {format: csv, ...}}");
  if (!m) {
    datasets_ok_ = false;
    return;
  }
  if (m->entries().empty()) {
    r_.errors().Add(many, "expected at least one dataset");
    datasets_ok_ = false;
  }
  for (const MapView::Entry& e : m->entries()) {
    if (!Reader::ValidName(e.key)) {
      r_.errors().Add(e.key_where, ChildPath(many.path, e.key),
                      "a dataset name is 1-64 letters, digits, _ . + -");
      datasets_ok_ = false;
      continue;
    }
    SpecPosition validation_at;
    auto d = ParseOneDataset(e.value, e.key, /*single=*/false, &validation_at);
    if (!d) {
      datasets_ok_ = false;
      continue;
    }
    resize_keys_[e.key] = absl::StrCat("datasets.", e.key, ".resize");
    spec_.positions.dataset_validation[e.key] = validation_at;
    spec_.datasets.push_back(*std::move(d));
  }
}

std::optional<std::string> SpecParser::TaskDataset(const MapView& task) {
  const Field f = task.Get("dataset");
  if (!f.present) {
    if (spec_.datasets.size() <= 1 || !datasets_ok_) {
      return spec_.datasets.empty() ? std::string("fashion-mnist") : spec_.datasets[0].name;
    }
    r_.errors().Add(Where{task.where()}, ChildPath(task.path(), "dataset"),
                    "required when the spec has several datasets: which one this task reads");
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (const DatasetSpec& d : spec_.datasets) names.push_back(d.name);
  if (auto i = r_.Choice(f, "dataset", names)) return names[*i];
  return std::nullopt;
}

}  // namespace seedproof::spec_internal
