// scale-bench: how replication costs grow with the number of replicas under three neighbour
// policies - all (every replica pushes to every other), a ring (each to the next) and
// random(4) (cluster/overlay.hpp) - on the simulated network, with message loss, a partition
// and crashes while the writes happen. For each N and policy it reports how long after the
// last write every replica held every write (virtual time and sync rounds), and the
// messages and bytes sent per write. docs/benchmarks.md, "Scale".
//
//   scale-bench [--sizes 10,50,200] [--writes W] [--seed S] [--json FILE]
#include <fmt/core.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.hpp"
#include "cluster/sim_overlay.hpp"
#include "crdt/awlww_map.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

namespace {

enum class Policy { all, ring, random4 };

const char* name_of(Policy p) {
  switch (p) {
    case Policy::all:
      return "all";
    case Policy::ring:
      return "ring";
    case Policy::random4:
      return "random(4)";
  }
  return "?";
}

struct Outcome {
  std::size_t n = 0;
  Policy policy = Policy::all;
  std::size_t writes = 0;
  double converge_ms = 0;  // virtual time from the last write (and heal) to all equal
  double rounds = 0;       // the same in sync intervals
  double messages_per_write = 0;
  double bytes_per_write = 0;
  double delta_bytes_per_write = 0;    // deltas and their acks
  double catchup_bytes_per_write = 0;  // state transfers and digests (new neighbours)
  double wall_s = 0;
  bool converged = false;
};

Outcome run(std::size_t n, Policy policy, std::size_t writes, std::uint64_t seed) {
  const auto started = bench::Clock::now();
  SyncOptions sync;  // the defaults: 200 ms anti-entropy interval
  SimFaults faults;
  faults.drop = 0.02;
  faults.max_delay = 10ms;
  SimNetwork<Map> net(seed, sync, faults);
  for (ReplicaId id = 1; id <= n; ++id) net.add_replica(id);
  SimOverlay<Map> overlay(4, seed);
  // As a node applies a policy: only to replicas it is linked to now (reachable), updated
  // whenever links come or go.
  const auto set_policy = [&](bool fresh) {
    switch (policy) {
      case Policy::all:
        for (ReplicaId id = 1; id <= n; ++id) {
          std::vector<ReplicaId> others;
          for (ReplicaId o = 1; o <= n; ++o)
            if (o != id && net.reachable(id, o)) others.push_back(o);
          net.set_neighbours(id, others);
        }
        break;
      case Policy::ring:  // a fixed list (the next id), as an application writes it by hand
        for (ReplicaId id = 1; id <= n; ++id) {
          const ReplicaId next = id % n + 1;
          net.set_neighbours(id, net.reachable(id, next) ? std::vector<ReplicaId>{next}
                                                         : std::vector<ReplicaId>{});
        }
        break;
      case Policy::random4:
        overlay.redraw(net, fresh);
        break;
    }
  };
  set_policy(true);

  // Writes spread over the replicas, 5 ms apart. A tenth of the way in, the cluster splits
  // in halves for a fifth of the writes; from 40% to 60%, a tenth of the replicas are down.
  std::mt19937_64 rng(seed);
  std::set<ReplicaId> crashed;
  for (std::size_t w = 0; w < writes; ++w) {
    if (w == writes / 10) {
      std::set<ReplicaId> left, right;
      for (ReplicaId id = 1; id <= n; ++id) (id <= n / 2 ? left : right).insert(id);
      net.partition({left, right});
      set_policy(false);
    } else if (w == writes * 3 / 10) {
      net.heal();
      set_policy(false);
    } else if (w == writes * 4 / 10) {
      while (crashed.size() < std::max<std::size_t>(1, n / 10)) {
        crashed.insert(1 + rng() % n);
      }
      for (ReplicaId id : crashed) net.crash(id, /*keep_durable=*/true);
      set_policy(false);
    } else if (w == writes * 6 / 10) {
      for (ReplicaId id : crashed) net.restart(id);
      set_policy(false);
    }
    ReplicaId at = 1 + rng() % n;
    while (!net.alive(at)) at = 1 + rng() % n;
    const HlcTimestamp ts = HlcTimestamp::from_parts(1000 + w, 0);
    net.mutate(at, [&](Map& m) { return m.put(at, bench::key(w), "value-" + std::to_string(w), ts); });
    net.run_for(5ms);
  }
  const Time last_write = net.now();
  Outcome r;
  r.n = n;
  r.policy = policy;
  r.writes = writes;
  const Time limit = last_write + 600 * sync.sync_interval;
  while (net.now() < limit) {
    net.run_for(1ms);
    bool all = true;
    for (ReplicaId id = 1; id <= n && all; ++id)
      all = net.replica(id).state() == net.everything_written();
    if (all) {
      r.converged = true;
      break;
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(net.now() - last_write).count();
  r.converge_ms = ms;
  r.rounds = ms / std::chrono::duration<double, std::milli>(sync.sync_interval).count();
  r.messages_per_write = static_cast<double>(net.messages_sent()) / static_cast<double>(writes);
  r.bytes_per_write = static_cast<double>(net.bytes_sent()) / static_cast<double>(writes);
  const double deltas = static_cast<double>(net.bytes_sent(SyncKind::delta) +
                                            net.bytes_sent(SyncKind::delta_ack));
  r.delta_bytes_per_write = deltas / static_cast<double>(writes);
  r.catchup_bytes_per_write = r.bytes_per_write - r.delta_bytes_per_write;
  r.wall_s = bench::seconds_since(started);
  return r;
}

std::vector<std::size_t> parse_sizes(std::string_view text) {
  std::vector<std::size_t> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = text.find(',', at);
    const std::string part(text.substr(at, comma == std::string_view::npos ? text.npos : comma - at));
    const unsigned long v = std::strtoul(part.c_str(), nullptr, 10);
    if (v < 2 || v > 1000) throw std::invalid_argument("--sizes: each size must be 2-1000");
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes{10, 50, 200};
  std::size_t writes = 1000;
  std::uint64_t seed = 42;
  std::string json;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string_view a = argv[i];
      const auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
        return argv[++i];
      };
      if (a == "--sizes") {
        sizes = parse_sizes(value());
      } else if (a == "--writes") {
        writes = std::stoul(value());
      } else if (a == "--seed") {
        seed = std::stoull(value());
      } else if (a == "--json") {
        json = value();
      } else {
        throw std::invalid_argument("unknown argument " + std::string(a));
      }
    }
    if (writes < 10) throw std::invalid_argument("--writes must be at least 10");
  } catch (const std::exception& e) {
    fmt::print(stderr, "scale-bench: {}\n", e.what());
    return 2;
  }

