// Reads statistics cases as JSON on stdin and prints seedproof's answers as JSON,
// for scipy_check.py to compare with scipy. One object per case, same order:
//   {"kind": "wilcoxon", "d": [...]}               -> {"p": .., "w_plus": .., "exact": ..}
//   {"kind": "mannwhitney", "a": [...], "b": [...]} -> {"u": ..}
//   {"kind": "bootstrap", "a": [...], "b": [...], "level": .., "resamples": ..}
//                                                   -> {"low": .., "high": ..}
//   {"kind": "clustered_bootstrap", "a": [...], "b": [...], "cluster": [...], "level": ..,
//    "resamples": ..}                                -> {"low": .., "high": ..}
//   {"kind": "variance", "values": [...], "group": [...]} -> {"between": .., "within": ..}
//   {"kind": "sign", "wins": .., "losses": ..}      -> {"p": ..}
#include <iostream>
#include <iterator>

#include "coordinator/statistics.h"
#include "nlohmann/json.hpp"

int main() {
  using seedproof::BootstrapPaired;
  const nlohmann::json cases = nlohmann::json::parse(std::cin);
  nlohmann::json answers = nlohmann::json::array();
  for (const nlohmann::json& c : cases) {
    const std::string kind = c.at("kind");
    if (kind == "wilcoxon") {
      const auto r = seedproof::WilcoxonSignedRank(c.at("d").get<std::vector<double>>());
      answers.push_back({{"p", r.p_value}, {"w_plus", r.w_plus}, {"exact", r.exact}});
    } else if (kind == "mannwhitney") {
      answers.push_back({{"u", seedproof::MannWhitneyU(c.at("a").get<std::vector<double>>(),
                                                       c.at("b").get<std::vector<double>>())}});
    } else if (kind == "bootstrap") {
      const auto r = BootstrapPaired(c.at("a").get<std::vector<double>>(),
                                     c.at("b").get<std::vector<double>>(),
                                     {.resamples = c.at("resamples"), .level = c.at("level")});
      answers.push_back({{"low", r.mean_difference.low}, {"high", r.mean_difference.high}});
    } else if (kind == "clustered_bootstrap") {
      const auto r = seedproof::BootstrapPairedClustered(
          c.at("a").get<std::vector<double>>(), c.at("b").get<std::vector<double>>(),
          c.at("cluster").get<std::vector<int>>(),
          {.resamples = c.at("resamples"), .level = c.at("level")});
      answers.push_back({{"low", r.mean_difference.low}, {"high", r.mean_difference.high}});
    } else if (kind == "variance") {
      const auto v = seedproof::OneWayVarianceComponents(c.at("values").get<std::vector<double>>(),
                                                         c.at("group").get<std::vector<int>>());
      answers.push_back({{"between", v.between}, {"within", v.within}});
    } else if (kind == "sign") {
      answers.push_back({{"p", seedproof::SignTestP(c.at("wins"), c.at("losses"))}});
    } else {
      std::cerr << "statistics_probe: unknown kind '" << kind << "'\n";
      return 2;
    }
  }
  std::cout << answers.dump() << "\n";
  return 0;
}
