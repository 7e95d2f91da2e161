// Hostile and absurd input to the replication protocol, on the simulated network: a delta
// whose context claims 2^62 dots, a claim on a replica's own counters, and state transfers
// that are too large or never finish. Each must leave the replicas converging and serving,
// in bounded (virtual and real) time.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "cluster/sim_network.hpp"
#include "crdt/awlww_map.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

namespace {

void put(SimNetwork<Map>& net, ReplicaId at, const std::string& key) {
  net.mutate(at, [&](Map& m) {
    return m.put(at, key, "v", HlcTimestamp{static_cast<std::uint64_t>(net.now().count())});
  });
}

// An AWLWWMap delta with no entries whose context claims dots 1..top of `replica`.
Map claim(ReplicaId replica, std::uint64_t top) {
  CausalContext c;
  c.insert_range(replica, 1, top);
  return Map{}.context_delta(c);
}

SyncMessage delta_message(const Map& d, std::uint64_t seq) {
  return DeltaBatch{seq, seq + 1, encode(d)};
}

}  // namespace

TEST_SUITE("cluster.hostile") {
  // DeltaCrdt-style wedge: the claim used to be enumerated dot by dot on every replica it
  // reached (novel part, catch-up's context delta), for ever, surviving restarts.
  TEST_CASE("a delta claiming 2^62 dots spreads harmlessly and writes keep flowing") {
    SyncOptions opts;
    opts.digest_min_entries = 0;  // catch-ups by digests, which join the sender's context
    SimNetwork<Map> net(7, opts);
    net.add_replica(1, {2, 3});
    net.add_replica(2, {1, 3});
    net.add_replica(3, {1, 2});
    for (int i = 0; i < 20; ++i) put(net, 1 + i % 3, "k" + std::to_string(i));
    net.run_for(1s);
    REQUIRE(net.converged());
    const Map hostile = claim(0xEE, kMaxDotCounter);
    REQUIRE(encode(hostile).size() == 57);
    net.inject(0xBAD, 2, delta_message(hostile, 0));
    for (int i = 0; i < 20; ++i) put(net, 1 + i % 3, "after" + std::to_string(i));
    net.run_for(1s);
    Map expected = net.everything_written();
    expected.join(hostile);
    for (ReplicaId r = 1; r <= 3; ++r) {
      CAPTURE(r);
      CHECK(net.replica(r).state() == expected);
    }
    // A replica that restarts from its log replays the claim, and catches up by digests
    // with the others, whose contexts hold it too.
    net.crash(3, /*keep_durable=*/true);
    put(net, 1, "while-3-was-down");
    net.restart(3);
    net.run_for(2s);
    expected = net.everything_written();
    expected.join(hostile);
    CHECK(net.replica(3).state() == expected);
    CHECK(net.converged());
  }

  TEST_CASE("a claim that reaches a replica holding nothing is kept, logged and passed on") {
    SimNetwork<Map> net(8, SyncOptions{});
    net.add_replica(1, {2});
    net.add_replica(2, {1});
    net.inject(0xBAD, 1, delta_message(claim(0xEE, kMaxDotCounter), 0));
    net.run_for(500ms);
    net.crash(1, /*keep_durable=*/true);
    net.restart(1);
    for (int i = 0; i < 10; ++i) put(net, 1 + i % 2, "k" + std::to_string(i));
    net.run_for(1s);
    CHECK(net.converged());
    CHECK(net.replica(2).state().contains("k0"));
    CHECK(net.replica(1).state().contains("k1"));
    CHECK(net.replica(2).state().context().max_contiguous(0xEE) == kMaxDotCounter);
  }

  // A claim on replica 1's own counters can exhaust them, but never wrap them: its next
  // dots are the ones past the claim, and at the bound its writes fail loudly (it must take
  // a new id) while the others replicate as before.
  TEST_CASE("a claim on a replica's own counters never makes it reuse or wrap a dot") {
    SimNetwork<Map> net(9, SyncOptions{});
    net.add_replica(1, {2});
    net.add_replica(2, {1});
    put(net, 1, "before");
    net.run_for(200ms);
    net.inject(0xBAD, 2, delta_message(claim(1, kMaxDotCounter - 1), 0));
    net.run_for(500ms);
    REQUIRE(net.replica(1).state().context().max_contiguous(1) == kMaxDotCounter - 1);
    put(net, 1, "last");  // the last dot there is
    CHECK(net.replica(1).state().find_slot("last")->dot.counter == kMaxDotCounter);
    CHECK_THROWS_AS(put(net, 1, "one-too-many"), std::overflow_error);
    put(net, 2, "from-2");
    net.run_for(500ms);
    CHECK(net.converged());
    CHECK(net.replica(2).state().contains("last"));
    CHECK(net.replica(1).state().contains("from-2"));
    CHECK_FALSE(net.replica(1).state().contains("one-too-many"));
  }

  TEST_CASE("an incoming state transfer beyond the byte bound is dropped, not buffered") {
    SyncOptions opts;
    opts.max_incoming_transfer_bytes = 64 * 1024;
    SimNetwork<Map> net(10, opts);
    net.add_replica(1, {});
    StateChunk chunk;
    chunk.transfer = 42;
    chunk.chunks = 1000;  // declares 1000 chunks of 16 KiB
    chunk.bytes = std::string(16 * 1024, 'x');
    for (std::uint64_t i = 0; i < 8; ++i) {
      chunk.index = i;
      net.inject(0xBAD, 1, chunk);
    }
    chunk.chunks = std::uint64_t{1} << 62;  // a count no byte bound allows
    chunk.transfer = 43;
    chunk.index = 0;
    net.inject(0xBAD2, 1, chunk);
    net.run_for(100ms);
    const SyncMetrics m = net.replica(1).metrics();
    CHECK(m.transfers_dropped >= 1);
    CHECK(m.payloads_rejected >= 1);
    // The replica still takes an honest neighbour's whole state.
    net.add_replica(2, {1});
    for (int i = 0; i < 50; ++i) put(net, 2, "k" + std::to_string(i));
    net.run_for(3s);
    CHECK(net.replica(1).state() == net.replica(2).state());
  }

  TEST_CASE("an incoming state transfer whose sender goes silent is forgotten") {
    SimNetwork<Map> net(11, SyncOptions{});
    net.add_replica(1, {});
    StateChunk chunk;
    chunk.transfer = 7;
    chunk.chunks = 4;
    chunk.bytes = "partial";
    net.inject(0xBAD, 1, chunk);
    net.run_for(1s);
    CHECK(net.replica(1).metrics().transfers_dropped == 0);  // still arriving, as far as it knows
    net.run_for(10s);
    CHECK(net.replica(1).metrics().transfers_dropped == 1);
  }
}
