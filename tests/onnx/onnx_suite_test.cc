// The ONNX backend test suite Debian ships (libonnx-testdata), through the importer
// and both backends: every test whose operators seedproof reads and that uses at
// least one operator of the import list (tests/onnx/suite_cases.py chooses them and
// hands them over) must reproduce the suite's stored output within its tolerances
// (|got - expected| <= atol + rtol * |expected|, rtol 1e-3 and atol 1e-7), or be
// refused by ReadOnnx with a reason. The refusals are pinned in
// tests/onnx/suite_skips.txt, test by test with the start of the reason, so the list
// can neither grow nor go stale unnoticed. The test prints how many ran and passed
// and every skip.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/backend.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "onnx_io/onnx_model.h"
#include "tests/testing/script_output.h"

namespace seedproof {
namespace {

namespace fs = std::filesystem;

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<float> ReadFloats(const fs::path& path) {
  const std::string bytes = ReadBytes(path);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

// tests/onnx/suite_skips.txt: "<source>/<test>  <start of the reason>" per line;
// '#' starts a comment.
std::map<std::string, std::string> PinnedSkips() {
  std::map<std::string, std::string> skips;
  std::ifstream in(fs::path(__FILE__).parent_path() / "suite_skips.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t gap = line.find("  ");
    if (gap == std::string::npos) {
      ADD_FAILURE() << "suite_skips.txt: '" << line << "' has no two-space gap before its reason";
      continue;
    }
    const size_t reason = line.find_first_not_of(' ', gap);
    skips[line.substr(0, gap)] = line.substr(reason);
  }
  return skips;
}

// What the graph's layers compute for the test's data, on `backend_name`: the
// layers with a throwaway output layer after them, and Features up to it.
absl::StatusOr<std::vector<float>> RunLayers(const OnnxGraph& graph,
                                             const std::string& backend_name,
                                             const std::vector<float>& x, int64_t n) {
  auto backend = MakeBackend(backend_name);
  if (!backend.ok()) return backend.status();
  auto model = (*backend)->Create(WithThrowawayHead(graph.spec), 0);
  if (!model.ok()) return model.status();
  for (size_t l = 0; l < graph.weights.size(); ++l) {
    if (graph.weights[l].empty()) continue;
    if (auto s = (*model)->SetWeights(static_cast<int>(l), graph.weights[l]); !s.ok()) return s;
  }
  const int layers = static_cast<int>(graph.spec.layers.size());
  std::vector<float> out(n * ElementCount((*model)->shapes().outputs[layers - 1]));
  if (auto s = (*model)->Features(x.data(), n, layers, out.data()); !s.ok()) return s;
  if (graph.output_flattened_chw.empty()) return out;
  // Channels-last back to ONNX's channel-major flatten, to compare with the suite.
  const int64_t c = graph.output_flattened_chw[0];
  const int64_t hw = graph.output_flattened_chw[1] * graph.output_flattened_chw[2];
  std::vector<float> onnx_order(out.size());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < hw; ++p) {
      for (int64_t k = 0; k < c; ++k) onnx_order[(i * c + k) * hw + p] = out[(i * hw + p) * c + k];
    }
  }
  return onnx_order;
}

TEST(OnnxBackendSuite, EveryTestOfAReadOperatorPassesOrIsAPinnedSkip) {
  const fs::path root = testing_support::ScriptOutput(
      fs::path(__FILE__).parent_path() / "suite_cases.py", "seedproof_onnx_suite");
  ASSERT_FALSE(root.empty());
  const nlohmann::json cases = nlohmann::json::parse(ReadBytes(root / "cases.json"));
  const std::map<std::string, std::string> pinned = PinnedSkips();
  int ran = 0, passed = 0;
  std::map<std::string, std::string> skipped;  // test -> reason
  for (const nlohmann::json& c : cases) {
    const std::string name = c.at("name");
    const std::string test = name.substr(0, name.find("/test_data_set_"));
    if (c.contains("skip")) {
      skipped[test] = c.at("skip");
      continue;
    }
    const fs::path dir = root / c.at("dir").get<std::string>();  // relative to root
    auto graph = ReadOnnx(ReadBytes(dir / "model.onnx"), "model.onnx");
    if (!graph.ok()) {
      skipped[test] = std::string(graph.status().message()).substr(strlen("model.onnx: "));
      continue;
    }
    const std::vector<int64_t> x_dims = c.at("x_dims");
    const std::vector<float> x = ReadFloats(dir / "x.f32");
    const std::vector<float> expected = ReadFloats(dir / "expected.f32");
    const double rtol = c.at("rtol"), atol = c.at("atol");
    for (const char* backend : {"reference", "onednn"}) {
      ++ran;
      const std::string note = c.at("note");
      SCOPED_TRACE(absl::StrCat(name, " on ", backend, note.empty() ? "" : " (", note,
                                note.empty() ? "" : ")"));
      auto got = RunLayers(*graph, backend, x, x_dims[0]);
      if (!got.ok()) {
        ADD_FAILURE() << "read, but does not run: " << got.status();
        continue;
      }
      if (got->size() != expected.size()) {
        ADD_FAILURE() << "gives " << got->size() << " values, the suite " << expected.size();
        continue;
      }
      int bad = 0;
      for (size_t i = 0; i < expected.size(); ++i) {
        const double allowed = atol + rtol * std::fabs(expected[i]);
        if (!(std::fabs(double{(*got)[i]} - expected[i]) <= allowed) && bad++ < 3) {
          ADD_FAILURE() << "value " << i << " is " << (*got)[i] << ", the suite says "
                        << expected[i];
        }
      }
      if (bad == 0) ++passed;
    }
  }
  std::printf(
      "ONNX backend test suite: %d runs (tests x backends), %d passed; %zu tests skipped:\n", ran,
      passed, skipped.size());
  for (const auto& [test, reason] : skipped)
    std::printf("  %-60s %s\n", test.c_str(), reason.c_str());
  EXPECT_GT(ran, 0);
  for (const auto& [test, reason] : skipped) {
    auto it = pinned.find(test);
    if (it == pinned.end()) {
      ADD_FAILURE() << test << " is skipped but not in suite_skips.txt: " << reason;
    } else {
      EXPECT_TRUE(absl::StartsWith(reason, it->second))
          << test << " is skipped for another reason than suite_skips.txt says: " << reason;
    }
  }
  for (const auto& [test, reason] : pinned) {
    EXPECT_TRUE(skipped.contains(test)) << test << " is in suite_skips.txt but no longer skipped";
  }
}

}  // namespace
}  // namespace seedproof
