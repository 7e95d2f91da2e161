// Digest catch-up (cluster/digest_catchup.hpp): what it sends, and the races it must close.
// Cores are wired by hand here, so a test decides exactly which message arrives when.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "cluster/replica_core.hpp"
#include "cluster/sim_network.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/causal_counter.hpp"
#include "crdt/ormap.hpp"
#include "crdt/orset.hpp"
#include "fuzz/sync_input.hpp"
#include "tests/property.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;
using Core = ReplicaCore<Map>;

namespace {

std::string key(std::size_t i) { return "key-" + std::to_string(i); }

Map keys(ReplicaId writer, std::size_t n) {
  Map m;
  for (std::size_t i = 0; i < n; ++i) (void)m.put(writer, key(i), "v", HlcTimestamp{i + 1});
  return m;
}

// Two cores joined by a lossless wire. `hold` keeps back the messages of one kind from a
// to b until released, so a test can act in between.
struct Wire {
  Wire(Core& from, Core& to) : a(from), b(to) {}
  Core& a;
  Core& b;
  Time now{};
  std::vector<SyncMessage> held;
  std::uint64_t bytes = 0;

  void run(SyncKind hold_kind, bool hold) {
    for (int round = 0; round < 10000; ++round) {
      bool moved = false;
      for (auto& out : a.take_outbox()) {
        bytes += wire_size(out.msg);
        if (hold && kind_of(out.msg) == hold_kind) {
          held.push_back(out.msg);
        } else {
          b.receive(now, a.id(), out.msg);
        }
        moved = true;
      }
      for (auto& out : b.take_outbox()) {
        bytes += wire_size(out.msg);
        if (out.to == a.id()) a.receive(now, b.id(), out.msg);
        moved = true;
      }
      if (!moved) return;
    }
    FAIL("the exchange did not settle");
  }
  void release() {
    for (auto& m : std::exchange(held, {})) b.receive(now, a.id(), m);
  }
};

}  // namespace

TEST_SUITE("cluster.catchup") {
  // The race of docs/protocol.md: a bucket compares equal, then a third replica delivers an
  // old slot of a key the sender has removed, before the sender's context is joined. The
  // receiver must ask for that key again, or the removal could never reach it.
  TEST_CASE("a stale slot arriving during a digest catch-up does not survive the removal") {
    SyncOptions opts;
    opts.digest_min_entries = 0;
    const Map base = keys(9, 200);
    Map with_victim = base;
    const Map victim = with_victim.put(9, "victim", "old", HlcTimestamp{1000});
    Map sender_state = with_victim;
    (void)sender_state.remove("victim");  // the sender saw the put and removed the key

    Core sender(1, opts, sender_state);
    Core receiver(2, opts, base);  // never saw the put
    sender.set_neighbours({2});
    sender.tick(Time{});
    Wire wire(sender, receiver);
    wire.run(SyncKind::digest_done, true);
    REQUIRE(wire.held.size() == 1);  // every differing range sent, context not yet joined

    // A third replica, which saw the put but not the removal, passes the slot on now.
    const DeltaBatch stale{0, 1, encode(victim)};
    receiver.receive(Time{}, 3, stale);
    REQUIRE(receiver.state().find("victim") != nullptr);

    wire.release();
    wire.run(SyncKind::digest_done, false);
    CHECK(receiver.state().find("victim") == nullptr);
    Map expected = sender_state;
    expected.join(victim);
    CHECK(receiver.state() == expected);
    CHECK(sender.metrics().digest_catchups == 1);
    CHECK(receiver.metrics().catchups_completed == 1);
    CHECK(sender.acked_by(2) == sender.seq());
  }

  TEST_CASE("a receiver holding nothing gets the whole state, not digests") {
    SyncOptions opts;
    opts.digest_min_entries = 0;
    Core sender(1, opts, keys(1, 300));
    Core receiver(2, opts);
    sender.set_neighbours({2});
    sender.tick(Time{});
    Wire wire(sender, receiver);
    wire.run(SyncKind::delta, false);
    CHECK(receiver.state() == sender.state());
    CHECK(sender.metrics().catchup_rounds == 2);  // the probe, then the whole state
  }

  TEST_CASE("keys the receiver holds and the sender removed are removed, others kept") {
    SyncOptions opts;
    opts.digest_min_entries = 0;
    Map shared = keys(9, 500);
    Map receiver_state = shared;
    Map sender_state = shared;
    for (std::size_t i = 0; i < 500; i += 50) (void)sender_state.remove(key(i));
    (void)sender_state.put(1, "new-at-sender", "x", HlcTimestamp{5000});
    (void)receiver_state.put(2, "new-at-receiver", "y", HlcTimestamp{5000});
    Core sender(1, opts, sender_state);
    Core receiver(2, opts, receiver_state);
    sender.set_neighbours({2});
    sender.tick(Time{});
    Wire wire(sender, receiver);
    wire.run(SyncKind::delta, false);
    Map expected = receiver_state;
    expected.join(sender_state);
    CHECK(receiver.state() == expected);
    CHECK(receiver.state().find("new-at-receiver") != nullptr);
    CHECK(receiver.state().find(key(50)) == nullptr);
    CHECK(receiver.metrics().catchups_completed == 1);
  }
}

