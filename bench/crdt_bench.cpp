// crdt-bench: throughput and memory of AWLWWMap and ORSet against std::unordered_map, at
// several sizes, with 16-byte keys and 32-byte values generated from a fixed seed before any
// timing. Prints a Markdown table (and the targets, met or missed) to stdout, progress to
// stderr, and with --json FILE the raw per-run numbers. Single-threaded; every rate is the
// median of --repeat runs. The "within 2x of N = 1k" targets are judged on paired runs (the
// smallest and largest size measured in alternation, see run_paired). docs/benchmarks.md
// explains the figures.
//
// Usage: crdt-bench [--sizes 1000,100000,1000000] [--repeat 5] [--json out.json]
//                   [--only memory,insert,orset,delta,join,paired]   (a subset, e.g. for profiling)
#include <malloc.h>
#include <unistd.h>
#include <climits>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "crdt/awlww_map.hpp"
#include "crdt/codec.hpp"
#include "crdt/compact_string.hpp"
#include "crdt/hlc.hpp"
#include "crdt/orset.hpp"

#include "bench/crdt_bench_report.hpp"

namespace {

using deltacrdt::AWLWWMap;
using deltacrdt::CompactString;
using deltacrdt::HlcTimestamp;
using deltacrdt::HybridClock;
using deltacrdt::ORSet;
using deltacrdt::ReplicaId;
using deltacrdt::bench::Metric;
using deltacrdt::bench::PairedRatio;
using deltacrdt::bench::SizeResult;

constexpr std::size_t kKeyBytes = 16;
constexpr std::size_t kValueBytes = 32;
constexpr std::uint64_t kSeed = 0x5eed'c0de'2024'0001;
constexpr std::uint64_t kEpochMs = 1'700'000'000'000;  // fake wall clock start
// Small sizes are rebuilt this many keys' worth per timed run, so one run lasts long enough
// (about 200 rebuilds at N = 1k) that clock resolution and timer overhead do not matter.
constexpr std::size_t kKeysPerTimedRun = 200'000;
// Deltas are produced and applied in chunks of this many: a run never holds a million
// small maps at once, and each chunk (about 2 KB of heap per delta) is still in cache when
// it is applied, as a delta just received and decoded would be.
constexpr std::size_t kDeltaChunk = 256;

using Key = std::array<char, kKeyBytes>;
using Value = std::array<char, kValueBytes>;
using StrMap = AWLWWMap<std::string, std::string>;
using FixedMap = AWLWWMap<Key, Value>;
// The same strings kept as CompactString (inline up to 23 bytes, else one exact heap block).
using CompactMap = AWLWWMap<CompactString, CompactString>;
using Clock = std::chrono::steady_clock;

// Keeps results observable, so the optimiser cannot drop the work that produced them.
std::uint64_t g_sink = 0;

struct Options {
  std::vector<std::size_t> sizes{1'000, 100'000, 1'000'000};  // N values to measure
  int repeat = 5;    // runs per figure; the median is reported (1M figures vary ~15% run to run)
  std::string json;  // empty: no JSON file
  // Figure groups to run (memory, insert, orset, delta, join, paired); empty: all. For
  // profiling one operation, e.g. under callgrind. `paired` re-measures the put and delta
  // figures of the groups chosen at the smallest and largest size in alternation.
  std::vector<std::string> only;

