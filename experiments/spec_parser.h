// INTERNAL: included only by the sweep spec parser's .cc files (sweep_parse.cc,
// sweep_parse_model.cc, sweep_parse_axes.cc), since it includes yaml-cpp through
// spec_yaml.h. Everyone else reads specs through sweep_parse.h.
//
// SpecParser turns a spec's YAML document into a SweepSpec, reporting every problem
// to an Errors list. Its parts live in three files:
//   sweep_parse.cc        Parse: the top level, the source model and the targets
//   sweep_parse_model.cc  dataset, tasks, model layers, optimizer keys, pretrain,
//                         baseline, seeds, analysis
//   sweep_parse_axes.cc   transfer: the axes and their cross product into arms
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/model_spec.h"
#include "experiments/spec_yaml.h"
#include "experiments/sweep.h"
#include "experiments/sweep_parse.h"

namespace seedproof::spec_internal {

// ---------------------------------------------------------------------------
// Domain helpers

inline const std::vector<std::string> kOptimizerNames = {"sgd", "adam"};
inline const std::vector<std::string> kOptimizerKeys = {
    "optimizer", "momentum", "nesterov", "weight_decay", "beta1", "beta2", "epsilon"};

std::string ClassList(const std::vector<int32_t>& classes, const char* sep = ", ");

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
OptimizerSpec Resolve(const OptimizerSpec& base, const OptimizerOverrides& o);

// A listed layer and where it was listed.
// A relative path is taken from the spec file's folder, made absolute so that
// workers in other folders read the same files.
std::string ResolvePath(const std::string& spec_path, const std::string& path);

struct ListedLayer {
  LayerSpec spec;
  Field field;
};

// Inserts a Flatten before each dense layer that would get a non-flat input; with
// flatten_end, also one at the end when the output is not flat. `map[i]` receives
// the index of listed layer i in the result. input_rank is 1 or 3.
std::vector<LayerSpec> WithFlattens(const std::vector<ListedLayer>& listed, size_t input_rank,
                                    bool flatten_end, std::vector<int>* map = nullptr);

// The first layer of `model` that InferShapes rejects, found by checking ever
// longer prefixes closed by Flatten + Dense(2, softmax); nullopt when valid.
struct LayerProblem {
  size_t layer;
  std::string message;
};
std::optional<LayerProblem> FindLayerProblem(const ModelSpec& model);

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
  SpecParser(Errors& errors, std::string path, const ImportedModelLoader& loader)
      : r_(errors), errors_(errors), loader_(loader) {
    spec_.path = std::move(path);
  }

  std::optional<SweepSpec> Parse(const YAML::Node& root);

 private:
  // Parts, each reporting its own errors.
  // datasets (sweep_parse_data.cc)
  void ParseDatasets(const MapView& top);
  std::optional<DatasetSpec> ParseOneDataset(const Field& f, const std::string& name, bool single,
                                             SpecPosition* validation_at);
  // The dataset a task names (or the only one); nullopt after reporting a problem.
  std::optional<std::string> TaskDataset(const MapView& task);
  // What the parser knows of a dataset without reading it; nullptr: only LoadStudy knows.
  const DatasetFacts* FactsOf(const DatasetSpec& d) const;
  std::optional<TaskSpec> ParseTask(const Field& f, bool is_source, TaskPositions* positions,
                                    bool* others);
  std::optional<std::vector<int32_t>> ParseClasses(const Field& f);
  std::optional<Shape> ParseInput(const Field& f);
  std::optional<std::vector<ListedLayer>> ParseLayers(const Field& f, bool allow_empty);
  std::optional<LayerSpec> ParseLayer(const Field& f);
  // model: {onnx: FILE}: the imported model as the source model, its units as the
  // listed layers a reuse depth counts (all but the output layer's). False after
  // reporting a problem.
  bool ParseImportedModel(const MapView& model);
  bool ParseWindow(const Field& f, int* h, int* w);
  bool ParseLayerActivationInit(const MapView& m, LayerSpec* layer);
  OptimizerOverrides ParseOptimizerKeys(const MapView& m, bool with_lr);
  void CheckOptimizerKeys(const OptimizerOverrides& o, const OptimizerSpec& resolved);
  std::optional<PhaseSpec> ParsePretrain(const Field& f);
  void ParseBaseline(const Field& f);
  void ParseSeeds(const Field& f);
  // seeds: {min, max, step}; false (errors added) when they do not make a design.
  bool ParseSequentialSeeds(const MapView& m);
  // seeds: {crossed: {init: A, order: B}}; false (errors added) when it is not a grid.
  bool ParseCrossedSeeds(const MapView& m);
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
  const ImportedModelLoader& loader_;
  SweepSpec spec_;
  // The dataset of the task being parsed; nullptr: unknown until read, class checks
  // wait for LoadStudy (ValidateAgainstData).
  const DatasetFacts* facts_ = nullptr;
  bool datasets_ok_ = true;
  std::map<std::string, std::string> resize_keys_;  // dataset name -> its resize key's path

  // model
  Activation default_activation_ = Activation::kRelu;
  Initializer default_init_ = Initializer::kGlorotUniform;
  std::optional<std::vector<ListedLayer>> listed_;  // model.layers as listed
  std::vector<int> listed_to_model_;                // listed layer i -> source_model index
  std::optional<ModelShapes> source_shapes_;        // when the source model is valid
  bool model_ok_ = false;
  bool pretrain_ok_ = false;
};

}  // namespace seedproof::spec_internal
