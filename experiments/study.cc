#include "experiments/study.h"

#include "absl/strings/str_cat.h"
#include "data/dataset_blob.h"
#include "experiments/plan.h"
#include "experiments/trial_json.h"

namespace seedproof {

void ResolveDatasets(SweepSpec& spec, const std::vector<DatasetSpec>& resolved) {
  for (DatasetSpec& d : spec.datasets) {
    for (const DatasetSpec& r : resolved) {
      if (r.name != d.name) continue;
      d.sha256 = r.sha256;
      d.scale = r.scale;
      d.example_shape = r.example_shape;
    }
  }
  auto resize_from = [&](TaskSpec& t) {
    const DatasetSpec& d = spec.DatasetOf(t);
    if (!d.resize || !t.resize_from || !t.resize_from->empty() || d.example_shape.empty()) return;
    // Declared for a dataset the parser did not know: the shape it has.
    if (d.example_shape == spec.source_model.input) {
      t.resize_from.reset();
    } else {
      t.resize_from = d.example_shape;
    }
  };
  resize_from(spec.source);
  for (TaskSpec& t : spec.targets) resize_from(t);
  for (TaskSpec& t : spec.target_sources) resize_from(t);
}

absl::StatusOr<LoadedStudy> LoadStoredStudy(const std::string& text, const std::string& path,
                                            const std::string& inputs_json) {
  StudyInputs inputs;
  if (!inputs_json.empty()) {
    auto stored = StudyInputsFromJsonText(inputs_json);
    if (!stored.ok()) {
      return absl::DataLossError(
          absl::StrCat(path, ": the stored datasets: ", stored.status().message()));
    }
    inputs = *std::move(stored);
  }
  // The imported model as it was at submission, not the file as it is now.
  const ImportedModelLoader stored_model =
      [&](const std::string& file) -> absl::StatusOr<ImportedModel> {
    if (!inputs.imported) {
      return absl::DataLossError(
          absl::StrCat(file, ": the study was stored without the model it imported"));
    }
    return *inputs.imported;
  };
  std::vector<SpecError> errors;
  auto spec = ParseSweepSpecText(text, path, &errors, stored_model);
  // The parser's status lists the errors (the first ones, and a count: bounded).
  if (!spec.ok()) return spec.status();
  LoadedStudy study;
  if (!inputs_json.empty()) ResolveDatasets(*spec, inputs.datasets);
  study.plan = ExpandSweep(*spec);
  study.spec = *std::move(spec);
  return study;
}

absl::StatusOr<LoadedStudy> LoadStudy(const std::string& text, const std::string& path,
                                      std::vector<SpecError>* errors_out,
                                      const LoadStudyOptions& options) {
  std::vector<SpecError> errors;
  std::string onnx_bytes;  // the imported model's file, shipped to workers as an artifact
  const ImportedModelLoader read_model = [&](const std::string& file) {
    return ImportModelFile(file, options.keep_shipped ? &onnx_bytes : nullptr);
  };
  auto spec = ParseSweepSpecText(text, path, &errors, read_model);
  absl::Status status = spec.status();
  LoadedStudy study;
  if (spec.ok() && spec->imported && options.keep_shipped) {
    study.shipped[spec->imported->sha256] = std::move(onnx_bytes);
  }
  if (spec.ok()) {
    std::vector<DatasetSpec> resolved;
    for (const DatasetSpec& d : spec->datasets) {
      auto loaded = LoadDataset(d);
      if (!loaded.ok()) {
        return absl::Status(loaded.status().code(), absl::StrCat(path, ": dataset '", d.name,
                                                                 "': ", loaded.status().message()));
      }
      DatasetSpec r = d;
      r.sha256 = loaded->sha256;
      r.scale = d.scale.value_or(DefaultScale(d, loaded->data.train.storage));
      study.facts[d.name] = FactsOfData(d, *loaded);
      r.example_shape = study.facts[d.name].example_shape;
      resolved.push_back(r);
      if (options.keep_shipped && d.ship) {
        study.shipped[loaded->sha256] = EncodeDataset(loaded->data);
      }
    }
    ResolveDatasets(*spec, resolved);
    status = ValidateAgainstData(*spec, study.facts, &errors);
  }
  if (!status.ok()) {
    if (errors_out != nullptr) errors_out->insert(errors_out->end(), errors.begin(), errors.end());
    return status;
  }
  TrainCounts counts;
  for (const auto& [name, f] : study.facts) counts[name] = f.train_counts_per_class;
  study.plan = ExpandSweep(*spec, counts);
  study.spec = *std::move(spec);
  return study;
}

}  // namespace seedproof
