// The sweep spec's transfer part: the axes (reuse depths, new layer sets, heads,
// optimizers, lr scales, schedules), the target model of each (reuse, new layers)
// pair, and their cross product into arms. docs/SWEEP_SPEC.md is the user's
// reference for every key handled here.
#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/spec_parser.h"

namespace seedproof::spec_internal {

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
    for (const ListedLayer& l : *listed_) {
      weighted += l.spec.kind == LayerKind::kDense || l.spec.kind == LayerKind::kConv2D ? 1 : 0;
    }
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

}  // namespace seedproof::spec_internal
