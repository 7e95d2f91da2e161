// Pruning removed replicas (docs/protocol.md, "Pruning removed replicas"), in virtual time:
// the retiring replica (the smallest id) is caught up by every other member, each knowing
// the removal, and then retires the removed replicas' counter entries into its own. Nothing
// is lost or counted twice, stale copies never come back, and with replicas coming and
// going the counters keep one entry per live replica.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "cluster/virtual_cluster.hpp"
#include "crdt/pncounter.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;

namespace {

// Replicas of a PNCounter that come and go: removal as a Node does it - the removed one is
// cut off, the others stop pushing to it, count one member less and learn its id removed.
struct Churn {
  VirtualCluster<PNCounter> cluster;
  std::set<ReplicaId> live;
  std::set<ReplicaId> removed;
  std::set<std::pair<ReplicaId, ReplicaId>> cut;  // pairs that cannot talk
  std::int64_t total = 0;                          // every count made, expected everywhere
  std::size_t down = 0;                            // members counted but not running

  static ReplicaOptions<PNCounter> options() {
    ReplicaOptions<PNCounter> o;
    o.pruning.retry_after = 500ms;
    o.pruning.round_timeout = 2s;
    return o;
  }

  Churn() {
    cluster.transport().set_cut([this](PeerId a, PeerId b) {
      return removed.contains(a) || removed.contains(b) || cut.contains({a, b}) ||
             cut.contains({b, a});
    });
  }

  Replica<PNCounter>& join(ReplicaId id) {
    Replica<PNCounter>& r = cluster.add(id, options());
    live.insert(id);
    rewire();
    return r;
  }

  void remove(ReplicaId id) {
    live.erase(id);
    removed.insert(id);
    rewire();
  }

  void rewire() {
    const std::vector<ReplicaId> gone(removed.begin(), removed.end());
    for (ReplicaId id : live) {
      std::vector<PeerId> others;
      for (ReplicaId o : live)
        if (o != id) others.push_back(o);
      cluster[id].set_neighbours(others);
      cluster[id].set_membership(live.size() + down);
      cluster[id].set_removed(gone);
    }
  }

  void count(ReplicaId id, std::int64_t by) {
    Replica<PNCounter>& r = cluster[id];
    if (by >= 0) {
      (void)cluster.wait(r.mutate([id, by](PNCounter& c) {
        return c.increment(id, static_cast<std::uint64_t>(by));
      }));
    } else {
      (void)cluster.wait(r.mutate([id, by](PNCounter& c) {
        return c.decrement(id, static_cast<std::uint64_t>(-by));
      }));
    }
    total += by;
  }

  PNCounter state(ReplicaId id) {
    return cluster.wait(cluster[id].read([](const PNCounter& c) { return c; }));
  }

  // Every live replica holds the same counter, with the expected value and one entry per
  // live replica at most, and no entry of a removed one.
  bool settled() {
    const PNCounter first = state(*live.begin());
    for (ReplicaId id : live) {
      const PNCounter c = state(id);
      if (!(c == first) || c.value() != total) return false;
      for (ReplicaId r : removed)
        if (c.mentions(r)) return false;
      if (c.increments().size() > live.size() || c.decrements().size() > live.size()) return false;
    }
    return true;
  }

  bool run_until_settled(Time limit = 60s) {
    for (Time waited{}; waited < limit; waited += 100ms) {
      if (settled()) return true;
      cluster.run_for(100ms);
    }
    return settled();
  }
};

}  // namespace

