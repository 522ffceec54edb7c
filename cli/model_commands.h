// `seedproof model show | export`: what is in a model file (seedproof's own, or
// ONNX), and any model seedproof trained written as ONNX (onnx_io/WriteOnnx) — a
// model file, or a trial of a finished study, trained again from what the study
// stored and checked against the result it recorded.
#pragma once

#include <string>

namespace seedproof {

// Layers, shapes, parameter counts and the file's checksum state. 0, or 1 with a
// message naming the file for a damaged or unsupported one.
int ModelShowCommand(const std::string& path);

struct ModelExportOptions {
  std::string source;  // a model file, or a `seedproof run` folder or its database
  std::string out;     // the ONNX file to write
  // A study's trial: by id, or by arm ("best": the arm, baseline included, with
  // the highest mean test accuracy), seed (-1: that arm's most accurate seed)
  // and target ("" : the only one).
  std::string trial, arm, target;
  int seed = -1;
};

// 0, or 1 with a message (a trial that cannot be trained again to the result
// the study recorded is refused, naming both numbers).
int ModelExportCommand(const ModelExportOptions& options);

}  // namespace seedproof
