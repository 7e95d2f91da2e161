// Targeted protocol scenarios on the simulated network: catch-up after a long absence,
// a new replica joining a large one, unidirectional links, long lines, message bounds,
// bytes on the wire, and a replica that lost its state returning under a new id.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cluster/sim_network.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/orset.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

namespace {

std::string key(std::size_t i) { return "key-" + std::to_string(i); }

void put(SimNetwork<Map>& net, ReplicaId at, std::size_t i, const std::string& value = "v") {
  net.mutate(at,
             [&](Map& m) { return m.put(at, key(i), value, HlcTimestamp{net.now().count() + i}); });
}

}  // namespace

TEST_SUITE("cluster.scenarios") {
  TEST_CASE("a neighbour offline longer than the buffer holds catches up fully") {
    SyncOptions opts;
    opts.max_buffer_bytes = 4 * 1024;  // far less than what is written while B is away
    SimNetwork<Map> net(1, opts);
    net.add_replica(1, {2});
    net.add_replica(2, {1});
    for (std::size_t i = 0; i < 50; ++i) put(net, 1, i);
    net.run_for(1s);
    REQUIRE(net.converged());
    net.crash(2, /*keep_durable=*/true);
    for (std::size_t i = 0; i < 2000; ++i) put(net, 1, i, "second");
    net.run_for(1s);
    CHECK(net.replica(1).metrics().buffer_bytes <= opts.max_buffer_bytes);
    net.restart(2);
    net.run_for(5s);
    CHECK(net.converged());
    CHECK(net.replica(2).state() == net.everything_written());
    CHECK(net.replica(1).metrics().catchup_rounds >= 2);  // the buffer could not serve it
  }

  TEST_CASE("a new replica joins a 100k-key replica") {
    SyncOptions opts;
    SimNetwork<Map> net(2, opts);
    net.add_replica(1, {});
    for (std::size_t i = 0; i < 100000; ++i) put(net, 1, i);
    net.run_for(1s);
    net.add_replica(2, {1});
    net.set_neighbours(1, {2});
    net.run_for(10s);
    CHECK(net.replica(2).state().size() == 100000);
    CHECK(net.converged());
    // Chunked by bytes: no message exceeds the limit plus the message header.
    CHECK(net.largest_message() <= opts.max_sync_bytes + 64);
  }

  TEST_CASE("unidirectional neighbours: data flows only along the arrows") {
    SimNetwork<Map> net(3, SyncOptions{});
    net.add_replica(1, {2});  // 1 -> 2
    net.add_replica(2, {});   // 2 sends to nobody
    put(net, 1, 1);
    put(net, 2, 2);
    net.run_for(2s);
    CHECK(net.replica(2).state().contains(key(1)));
    CHECK(net.replica(2).state().contains(key(2)));
    CHECK_FALSE(net.replica(1).state().contains(key(2)));
  }

  TEST_CASE("a line of 10 replicas converges end to end under loss") {
    SimFaults faults;
    faults.drop = 0.2;
    faults.duplicate = 0.1;
    faults.max_delay = 30ms;
    SimNetwork<Map> net(4, SyncOptions{}, faults);
    for (ReplicaId r = 1; r <= 10; ++r) {
      std::vector<ReplicaId> peers;
      if (r > 1) peers.push_back(r - 1);
      if (r < 10) peers.push_back(r + 1);
      net.add_replica(r, peers);
    }
    for (std::size_t i = 0; i < 200; ++i) put(net, 1 + i % 10, i);
    net.run_for(2s);
    net.set_faults(SimFaults{});
    net.run_for(10s);
    CHECK(net.converged());
    CHECK(net.replica(10).state() == net.everything_written());
    CHECK(net.replica(10).state().size() == 200);
  }

  TEST_CASE("with 100k keys in sync, one put crosses in one small message") {
    SimNetwork<Map> net(5, SyncOptions{});
    net.add_replica(1, {2});
    net.add_replica(2, {1});
    for (std::size_t i = 0; i < 100000; ++i) put(net, 1, i);
    net.run_for(5s);
    REQUIRE(net.converged());
    const auto msgs = net.messages_sent(), bytes = net.bytes_sent();
    put(net, 1, 7, "changed");
    net.run_for(50ms);  // less than one sync interval: the debounced push carries it
    CHECK(*net.replica(2).state().find(key(7)) == "changed");
    const auto put_msgs = net.messages_sent() - msgs, put_bytes = net.bytes_sent() - bytes;
    MESSAGE("one put against 100k keys: ", put_msgs, " messages (delta + ack), ", put_bytes,
            " bytes");
    CHECK(put_msgs == 2);
    CHECK(put_bytes < 300);
  }

  TEST_CASE("a replica that lost its state returns under a new id and catches up") {
    SimNetwork<Map> net(6, SyncOptions{});
    net.add_replica(1, {2});
    net.add_replica(2, {1});
    for (std::size_t i = 0; i < 100; ++i) put(net, 1 + i % 2, i);
    net.run_for(2s);
    REQUIRE(net.converged());
    net.crash(2, /*keep_durable=*/false);
    net.add_replica(3, {1});  // the same machine, a fresh identity
    net.set_neighbours(1, {3});
    put(net, 3, 1000);
    net.run_for(3s);
    CHECK(net.replica(3).state().size() == 101);
    CHECK(net.replica(1).state() == net.replica(3).state());
  }

  TEST_CASE("local writes between two pushes share one buffer slot, bounded by max_sync_bytes") {
    SyncOptions options;
    options.max_sync_bytes = 4096;
    ReplicaCore<Map> core(1, options);
    core.set_neighbours({2});
    const auto put_at = [&](std::size_t i) {
      return core.mutate(Time{},
                         [&](Map& m) { return m.put(1, key(i), "v", HlcTimestamp{i + 1}); });
    };
    // Nothing has read seq() yet: every write joins the first slot.
    for (std::size_t i = 0; i < 20; ++i) CHECK(put_at(i) == 0);
    CHECK(core.seq() == 1);
    CHECK(core.metrics().buffer_entries == 1);
    // The slot is kept within one message: enough writes open further slots.
    std::uint64_t last = 0;
    for (std::size_t i = 20; i < 200; ++i) last = put_at(i);
    const std::uint64_t slots = core.seq();
    CHECK(slots > 2);
    CHECK(last == slots - 1);
    CHECK(core.metrics().buffer_entries == slots);
    // A push seals the tail: the next write takes a new slot, and a neighbour that
    // acknowledges the push has everything before it.
    core.tick(options.push_debounce);
    std::vector<ReplicaCore<Map>::Outgoing> out = core.take_outbox();  // a state transfer to 2
    REQUIRE_FALSE(out.empty());
    for (const auto& o : out) CHECK(payload_size(o.msg) <= options.max_sync_bytes);
    CHECK(put_at(1000) == slots);
    CHECK(core.seq() == slots + 1);
    // A remote delta takes its own slot; a local write after it does not join it.
    Map other;
    const DeltaBatch d{0, 1, encode(other.put(3, "remote", "r", HlcTimestamp{5}))};
    core.set_neighbours({2, 3});
    core.receive(Time{}, 3, d);
    CHECK(core.seq() == slots + 2);
    CHECK(put_at(1001) == slots + 2);
    CHECK(core.seq() == slots + 3);
  }

  TEST_CASE(
      "a corrupt delta is rejected, counted and not acknowledged; the replica keeps serving") {
    ReplicaCore<Map> core(1);
    DeltaBatch bad{0, 1, "definitely not an encoded map"};
    core.receive(Time{}, 2, bad);
    CHECK(core.metrics().payloads_rejected == 1);
    CHECK(core.take_outbox().empty());  // no ack: the sender will retransmit
    Map other;
    DeltaBatch good = bad;
    good.payload = encode(other.put(2, "k", "v", HlcTimestamp{1}));
    core.receive(Time{}, 2, good);
    CHECK(core.state().contains("k"));
    CHECK(core.take_outbox().size() == 1);  // the ack
  }

  TEST_CASE("an idle cluster is quiet: nothing empty is kept, forwarded or sent round") {
    // Three replicas that hold nothing, each pushing to both others; an empty delta (what
    // a replica holding nothing may send) arrives at one. Kept and forwarded, it would go
    // round the cycle 1 -> 2 -> 3 -> 1 for ever; once the first exchanges are over, no
    // message should be sent at all.
    SimNetwork<Map> net(7, SyncOptions{});
    net.add_replica(1, {2, 3});
    net.add_replica(2, {1, 3});
    net.add_replica(3, {1, 2});
    net.run_for(2s);
    net.inject(9, 2, DeltaBatch{0, 1, encode(Map{})});
    net.mutate(1, [](Map&) { return Map{}; });  // a write that changes nothing
    net.run_for(2s);
    const std::uint64_t settled = net.messages_sent();
    net.run_for(20s);
    CHECK(net.messages_sent() == settled);
    CHECK(net.replica(2).metrics().deltas_sent == 0);
  }
}
