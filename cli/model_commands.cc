#include "cli/model_commands.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "backends/backend.h"
#include "backends/model_file.h"
#include "cli/results_file.h"
#include "coordinator/store.h"
#include "data/content_hash.h"
#include "data/file_bytes.h"
#include "experiments/plan.h"
#include "experiments/study.h"
#include "experiments/sweep_parse.h"
#include "experiments/trial.h"
#include "onnx_io/onnx_model.h"
#include "worker/artifacts.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "seedproof: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

bool IsModelFile(const std::string& bytes) {
  return bytes.size() >= sizeof(kModelFileMagic) &&
         std::memcmp(bytes.data(), kModelFileMagic, sizeof(kModelFileMagic)) == 0;
}

int64_t ParameterCount(const std::vector<Shape>& tensors) {
  int64_t n = 0;
  for (const Shape& s : tensors) n += ElementCount(s);
  return n;
}

// A table row per layer: what it is, its output, its parameters.
void PrintLayers(const ModelSpec& spec, const ModelShapes& shapes,
                 const std::vector<bool>& trainable) {
  std::printf("  %-3s %-34s %-16s %12s%s\n", "#", "layer", "output", "parameters",
              trainable.empty() ? "" : "  trains");
  for (size_t l = 0; l < spec.layers.size(); ++l) {
    std::printf("  %-3zu %-34s %-16s %12s%s\n", l, LayerText(spec.layers[l]).c_str(),
                ShapeToString(shapes.outputs[l]).c_str(),
                WithCommas(ParameterCount(shapes.params[l])).c_str(),
                trainable.empty() ? "" : (trainable[l] ? "  yes" : "  no"));
  }
}

int ShowModelFile(const std::string& path, const std::string& bytes) {
  auto backend = MakeBackend("reference");
  if (!backend.ok()) return Fail(backend.status());
  auto model = (*backend)->LoadBytes(bytes, path);
  if (!model.ok()) return Fail(model.status());
  const ModelSpec& spec = (*model)->spec();
  std::vector<bool> trainable;
  for (int l = 0; l < (*model)->num_layers(); ++l) trainable.push_back((*model)->trainable(l));
  std::printf("%s: seedproof model file; checksum: CRC-32 verified\n", path.c_str());
  std::printf("sha256 %s\n", Sha256Hex(bytes).c_str());
  std::printf("input %s, loss %s\n", ShapeToString(spec.input).c_str(), LossName(spec.loss));
  PrintLayers(spec, (*model)->shapes(), trainable);
  std::printf("parameters: %s\n", WithCommas((*model)->shapes().parameter_count).c_str());
  return 0;
}

int ShowOnnx(const std::string& path, const std::string& bytes) {
  auto graph = ReadOnnx(bytes, path);
  if (!graph.ok()) return Fail(graph.status());
  const ModelSpec spec = graph->output_layer ? *SourceModelSpec(*graph) : graph->spec;
  auto shapes = InferShapes(graph->output_layer ? spec : WithThrowawayHead(spec));
  if (!shapes.ok()) return Fail(shapes.status());
  std::vector<std::string> onnx_input;
  for (int64_t d : graph->onnx_input) onnx_input.push_back(d == 0 ? "N" : absl::StrCat(d));
  std::printf("%s: ONNX model, opset %lld%s%s; ONNX files carry no checksum\n", path.c_str(),
              static_cast<long long>(graph->opset), graph->producer.empty() ? "" : ", made by ",
              graph->producer.c_str());
  std::printf("sha256 %s\n", Sha256Hex(bytes).c_str());
  std::printf("input (%s) in the file: examples %s here\n", absl::StrJoin(onnx_input, ", ").c_str(),
              ShapeToString(spec.input).c_str());
  std::printf("layers (a spec's reuse k keeps the first k):\n");
  int width = 5;
  for (const OnnxUnit& unit : graph->units) {
    width = std::max(width, static_cast<int>(unit.description.size()));
  }
  std::printf("  %-3s %-*s  %-16s %12s\n", "#", width, "layer", "output", "parameters");
  for (size_t u = 0; u < graph->units.size(); ++u) {
    const OnnxUnit& unit = graph->units[u];
    int64_t params = 0;
    for (int l = unit.first_layer; l < unit.end_layer; ++l) {
      params += ParameterCount(shapes->params[static_cast<size_t>(l)]);
    }
    const bool output = graph->output_layer && u + 1 == graph->units.size();
    std::printf("  %-3s %-*s  %-16s %12s\n", output ? "out" : absl::StrCat(u + 1).c_str(), width,
                unit.description.c_str(),
                ShapeToString(shapes->outputs[static_cast<size_t>(unit.end_layer - 1)]).c_str(),
                WithCommas(params).c_str());
  }
  int64_t total = 0;
  for (size_t l = 0; l < spec.layers.size(); ++l) total += ParameterCount(shapes->params[l]);
  std::printf("parameters: %s\n", WithCommas(total).c_str());
  if (!graph->output_layer) {
    std::printf("no output layer (a Gemm or MatMul at the end): not usable as a source model\n");
  }
  return 0;
}

