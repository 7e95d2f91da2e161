// storage-bench: durability costs (docs/benchmarks.md, storage). On the file system of the
// system temp directory:
//  - puts/s of a Replica<AWLWWMap> with a FileStorage, per fsync policy, with 1 and 16
//    concurrent writers, each put completing under the durable write concern;
//  - for 1M keys: a synchronous snapshot (encode + write + fsync + rename), disk bytes per
//    key, and restart time (open the store, decode the snapshot, replay the log);
//  - the pause writers see while a replica of 1M keys snapshots in the background, with
//    the snapshot rebuilt off the strand (the default) and encoded on it.
// Prints Markdown.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.hpp"
#include "cluster/file_storage.hpp"
#include "cluster/local_cluster.hpp"
#include "crdt/awlww_map.hpp"

using namespace deltacrdt;
using Map = AWLWWMap<std::string, std::string>;
using bench::Clock;
using bench::key;
using bench::seconds_since;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path =
        fs::temp_directory_path() / ("deltacrdt-bench-" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const char* policy_name(FsyncPolicy p) {
  return p == FsyncPolicy::always ? "always" : p == FsyncPolicy::batched ? "batched" : "never";
}

// `writers` threads each doing durable puts for `seconds`; returns puts/s.
double durable_puts(FsyncPolicy policy, int writers, double seconds) {
  TempDir dir;
  IoThreads io(2);
  LocalTransport net;
  ReplicaOptions<Map> options;
  options.storage = std::make_shared<FileStorage>(dir.path, policy, 1);
  Replica<Map> r(io.runtime(), 1, net, options);
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const std::string value(32, 'v');
  const auto start = Clock::now();
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (std::size_t i = 0; !stop.load(); ++i) {
        r.put(key(i * 64 + static_cast<std::size_t>(w)), value, WriteConcern::durable()).get();
        done.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  return static_cast<double>(done.load()) / seconds_since(start);
}

// A replica holding n keys (recovered from a store) with one writer putting as fast as it
// can until a background snapshot has started and finished; returns the put latencies
// while it ran and the snapshot's duration.
struct PauseResult {
  double max_ms = 0, p999_ms = 0, p50_ms = 0, snapshot_s = 0;
  std::size_t puts = 0;
};
// With `baseline`, no snapshot is taken and the puts run for `baseline_puts`.
PauseResult snapshot_pause(std::size_t n, bool off_strand, std::size_t baseline_puts = 0) {
  TempDir dir;
  {
    Map state;
    const std::string value(32, 'v');
    for (std::size_t i = 0; i < n; ++i) (void)state.put(1, key(i), value, HlcTimestamp{i + 1});
    FileStorage s(dir.path, FsyncPolicy::never, 1);
    if (!s.snapshot(n, encode(state))) std::abort();
  }
  auto storage = std::make_shared<FileStorage>(dir.path, FsyncPolicy::never, 1);
  auto recovered = recover_state<Map>(storage->recovered());
  IoThreads io(2);
  LocalTransport net;
  ReplicaOptions<Map> options;
  options.storage = storage;
  options.sync.snapshot_off_strand = off_strand;
  options.sync.snapshot_log_bytes =
      baseline_puts > 0 ? ~std::uint64_t{0} : 4 * 1024 * 1024;  // about 25k puts of log
  Replica<Map> r(io.runtime(), 1, net, options, std::move(recovered->first), recovered->second);
  const auto snapshot_time = [&] { return fs::last_write_time(dir.path / "snapshot"); };
  const auto first = snapshot_time();
  std::vector<double> latencies;
  const std::string value(32, 'w');
  const auto start = Clock::now();
  auto written = Clock::time_point{};
  // Until a new snapshot file appears, then as long again (the whole pause is inside).
  for (std::size_t i = 0;; ++i) {
    const auto t0 = Clock::now();
    (void)r.put(key(i % n), value).get();
    latencies.push_back(seconds_since(t0) * 1000);
    if (baseline_puts > 0) {
      if (latencies.size() == baseline_puts) break;
      continue;
    }
    if ((i & 255) == 0) {
      if (written == Clock::time_point{} && snapshot_time() != first) written = Clock::now();
      if (written != Clock::time_point{} &&
          Clock::now() - written > std::chrono::milliseconds(500)) {
        break;
      }
      if (seconds_since(start) > 120) std::abort();
    }
  }
  PauseResult out;
  out.puts = latencies.size();
  out.snapshot_s = std::chrono::duration<double>(written - start).count();
  std::sort(latencies.begin(), latencies.end());
  out.max_ms = latencies.back();
  out.p999_ms = latencies[latencies.size() * 999 / 1000];
  out.p50_ms = latencies[latencies.size() / 2];
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::stoul(argv[1]) : 1000000;
  std::printf("## storage-bench (%s)\n\n", fs::temp_directory_path().c_str());
  std::printf("| figure | result |\n|---|---|\n");
  for (FsyncPolicy p : {FsyncPolicy::always, FsyncPolicy::batched, FsyncPolicy::never}) {
    for (int writers : {1, 16}) {
      std::printf("| durable puts/s, fsync %s, %d writer%s | %.0f |\n", policy_name(p), writers,
                  writers == 1 ? "" : "s", durable_puts(p, writers, 2.0));
      std::fflush(stdout);
    }
  }

  // 1M keys: build the state, log the last 10% as deltas after a snapshot of the rest.
  TempDir dir;
  Map state;
  const std::string value(32, 'v');
  std::uint64_t seq = 0;
  const std::size_t logged = n / 10;
  for (std::size_t i = 0; i < n - logged; ++i) {
    (void)state.put(1, key(i), value, HlcTimestamp{i + 1});
    ++seq;
  }
  double sync_snapshot = 0;
  {
    FileStorage s(dir.path, FsyncPolicy::batched, 1);
    const auto t0 = Clock::now();
    const std::string bytes = encode(state);
    const double encode_s = seconds_since(t0);
    if (!s.snapshot(seq, bytes)) return 1;
    sync_snapshot = seconds_since(t0);
    std::printf(
        "| synchronous snapshot at %zu keys (encode %.3f s + write, fsync, rename) | %.3f s |\n",
        n - logged, encode_s, sync_snapshot);
    for (std::size_t i = n - logged; i < n; ++i) {
      Map d = state.put(1, key(i), value, HlcTimestamp{i + 1});
      ++seq;
      if (!s.append(seq, encode(d))) return 1;
    }
    if (!s.sync()) return 1;
  }
  const auto snap_bytes = fs::file_size(dir.path / "snapshot");
  const auto wal_bytes = fs::file_size(dir.path / "wal");
  std::printf("| disk bytes per key: snapshot / log record | %.1f / %.1f |\n",
              static_cast<double>(snap_bytes) / static_cast<double>(n - logged),
              static_cast<double>(wal_bytes) / static_cast<double>(logged));
  const auto t0 = Clock::now();
  FileStorage s(dir.path, FsyncPolicy::batched, 1);
  auto recovered = recover_state<Map>(s.recovered());
  const double restart = seconds_since(t0);
  if (!recovered || recovered->first.size() != n) return 1;
  std::printf("| restart with %zu keys (snapshot of %zu + log of %zu) | %.3f s |\n", n, n - logged,
              logged, restart);
  std::size_t puts = 0;
  for (const bool off_strand : {true, false}) {
    const PauseResult p = snapshot_pause(n, off_strand);
    puts = std::max(puts, p.puts);
    std::printf(
        "| put latency while a replica of %zu keys snapshots, %s: max / p99.9 / p50 | %.1f / "
        "%.2f / %.3f ms (%zu puts; snapshot written after %.2f s) |\n",
        n, off_strand ? "rebuilt off the strand (default)" : "encoded on the strand", p.max_ms,
        p.p999_ms, p.p50_ms, p.puts, p.snapshot_s);
    std::fflush(stdout);
  }
  const PauseResult b = snapshot_pause(n, true, puts);
  std::printf(
      "| put latency, same replica without a snapshot (baseline): max / p99.9 / p50 | %.1f "
      "/ %.2f / %.3f ms (%zu puts) |\n",
      b.max_ms, b.p999_ms, b.p50_ms, b.puts);
  return 0;
}