  bool wants(std::string_view group) const {
    return only.empty() || std::find(only.begin(), only.end(), group) != only.end();
  }
};

constexpr const char* kUsage =
    "usage: crdt-bench [--sizes 1000,100000,1000000] [--repeat 5] [--json FILE]\n"
    "                  [--only memory,insert,orset,delta,join,paired]\n";

[[noreturn]] void usage_error(std::string_view why) {
  fmt::print(stderr, "crdt-bench: {}\n{}", why, kUsage);
  std::exit(2);
}

std::vector<std::string_view> split_commas(std::string_view list) {
  std::vector<std::string_view> out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    out.push_back(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return out;
}

std::size_t parse_count(std::string_view s) {
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v == 0) {
    usage_error(fmt::format("not a positive integer: '{}'", s));
  }
  return v;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto next = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error(fmt::format("{} needs a value", arg));
      return argv[++i];
    };
    if (arg == "--sizes") {
      o.sizes.clear();
      for (const std::string_view item : split_commas(next())) o.sizes.push_back(parse_count(item));
      if (o.sizes.empty()) usage_error("--sizes is empty");
      std::sort(o.sizes.begin(), o.sizes.end());
    } else if (arg == "--repeat") {
      o.repeat = static_cast<int>(parse_count(next()));
    } else if (arg == "--json") {
      o.json = std::string(next());
    } else if (arg == "--only") {
      for (const std::string_view g : split_commas(next())) {
        if (g != "memory" && g != "insert" && g != "orset" && g != "delta" && g != "join" &&
            g != "paired") {
          usage_error(fmt::format("unknown group '{}'", g));
        }
        o.only.emplace_back(g);
      }
    } else if (arg == "--help" || arg == "-h") {
      fmt::print("{}", kUsage);
      std::exit(0);
    } else {
      usage_error(fmt::format("unknown argument '{}'", arg));
    }
  }
  return o;
}

void check(bool ok, std::string_view what) {
  if (!ok) throw std::logic_error(fmt::format("sanity check failed: {}", what));
}

// ---- data ----

// splitmix64's finaliser. Each step (add, xor-shift, multiply by an odd constant) is a
// bijection on 64-bit integers, so distinct indices give distinct keys.
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

struct Dataset {
  // keys[0, n) are the map's keys; keys[n, n + n/2) are fresh keys for the delta benchmark.
  std::vector<std::string> keys;
  std::vector<std::string> values;  // n values
  std::vector<Key> fixed_keys;      // the same bytes as keys[0, n)
  std::vector<Value> fixed_values;  // the same bytes as values
};

Dataset make_dataset(std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
  Dataset d;
  d.keys.reserve(n + n / 2);
  for (std::size_t i = 0; i < n + n / 2; ++i) {
    const std::uint64_t h = mix64(kSeed ^ i);
    std::string k(kKeyBytes, '0');
    for (std::size_t j = 0; j < kKeyBytes; ++j) k[j] = kHex[(h >> (4 * j)) & 0xf];
    d.keys.push_back(std::move(k));
  }
  d.values.reserve(n);
  std::uint64_t state = kSeed;
  for (std::size_t i = 0; i < n; ++i) {
    std::string v(kValueBytes, '0');
    for (std::size_t j = 0; j < kValueBytes; j += 8) {
      std::uint64_t r = mix64(state++);
      for (std::size_t b = 0; b < 8; ++b, r >>= 6) v[j + b] = kAlphabet[r & 63];
    }
    d.values.push_back(std::move(v));
  }
  d.fixed_keys.resize(n);
  d.fixed_values.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(d.fixed_keys[i].data(), d.keys[i].data(), kKeyBytes);
    std::memcpy(d.fixed_values[i].data(), d.values[i].data(), kValueBytes);
  }
  return d;
}

// The fake wall clock: one millisecond per 1000 operations, i.e. a 1 M ops/s writer.
std::uint64_t fake_ms(std::size_t op) { return kEpochMs + op / 1000; }

// ---- measurement plumbing ----

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Rebuilds per timed run: enough that a run covers about kKeysPerTimedRun keys.
std::size_t inner_reps(std::size_t n) { return std::max<std::size_t>(1, kKeysPerTimedRun / n); }

// Runs `once` (which returns seconds for `ops` operations) once untimed, then `repeat`
// times; rates in ops/s. The warm-up run leaves the heap holding the memory the figure
// needs, so no timed run pays for the kernel's first touch of fresh pages (the first run
// of a figure was up to 2x slower than the rest without it).
template <class Once>
Metric rate_metric(const char* label, std::size_t n, int repeat, double ops, Once once,
                   const char* unit = "ops/s") {
  Metric m{unit, {}};
  for (int r = 0; r <= repeat; ++r) {
    const double rate = ops / once();
    if (r > 0) m.runs.push_back(rate);
    fmt::print(stderr, "  [N={}] {:<36} {}: {:8.3f} M/s\n", n, label,
               r == 0 ? std::string("warm-up") : fmt::format("run {}/{}", r, repeat), rate / 1e6);
  }
  return m;
}

// ---- throughput ----