absl::Status WriteOnnxFile(const Model& model, const std::string& graph_name,
                           const std::string& out) {
  auto onnx = WriteOnnx(model, graph_name);
  if (!onnx.ok()) return onnx.status();
  if (auto s = WriteFileAtomically(out, *onnx); !s.ok()) return s;
  std::printf(
      "wrote %s: %s bytes, ONNX opset 14; input \"input\" (N, %s), output "
      "\"probabilities\" (N, %lld)\n",
      out.c_str(), WithCommas(static_cast<int64_t>(onnx->size())).c_str(),
      absl::StrJoin(model.spec().input, ", ").c_str(),
      static_cast<long long>(model.output_units()));
  return absl::OkStatus();
}

// The database of a `seedproof run` folder, or the database itself.
std::string DatabaseOf(const std::string& source) {
  std::error_code ec;
  if (fs::is_directory(source, ec)) return (fs::path(source) / "seedproof.db").string();
  return source;
}

// The result the options name among a study's results.
absl::StatusOr<TrialResult> ChooseResult(const std::vector<TrialResult>& results,
                                         const ModelExportOptions& o) {
  std::vector<const TrialResult*> done;
  for (const TrialResult& r : results) {
    if (r.outcome == TrialOutcome::kCompleted) done.push_back(&r);
  }
  if (!o.trial.empty()) {
    for (const TrialResult* r : done) {
      if (r->trial_id == o.trial) return *r;
    }
    return absl::NotFoundError(absl::StrCat("no completed trial ", o.trial, " in the study"));
  }
  if (o.arm.empty()) {
    return absl::InvalidArgumentError(
        "name the trial: --trial ID, or --arm ARM (or best) with --seed N and --target T");
  }
  std::string arm = o.arm;
  if (arm == "best") {
    std::map<std::string, std::pair<double, int>> sums;  // arm -> (accuracy sum, count)
    for (const TrialResult* r : done) {
      if (r->kind == TrialKind::kPretrain || (!o.target.empty() && r->target != o.target)) continue;
      sums[r->arm].first += r->test_accuracy;
      ++sums[r->arm].second;
    }
    double best = -1.0;
    for (const auto& [name, sum] : sums) {
      if (sum.first / sum.second > best) best = sum.first / sum.second, arm = name;
    }
    if (best < 0.0) return absl::NotFoundError("the study has no completed trial to export");
  }
  const TrialResult* chosen = nullptr;
  for (const TrialResult* r : done) {
    if (r->arm != arm || (!o.target.empty() && r->target != o.target)) continue;
    if (o.seed >= 0 ? r->seed_index == o.seed
                    : chosen == nullptr || r->test_accuracy > chosen->test_accuracy) {
      if (o.seed >= 0 && chosen != nullptr && chosen->target != r->target) {
        return absl::InvalidArgumentError(absl::StrCat(
            "arm ", arm, " seed ", o.seed, " ran on several targets; name one with --target"));
      }
      chosen = r;
    }
  }
  if (chosen == nullptr) {
    return absl::NotFoundError(absl::StrCat("no completed trial of arm '", arm, "'",
                                            o.seed >= 0 ? absl::StrCat(" seed ", o.seed) : "",
                                            o.target.empty() ? "" : " on target " + o.target));
  }
  return *chosen;
}

// The trial trained again from what the store holds: its spec, its source model
// and shipped datasets, on the backend and thread count it ran with. Refused
// unless it reproduces the recorded result bit for bit.
absl::StatusOr<std::unique_ptr<Model>> TrainAgain(Store& store, const std::string& sweep_id,
                                                  const TrialSpec& trial,
                                                  const TrialResult& recorded) {
  auto backend = MakeBackend(recorded.provenance.backend, {.threads = recorded.provenance.threads});
  if (!backend.ok()) return backend.status();
  if (trial.kind == TrialKind::kPretrain) {
    // The model it made is stored: nothing to train again.
    auto sha = store.ArtifactOf(sweep_id, trial.id);
    if (!sha.ok()) return sha.status();
    auto bytes = store.GetArtifact(*sha);
    if (!bytes.ok()) return bytes.status();
    return (*backend)->LoadBytes(*bytes, absl::StrCat("the model of trial ", trial.id));
  }
  MemoryArtifactStore artifacts;
  if (!SourceKey(trial).empty()) {
    auto bytes = store.GetArtifact(recorded.provenance.source_model_sha256);
    if (!bytes.ok()) return bytes.status();
    artifacts.Keep(SourceKey(trial), *std::move(bytes));
  }
  MemoryDatasets shipped;
  if (trial.dataset.ship) {
    auto encoding = store.GetArtifact(trial.dataset.sha256);
    if (!encoding.ok()) return encoding.status();
    shipped.Keep(trial.dataset.sha256, *std::move(encoding));
  }
  TrialCache cache;
  std::unique_ptr<Model> model;
  TrialContext ctx;
  ctx.backend = backend->get();
  ctx.artifacts = &artifacts;
  ctx.cache = &cache;
  ctx.datasets = &shipped;
  ctx.threads = recorded.provenance.threads;
  ctx.trained_model = &model;
  std::fprintf(stderr, "training trial %s (%s %s, seed %d) again on %s, %d thread(s)...\n",
               trial.id.c_str(), TrialKindName(trial.kind), trial.arm.c_str(), trial.seed_index,
               recorded.provenance.backend.c_str(), recorded.provenance.threads);
  auto again = RunTrial(trial, ctx);
  if (!again.ok()) return again.status();
  if (again->test_loss != recorded.test_loss || again->test_accuracy != recorded.test_accuracy ||
      model == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "trial %s trained again gives test loss %.17g and accuracy %.17g; the study recorded "
        "%.17g and %.17g (on CPU %s, here %s): this would not be the model the study measured",
        trial.id, again->test_loss, again->test_accuracy, recorded.test_loss,
        recorded.test_accuracy, recorded.provenance.cpu_isa, again->provenance.cpu_isa));
  }
  return model;
}

