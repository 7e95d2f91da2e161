// Read concerns (ReadConcern, Replica::read and get with one): before a majority or all
// read runs, the replica asks its neighbours to catch it up from their current states and
// waits until enough have. Run in virtual time, with neighbours chosen so that a write has
// reached only some replicas when the read begins.
#include <doctest/doctest.h>

#include <chrono>
#include <array>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "cluster/virtual_cluster.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/pncounter.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

namespace {

// a pushes only to b; b forwards what it receives only every 10 s; c pushes to both. A
// write on a is acknowledged by b at once and reaches c only ten seconds later.
struct Lagging {
  VirtualCluster<Map> cluster;
  Replica<Map>& a;
  Replica<Map>& b;
  Replica<Map>& c;
  static ReplicaOptions<Map> slow() {
    ReplicaOptions<Map> o;
    o.sync.sync_interval = 10s;
    return o;
  }
  Lagging() : a(cluster.add(1)), b(cluster.add(2, slow())), c(cluster.add(3)) {
    a.set_neighbours({2});
    b.set_neighbours({1, 3});
    c.set_neighbours({1, 2});
    for (Replica<Map>* r : {&a, &b, &c}) r->set_membership(3);
    cluster.run_for(1s);  // first contacts, catch-ups of empty states
  }
};

}  // namespace

