// The anti-entropy protocol on the deterministic simulated network: random schedules with
// message loss, duplication, reordering, partitions and crash/restart must converge to the
// join of every delta ever written once faults stop; plus targeted scenarios.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "cluster/sim_network.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/causal_counter.hpp"
#include "crdt/ormap.hpp"
#include "crdt/orset.hpp"
#include "crdt/pncounter.hpp"
#include "tests/crdt_models.hpp"
#include "tests/property.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using deltacrdt::testing::PropertyRng;

namespace {

struct PNCounterModel {
  using Type = PNCounter;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    return rng.chance(0.7) ? x.increment(self, 1 + rng.below(5))
                           : x.decrement(self, 1 + rng.below(3));
  }
};

// Bidirectional neighbour lists for a random topology over ids 1..n.
std::map<ReplicaId, std::vector<ReplicaId>> random_topology(std::size_t n, PropertyRng& rng) {
  std::map<ReplicaId, std::set<ReplicaId>> adj;
  const auto link = [&](ReplicaId a, ReplicaId b) {
    if (a == b) return;
    adj[a].insert(b);
    adj[b].insert(a);
  };
  for (ReplicaId i = 1; i <= n; ++i) adj[i];
  switch (rng.below(5)) {
    case 0:  // mesh
      for (ReplicaId a = 1; a <= n; ++a)
        for (ReplicaId b = a + 1; b <= n; ++b) link(a, b);
      break;
    case 1:  // ring
      for (ReplicaId a = 1; a <= n; ++a) link(a, a % n + 1);
      break;
    case 2:  // line
      for (ReplicaId a = 1; a < n; ++a) link(a, a + 1);
      break;
    case 3:  // star around 1
      for (ReplicaId a = 2; a <= n; ++a) link(1, a);
      break;
    default:  // random spanning tree plus random extra edges
      for (ReplicaId a = 2; a <= n; ++a) link(a, 1 + rng.below(a - 1));
      for (std::size_t e = 0; e < n; ++e) link(1 + rng.below(n), 1 + rng.below(n));
  }
  std::map<ReplicaId, std::vector<ReplicaId>> out;
  for (auto& [id, s] : adj) out[id] = std::vector<ReplicaId>(s.begin(), s.end());
  return out;
}

// One random schedule: writes under faults, partitions and crash/restarts (durable state
// kept), then faults stop, the network heals, and every replica must hold exactly the join
// of everything written, within a bounded number of sync intervals.
template <class Model>
void run_schedule(PropertyRng& rng) {
  using T = typename Model::Type;
  SyncOptions opts;
  opts.max_sync_bytes = 256 + rng.below(4096);  // small limits: batching and chunking happen
  opts.max_buffer_bytes = rng.chance(0.3) ? 512 + rng.below(4096) : opts.max_buffer_bytes;
  // Catch-up by digests for most schedules (key-based types), by whole state for the rest.
  opts.digest_min_entries = rng.chance(0.7) ? 0 : 1 + rng.below(64);
  SimFaults faults;
  faults.drop = rng.chance(0.5) ? 0.05 * static_cast<double>(rng.below(7)) : 0.0;
  faults.duplicate = rng.chance(0.5) ? 0.1 : 0.0;
  faults.max_delay = std::chrono::milliseconds(1 + rng.below(40));
  SimNetwork<T> net(rng.engine()(), opts, faults);
  const std::size_t n = 2 + rng.below(4);
  for (auto& [id, peers] : random_topology(n, rng)) net.add_replica(id, peers);

  const std::size_t steps = 20 + rng.below(60);
  for (std::size_t s = 0; s < steps; ++s) {
    net.run_for(std::chrono::milliseconds(rng.below(60)));
    const ReplicaId id = 1 + rng.below(n);
    const auto roll = rng.below(100);
    if (roll < 80) {
      if (net.alive(id)) net.mutate(id, [&](T& x) { return Model::mutate(x, id, rng); });
    } else if (roll < 88) {
      std::set<ReplicaId> left;
      for (ReplicaId r = 1; r <= n; ++r)
        if (rng.chance(0.5)) left.insert(r);
      std::set<ReplicaId> right;
      for (ReplicaId r = 1; r <= n; ++r)
        if (!left.contains(r)) right.insert(r);
      net.partition({left, right});
    } else if (roll < 93) {
      net.heal();
    } else if (net.alive(id)) {
      net.crash(id, /*keep_durable=*/true);
    } else {
      net.restart(id);
    }
  }
  net.heal();
  net.set_faults(SimFaults{});
  for (ReplicaId r = 1; r <= n; ++r)
    if (!net.alive(r)) net.restart(r);
  // Bounded: a line of 5 with state transfers needs a few rounds per hop.
  net.run_for(40 * opts.sync_interval);
  for (ReplicaId r = 1; r <= n; ++r) {
    CAPTURE(r);
    REQUIRE(net.replica(r).state() == net.everything_written());
  }
  REQUIRE(net.largest_message() <= opts.max_sync_bytes + 64);
}

}  // namespace

TEST_SUITE("cluster.simulation") {
  TEST_CASE("random schedules converge to the join of every delta written") {
    deltacrdt::testing::for_each_case(2, [](PropertyRng& rng) {  // 500 schedules by default
      switch (rng.below(4)) {
        case 0:
          run_schedule<deltacrdt::testing::AWLWWMapWideModel>(rng);
          break;
        case 1:
          run_schedule<deltacrdt::testing::ORSetModel>(rng);
          break;
        case 2:
          run_schedule<PNCounterModel>(rng);
          break;
        default:
          run_schedule<deltacrdt::testing::CounterMapModel>(rng);
          break;
      }
    });
  }
}
