// crdt-bench's results and their report: per-size metrics, paired ratios, the targets judged
// from them, and the Markdown table and JSON file they are printed as.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deltacrdt::bench {

double median(std::vector<double> v);

struct Metric {
  std::string unit;
  std::vector<double> runs;  // one value per run (a single value for memory figures)
  double value() const { return median(runs); }
};

// The figures of one size, by metric id, in insertion order for the JSON.
struct SizeResult {
  std::size_t n = 0;
  std::size_t inner = 1;
  std::vector<std::pair<std::string, Metric>> metrics;

  void add(const std::string& id, Metric m) { metrics.emplace_back(id, std::move(m)); }
  const Metric* find(std::string_view id) const {
    for (const auto& [k, m] : metrics) {
      if (k == id) return &m;
    }
    return nullptr;
  }
};

// One figure measured at the smallest and the largest size in alternation, so that both sides
// of each ratio ran under the same machine conditions: ratios[i] = rate at the small size /
// rate at the large size, from the i-th pair of back-to-back runs.
struct PairedRatio {
  std::string id;  // the metric id of the figure
  std::vector<double> ratios;
};

struct Target {
  std::string what;
  std::string measured;
  bool met;
};

struct ReportHeader {
  int repeat = 0;
  std::size_t key_bytes = 0;
  std::size_t value_bytes = 0;
};

std::string size_label(std::size_t n);

// Targets are judged at the largest size run; the "within 2x" ones against the smallest.
std::vector<Target> evaluate_targets(const std::vector<SizeResult>& results,
                                     const std::vector<PairedRatio>& paired);
void print_markdown(const ReportHeader& header, const std::vector<SizeResult>& results,
                    const std::vector<PairedRatio>& paired, const std::vector<Target>& targets);
void write_json(const std::string& path, const ReportHeader& header,
                const std::vector<SizeResult>& results, const std::vector<PairedRatio>& paired,
                const std::vector<Target>& targets);

}  // namespace deltacrdt::bench