// Delivers messages among `cores` until none moves, except those to or from a core listed
// in `cut` (dropped: that peer is slow, its catch-up stays in flight).
void exchange(std::vector<Core*> cores, const std::vector<ReplicaId>& cut, Time now) {
  const auto is_cut = [&](ReplicaId id) { return std::find(cut.begin(), cut.end(), id) != cut.end(); };
  for (int round = 0; round < 10000; ++round) {
    bool moved = false;
    for (Core* from : cores) {
      for (auto& out : from->take_outbox()) {
        moved = true;
        if (is_cut(out.to) || is_cut(from->id())) continue;
        for (Core* to : cores)
          if (to->id() == out.to) to->receive(now, from->id(), out.msg);
      }
    }
    if (!moved) return;
  }
  FAIL("the exchange did not settle");
}

// A replica whose only neighbour is the sender of a delta joins it without buffering it (no
// one else would be sent it) and without a new sequence number; a neighbour added later is
// caught up from the state. That catch-up must not reuse a snapshot of the state taken before
// the delta - one still held by a catch-up in flight towards the sender - or the new
// neighbour would be told it is current while it lacks the delta, and never be sent it.
TEST_CASE("a delta joined unbuffered reaches a neighbour added later, by state or by digests") {
  for (const bool digests : {false, true}) {
    CAPTURE(digests);
    SyncOptions opts;
    opts.digest_min_entries = digests ? 0 : 1u << 30;
    const Map base = keys(9, 100);
    Core a(1, opts, base);
    Core b(2, opts, keys(2, 100));
    Core c(3, opts, keys(2, 100));  // as b before the delta: by digests, all ranges equal
    b.set_neighbours({1});
    b.tick(Time{});
    // b's catch-up of a gets as far as b taking its snapshot, then a goes quiet.
    if (digests) {
      // The offer reaches a, a's answer reaches b (which snapshots its digests then); the
      // ranges b sends in reply are lost.
      for (auto& out : b.take_outbox()) a.receive(Time{}, 2, out.msg);
      for (auto& out : a.take_outbox()) b.receive(Time{}, 1, out.msg);
      REQUIRE(b.metrics().digest_catchups == 1);
      b.take_outbox();
    } else {
      b.take_outbox();  // the whole state's chunks are lost; the transfer waits for acks
    }
    REQUIRE(b.metrics().catchups_completed == 0);

    Map delta;
    (void)delta.put(1, "from-a", "v", HlcTimestamp{7});
    b.receive(Time{}, 1, DeltaBatch{0, 1, encode(delta)});
    REQUIRE(b.state().find("from-a") != nullptr);

    b.set_neighbours({1, 3});
    b.tick(Time{} + opts.sync_interval);
    exchange({&a, &b, &c}, {1}, Time{} + opts.sync_interval);
    CHECK(b.acked_by(3) == b.seq());
    CHECK(c.state().find("from-a") != nullptr);
    CHECK(c.state().size() == 101);
  }
}

