// The random(k) overlay (cluster/overlay.hpp): the draw itself, the ring successors forming
// one cycle, and on the simulated network 50 replicas pushing to 4 each staying connected
// and converging through seeded crash and partition schedules.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cluster/overlay.hpp"
#include "cluster/sim_overlay.hpp"
#include "crdt/pncounter.hpp"
#include "tests/property.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using deltacrdt::testing::PropertyRng;

namespace {

std::vector<std::string> names(std::size_t n, const std::string& prefix = "node-") {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

}  // namespace

TEST_SUITE("cluster.overlay") {
  TEST_CASE("draw: the successor first, k in all, never self, none twice") {
    std::mt19937_64 rng(7);
    const auto all = names(10);
    for (std::size_t k = 0; k <= 12; ++k) {
      CAPTURE(k);
      const auto got = overlay::draw(all[3], all, {}, k, rng);  // all[3] is self
      CHECK(got.size() == std::min<std::size_t>(k, 9));
      if (k > 0) CHECK(got.front() == overlay::ring_successor(all[3], [&] {
                         auto others = all;
                         std::erase(others, all[3]);
                         return others;
                       }()));
      CHECK(std::find(got.begin(), got.end(), all[3]) == got.end());
      CHECK(std::set<std::string>(got.begin(), got.end()).size() == got.size());
    }
    CHECK(overlay::draw(std::string("a"), std::vector<std::string>{"a"}, {}, 3, rng).empty());
  }

  TEST_CASE("draw: the successor does not depend on the order candidates come in") {
    std::mt19937_64 rng(1);
    auto all = names(40);
    const std::string self = "me";
    const std::string successor = overlay::draw(self, all, {}, 1, rng).at(0);
    for (int i = 0; i < 20; ++i) {
      std::shuffle(all.begin(), all.end(), rng);
      CHECK(overlay::draw(self, all, {}, 1, rng).at(0) == successor);
    }
  }

  TEST_CASE("draw: kept draws stay while they are candidates; the rest is uniform") {
    std::mt19937_64 rng(3);
    const auto all = names(12);
    const std::string self = all[0];
    const auto first = overlay::draw(self, all, {}, 4, rng);
    REQUIRE(first.size() == 4);
    CHECK(overlay::draw(self, all, first, 4, rng) == first);
    // One drawn member gone: the others stay, one new one replaces it.
    auto fewer = all;
    std::erase(fewer, first[2]);
    const auto again = overlay::draw(self, fewer, first, 4, rng);
    CHECK(again.size() == 4);
    CHECK(again[0] == first[0]);
    CHECK(std::find(again.begin(), again.end(), first[1]) != again.end());
    CHECK(std::find(again.begin(), again.end(), first[3]) != again.end());
    CHECK(std::find(again.begin(), again.end(), first[2]) == again.end());
    // Fresh draws: each of the 10 non-successors is picked about 3/10 of the time.
    std::map<std::string, int> picked;
    constexpr int kDraws = 6000;
    for (int i = 0; i < kDraws; ++i) {
      const auto d = overlay::draw(self, all, {}, 4, rng);
      for (std::size_t j = 1; j < d.size(); ++j) ++picked[d[j]];
    }
    CHECK(picked.size() == 10);
    for (const auto& [name, count] : picked) {
      CAPTURE(name);
      CHECK(count > kDraws * 3 / 10 * 8 / 10);   // within 20% of the mean (about 9 sd)
      CHECK(count < kDraws * 3 / 10 * 12 / 10);
    }
  }

  TEST_CASE("the ring successors of any member set form one cycle through all of it") {
    deltacrdt::testing::for_each_case(3, [](PropertyRng& rng) {
      const std::size_t n = 2 + rng.below(60);
      std::vector<std::uint64_t> ids;
      while (ids.size() < n) ids.push_back(1 + rng.engine()());
      std::map<std::uint64_t, std::uint64_t> next;
      for (std::uint64_t self : ids) {
        std::vector<std::uint64_t> others = ids;
        std::erase(others, self);
        next[self] = overlay::ring_successor(self, others);
      }
      std::set<std::uint64_t> visited;
      std::uint64_t at = ids.front();
      for (std::size_t i = 0; i < n; ++i) {
        visited.insert(at);
        at = next.at(at);
      }
      CHECK(at == ids.front());  // back where it started after exactly n hops ...
      CHECK(visited.size() == n);  // ... having visited every member
    });
  }

  TEST_CASE("random(4): 50 simulated replicas stay connected and converge through 20 "
            "crash and partition schedules") {
    for (std::uint64_t i = 0; i < 20; ++i) {
      const std::uint64_t seed = deltacrdt::testing::base_seed() + i;
      CAPTURE(seed);
      PropertyRng rng(seed);
      SimFaults faults;
      faults.drop = 0.05;
      faults.max_delay = 20ms;
      SimNetwork<PNCounter> net(seed, SyncOptions{}, faults);
      constexpr ReplicaId kReplicas = 50;
      for (ReplicaId id = 1; id <= kReplicas; ++id) net.add_replica(id);
      SimOverlay<PNCounter> overlay(4, seed);
      overlay.redraw(net);
      REQUIRE(overlay.connected(net));
      for (int step = 0; step < 60; ++step) {
        net.run_for(std::chrono::milliseconds(rng.below(100)));
        const ReplicaId id = 1 + rng.below(kReplicas);
        const auto roll = rng.below(100);
        if (roll < 70) {
          if (net.alive(id)) net.mutate(id, [&](PNCounter& c) { return c.increment(id, 1); });
          continue;
        }
        if (roll < 78) {
          std::set<ReplicaId> left, right;
          for (ReplicaId r = 1; r <= kReplicas; ++r) (rng.chance(0.5) ? left : right).insert(r);
          net.partition({left, right});
        } else if (roll < 84) {
          net.heal();
        } else if (roll < 95) {
          if (net.alive(id)) {
            net.crash(id, /*keep_durable=*/true);
          } else {
            net.restart(id);
          }
        }
        overlay.redraw(net, /*fresh=*/roll >= 95);  // a node reacts to links going and coming
        CAPTURE(step);
        REQUIRE(overlay.connected(net));
      }
      net.heal();
      net.set_faults(SimFaults{});
      for (ReplicaId r = 1; r <= kReplicas; ++r)
        if (!net.alive(r)) net.restart(r);
      overlay.redraw(net);
      REQUIRE(overlay.connected(net));
      net.run_for(60 * SyncOptions{}.sync_interval);
      for (ReplicaId r = 1; r <= kReplicas; ++r) {
        CAPTURE(r);
        REQUIRE(net.replica(r).state() == net.everything_written());
      }
      // Each replica pushes to 4, not 49.
      for (const auto& [id, to] : overlay.edges()) CHECK(to.size() == 4);
    }
  }
}