// Times inserting keys[0, n) into `inner` fresh containers; construction and destruction of
// the containers are outside the timed region.
template <class C, class Insert>
double time_fill(std::size_t inner, std::size_t n, Insert insert) {
  std::vector<C> maps(inner);
  const auto t0 = Clock::now();
  for (C& m : maps) {
    for (std::size_t i = 0; i < n; ++i) insert(m, i);
  }
  const double secs = seconds_since(t0);
  for (const C& m : maps) check(m.size() == n, "container size after fill");
  return secs;
}

// Times put of keys[0, n) into `inner` fresh maps; each delta is consumed (its size read).
template <class Map>
double time_put(const Dataset& d, std::size_t n, std::size_t inner) {
  HybridClock clock;  // shared by the run's maps: still monotone, and just as cheap
  return time_fill<Map>(inner, n, [&](Map& m, std::size_t i) {
    const Map delta = m.put(1, d.keys[i], d.values[i], clock.now(fake_ms(i)));
    g_sink += delta.size();
  });
}

template <class M, class K, class V>
M build_map(ReplicaId self, const std::vector<K>& keys, const std::vector<V>& values,
            std::size_t first_key, std::size_t first_value, std::size_t count) {
  M m;
  HybridClock clock;
  for (std::size_t i = 0; i < count; ++i) {
    static_cast<void>(
        m.put(self, keys[first_key + i], values[first_value + i], clock.now(fake_ms(i))));
  }
  return m;
}

// The timed part of delta apply; a function of its own so a profiler can single it out
// (e.g. callgrind --toggle-collect='*apply_deltas*').
template <class Map>
[[gnu::noinline]] void apply_deltas(Map& replica, const std::vector<Map>& deltas) {
  for (const Map& delta : deltas) replica.join(delta);
}
// The same deltas handed over together: join_each looks ahead across them, so the cache
// misses of consecutive deltas overlap.
template <class Map>
[[gnu::noinline]] void apply_deltas_batched(Map& replica, const std::vector<Map>& deltas) {
  replica.join_each(deltas);
}

// How delta apply hands the deltas of a chunk to the replica.
enum class Apply { one_by_one, batched };

// Applies n single-key deltas from replica 2 to `inner` copies of `base` (n keys, replica 1):
// even-numbered deltas overwrite keys[i/2], odd-numbered ones add keys[n + i/2]. Each copy
// gets its own sender, so one replica is worked on from start to end (as at N = 1M) instead
// of all copies taking turns per chunk and each going cold in between. Only joins are timed.
// With random_overwrites, every delta overwrites a key drawn at random from keys[0, n)
// instead: each then lands on a cold entry, where the default order walks the entries in
// the order they were written. `apply`: one join call per delta, or join_each per chunk.
template <class Map>
double time_delta_apply(const Dataset& d, std::size_t n, std::size_t inner, const Map& base,
                        Apply apply = Apply::one_by_one, bool random_overwrites = false) {
  std::vector<Map> replicas(inner, base);
  Map sender_state;
  sender_state.join(base);  // a second replica holding the same state

  std::vector<Map> chunk;
  chunk.reserve(std::min(n, kDeltaChunk));
  double secs = 0;
  for (Map& r : replicas) {
    Map sender = sender_state;
    HybridClock clock2;
    static_cast<void>(clock2.observe(HlcTimestamp::from_parts(fake_ms(n), 0), fake_ms(n)));
    for (std::size_t start = 0; start < n; start += kDeltaChunk) {
      chunk.clear();
      const std::size_t end = std::min(n, start + kDeltaChunk);
      for (std::size_t i = start; i < end; ++i) {
        const std::string& key = random_overwrites ? d.keys[mix64(kSeed + i) % n]
                                 : i % 2 == 0      ? d.keys[i / 2]
                                                   : d.keys[n + i / 2];
        chunk.push_back(sender.put(2, key, d.values[(i + n / 2) % n], clock2.now(fake_ms(n + i))));
      }
      const auto t0 = Clock::now();
      if (apply == Apply::batched) {
        apply_deltas_batched(r, chunk);
      } else {
        apply_deltas(r, chunk);
      }
      secs += seconds_since(t0);
    }
    check(r.size() == (random_overwrites ? n : n + n / 2), "replica size after delta apply");
    check(r.context() == sender.context(), "replica context equals sender's after delta apply");
  }
  g_sink += replicas.front().size();
  return secs;
}

