// sync-call-bench: what a caller that waits sees. Threads call put(k, v).get() or
// get(k).get() in a loop (how a request handler uses a replica) on replica A of a synced pair
// of Replica<AWLWWMap> in one process (LocalTransport, the io_context run by two threads),
// against maps of 100k and 1M keys, with 1 and 4 calling threads. Each figure is the best of
// --repeat runs of --seconds each. Prints Markdown.
//
//   sync-call-bench [--sizes 100000,1000000] [--threads 1,4] [--seconds 2] [--repeat 3]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.hpp"
#include "cluster/local_cluster.hpp"
#include "crdt/awlww_map.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;
using bench::Clock;
using bench::key;
using bench::seconds_since;

namespace {

const std::string kValue(32, 'v');

std::vector<std::size_t> parse_list(const char* s) {
  std::vector<std::size_t> out;
  for (const char* p = s; *p != '\0';) {
    char* end = nullptr;
    out.push_back(std::strtoull(p, &end, 10));
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}

// Operations per second of `threads` threads each calling op(i) in a loop for `seconds`.
template <class Op>
double rate(int threads, double seconds, Op op) {
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> done(static_cast<std::size_t>(threads), 0);
  std::vector<std::thread> workers;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::uint64_t n = 0;
      std::size_t i = static_cast<std::size_t>(t) * 7919;
      while (!stop.load(std::memory_order_relaxed)) {
        op(i++);
        ++n;
      }
      done[static_cast<std::size_t>(t)] = n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = seconds_since(start);
  std::uint64_t total = 0;
  for (auto n : done) total += n;
  return static_cast<double>(total) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{100000, 1000000};
  std::vector<std::size_t> thread_counts{1, 4};
  double seconds = 2;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--sizes") == 0) sizes = parse_list(argv[i + 1]);
    if (std::strcmp(argv[i], "--threads") == 0) thread_counts = parse_list(argv[i + 1]);
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::atoi(argv[i + 1]);
  }
  std::printf("| keys | calling threads | put(k, v).get() per s | get(k).get() per s |\n");
  std::printf("|---:|---:|---:|---:|\n");
  for (std::size_t n : sizes) {
    LocalCluster<Map> cluster(2);  // A and B meshed; A's deltas go to B as they would
    Replica<Map>& a = cluster[1];
    for (std::size_t i = 0; i < n; ++i)
      a.put(key(i), kValue, {}, [](std::exception_ptr, std::uint64_t) {});
    a.read([](const Map& m) { return m.size(); }).get();
    std::this_thread::sleep_for(500ms);  // let B catch up and acks settle
    for (std::size_t threads : thread_counts) {
      double best_put = 0;
      double best_get = 0;
      for (int r = 0; r < repeat; ++r) {
        best_put = std::max(best_put, rate(static_cast<int>(threads), seconds, [&](std::size_t i) {
                              a.put(key(i % n), kValue).get();
                            }));
        best_get = std::max(best_get, rate(static_cast<int>(threads), seconds, [&](std::size_t i) {
                              (void)a.get(key(i % n)).get();
                            }));
      }
      std::printf("| %zu | %zu | %.0f | %.0f |\n", n, threads, best_put, best_get);
      std::fflush(stdout);
    }
  }
  return 0;
}
