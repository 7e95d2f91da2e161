// replication-bench: two Replica<AWLWWMap> in one process on one io_context, joined by a
// LocalTransport (real encoding of every message), the io_context run by two threads. Measures: N
// puts on A until B has them all; latency of one put against a synced 100k-key pair until B sees it
// (on_diffs); a fresh replica catching up 100k and 1M keys; a replica that missed 1% of the
// updates catching up; bytes sent for each. Prints Markdown.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
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
  std::printf(
      "| %zu puts on A until B has them all | %.3f s (%.2f M keys/s) | %.1f bytes/key |%s\n", n, s,
      static_cast<double>(n) / s / 1e6,
      static_cast<double>(net.bytes_sent()) / static_cast<double>(n), ok ? "" : " TIMEOUT");
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
  std::printf(
      "| latency of one put against %zu keys until visible on B (%d samples) | p50 %.2f ms, p99 "
      "%.2f ms | %.0f bytes/put |\n",
      n, samples, pct(0.5), pct(0.99), static_cast<double>(net.bytes_sent() - bytes0) / samples);
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
  std::printf("| fresh replica catching up %zu keys | %.3f s | %.1f bytes/key |%s\n", n, s,
              static_cast<double>(net.bytes_sent() - bytes0) / static_cast<double>(n),
              ok ? "" : " TIMEOUT");
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
}

}  // namespace

int main() {
  std::printf(
      "## replication-bench: two replicas, one io_context on two threads, LocalTransport\n\n");
  std::printf("| figure | result | wire |\n|---|---|---|\n");
  std::fflush(stdout);
  puts_until_replicated(100000);
  put_latency(100000, 300);
  catch_up(100000);
  catch_up(1000000);
  missed_one_percent(100000);
  missed_one_percent(1000000);
  return 0;
}