int ExportTrial(const ModelExportOptions& o) {
  const std::string database = DatabaseOf(o.source);
  std::error_code ec;
  if (!fs::is_regular_file(database, ec)) {
    return Fail(absl::NotFoundError(absl::StrCat(
        database, ": no such database (give a model file, or a `seedproof run` folder)")));
  }
  auto store = Store::Open(database, {.migrate = false});
  if (!store.ok()) return Fail(store.status());
  auto sweeps = (*store)->ListSweeps();
  if (!sweeps.ok()) return Fail(sweeps.status());
  if (sweeps->empty()) return Fail(absl::NotFoundError(database + ": holds no sweep"));
  const std::string sweep_id = sweeps->back().sweep_id;
  auto results = (*store)->Results(sweep_id, BlockedTrials::kLeftOut);
  if (!results.ok()) return Fail(results.status());
  auto chosen = ChooseResult(*results, o);
  if (!chosen.ok()) return Fail(chosen.status());
  auto text = (*store)->SweepSpecText(sweep_id);
  if (!text.ok()) return Fail(text.status());
  auto study = LoadStoredStudy(text->text, text->path, text->datasets_json);
  if (!study.ok()) return Fail(study.status());
  const TrialSpec* trial = nullptr;
  for (const auto* list : {&study->plan.trials, &study->plan.later_candidates}) {
    for (const TrialSpec& t : *list) {
      if (t.id == chosen->trial_id) trial = &t;
    }
  }
  if (trial == nullptr) {
    return Fail(absl::DataLossError(absl::StrCat(database, ": trial ", chosen->trial_id,
                                                 " is not in its sweep's spec as stored")));
  }
  auto model = TrainAgain(**store, sweep_id, *trial, *chosen);
  if (!model.ok()) return Fail(model.status());
  std::printf("trial %s: %s %s%s, seed %d, test accuracy %.4f (as the study recorded)\n",
              trial->id.c_str(), TrialKindName(trial->kind), trial->arm.c_str(),
              trial->target.empty() ? "" : absl::StrCat(" on ", trial->target).c_str(),
              trial->seed_index, chosen->test_accuracy);
  const std::string name = absl::StrCat(sweep_id, "-", trial->arm, "-seed", trial->seed_index);
  if (auto s = WriteOnnxFile(**model, name, o.out); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace

int ModelShowCommand(const std::string& path) {
  auto bytes = ReadFileString(path);
  if (!bytes.ok()) return Fail(bytes.status());
  if (IsModelFile(*bytes)) return ShowModelFile(path, *bytes);
  return ShowOnnx(path, *bytes);
}

int ModelExportCommand(const ModelExportOptions& o) {
  std::error_code ec;
  const bool study = fs::is_directory(o.source, ec) || !o.trial.empty() || !o.arm.empty();
  if (study) return ExportTrial(o);
  auto bytes = ReadFileString(o.source);
  if (!bytes.ok()) return Fail(bytes.status());
  if (!IsModelFile(*bytes)) {
    // A study's database, or something that is no model file.
    if (bytes->rfind("SQLite format 3", 0) == 0) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          o.source, ": a study's database; name its trial with --trial ID or --arm ARM")));
    }
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(o.source,
                     ": not a seedproof model file (bad magic); `seedproof model "
                     "export` takes a model file or a `seedproof run` folder")));
  }
  auto backend = MakeBackend("reference");
  if (!backend.ok()) return Fail(backend.status());
  auto model = (*backend)->LoadBytes(*bytes, o.source);
  if (!model.ok()) return Fail(model.status());
  if (auto s = WriteOnnxFile(**model, fs::path(o.source).stem().string(), o.out); !s.ok()) {
    return Fail(s);
  }
  return 0;
}

}  // namespace seedproof
