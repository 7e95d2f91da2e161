// replication-bench: two Replica<AWLWWMap> in one process on one io_context, joined by a
// LocalTransport (real encoding of every message), the io_context run by two threads. Measures: N
// puts on A until B has them all; latency of one put against a synced 100k-key pair until B sees it
// (on_diffs); a fresh replica catching up 100k and 1M keys; a replica that missed 1% of the
// updates catching up; bytes sent for each. Prints Markdown; with --json FILE also writes
// every figure as JSON (bench/plot draws bench/results/replication.json).
//
// Usage: replication-bench [--sizes 100000,1000000] [--repeat 1] [--json FILE]
//   --sizes: the key counts of the catch-up figures (the puts and latency figures use 100k)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.hpp"
#include "cluster/local_cluster.hpp"
#include "cluster/replica_asio.hpp"
#include "crdt/awlww_map.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;
using bench::Clock;
using bench::key;
using bench::seconds_since;

namespace {

const std::string kValue(32, 'v');

// One measured figure, for --json.
struct Figure {
  std::string id;  // puts, latency_p50, latency_p99, catch_up, missed_1pct
  std::size_t n;
  double value;      // seconds, or milliseconds for latency
  double wire;       // bytes per key, per put or per update
  bool ok;
};
std::vector<Figure> figures;

// Waits (polling every 200 us) until replica r holds n keys; returns false on timeout.
bool wait_size(Replica<Map>& r, std::size_t n, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (r.read([](const Map& m) { return m.size(); }).get() >= n) return true;
    std::this_thread::sleep_for(200us);
  }
  return false;
}

// Fills `r` with n keys without waiting for each put (fire and forget, then one barrier).
void fill(Replica<Map>& r, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    r.put(key(i), kValue, {}, [](std::exception_ptr, std::uint64_t) {});
  r.read([](const Map& m) { return m.size(); }).get();
}

void puts_until_replicated(std::size_t n) {
  LocalCluster<Map> cluster(2);  // one io_context on two threads; replicas 1 and 2 meshed
  Replica<Map>& a = cluster[1];
  Replica<Map>& b = cluster[2];
  LocalTransport& net = cluster.transport();
  const auto start = Clock::now();
  fill(a, n);
  const bool ok = wait_size(b, n, 60s);
  const double s = seconds_since(start);
  const double wire = static_cast<double>(net.bytes_sent()) / static_cast<double>(n);
  std::printf(
      "| %zu puts on A until B has them all | %.3f s (%.2f M keys/s) | %.1f bytes/key |%s\n", n, s,
      static_cast<double>(n) / s / 1e6, wire, ok ? "" : " TIMEOUT");
  figures.push_back({"puts", n, s, wire, ok});
}

void put_latency(std::size_t n, int samples) {
  std::mutex mu;
  std::condition_variable cv;
  std::string seen;
  asio::io_context cb_io;  // callbacks on their own thread, off the replicas' loop
  auto cb_guard = asio::make_work_guard(cb_io);
  std::thread cb_thread([&] { cb_io.run(); });
  LocalCluster<Map> cluster(1);  // one io_context on two threads
  Replica<Map>& a = cluster[1];
  ReplicaOptions<Map> watched;
  watched.diffs_poster = post_to(cb_io.get_executor());
  watched.on_diffs = [&](const std::vector<KeyChange<std::string, std::string>>& changes) {
    std::lock_guard lock(mu);
    for (const auto& c : changes) {
      if (c.value) seen = *c.value;
    }
    cv.notify_all();
  };
  Replica<Map>& b = cluster.add(2, watched);
  a.set_neighbours({2});
  b.set_neighbours({1});
  LocalTransport& net = cluster.transport();
  fill(a, n);
  wait_size(b, n, 60s);
  std::this_thread::sleep_for(300ms);  // let acks settle
  std::vector<double> ms;
  const auto bytes0 = net.bytes_sent();
  for (int i = 0; i < samples; ++i) {
    const std::string marker = "m" + std::to_string(i);
    const auto t0 = Clock::now();
    a.put(key(static_cast<std::size_t>(i) % n), marker, {}, [](std::exception_ptr, std::uint64_t) {});
    std::unique_lock lock(mu);
    cv.wait_for(lock, 2s, [&] { return seen == marker; });
    ms.push_back(seconds_since(t0) * 1e3);
    lock.unlock();
    std::this_thread::sleep_for(2ms);
  }
  std::sort(ms.begin(), ms.end());
  const auto pct = [&](double p) {
    return ms[static_cast<std::size_t>(p * static_cast<double>(ms.size() - 1))];
  };
  const double wire = static_cast<double>(net.bytes_sent() - bytes0) / samples;
  std::printf(
      "| latency of one put against %zu keys until visible on B (%d samples) | p50 %.2f ms, p99 "
      "%.2f ms | %.0f bytes/put |\n",
      n, samples, pct(0.5), pct(0.99), wire);
  figures.push_back({"latency_p50", n, pct(0.5), wire, true});
  figures.push_back({"latency_p99", n, pct(0.99), wire, true});
  cb_guard.reset();
  cb_thread.join();
}