// Bytes on the wire: a replica that missed 1% of the updates to 100k keys while partitioned
// away, long enough for the sender's delta buffer to drop them, is caught up by digests. It must
// cost a small multiple of what it missed, not the state.
TEST_CASE("a replica that missed 1% of updates catches up with a small multiple of that 1%") {
  SyncOptions opts;
  opts.max_buffer_bytes = 16 * 1024;  // the missed updates do not fit: catch-up is needed
  SimNetwork<Map> net(5, opts);
  net.add_replica(1, {2});
  net.add_replica(2, {1});
  constexpr std::size_t kKeys = 100000;
  for (std::size_t i = 0; i < kKeys; ++i) {
    net.mutate(1, [&](Map& m) { return m.put(1, key(i), "v", HlcTimestamp{i + 1}); });
  }
  net.run_for(2s);
  REQUIRE(net.converged());
  const std::uint64_t whole_state = encode(net.replica(1).state()).size();

  net.partition({{1}, {2}});
  Map missed;
  for (std::size_t i = 0; i < kKeys / 100; ++i) {
    const std::size_t k = (i * 7919) % kKeys;  // spread over the key space
    net.mutate(1, [&](Map& m) {
      Map d = m.put(1, key(k), "updated", HlcTimestamp{kKeys + i + 1});
      missed.join(d);
      return d;
    });
  }
  net.run_for(1s);
  const std::uint64_t missed_bytes = encode(missed).size();
  const std::uint64_t before = net.bytes_sent();
  const std::uint64_t receiver_rounds = net.replica(2).metrics().catchup_rounds;
  const std::uint64_t digests_before = net.bytes_sent(SyncKind::digest_offer);
  net.heal();
  net.run_for(3s);
  REQUIRE(net.converged());
  const std::uint64_t catchup_bytes = net.bytes_sent() - before;
  const double ratio = static_cast<double>(catchup_bytes) / static_cast<double>(missed_bytes);
  std::printf(
      "missed 1%%: %llu bytes of deltas; catch-up sent %llu bytes both ways (%.2fx, digests %llu); "
      "whole state %llu bytes\n",
      static_cast<unsigned long long>(missed_bytes), static_cast<unsigned long long>(catchup_bytes),
      ratio,
      static_cast<unsigned long long>(net.bytes_sent(SyncKind::digest_offer) -
                                      digests_before),
      static_cast<unsigned long long>(whole_state));
  CHECK(net.replica(1).metrics().digest_catchups >= 1);
  CHECK(ratio < 4.0);
  // The receiver joined chunks larger than its delta buffer: that must not send it into a
  // catch-up of its own towards the sender.
  CHECK(net.replica(2).metrics().catchup_rounds == receiver_rounds);
  CHECK(catchup_bytes * 10 < whole_state);
}

TEST_CASE("a new replica takes one whole state at a time; the other sender catches up by digest") {
  SyncOptions opts;
  opts.max_sync_bytes = 16 * 1024;  // many chunks: the two transfers overlap
  SimNetwork<Map> net(11, opts);
  net.add_replica(1, {2});
  net.add_replica(2, {1});
  constexpr std::size_t kKeys = 20000;
  for (std::size_t i = 0; i < kKeys; ++i) {
    net.mutate(1 + i % 2,
               [&](Map& m) { return m.put(1 + i % 2, key(i), "v", HlcTimestamp{i + 1}); });
  }
  net.run_for(2s);
  REQUIRE(net.converged());
  const std::uint64_t whole_state = encode(net.replica(1).state()).size();
  const std::uint64_t chunks_before = net.bytes_sent(SyncKind::state_chunk);

  net.add_replica(3, {1, 2});  // both hold everything and both greet the newcomer
  net.set_neighbours(1, {2, 3});
  net.set_neighbours(2, {1, 3});
  net.run_for(5s);
  REQUIRE(net.converged());
  CHECK(net.replica(3).state().size() == kKeys);
  const std::uint64_t chunk_bytes = net.bytes_sent(SyncKind::state_chunk) - chunks_before;
  std::printf("new replica: %llu bytes of state chunks for a %llu-byte state, %llu declined\n",
              static_cast<unsigned long long>(chunk_bytes),
              static_cast<unsigned long long>(whole_state),
              static_cast<unsigned long long>(net.replica(3).metrics().catchups_declined));
  // One whole state, plus the declined transfer's first window and some retransmissions;
  // not two whole states.
  CHECK(net.replica(3).metrics().catchups_declined >= 1);
  CHECK(chunk_bytes < whole_state + whole_state / 2);
  // The sender that was declined (or never started) finished by digest.
  CHECK(net.replica(1).metrics().digest_catchups + net.replica(2).metrics().digest_catchups >= 2);
  // Writes after the catch-up still flow from both.
  net.mutate(1, [&](Map& m) { return m.put(1, "after-1", "v", HlcTimestamp{kKeys + 10}); });
  net.mutate(2, [&](Map& m) { return m.put(2, "after-2", "v", HlcTimestamp{kKeys + 11}); });
  net.run_for(1s);
  CHECK(net.converged());
  CHECK(net.replica(3).state().size() == kKeys + 2);
}