  fmt::print("scale-bench: {} writes each, 2% loss, a 50/50 partition, 10% of replicas down "
             "for a while; seed {}\n",
             writes, seed);
  fmt::print("{:>5} {:>10} {:>14} {:>8} {:>11} {:>12} {:>12} {:>12} {:>7}\n", "N", "policy",
             "converge ms", "rounds", "msgs/write", "bytes/write", "of: deltas", "catch-up",
             "wall s");
  std::vector<Outcome> results;
  for (std::size_t n : sizes) {
    for (Policy p : {Policy::all, Policy::ring, Policy::random4}) {
      const Outcome r = run(n, p, writes, seed);
      results.push_back(r);
      fmt::print("{:>5} {:>10} {:>14.0f} {:>8.1f} {:>11.1f} {:>12.0f} {:>12.0f} {:>12.0f} {:>7.1f}{}\n",
                 r.n, name_of(r.policy), r.converge_ms, r.rounds, r.messages_per_write,
                 r.bytes_per_write, r.delta_bytes_per_write, r.catchup_bytes_per_write,
                 r.wall_s, r.converged ? "" : "  NOT CONVERGED");
      std::fflush(stdout);
    }
  }
  if (!json.empty()) {
    std::ofstream out(json);
    out << "{\"benchmark\": \"scale\", \"writes\": " << writes << ", \"seed\": " << seed
        << ", \"results\": [\n";
    for (std::size_t i = 0; i < results.size(); ++i) {
      const Outcome& r = results[i];
      out << fmt::format(
          "  {{\"n\": {}, \"policy\": \"{}\", \"converged\": {}, \"converge_ms\": {:.1f}, "
          "\"rounds\": {:.2f}, \"messages_per_write\": {:.2f}, \"bytes_per_write\": {:.1f}, "
          "\"delta_bytes_per_write\": {:.1f}, \"catchup_bytes_per_write\": {:.1f}, "
          "\"wall_s\": {:.2f}}}{}\n",
          r.n, name_of(r.policy), r.converged ? "true" : "false", r.converge_ms, r.rounds,
          r.messages_per_write, r.bytes_per_write, r.delta_bytes_per_write,
          r.catchup_bytes_per_write, r.wall_s, i + 1 < results.size() ? "," : "");
    }
    out << "]}\n";
  }
  for (const Outcome& r : results)
    if (!r.converged) return 1;
  return 0;
}
