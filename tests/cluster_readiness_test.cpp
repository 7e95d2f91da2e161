// Readiness (ReadinessOptions, Replica::readiness, Replica::when_ready): a replica that
// starts holding nothing is not ready until a peer has caught it up, it finds itself alone,
// or it gives up waiting; one that starts with a state is ready at once. Run in virtual time.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "cluster/virtual_cluster.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/hlc.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

TEST_SUITE("cluster.readiness") {
  TEST_CASE("a replica holding nothing and hearing of no peer is ready, alone, after alone_after") {
    VirtualCluster<Map> cluster;
    Replica<Map>& r = cluster.add(1);
    Future<ReadyState> ready = r.when_ready();
    cluster.run_for(2900ms);
    CHECK(cluster.wait(r.readiness()) == ReadyState::waiting);
    CHECK(ready.wait_for(0s) != std::future_status::ready);
    cluster.run_for(200ms);
    CHECK(cluster.wait(std::move(ready)) == ReadyState::alone);
    // Writes and reads were served all along; a later wait completes at once.
    cluster.wait(r.put(std::string("k"), std::string("v")));
    CHECK(cluster.wait(r.when_ready()) == ReadyState::alone);
  }

  TEST_CASE("a replica that starts with a state is ready at once") {
    Map start;
    HybridClock hlc;
    (void)start.put(9, "k", "v", hlc.now(1));
    VirtualCluster<Map> cluster;
    Replica<Map>& r = cluster.add(1, {}, start);
    CHECK(cluster.wait(r.readiness()) == ReadyState::recovered);
  }

  TEST_CASE("await_catch_up = false: ready at once, holding nothing") {
    ReplicaOptions<Map> o;
    o.readiness.await_catch_up = false;
    VirtualCluster<Map> cluster;
    CHECK(cluster.wait(cluster.add(1, o).readiness()) == ReadyState::immediate);
  }

  TEST_CASE("a new replica with a neighbour is ready once the neighbour's catch-up completes") {
    VirtualCluster<Map> cluster(1);
    Replica<Map>& a = cluster[1];
    for (int i = 0; i < 500; ++i) cluster.wait(a.put("k" + std::to_string(i), std::string("v")));
    Replica<Map>& b = cluster.add(2);
    Future<ReadyState> ready = b.when_ready();
    cluster.mesh();
    CHECK(cluster.wait(std::move(ready), 2s) == ReadyState::caught_up);
    // Ready means it holds what the peer held when the catch-up began: no read of a key
    // written before it started answers "not found".
    CHECK(cluster.wait(b.read([](const Map& m) { return m.size(); })) == 500);
    CHECK(cluster.now() < 2500ms);  // well before alone_after would have made it ready
  }

  TEST_CASE("a replica that hears of peers but is never caught up waits until give_up_after") {
    ReplicaOptions<Map> o;
    o.readiness.give_up_after = 10s;
    VirtualCluster<Map> cluster;
    Replica<Map>& a = cluster.add(1);
    Replica<Map>& b = cluster.add(2, o);
    b.set_neighbours({1});  // b pushes to a; a does not push to b
    (void)a;
    cluster.run_for(9s);
    CHECK(cluster.wait(b.readiness()) == ReadyState::waiting);  // not alone: it has a peer
    cluster.run_for(1100ms);
    CHECK(cluster.wait(b.readiness()) == ReadyState::waited_out);
  }
}