// The baseline for delta apply: the same n writes (even-numbered ones overwrite keys[i/2],
// odd-numbered ones insert keys[n + i/2]) applied to copies of an n-key unordered_map.
double time_baseline_upsert(const Dataset& d, std::size_t n, std::size_t inner,
                            const std::unordered_map<std::string, std::string>& base) {
  std::vector<std::unordered_map<std::string, std::string>> copies(inner, base);
  const auto t0 = Clock::now();
  for (auto& m : copies) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& key = i % 2 == 0 ? d.keys[i / 2] : d.keys[n + i / 2];
      m.insert_or_assign(key, d.values[(i + n / 2) % n]);
    }
  }
  const double secs = seconds_since(t0);
  for (const auto& m : copies) check(m.size() == n + n / 2, "baseline size after upserts");
  return secs;
}

// The baseline for full-state join: insert_or_assign every entry of b into copies of a.
double time_baseline_merge(std::size_t inner, const std::unordered_map<std::string, std::string>& a,
                           const std::unordered_map<std::string, std::string>& b,
                           std::size_t expected_size) {
  std::vector<std::unordered_map<std::string, std::string>> copies(inner, a);
  const auto t0 = Clock::now();
  for (auto& c : copies) {
    for (const auto& [k, v] : b) c.insert_or_assign(k, v);
  }
  const double secs = seconds_since(t0);
  for (const auto& c : copies) check(c.size() == expected_size, "baseline size after merge");
  return secs;
}

std::unordered_map<std::string, std::string> build_baseline(const Dataset& d, std::size_t first_key,
                                                            std::size_t first_value,
                                                            std::size_t count) {
  std::unordered_map<std::string, std::string> m;
  for (std::size_t i = 0; i < count; ++i)
    m.emplace(d.keys[first_key + i], d.values[first_value + i]);
  return m;
}

// Times a.join(b) on `inner` fresh copies of a (the copies are made before timing).
double time_full_join(std::size_t inner, const StrMap& a, const StrMap& b,
                      std::size_t expected_size) {
  std::vector<StrMap> copies(inner, a);
  const auto t0 = Clock::now();
  for (StrMap& c : copies) c.join(b);
  const double secs = seconds_since(t0);
  for (const StrMap& c : copies) check(c.size() == expected_size, "size after full join");
  return secs;
}

// ---- memory ----

struct MemSample {
  std::size_t heap = 0;  // bytes in use by malloc: small chunks plus mmapped blocks
  std::size_t rss = 0;   // resident set size
};

MemSample mem_now() {
  const struct mallinfo2 mi = mallinfo2();
  MemSample s;
  s.heap = mi.uordblks + mi.hblkhd;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f != nullptr) {
    unsigned long size = 0, resident = 0;
    if (std::fscanf(f, "%lu %lu", &size, &resident) == 2) {
      s.rss = resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    }
    std::fclose(f);
  }
  return s;
}