// The same catch-up for the keyed causal types: a set and a map of counters. Writes go
// through `write(x, self, i, round)`, which returns the delta of writing entry i.
template <class T, class Write>
void missed_one_percent_keyed(Write write) {
  SyncOptions opts;
  opts.max_buffer_bytes = 16 * 1024;  // the missed updates do not fit: catch-up is needed
  SimNetwork<T> net(7, opts);
  net.add_replica(1, {2});
  net.add_replica(2, {1});
  constexpr std::size_t kEntries = 20000;
  for (std::size_t i = 0; i < kEntries; ++i) net.mutate(1, [&](T& x) { return write(x, 1, i, 0); });
  net.run_for(2s);
  REQUIRE(net.converged());
  const std::uint64_t whole_state = encode(net.replica(1).state()).size();

  net.partition({{1}, {2}});
  T missed;
  for (std::size_t i = 0; i < kEntries / 100; ++i) {
    const std::size_t k = (i * 7919) % kEntries;
    net.mutate(1, [&](T& x) {
      T d = write(x, 1, k, 1);
      missed.join(d);
      return d;
    });
  }
  net.run_for(1s);
  const std::uint64_t before = net.bytes_sent();
  net.heal();
  net.run_for(3s);
  REQUIRE(net.converged());
  CHECK(net.replica(2).state() == net.everything_written());
  const std::uint64_t catchup_bytes = net.bytes_sent() - before;
  std::printf("%s, missed 1%%: %llu bytes of deltas; catch-up %llu bytes; whole state %llu\n",
              T::kTypeTag == TypeTag::or_set ? "ORSet" : "ORMap",
              static_cast<unsigned long long>(encode(missed).size()),
              static_cast<unsigned long long>(catchup_bytes),
              static_cast<unsigned long long>(whole_state));
  CHECK(net.replica(1).metrics().digest_catchups >= 1);
  CHECK(catchup_bytes * 5 < whole_state);
}

TEST_CASE("an ORSet or ORMap replica that missed 1% is caught up by digests, not whole") {
  SUBCASE("ORSet: the missed updates remove and re-add elements") {
    missed_one_percent_keyed<ORSet<std::string>>(
        [](ORSet<std::string>& s, ReplicaId self, std::size_t i, int round) {
          if (round == 0) return s.add(self, key(i));
          ORSet<std::string> d = s.remove(key(i));
          if (i % 2 == 0) d.join(s.add(self, key(i) + "-again"));
          return d;
        });
  }
  SUBCASE("ORMap of counters: the missed updates increment and remove") {
    using Counters = ORMap<std::string, CausalCounter>;
    missed_one_percent_keyed<Counters>([](Counters& m, ReplicaId self, std::size_t i, int round) {
      if (round == 1 && i % 3 == 0) return m.remove(key(i));
      return m.update(key(i), [&](CausalCounter::Ref& c) { return c.increment(self, 1 + round); });
    });
  }
}

// Hostile or corrupted catch-up messages: every kind, random fields, truncated and random
// payloads. The core must neither crash nor change its state, and must keep serving.
TEST_CASE("random catch-up messages are rejected without harm") {
  deltacrdt::testing::for_each_case(4, [](deltacrdt::testing::PropertyRng& rng) {
    SyncOptions opts;
    opts.digest_min_entries = 0;
    Core a(1, opts, keys(1, 50));
    const Map before = a.state();
    a.set_neighbours({2});
    a.tick(Time{});
    (void)a.take_outbox();
    for (int i = 0; i < 20; ++i) {
      // The kind's fixed fields from four numbers, in declaration order (fuzz/sync_input.hpp).
      fuzz::MessageFields f;
      f.kind = static_cast<std::uint8_t>(1 + rng.below(kLastSyncKind));
      f.n[0] = rng.chance(0.5) ? rng.below(3) : rng.engine()();
      f.n[1] = rng.chance(0.5) ? rng.below(4) : rng.engine()();
      f.n[2] = rng.chance(0.5) ? rng.below(70) : rng.engine()();
      f.n[3] = rng.below(10);
      const std::size_t n = rng.below(200);
      for (std::size_t j = 0; j < n; ++j) f.payload.push_back(static_cast<char>(rng.below(256)));
      if (rng.chance(0.3)) {
        // A plausible prefix: small counts, so parsing goes deeper before failing.
        detail::ByteWriter w;
        w.u64(rng.below(3));
        w.u64(rng.below(3));
        w.u64(rng.below(3));
        f.payload = w.take() + f.payload;
      }
      a.receive(Time{}, 2, fuzz::message_from(std::move(f)));
      a.tick(Time(std::chrono::milliseconds(i * 100)));
      (void)a.take_outbox();
    }
    // Nothing these messages carried was a valid delta: the state is unchanged.
    REQUIRE(a.state() == before);
  });
}