void catch_up(std::size_t n) {
  LocalCluster<Map> cluster(1);
  Replica<Map>& a = cluster[1];
  LocalTransport& net = cluster.transport();
  fill(a, n);
  Replica<Map>& b = cluster.add(2);
  const auto bytes0 = net.bytes_sent();
  const auto start = Clock::now();
  a.set_neighbours({2});
  b.set_neighbours({1});
  const bool ok = wait_size(b, n, 120s);
  const double s = seconds_since(start);
  const double wire = static_cast<double>(net.bytes_sent() - bytes0) / static_cast<double>(n);
  std::printf("| fresh replica catching up %zu keys | %.3f s | %.1f bytes/key |%s\n", n, s, wire,
              ok ? "" : " TIMEOUT");
  figures.push_back({"catch_up", n, s, wire, ok});
}

// A synced pair; B is cut off while A updates 1% of the keys, long enough for A's delta buffer
// (capped at 64 KiB here) to drop them; then B is reconnected and caught up by digests.
// Timed from reconnection until B holds every update, so it includes waiting for A's
// retransmission timer (retransmit_after, 400 ms by default).
void missed_one_percent(std::size_t n) {
  ReplicaOptions<Map> options;
  options.sync.max_buffer_bytes = 64 * 1024;
  LocalCluster<Map> cluster(2, 2, options);
  Replica<Map>& a = cluster[1];
  Replica<Map>& b = cluster[2];
  LocalTransport& net = cluster.transport();
  fill(a, n);
  wait_size(b, n, 120s);
  std::this_thread::sleep_for(500ms);  // let acks settle
  net.detach(2);
  const std::size_t updates = n / 100;
  const std::string updated(32, 'u');
  for (std::size_t i = 0; i < updates; ++i) {
    a.put(key(i * 97 % n), updated, {}, [](std::exception_ptr, std::uint64_t) {});
  }
  a.read([](const Map& m) { return m.size(); }).get();
  std::this_thread::sleep_for(1s);  // A pushes into the void and its buffer drops the deltas
  const auto all_in = [&] {
    return b
        .read([&](const Map& m) {
          for (std::size_t i = 0; i < updates; ++i) {
            const std::string* v = m.find(key(i * 97 % n));
            if (v == nullptr || *v != updated) return false;
          }
          return true;
        })
        .get();
  };
  const auto bytes0 = net.bytes_sent();
  const auto start = Clock::now();
  net.attach(b);
  bool ok = false;
  while (!(ok = all_in()) && seconds_since(start) < 120) std::this_thread::sleep_for(500us);
  const double s = seconds_since(start);
  const std::uint64_t catch_up_bytes = net.bytes_sent() - bytes0;
  std::printf(
      "| replica that missed 1%% of %zu keys (%zu updates) catching up | %.3f s | %llu bytes = "
      "%.0f bytes/update (whole state: %.0f bytes/key) |%s\n",
      n, updates, s, static_cast<unsigned long long>(catch_up_bytes),
      static_cast<double>(catch_up_bytes) / static_cast<double>(updates),
      static_cast<double>(encode(a.snapshot().get()).size()) / static_cast<double>(n),
      ok ? "" : " TIMEOUT");
  figures.push_back({"missed_1pct", n, s,
                     static_cast<double>(catch_up_bytes) / static_cast<double>(updates), ok});
}

void write_json(const std::string& path, int repeat) {
  std::ofstream f(path);
  if (!f) {
    std::fprintf(stderr, "replication-bench: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  f << "{\n  \"repeat\": " << repeat << ",\n  \"figures\": [\n";
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const Figure& x = figures[i];
    char line[256];
    std::snprintf(line, sizeof line,
                  "    {\"id\": \"%s\", \"n\": %zu, \"value\": %.6g, \"wire\": %.6g, \"ok\": %s}%s\n",
                  x.id.c_str(), x.n, x.value, x.wire, x.ok ? "true" : "false",
                  i + 1 < figures.size() ? "," : "");
    f << line;
  }
  f << "  ]\n}\n";
}

std::vector<std::size_t> parse_sizes(const std::string& list) {
  std::vector<std::size_t> out;
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    out.push_back(static_cast<std::size_t>(std::stoull(list.substr(at, comma - at))));
    at = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{100000, 1000000};
  int repeat = 1;
  std::string json;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument(arg);
      if (arg == "--sizes") {
        sizes = parse_sizes(argv[++i]);
      } else if (arg == "--repeat") {
        repeat = std::max(1, std::stoi(argv[++i]));
      } else if (arg == "--json") {
        json = argv[++i];
      } else {
        throw std::invalid_argument(arg);
      }
    }
  } catch (const std::exception&) {
    std::fprintf(stderr,
                 "usage: replication-bench [--sizes 100000,1000000] [--repeat 1] [--json FILE]\n");
    return 2;
  }
  std::printf(
      "## replication-bench: two replicas, one io_context on two threads, LocalTransport\n\n");
  std::printf("| figure | result | wire |\n|---|---|---|\n");
  std::fflush(stdout);
  for (int run = 0; run < repeat; ++run) {
    puts_until_replicated(100000);
    put_latency(100000, 300);
    for (const std::size_t n : sizes) catch_up(n);
    for (const std::size_t n : sizes) missed_one_percent(n);
  }
  if (!json.empty()) write_json(json, repeat);
  return 0;
}
