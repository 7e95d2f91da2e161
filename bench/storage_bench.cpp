// storage-bench: durability costs (docs/benchmarks.md, storage). On the file system of the
// system temp directory:
//  - puts/s of a Replica<AWLWWMap> with a FileStorage, per fsync policy, with 1 and 16
//    concurrent writers, each put completing under the durable write concern;
//  - for 1M keys: a synchronous snapshot (encode + write + fsync + rename) and the strand
//    pause of a background one (the encoding), disk bytes per key,
//    and restart time (open the store, decode the snapshot, replay the log).
// Prints Markdown.
#include <atomic>
#include <chrono>
#include <cstdio>
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
  ReplicaOptions options;
  options.storage = std::make_shared<FileStorage>(dir.path, policy, 1);
  Replica<Map> r(io.executor(), 1, net, options);
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
  double pause = 0;
  {
    FileStorage s(dir.path, FsyncPolicy::batched, 1);
    const auto t0 = Clock::now();
    const std::string bytes = encode(state);
    const double encode_s = seconds_since(t0);
    if (!s.snapshot(seq, bytes)) return 1;
    pause = seconds_since(t0);
    std::printf(
        "| synchronous snapshot at %zu keys (encode %.3f s + write, fsync, rename) | %.3f s |\n",
        n - logged, encode_s, pause);
    // A Replica's strand waits only for the encoding; writing and fsyncing run on a thread.
    std::printf("| strand pause of a background snapshot at %zu keys (the encoding) | %.3f s |\n",
                n - logged, encode_s);
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
  return 0;
}
