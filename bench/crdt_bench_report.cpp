// crdt-bench's report: the table rows, the targets and how they are judged, Markdown and JSON.
#include "bench/crdt_bench_report.hpp"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <fmt/core.h>

namespace deltacrdt::bench {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

namespace {

struct Row {
  const char* id;
  const char* label;
  const char* unit;
  const char* baseline;  // metric id this figure is compared with, or nullptr
  bool rate;             // shown in millions per second
  bool big_only;         // shown only for N >= 100k (RSS is page-grained)
};

constexpr Row kRows[] = {
    {"baseline_insert", "baseline: `unordered_map<string,string>` insert", "M ops/s", nullptr, true,
     false},
    {"put", "`AWLWWMap<string,string>::put` (delta consumed)", "M ops/s", "baseline_insert", true,
     false},
    {"put_compact", "`AWLWWMap<CompactString,CompactString>::put`", "M ops/s", "baseline_insert",
     true, false},
    {"baseline_insert_fixed", "baseline: `unordered_map<array<16>,array<32>>` insert", "M ops/s",
     nullptr, true, false},
    {"put_fixed", "`AWLWWMap<array<16>,array<32>>::put`", "M ops/s", "baseline_insert_fixed", true,
     false},
    {"orset_add", "`ORSet<string>::add`", "M ops/s", "baseline_insert", true, false},
    {"baseline_upsert", "baseline: `unordered_map` upsert, same writes as the deltas", "M ops/s",
     nullptr, true, false},
    {"delta_apply", "delta apply: `replica.join(1-key delta)`", "M deltas/s", "baseline_upsert",
     true, false},
    {"delta_apply_compact", "delta apply, `CompactString` map", "M deltas/s", "baseline_upsert",
     true, false},
    {"delta_apply_batched", "delta apply: `replica.join_each(256 1-key deltas)`", "M deltas/s",
     "baseline_upsert", true, false},
    {"delta_apply_batched_compact", "delta apply, `join_each`, `CompactString` map", "M deltas/s",
     "baseline_upsert", true, false},
    {"delta_apply_random", "delta apply, every delta overwriting a random key (supplementary)",
     "M deltas/s", nullptr, true, false},
    {"baseline_merge_disjoint",
     "baseline: `unordered_map` insert_or_assign of N/2 disjoint keys into N/2", "M entries/s",
     nullptr, true, false},
    {"join_disjoint", "full-state join, N/2 + N/2 disjoint keys", "M entries/s",
     "baseline_merge_disjoint", true, false},
    {"baseline_merge_same_keys", "baseline: `unordered_map` insert_or_assign of the same N/2 keys",
     "M entries/s", nullptr, true, false},
    {"join_same_keys", "full-state join, N/2 same keys written concurrently", "M entries/s",
     "baseline_merge_same_keys", true, false},
    {"encoded_bytes_per_key", "serialized `encode(map)` bytes/key", "bytes/key", nullptr, false,
     false},
    {"heap_bytes_per_key_baseline", "heap: baseline `unordered_map<string,string>`", "bytes/key",
     nullptr, false, false},
    {"heap_bytes_per_key_map", "heap: `AWLWWMap<string,string>`", "bytes/key",
     "heap_bytes_per_key_baseline", false, false},
    {"heap_bytes_per_key_map_compact", "heap: `AWLWWMap<CompactString,CompactString>`", "bytes/key",
     "heap_bytes_per_key_baseline", false, false},
    {"heap_bytes_per_key_baseline_fixed", "heap: baseline `unordered_map<array,array>`",
     "bytes/key", nullptr, false, false},
    {"heap_bytes_per_key_map_fixed", "heap: `AWLWWMap<array<16>,array<32>>`", "bytes/key",
     "heap_bytes_per_key_baseline_fixed", false, false},
    {"rss_bytes_per_key_baseline", "RSS: baseline `unordered_map<string,string>`", "bytes/key",
     nullptr, false, true},
    {"rss_bytes_per_key_map", "RSS: `AWLWWMap<string,string>`", "bytes/key",
     "rss_bytes_per_key_baseline", false, true},
    {"rss_bytes_per_key_map_compact", "RSS: `AWLWWMap<CompactString,CompactString>`", "bytes/key",
     "rss_bytes_per_key_baseline", false, true},
    {"rss_bytes_per_key_baseline_fixed", "RSS: baseline `unordered_map<array,array>`", "bytes/key",
     nullptr, false, true},
    {"rss_bytes_per_key_map_fixed", "RSS: `AWLWWMap<array<16>,array<32>>`", "bytes/key",
     "rss_bytes_per_key_baseline_fixed", false, true},
};

std::string cell(const Row& row, const SizeResult& r) {
  const Metric* m = r.find(row.id);
  if (m == nullptr || (row.big_only && r.n < 100'000)) return "n/a";
  const double v = m->value();
  std::string s = row.rate ? fmt::format("{:.2f}", v / 1e6) : fmt::format("{:.0f}", v);
  if (row.baseline != nullptr) {
    if (const Metric* b = r.find(row.baseline); b != nullptr && b->value() > 0) {
      s += fmt::format(" ({:.2f}x)", v / b->value());
    }
  }
  return s;
}

}  // namespace

std::string size_label(std::size_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) return fmt::format("{}M", n / 1'000'000);
  if (n >= 1'000 && n % 1'000 == 0) return fmt::format("{}k", n / 1'000);
  return fmt::format("{}", n);
}

namespace {

const PairedRatio* find_paired(const std::vector<PairedRatio>& paired, std::string_view id) {
  for (const PairedRatio& p : paired) {
    if (p.id == id && !p.ratios.empty()) return &p;
  }
  return nullptr;
}

}  // namespace

// A target whose figures were not run (--only) is left out. A "within 2x" target is judged
// on the paired ratio when it was measured: the separate medians at each size come from runs
// minutes apart, and on a shared machine whose speed drifts by tens of percent over minutes
// their quotient measures the drift as much as the code. Both are printed.
std::vector<Target> evaluate_targets(const std::vector<SizeResult>& results,
                                     const std::vector<PairedRatio>& paired) {
  std::vector<Target> out;
  const SizeResult& big = results.back();
  const SizeResult& small = results.front();
  const std::string at = size_label(big.n);
  const std::string at_small = size_label(small.n);
  const auto rate_target = [&](const char* id, const char* name) {
    const Metric* v = big.find(id);
    if (v == nullptr) return;
    out.push_back(Target{fmt::format("{} at N={} >= 1.5 M/s", name, at),
                         fmt::format("{:.2f} M/s", v->value() / 1e6), v->value() >= 1.5e6});
    const Metric* s = small.find(id);
    if (&big == &small || s == nullptr) return;
    const double separate = s->value() / v->value();
    const std::string what = fmt::format("{} at N={} within 2x of N={} ({:.2f} M/s)", name, at,
                                         at_small, s->value() / 1e6);
    if (const PairedRatio* p = find_paired(paired, id); p != nullptr) {
      const double ratio = median(p->ratios);
      out.push_back(Target{
          what, fmt::format("{:.2f}x slower (paired; separate medians {:.2f}x)", ratio, separate),
          ratio <= 2});
    } else {
      out.push_back(Target{what, fmt::format("{:.2f}x slower", separate), separate <= 2});
    }
  };
  rate_target("put", "`put` (string)");
  rate_target("put_compact", "`put` (CompactString)");
  rate_target("put_fixed", "`put` (fixed-size, supplementary)");
  rate_target("delta_apply", "delta apply");
  rate_target("delta_apply_compact", "delta apply (CompactString)");
  rate_target("delta_apply_batched", "delta apply with `join_each`");
  rate_target("delta_apply_batched_compact", "delta apply with `join_each` (CompactString)");
  for (const auto& [id, name] :
       {std::pair{"join_disjoint", "disjoint keys"}, std::pair{"join_same_keys", "same keys"}}) {
    if (const Metric* v = big.find(id); v != nullptr) {
      out.push_back(Target{fmt::format("full join ({}) at N={} >= 5 M entries/s", name, at),
                           fmt::format("{:.2f} M entries/s", v->value() / 1e6), v->value() >= 5e6});
    }
  }
  for (const auto& [id, name] : {std::pair{"heap_bytes_per_key_map", "string"},
                                 std::pair{"heap_bytes_per_key_map_compact", "CompactString"},
                                 std::pair{"heap_bytes_per_key_map_fixed", "fixed-size"}}) {
    if (const Metric* v = big.find(id); v != nullptr) {
      out.push_back(Target{fmt::format("memory ({}) at N={} <= 160 bytes/key", name, at),
                           fmt::format("{:.0f} bytes/key", v->value()), v->value() <= 160});
    }
  }
  return out;
}

void print_markdown(const ReportHeader& header, const std::vector<SizeResult>& results,
                    const std::vector<PairedRatio>& paired, const std::vector<Target>& targets) {
  fmt::print("## crdt-bench: median of {} run(s); keys {} B, values {} B\n\n", header.repeat,
             header.key_bytes, header.value_bytes);
  fmt::print("Rates in millions per second; `(x)` is the ratio to the baseline beside it.\n\n");
  fmt::print("| figure | unit |");
  for (const SizeResult& r : results) fmt::print(" N={} |", size_label(r.n));
  fmt::print("\n|---|---|");
  for (std::size_t i = 0; i < results.size(); ++i) fmt::print("--:|");
  fmt::print("\n");
  for (const Row& row : kRows) {
    fmt::print("| {} | {} |", row.label, row.unit);
    for (const SizeResult& r : results) fmt::print(" {} |", cell(row, r));
    fmt::print("\n");
  }
  fmt::print("\nRebuilds per timed run:");
  for (const SizeResult& r : results) fmt::print(" N={}: {};", size_label(r.n), r.inner);
  fmt::print("\n\n");
  if (results.back().n != 1'000'000) {
    fmt::print("The targets are set for N = 1M; this run judges them at N = {}.\n\n",
               size_label(results.back().n));
  }
  if (!paired.empty()) {
    fmt::print("Paired runs (N={} and N={} alternating): rate at N={} / rate at N={}\n\n",
               size_label(results.front().n), size_label(results.back().n),
               size_label(results.front().n), size_label(results.back().n));
    fmt::print("| figure | each pair | median |\n|---|---|--:|\n");
    for (const PairedRatio& p : paired) {
      std::string each;
      for (const double r : p.ratios) each += fmt::format("{}{:.2f}", each.empty() ? "" : ", ", r);
      fmt::print("| {} | {} | {:.2f}x |\n", p.id, each, median(p.ratios));
    }
    fmt::print("\n");
  }
  fmt::print("| target | measured | |\n|---|---|---|\n");
  for (const Target& t : targets) {
    fmt::print("| {} | {} | {} |\n", t.what, t.measured, t.met ? "met" : "**missed**");
  }
}

void write_json(const std::string& path, const ReportHeader& header,
                const std::vector<SizeResult>& results, const std::vector<PairedRatio>& paired,
                const std::vector<Target>& targets) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error(fmt::format("cannot write {}", path));
  f << fmt::format("{{\n  \"key_bytes\": {},\n  \"value_bytes\": {},\n  \"repeat\": {},\n",
                   header.key_bytes, header.value_bytes, header.repeat);
  f << "  \"sizes\": [\n";
  for (std::size_t s = 0; s < results.size(); ++s) {
    const SizeResult& r = results[s];
    f << fmt::format("    {{\n      \"n\": {},\n      \"rebuilds_per_run\": {},\n", r.n, r.inner);
    f << "      \"metrics\": {\n";
    for (std::size_t i = 0; i < r.metrics.size(); ++i) {
      const auto& [id, m] = r.metrics[i];
      std::string runs;
      for (std::size_t j = 0; j < m.runs.size(); ++j) {
        runs += fmt::format("{}{:.6g}", j == 0 ? "" : ", ", m.runs[j]);
      }
      f << fmt::format(
          "        \"{}\": {{\"unit\": \"{}\", \"median\": {:.6g}, \"runs\": [{}]}}{}\n", id,
          m.unit, m.value(), runs, i + 1 < r.metrics.size() ? "," : "");
    }
    f << fmt::format("      }}\n    }}{}\n", s + 1 < results.size() ? "," : "");
  }
  f << "  ],\n  \"paired\": [\n";
  for (std::size_t i = 0; i < paired.size(); ++i) {
    std::string ratios;
    for (const double r : paired[i].ratios) {
      ratios += fmt::format("{}{:.6g}", ratios.empty() ? "" : ", ", r);
    }
    f << fmt::format("    {{\"id\": \"{}\", \"median\": {:.6g}, \"ratios\": [{}]}}{}\n",
                     paired[i].id, median(paired[i].ratios), ratios,
                     i + 1 < paired.size() ? "," : "");
  }
  f << "  ],\n  \"targets\": [\n";
  for (std::size_t i = 0; i < targets.size(); ++i) {
    std::string what = targets[i].what;
    std::erase(what, '`');
    f << fmt::format("    {{\"target\": \"{}\", \"measured\": \"{}\", \"met\": {}}}{}\n", what,
                     targets[i].measured, targets[i].met ? "true" : "false",
                     i + 1 < targets.size() ? "," : "");
  }
  f << "  ]\n}\n";
}

}  // namespace deltacrdt::bench