double per_key(std::size_t after, std::size_t before, std::size_t n) {
  return (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(n);
}

// Builds a container with `build`, records heap and RSS growth per key, then hands the
// container to `inspect` (untimed, unmeasured) before it is destroyed.
template <class Build, class Inspect>
void measure_memory(SizeResult& res, const std::string& id, std::size_t n, Build build,
                    Inspect inspect) {
  malloc_trim(0);  // return freed pages from earlier phases, so RSS growth is meaningful
  const MemSample before = mem_now();
  {
    auto c = build();
    const MemSample after = mem_now();
    // Growth leaves freed buffers (old vectors and hash tables) that glibc keeps resident;
    // trimming returns them, so RSS shows what the container itself occupies.
    malloc_trim(0);
    const MemSample trimmed = mem_now();
    check(c.size() == n, "container size in memory phase");
    res.add("heap_bytes_per_key_" + id, Metric{"bytes/key", {per_key(after.heap, before.heap, n)}});
    res.add("rss_bytes_per_key_" + id, Metric{"bytes/key", {per_key(trimmed.rss, before.rss, n)}});
    inspect(c);
  }
}

SizeResult run_size(std::size_t n, const Options& opt) {
  const int repeat = opt.repeat;
  SizeResult res;
  res.n = n;
  res.inner = inner_reps(n);
  const std::size_t inner = res.inner;
  const double ops = static_cast<double>(inner) * static_cast<double>(n);

  fmt::print(stderr, "[N={}] generating data ({} rebuilds per timed run)\n", n, inner);
  const Dataset d = make_dataset(n);

  // Memory first, while the heap holds little besides the data set.
  if (opt.wants("memory")) {
    fmt::print(stderr, "[N={}] memory\n", n);
    const auto noop = [](const auto&) {};
    measure_memory(
        res, "baseline", n,
        [&] {
          std::unordered_map<std::string, std::string> m;
          for (std::size_t i = 0; i < n; ++i) m.emplace(d.keys[i], d.values[i]);
          return m;
        },
        noop);
    measure_memory(
        res, "map", n, [&] { return build_map<StrMap>(1, d.keys, d.values, 0, 0, n); },
        [&](const StrMap& m) {
          const std::string bytes = deltacrdt::encode(m);
          res.add(
              "encoded_bytes_per_key",
              Metric{"bytes/key", {static_cast<double>(bytes.size()) / static_cast<double>(n)}});
        });
    measure_memory(
        res, "map_compact", n, [&] { return build_map<CompactMap>(1, d.keys, d.values, 0, 0, n); },
        noop);
    measure_memory(
        res, "baseline_fixed", n,
        [&] {
          std::unordered_map<Key, Value, boost::hash<Key>> m;
          for (std::size_t i = 0; i < n; ++i) m.emplace(d.fixed_keys[i], d.fixed_values[i]);
          return m;
        },
        noop);
    measure_memory(
        res, "map_fixed", n,
        [&] { return build_map<FixedMap>(1, d.fixed_keys, d.fixed_values, 0, 0, n); }, noop);
  }

  if (opt.wants("insert")) {
    fmt::print(stderr, "[N={}] throughput\n", n);
    res.add("baseline_insert",
            rate_metric("unordered_map<string,string> insert", n, repeat, ops, [&] {
              using M = std::unordered_map<std::string, std::string>;
              return time_fill<M>(inner, n,
                                  [&](M& m, std::size_t i) { m.emplace(d.keys[i], d.values[i]); });
            }));
    res.add("put", rate_metric("AWLWWMap<string,string>::put", n, repeat, ops,
                               [&] { return time_put<StrMap>(d, n, inner); }));
    res.add("put_compact", rate_metric("AWLWWMap<CompactString,CompactString>::put", n, repeat, ops,
                                       [&] { return time_put<CompactMap>(d, n, inner); }));
    res.add("baseline_insert_fixed",
            rate_metric("unordered_map<array16,array32> insert", n, repeat, ops, [&] {
              using M = std::unordered_map<Key, Value, boost::hash<Key>>;
              return time_fill<M>(inner, n, [&](M& m, std::size_t i) {
                m.emplace(d.fixed_keys[i], d.fixed_values[i]);
              });
            }));
    res.add("put_fixed", rate_metric("AWLWWMap<array16,array32>::put", n, repeat, ops, [&] {
              HybridClock clock;
              return time_fill<FixedMap>(inner, n, [&](FixedMap& m, std::size_t i) {
                const FixedMap delta =
                    m.put(1, d.fixed_keys[i], d.fixed_values[i], clock.now(fake_ms(i)));
                g_sink += delta.size();
              });
            }));
  }
  if (opt.wants("orset")) {
    res.add("orset_add", rate_metric("ORSet<string>::add", n, repeat, ops, [&] {
              using S = ORSet<std::string>;
              return time_fill<S>(inner, n, [&](S& s, std::size_t i) {
                const S delta = s.add(1, d.keys[i]);
                g_sink += delta.size();
              });
            }));
  }

  if (opt.wants("delta")) {
    fmt::print(stderr, "[N={}] building the replica for delta apply\n", n);
    const StrMap base = build_map<StrMap>(1, d.keys, d.values, 0, 0, n);
    std::unordered_map<std::string, std::string> base_baseline;
    for (std::size_t i = 0; i < n; ++i) base_baseline.emplace(d.keys[i], d.values[i]);
    res.add("baseline_upsert",
            rate_metric("unordered_map upsert (same writes)", n, repeat, ops,
                        [&] { return time_baseline_upsert(d, n, inner, base_baseline); }));
    res.add("delta_apply", rate_metric(
                               "delta apply (replica.join(delta))", n, repeat, ops,
                               [&] { return time_delta_apply(d, n, inner, base); }, "deltas/s"));
    const CompactMap compact_base = build_map<CompactMap>(1, d.keys, d.values, 0, 0, n);
    res.add("delta_apply_compact",
            rate_metric(
                "delta apply, CompactString", n, repeat, ops,
                [&] { return time_delta_apply(d, n, inner, compact_base); }, "deltas/s"));
    res.add("delta_apply_batched",
            rate_metric(
                "delta apply, join_each per chunk", n, repeat, ops,
                [&] { return time_delta_apply(d, n, inner, base, Apply::batched); }, "deltas/s"));
    res.add("delta_apply_batched_compact",
            rate_metric(
                "delta apply, join_each per chunk, CompactString", n, repeat, ops,
                [&] { return time_delta_apply(d, n, inner, compact_base, Apply::batched); },
                "deltas/s"));
    res.add("delta_apply_random",
            rate_metric(
                "delta apply, random-key overwrites", n, repeat, ops,
                [&] { return time_delta_apply(d, n, inner, base, Apply::one_by_one, true); },
                "deltas/s"));
  }

  if (opt.wants("join")) {
    const std::size_t half = n / 2;
    const std::size_t other = n - half;
    const double entries = static_cast<double>(inner) * static_cast<double>(n);
    fmt::print(stderr, "[N={}] building two maps of {} and {} entries\n", n, half, other);
    const StrMap a = build_map<StrMap>(1, d.keys, d.values, 0, 0, half);
    const auto base_a = build_baseline(d, 0, 0, half);
    {
      const auto base_b = build_baseline(d, half, half, other);
      res.add("baseline_merge_disjoint",
              rate_metric(
                  "unordered_map merge, disjoint keys", n, repeat, entries,
                  [&] { return time_baseline_merge(inner, base_a, base_b, n); }, "entries/s"));
    }
    {
      const StrMap b = build_map<StrMap>(2, d.keys, d.values, half, half, other);
      res.add("join_disjoint", rate_metric(
                                   "full join, disjoint keys", n, repeat, entries,
                                   [&] { return time_full_join(inner, a, b, n); }, "entries/s"));
    }
    {
      // The same keys, written concurrently by replica 2 (it has not seen replica 1's puts).
      const StrMap b = build_map<StrMap>(2, d.keys, d.values, 0, half, half);
      const double same_entries = static_cast<double>(inner) * static_cast<double>(2 * half);
      const auto base_b = build_baseline(d, 0, half, half);
      res.add("baseline_merge_same_keys",
              rate_metric(
                  "unordered_map merge, same keys", n, repeat, same_entries,
                  [&] { return time_baseline_merge(inner, base_a, base_b, half); }, "entries/s"));
      res.add("join_same_keys",
              rate_metric(
                  "full join, same keys (concurrent)", n, repeat, same_entries,
                  [&] { return time_full_join(inner, a, b, half); }, "entries/s"));
    }
  }
  return res;
}

// ---- paired ratios ----

// Measures one figure at two sizes in alternation (small, big, small, big, ...) after one
// untimed pair, so each ratio compares runs made seconds apart under the same conditions.
template <class TimeSmall, class TimeBig>
PairedRatio measure_paired(const char* id, int repeat, double small_ops, double big_ops,
                           TimeSmall time_small, TimeBig time_big) {
  PairedRatio p{id, {}};
  for (int r = 0; r <= repeat; ++r) {
    const double small_rate = small_ops / time_small();
    const double big_rate = big_ops / time_big();
    if (r > 0) p.ratios.push_back(small_rate / big_rate);
    fmt::print(stderr, "  [paired] {:<22} {}: {:8.3f} / {:8.3f} M/s = {:.2f}x\n", id,
               r == 0 ? std::string("warm-up") : fmt::format("pair {}/{}", r, repeat),
               small_rate / 1e6, big_rate / 1e6, small_rate / big_rate);
  }
  return p;
}

// The "within 2x" figures (put and delta apply, string and CompactString maps) measured at
// the smallest and the largest size in alternation.
std::vector<PairedRatio> run_paired(std::size_t small_n, std::size_t big_n, const Options& opt) {
  std::vector<PairedRatio> out;
  if (!opt.wants("insert") && !opt.wants("delta")) return out;
  fmt::print(stderr, "[paired] N={} against N={}: generating data\n", small_n, big_n);
  const Dataset ds = make_dataset(small_n);
  const Dataset db = make_dataset(big_n);
  const std::size_t small_inner = inner_reps(small_n);
  const std::size_t big_inner = inner_reps(big_n);
  const double small_ops = static_cast<double>(small_inner) * static_cast<double>(small_n);
  const double big_ops = static_cast<double>(big_inner) * static_cast<double>(big_n);
  const auto pair = [&](const char* id, auto time_small, auto time_big) {
    out.push_back(measure_paired(id, opt.repeat, small_ops, big_ops, time_small, time_big));
  };
  if (opt.wants("insert")) {
    pair(
        "put", [&] { return time_put<StrMap>(ds, small_n, small_inner); },
        [&] { return time_put<StrMap>(db, big_n, big_inner); });
    pair(
        "put_compact", [&] { return time_put<CompactMap>(ds, small_n, small_inner); },
        [&] { return time_put<CompactMap>(db, big_n, big_inner); });
  }
  if (opt.wants("delta")) {
    fmt::print(stderr, "[paired] building the replicas for delta apply\n");
    {
      const StrMap small_base = build_map<StrMap>(1, ds.keys, ds.values, 0, 0, small_n);
      const StrMap big_base = build_map<StrMap>(1, db.keys, db.values, 0, 0, big_n);
      pair(
          "delta_apply", [&] { return time_delta_apply(ds, small_n, small_inner, small_base); },
          [&] { return time_delta_apply(db, big_n, big_inner, big_base); });
      pair(
          "delta_apply_batched",
          [&] { return time_delta_apply(ds, small_n, small_inner, small_base, Apply::batched); },
          [&] { return time_delta_apply(db, big_n, big_inner, big_base, Apply::batched); });
    }
    const CompactMap small_base = build_map<CompactMap>(1, ds.keys, ds.values, 0, 0, small_n);
    const CompactMap big_base = build_map<CompactMap>(1, db.keys, db.values, 0, 0, big_n);
    pair(
        "delta_apply_compact",
        [&] { return time_delta_apply(ds, small_n, small_inner, small_base); },
        [&] { return time_delta_apply(db, big_n, big_inner, big_base); });
    pair(
        "delta_apply_batched_compact",
        [&] { return time_delta_apply(ds, small_n, small_inner, small_base, Apply::batched); },
        [&] { return time_delta_apply(db, big_n, big_inner, big_base, Apply::batched); });
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using deltacrdt::bench::ReportHeader;
  using deltacrdt::bench::Target;
  try {
    // Freed memory stays in the process: glibc neither trims its heap nor serves large
    // blocks with mmap (a freed mmap block goes straight back to the kernel). The untimed
    // warm-up run before every timed figure then leaves pages the timed runs reuse, so no
    // timed run pays the kernel for zeroing fresh pages, at any size. Without this, the 1M
    // runs (whose growth lands in blocks above the mmap threshold) paid for it in every run
    // and the 1k runs never did: about 0.5 s more kernel time over a 1M delta-apply run.
    // The memory figures trim explicitly (measure_memory), so they are unaffected.
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    const Options opt = parse_args(argc, argv);
    const auto t0 = Clock::now();
    std::vector<SizeResult> results;
    for (const std::size_t n : opt.sizes) results.push_back(run_size(n, opt));
    std::vector<PairedRatio> paired;
    if (opt.sizes.size() >= 2 && opt.wants("paired")) {
      paired = run_paired(opt.sizes.front(), opt.sizes.back(), opt);
    }
    const std::vector<Target> targets = evaluate_targets(results, paired);
    const ReportHeader header{opt.repeat, kKeyBytes, kValueBytes};
    print_markdown(header, results, paired, targets);
    if (!opt.json.empty()) write_json(opt.json, header, results, paired, targets);
    fmt::print(stderr, "done in {:.1f} s (checksum {})\n", seconds_since(t0), g_sink);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "crdt-bench: {}\n", e.what());
    return 1;
  }
}