TEST_SUITE("cluster.read_concern") {
  TEST_CASE("a majority read sees a majority write that a local read misses") {
    Lagging l;
    (void)l.cluster.wait(l.a.put(std::string("k"), std::string("v"), WriteConcern::majority()));
    CHECK(l.cluster.wait(l.c.get(std::string("k"))) == std::nullopt);  // not there yet
    const Time before = l.cluster.now();
    // c asks a (which refuses: it never pushes to c) and b (which catches c up).
    CHECK(l.cluster.wait(l.c.get(std::string("k"), ReadConcern::majority())) ==
          std::optional<std::string>("v"));
    CHECK(l.cluster.now() - before < 100ms);  // not the 10 s forwarding
    // A local read now sees it too: the catch-up was joined into c's state.
    CHECK(l.cluster.wait(l.c.get(std::string("k"))) == std::optional<std::string>("v"));
  }

  TEST_CASE("a read concern that too few neighbours can meet times out, having read nothing") {
    Lagging l;
    l.a.set_neighbours({});  // a: nobody; b pushes only to a
    l.b.set_neighbours({1});
    l.cluster.run_for(10ms);
    bool ran = false;
    auto read = l.c.read([&](const Map&) { ran = true; return 0; }, ReadConcern::majority(300ms));
    try {
      (void)l.cluster.wait(std::move(read));
      FAIL("neither neighbour pushes to c");
    } catch (const ReadConcernTimeout& e) {
      CHECK(e.caught_up() == 1);  // c itself
      CHECK(e.required() == 2);   // 2 of 3
    }
    CHECK_FALSE(ran);
  }

  TEST_CASE("all waits for every other member; majority of more members than neighbours fails") {
    Lagging l;
    (void)l.cluster.wait(l.b.put(std::string("k"), std::string("v")));
    // a and c both push to b: b's all read is met.
    CHECK(l.cluster.wait(l.b.get(std::string("k"), ReadConcern::all(200ms))) ==
          std::optional<std::string>("v"));
    // a asks only its neighbour b (it does not push to c, so c is never asked): all fails.
    CHECK_THROWS_AS((void)l.cluster.wait(l.a.get(std::string("k"), ReadConcern::all(200ms))),
                    ReadConcernTimeout);
    // c is pushed to by b only (a does not push to c): all fails, majority holds.
    CHECK_THROWS_AS((void)l.cluster.wait(l.c.get(std::string("k"), ReadConcern::all(200ms))),
                    ReadConcernTimeout);
    CHECK(l.cluster.wait(l.c.get(std::string("k"), ReadConcern::majority(200ms))) ==
          std::optional<std::string>("v"));
    l.c.set_membership(5);  // two more members, never heard of: 3 of 5 needed
    CHECK_THROWS_AS((void)l.cluster.wait(l.c.get(std::string("k"), ReadConcern::majority(200ms))),
                    ReadConcernTimeout);
    // A local read never waits.
    CHECK(l.cluster.wait(l.c.get(std::string("k"), ReadConcern::local())) ==
          std::optional<std::string>("v"));
  }

  // The promise of majority writes with majority reads, under random partitions of five
  // replicas: every read that completes sees every write acknowledged before it began, and
  // exactly the sides holding a majority can write and read.
  TEST_CASE("majority reads see every acknowledged majority write across random partitions") {
    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
      CAPTURE(seed);
      std::mt19937 rng(seed);
      VirtualCluster<Map> cluster(5);
      for (ReplicaId id = 1; id <= 5; ++id) cluster[id].set_membership(5);
      std::array<int, 6> side{};  // by id; replicas on different sides cannot talk
      cluster.transport().set_cut([&side](PeerId a, PeerId b) { return side[a] != side[b]; });
      cluster.run_for(1s);
      std::set<std::string> acknowledged;
      int reads = 0, writes = 0, refused = 0;
      for (int step = 0; step < 40; ++step) {
        const int action = static_cast<int>(rng() % 10);
        if (action == 0) {
          for (ReplicaId id = 1; id <= 5; ++id) side[id] = static_cast<int>(rng() % 2);
        } else if (action == 1) {
          side.fill(0);  // healed
        }
        const ReplicaId at = static_cast<ReplicaId>(1 + rng() % 5);
        int with_it = 0;
        for (ReplicaId id = 1; id <= 5; ++id) with_it += side[id] == side[at] ? 1 : 0;
        const bool majority_side = with_it >= 3;
        if (action % 2 == 0) {
          const std::string key = "k" + std::to_string(step);
          try {
            (void)cluster.wait(
                cluster[at].put(key, std::string("v"), WriteConcern::majority(2s)));
            acknowledged.insert(key);
            ++writes;
            CHECK(majority_side);
          } catch (const WriteConcernTimeout&) {
            ++refused;
            CHECK_FALSE(majority_side);
          }
        } else {
          const std::set<std::string> expected = acknowledged;
          try {
            const auto keys = cluster.wait(cluster[at].read(
                [](const Map& m) {
                  std::set<std::string> out;
                  m.for_each([&](const std::string& k, const std::string&) { out.insert(k); });
                  return out;
                },
                ReadConcern::majority(2s)));
            ++reads;
            CHECK(majority_side);
            for (const std::string& k : expected) CHECK_MESSAGE(keys.contains(k), k);
          } catch (const ReadConcernTimeout&) {
            ++refused;
            CHECK_FALSE(majority_side);
          }
        }
        cluster.run_for(std::chrono::milliseconds(rng() % 50));
      }
      CHECK(writes > 0);
      CHECK(reads > 0);
    }
  }

  TEST_CASE("a read concern works for types without keys, by whole-state catch-up") {
    VirtualCluster<PNCounter> cluster;
    ReplicaOptions<PNCounter> slow;
    slow.sync.sync_interval = 10s;
    auto& a = cluster.add(1);
    auto& b = cluster.add(2, slow);
    auto& c = cluster.add(3);
    a.set_neighbours({2});
    b.set_neighbours({1, 3});
    c.set_neighbours({1, 2});
    cluster.run_for(1s);
    const ReplicaId id = a.id();
    (void)cluster.wait(a.mutate([id](PNCounter& x) { return x.increment(id, 5); },
                                WriteConcern::acked(1)));
    const auto value = [](const PNCounter& x) { return x.value(); };
    CHECK(cluster.wait(c.read(value)) == 0);
    CHECK(cluster.wait(c.read(value, ReadConcern::majority())) == 5);
  }
}
