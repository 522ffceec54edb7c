// A study from its spec text, the one way the CLI and the coordinator load one:
// parse and validate the YAML, read every dataset it names (to hash it and check
// the spec against it), and expand it into its trials.
//
//   std::vector<SpecError> errors;
//   auto study = LoadStudy(text, "spec.yaml", &errors);
//   if (!study.ok()) { for (auto& e : errors) ... FormatSpecError(path, e) ...; }
//   store.SubmitSweep(study->spec.name, text, path, study->plan, now);
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/sweep.h"
#include "experiments/sweep_parse.h"

namespace seedproof {

struct LoadedStudy {
  SweepSpec spec;  // its datasets resolved: sha256 and scale from the data
  Plan plan;
  DataFactsByName facts;
  // The canonical encoding of every dataset the spec ships (DatasetSpec::ship),
  // and the imported model's file (model: {onnx: FILE}), by sha256, when
  // LoadStudy was asked to keep them: the artifacts workers fetch.
  std::map<std::string, std::string> shipped;
};

struct LoadStudyOptions {
  bool keep_shipped = false;  // fill LoadedStudy::shipped
};

// INVALID_ARGUMENT with every problem of the spec, one "FILE:LINE:COL: FIELD:
// message" per line (FILE is path_for_messages), also appended to *errors; a
// dataset's own errors (a file that cannot be read or decoded) keep their codes,
// name the dataset, and leave *errors empty.
absl::StatusOr<LoadedStudy> LoadStudy(const std::string& text, const std::string& path_for_messages,
                                      std::vector<SpecError>* errors = nullptr,
                                      const LoadStudyOptions& options = {});

// A stored study expanded again without reading its files: the spec text with the
// datasets and imported model as they were loaded at submission (StudyInputsFromJsonText
// of the stored JSON), so the trials and their ids are the submitted ones even
// when the files have changed since. inputs_json "" (a study stored before
// datasets were kept): the spec as parsed, whose trials have the ids they had
// then. Errors as LoadStudy.
absl::StatusOr<LoadedStudy> LoadStoredStudy(const std::string& text,
                                            const std::string& path_for_messages,
                                            const std::string& inputs_json);

// What reading the data settles in a dataset's spec: its content hash and its
// scale (the format's default made explicit), and for tasks whose dataset declares
// a resize, the shape resized from. Also how a stored study gets them back
// (`resolved`: Plan::datasets as submitted) without reading the data again.
void ResolveDatasets(SweepSpec& spec, const std::vector<DatasetSpec>& resolved);

}  // namespace seedproof