TEST_SUITE("cluster.pruning") {
  TEST_CASE("the smallest id retires a removed replica's counts into its own entry; every "
            "replica agrees, nothing is lost or counted twice") {
    Churn c;
    for (ReplicaId id = 1; id <= 4; ++id) c.join(id);
    c.cluster.run_for(1s);
    c.count(1, 2);
    c.count(2, 3);
    c.count(4, 10);
    c.count(4, -4);
    c.cluster.run_for(1s);
    REQUIRE(c.state(3).mentions(4));
    c.remove(4);
    CHECK(c.run_until_settled());
    for (ReplicaId id : {1, 2, 3}) {
      const PNCounter s = c.state(id);
      CHECK(s.retired(4));
      CHECK(s.value() == 11);
      CHECK(s.increments().value_of(1) == 12);  // 2 of its own, 10 of 4's
      CHECK(s.decrements().value_of(1) == 4);
    }
  }

  TEST_CASE("counts of a removed replica that only one member received are not lost") {
    Churn c;
    for (ReplicaId id = 1; id <= 4; ++id) c.join(id);
    c.cluster.run_for(1s);
    c.count(4, 1);
    c.cluster.run_for(1s);
    // 4's last counts reach only 3 (which does not pass them on yet), then 4 is removed.
    c.cut = {{4, 1}, {4, 2}, {3, 1}, {3, 2}};
    c.count(4, 6);
    c.cluster.run_for(1s);
    REQUIRE(c.state(3).increments().value_of(4) == 7);
    REQUIRE(c.state(1).increments().value_of(4) == 1);
    c.cut.clear();
    c.remove(4);
    CHECK(c.run_until_settled());
    CHECK(c.state(1).value() == 7);
  }

  TEST_CASE("nothing is retired while a member is down; stale copies never come back") {
    Churn c;
    for (ReplicaId id = 1; id <= 4; ++id) c.join(id);
    c.cluster.run_for(1s);
    c.count(4, 5);
    c.cluster.run_for(1s);
    c.down = 1;  // a fourth member, down: 1 cannot be caught up by all
    c.remove(4);
    c.cluster.run_for(5s);
    CHECK_FALSE(c.state(1).retired(4));
    CHECK(c.state(2).mentions(4));
    c.down = 0;
    c.rewire();
    CHECK(c.run_until_settled());
    // 4 comes back with its old state (a node restored from a backup) and pushes to 2.
    c.removed.erase(4);
    c.cluster[4].set_neighbours({2});
    c.cluster.run_for(2s);
    CHECK(c.state(2).value() == 5);
    CHECK_FALSE(c.state(2).mentions(4));
  }

  // Replicas come and go under random partitions; each one's counts reach the others before
  // it goes. At every quiet point all live replicas agree on every count ever made and hold
  // one entry per live replica; the marks are the removed ids.
  TEST_CASE("with churn, counters converge to every count made and keep one entry per live "
            "replica") {
    for (std::uint32_t seed = 1; seed <= 8; ++seed) {
      CAPTURE(seed);
      std::mt19937 rng(seed);
      Churn c;
      ReplicaId next = 1;
      for (; next <= 3; ++next) c.join(next);
      c.cluster.run_for(1s);
      for (int round = 0; round < 12; ++round) {
        const std::vector<ReplicaId> now(c.live.begin(), c.live.end());
        for (int i = 0; i < 5; ++i) {
          const ReplicaId who = now[rng() % now.size()];
          c.count(who, static_cast<std::int64_t>(rng() % 9) - 3);
        }
        if (rng() % 3 == 0) {  // a short partition
          const ReplicaId a = now[rng() % now.size()], b = now[rng() % now.size()];
          if (a != b) c.cut.insert({a, b});
          c.cluster.run_for(300ms);
          c.cut.clear();
        }
        c.join(next++);
        c.cluster.run_for(1s);  // the newcomer catches up; every count reaches everyone
        if (c.live.size() > 3) {
          const ReplicaId leaving = now[rng() % now.size()];
          c.cluster.run_for(1s);
          c.remove(leaving);
        }
        REQUIRE(c.run_until_settled());
      }
      const PNCounter s = c.state(*c.live.begin());
      CHECK(s.increments().size() <= c.live.size());
      CHECK(s.retired_count() <= c.removed.size());
    }
  }
}
