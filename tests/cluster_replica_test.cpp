// Replica<T>: convergence through a LocalTransport, on_diffs notifications, write concerns
// and errors from user code, run deterministically in virtual time (VirtualCluster); and
// on real threads, writes from many threads and change notifications under a race.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/local_cluster.hpp"
#include "cluster/replica_asio.hpp"
#include "cluster/virtual_cluster.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/pncounter.hpp"
#include "tests/test_support.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

using deltacrdt::testing::eventually;
using deltacrdt::testing::free_port;

namespace {

// A MemoryStorage whose sync() can be slowed down or made to fail, counting its calls.
class FlakyStorage final : public Storage {
 public:
  explicit FlakyStorage(ReplicaId id) : inner_(id) {}
  std::atomic<int> syncs{0};
  std::atomic<bool> fail{false};
  std::chrono::milliseconds delay{0};

  ReplicaId id() const override { return inner_.id(); }
  Result<void> append(std::uint64_t seq, std::string_view delta) override {
    return inner_.append(seq, delta);
  }
  Result<void> sync() override {
    std::this_thread::sleep_for(delay);
    ++syncs;
    if (fail.load()) return boost::system::errc::make_error_code(boost::system::errc::io_error);
    return {};
  }
  Result<SnapshotWriter> begin_snapshot(std::uint64_t seq) override {
    return inner_.begin_snapshot(seq);
  }
  void finish_snapshot(bool written) override { inner_.finish_snapshot(written); }
  std::uint64_t log_bytes() const override { return inner_.log_bytes(); }

 private:
  MemoryStorage inner_;
};

}  // namespace

TEST_SUITE("cluster.replica") {
  TEST_CASE("two replicas converge through a local transport") {
    VirtualCluster<Map> cluster(2);  // replicas 1 and 2, neighbours of each other
    Replica<Map>& a = cluster[1];
    Replica<Map>& b = cluster[2];
    for (int i = 0; i < 100; ++i) cluster.wait(a.put("a" + std::to_string(i), std::string("x")));
    cluster.wait(b.put(std::string("b"), std::string("y")));
    // A push goes out push_debounce (0.5 ms) after a write; one round trip is enough.
    cluster.run_for(5ms);
    CHECK(cluster.wait(b.read([](const Map& m) { return m.size(); })) == 101);
    CHECK(cluster.wait(a.get(std::string("b"))) == std::optional<std::string>("y"));
    CHECK(cluster.wait(a.snapshot()) == cluster.wait(b.snapshot()));
  }

  TEST_CASE("writes from many threads are all applied") {
    LocalCluster<PNCounter> cluster(1);
    Replica<PNCounter>& r = cluster[1];
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&] {
        for (int i = 0; i < 250; ++i) r.mutate([](PNCounter& c) { return c.increment(1); }).get();
      });
    }
    for (auto& w : writers) w.join();
    CHECK(r.read([](const PNCounter& c) { return c.value(); }).get() == 1000);
  }

  TEST_CASE("on_diffs reports added, updated and removed keys, local and remote") {
    using C = KeyChange<std::string, std::string>;
    std::vector<C> seen_by_a, seen_by_b;
    VirtualCluster<Map> cluster;
    ReplicaOptions<Map> oa, ob;
    oa.on_diffs = [&](const auto& changes) {
      seen_by_a.insert(seen_by_a.end(), changes.begin(), changes.end());
    };
    ob.on_diffs = [&](const auto& changes) {
      seen_by_b.insert(seen_by_b.end(), changes.begin(), changes.end());
    };
    Replica<Map>& a = cluster.add(1, oa);
    cluster.add(2, ob);
    cluster.mesh();
    cluster.wait(a.put(std::string("k"), std::string("1")));
    cluster.run_for(10ms);
    CHECK(seen_by_b.size() == 1);
    cluster.wait(a.put(std::string("k"), std::string("2")));
    cluster.run_for(10ms);
    CHECK(seen_by_b.size() == 2);
    cluster.wait(a.remove(std::string("k")));
    cluster.run_for(10ms);
    CHECK(seen_by_b == std::vector<C>{{"k", "1"}, {"k", "2"}, {"k", std::nullopt}});
    CHECK(seen_by_a == std::vector<C>{{"k", "1"}, {"k", "2"}, {"k", std::nullopt}});
  }

  TEST_CASE("on_diffs hears of the keys an arbitrary mutator removes, local and remote") {
    using C = KeyChange<std::string, std::string>;
    std::vector<C> seen_by_a, seen_by_b;
    VirtualCluster<Map> cluster;
    ReplicaOptions<Map> oa, ob;
    oa.on_diffs = [&](const auto& c) { seen_by_a.insert(seen_by_a.end(), c.begin(), c.end()); };
    ob.on_diffs = [&](const auto& c) { seen_by_b.insert(seen_by_b.end(), c.begin(), c.end()); };
    Replica<Map>& a = cluster.add(1, oa);
    cluster.add(2, ob);
    cluster.mesh();
    for (const char* k : {"x", "y", "z"}) cluster.wait(a.put(std::string(k), std::string("1")));
    cluster.run_for(10ms);
    CHECK(seen_by_b.size() == 3);
    // One mutator: remove x, remove y and write it again, write w. Its delta names y and w
    // only; x must still be reported as removed, y as written (not removed).
    cluster.wait(a.mutate([](Map& m) {
      Map d = m.remove("x");
      d.join(m.remove("y"));
      d.join(m.put(1, "y", "2", HlcTimestamp{1u << 30}));
      d.join(m.put(1, "w", "3", HlcTimestamp{(1u << 30) + 1}));
      return d;
    }));
    // Then a clear through the generic path: every remaining key is reported removed.
    cluster.wait(a.mutate([](Map& m) { return m.clear(); }));
    cluster.run_for(10ms);
    const auto sorted = [](std::vector<C> v) {
      std::sort(v.begin(), v.end(), [](const C& l, const C& r) { return l.key < r.key; });
      return v;
    };
    REQUIRE(seen_by_a.size() == 3 + 3 + 3);
    CHECK(sorted({seen_by_a.begin() + 3, seen_by_a.begin() + 6}) ==
          std::vector<C>{{"w", "3"}, {"x", std::nullopt}, {"y", "2"}});
    CHECK(sorted({seen_by_a.begin() + 6, seen_by_a.end()}) ==
          std::vector<C>{{"w", std::nullopt}, {"y", std::nullopt}, {"z", std::nullopt}});
    // B, receiving the deltas (maybe joined into one), ends with every key reported gone.
    const auto reported_gone_on_b = [&](const std::string& k) {
      bool gone = false;
      for (const C& c : seen_by_b) {
        if (c.key == k) gone = !c.value.has_value();
      }
      return gone;
    };
    CHECK(reported_gone_on_b("x"));
    CHECK(reported_gone_on_b("y"));
    CHECK(reported_gone_on_b("z"));
  }

  TEST_CASE("a new replica's on_diffs reports every key of the state it catches up on, once") {
    std::vector<KeyChange<std::string, std::string>> seen;  // outlives the cluster
    VirtualCluster<Map> cluster(1);
    Replica<Map>& a = cluster[1];
    constexpr int kKeys = 3000;
    for (int i = 0; i < kKeys; ++i) cluster.wait(a.put("k" + std::to_string(i), std::to_string(i)));
    cluster.wait(a.remove(std::string("k7")));  // gone before the newcomer arrives: not reported
    ReplicaOptions<Map> ob;
    ob.on_diffs = [&](const auto& changes) { seen.insert(seen.end(), changes.begin(), changes.end()); };
    cluster.add(2, ob);
    cluster.mesh();
    cluster.run_for(2s);
    CHECK(seen.size() == kKeys - 1);
    cluster.wait(a.put(std::string("k1"), std::string("changed")));
    cluster.run_for(100ms);
    REQUIRE(seen.size() == kKeys);
    std::map<std::string, std::string> by_key;
    for (std::size_t i = 0; i + 1 < seen.size(); ++i) {
      REQUIRE(seen[i].value.has_value());
      CHECK(by_key.emplace(seen[i].key, *seen[i].value).second);  // each key once
    }
    CHECK(by_key.size() == kKeys - 1);
    CHECK_FALSE(by_key.contains("k7"));
    CHECK(by_key["k42"] == "42");
    CHECK(seen.back() == KeyChange<std::string, std::string>{"k1", "changed"});
  }

  TEST_CASE("report_initial_state hands the starting state over as the first batch") {
    Map start;
    HybridClock hlc;
    for (int i = 0; i < 5; ++i) (void)start.put(9, "s" + std::to_string(i), "v", hlc.now(1));
    std::vector<std::vector<KeyChange<std::string, std::string>>> batches;
    ReplicaOptions<Map> o;
    o.report_initial_state = true;
    o.on_diffs = [&](const auto& changes) { batches.push_back(changes); };
    VirtualCluster<Map> cluster;
    Replica<Map>& r = cluster.add(1, o, start);
    cluster.wait(r.put(std::string("later"), std::string("w")));
    cluster.run_for(10ms);
    REQUIRE(batches.size() == 2);
    CHECK(batches[0].size() == 5);
    CHECK(batches[1] == std::vector<KeyChange<std::string, std::string>>{{"later", "w"}});
  }

  // on_diffs used to be installed by an operation queued after set_neighbours, which took in
  // the neighbour's deltas first: they were joined and never reported (about 1 run in 3 on
  // a loaded machine). The subscriber is now part of construction.
  TEST_CASE("deltas arriving right after a replica is added are all reported (real threads)") {
    constexpr int kIterations = 300;
    constexpr int kKeys = 20;
    int complete = 0;
    for (int it = 0; it < kIterations; ++it) {
      // Declared before the cluster: a notification may still run while it shuts down.
      std::mutex mu;
      std::size_t seen = 0;
      LocalCluster<Map> cluster(1);
      Replica<Map>& a = cluster[1];
      for (int i = 0; i < kKeys; ++i) a.put("k" + std::to_string(i), std::string("v")).get();
      ReplicaOptions<Map> ob;
      ob.on_diffs = [&](const auto& changes) {
        std::lock_guard lock(mu);
        seen += changes.size();
      };
      Replica<Map>& b = cluster.add(2, ob);
      a.set_neighbours({2});
      b.set_neighbours({1});
      const bool all = eventually([&] {
        std::lock_guard lock(mu);
        return seen >= kKeys;
      }, 10s, 1ms);
      complete += all ? 1 : 0;
      if (!all) break;
    }
    CHECK(complete == kIterations);
  }

  TEST_CASE("a completion handler that throws leaves the operations queued after it intact") {
    asio::io_context io;
    LocalTransport net;
    int completed = 0;
    {
      Replica<Map> r(io.get_executor(), 1, net);
      // A delivered message always queues: what comes after it queues behind it, and runs
      // from the executor, where a handler's exception leaves io_context::run.
      r.deliver(99, SyncMessage{DeltaAck{}});
      r.put(std::string("a"), std::string("1"), {},
            [](std::exception_ptr, std::uint64_t) { throw std::runtime_error("from a handler"); });
      for (int i = 0; i < 3; ++i) {
        r.put("k" + std::to_string(i), std::string("v"), {},
              [&](std::exception_ptr e, std::uint64_t) { completed += e ? 0 : 1; });
      }
      CHECK(completed == 0);
      // As with any Asio handler, the exception leaves io_context::run; running again
      // carries on with the rest.
      // (The replica's sync timer keeps the context busy: run it for bounded slices.)
      int thrown = 0;
      for (int round = 0; round < 5; ++round) {
        try {
          io.run_for(std::chrono::milliseconds(50));
        } catch (const std::runtime_error&) {
          ++thrown;
        }
        io.restart();
      }
      CHECK(thrown == 1);
      CHECK(completed == 3);
      std::size_t size = 0;
      r.read([](const Map& m) { return m.size(); },
             [&](std::exception_ptr, std::size_t n) { size = n; });
      io.run_for(std::chrono::milliseconds(50));
      CHECK(size == 4);
    }
    io.restart();
    io.run_for(std::chrono::milliseconds(50));
  }

  TEST_CASE("an operation on an idle replica completes on the calling thread") {
    asio::io_context io;  // never run: nothing can complete except on this thread
    LocalTransport net;
    Replica<Map> r(io.get_executor(), 1, net);
    auto put = r.put(std::string("k"), std::string("v"));
    REQUIRE(put.wait_for(0s) == std::future_status::ready);
    auto got = r.get(std::string("k"));
    REQUIRE(got.wait_for(0s) == std::future_status::ready);
    CHECK(got.get() == std::optional<std::string>("v"));
    bool called = false;
    r.put(std::string("k2"), std::string("v"), {}, [&](std::exception_ptr e, std::uint64_t) {
      called = !e;
    });
    CHECK(called);
    // Behind a queued message, an operation waits its turn (and completes in order).
    r.deliver(99, SyncMessage{DeltaAck{}});
    auto queued = r.get(std::string("k2"));
    CHECK(queued.wait_for(0s) == std::future_status::timeout);
    io.poll();
    REQUIRE(queued.wait_for(0s) == std::future_status::ready);
    CHECK(queued.get() == std::optional<std::string>("v"));
  }

  TEST_CASE("a Future whose operation is abandoned reports broken_promise instead of hanging") {
    Future<std::uint64_t> pending;
    {
      VirtualCluster<Map> cluster(2);
      cluster.run_for(1ms);
      cluster.transport().detach(2);  // replica 2 hears nothing, so it never acknowledges
      pending = cluster[1].put(std::string("k"), std::string("v"),
                               WriteConcern::acked(1, std::chrono::hours(1)));
      cluster.run_for(1s);
      CHECK(pending.wait_for(0s) == std::future_status::timeout);
    }  // the replicas go, and with them the write waiting for its acknowledgement
    REQUIRE(pending.valid());
    CHECK_THROWS_AS(pending.get(), std::future_error);
    CHECK_FALSE(pending.valid());
  }

  TEST_CASE("a Future completed on another thread wakes the thread waiting for it") {
    LocalCluster<Map> cluster(2);
    auto& a = cluster[1];
    // Acknowledged by the neighbour: completed on an I/O thread while this one waits.
    auto acked = a.put(std::string("k"), std::string("v"), WriteConcern::acked(1));
    CHECK(acked.get() == 0);  // the first delta's sequence number
    auto failed = a.mutate([](Map&) -> Map { throw std::invalid_argument("no"); });
    CHECK_THROWS_AS(failed.get(), std::invalid_argument);
  }

  TEST_CASE("an exception from a mutator reaches the caller and the replica keeps serving") {
    LocalCluster<Map> cluster(1);
    Replica<Map>& r = cluster[1];
    auto failed = r.mutate([](Map&) -> Map { throw std::runtime_error("rejected"); });
    CHECK_THROWS_AS(failed.get(), std::runtime_error);
    r.put(std::string("k"), std::string("v")).get();
    CHECK(r.get(std::string("k")).get() == std::optional<std::string>("v"));
  }

  TEST_CASE("a causally later put wins even when this replica's clock is behind") {
    LocalCluster<Map> cluster(1);
    Replica<Map>& a = cluster[1];
    // A value stamped far in the future by some other replica's clock.
    Map remote;
    const Map d = remote.put(9, "k", "future", HlcTimestamp::from_parts(1ull << 46, 0));
    a.mutate([d](Map& m) {
       m.join(d);
       return d;
     }).get();
    a.put(std::string("k"), std::string("now")).get();
    CHECK(a.get(std::string("k")).get() == std::optional<std::string>("now"));
  }

  TEST_CASE("acked and majority write concerns wait for neighbours, or time out saying how many") {
    VirtualCluster<Map> cluster(3);  // each replica has two neighbours
    auto& a = cluster[1];
    auto majority = a.put(std::string("k"), std::string("v"), WriteConcern::majority());
    CHECK(majority.wait_for(0s) == std::future_status::timeout);  // no neighbour holds it yet
    cluster.wait(std::move(majority));
    // Complete means 2 of the 3 replicas hold it now: a and at least one neighbour.
    int holding = 0;
    for (ReplicaId r : {ReplicaId{2}, ReplicaId{3}}) {
      holding += cluster.wait(cluster[r].get(std::string("k"))).has_value() ? 1 : 0;
    }
    CHECK(holding >= 1);
    (void)cluster.wait(a.put(std::string("k1"), std::string("v"), WriteConcern::all()));
    for (ReplicaId r : {ReplicaId{2}, ReplicaId{3}}) {
      CHECK(cluster.wait(cluster[r].get(std::string("k1"))) == std::optional<std::string>("v"));
    }
    (void)cluster.wait(a.put(std::string("k2"), std::string("v"), WriteConcern::acked(1)));
    const Time before = cluster.now();
    try {
      (void)cluster.wait(a.put(std::string("k3"), std::string("v"),
                               WriteConcern::acked(5, std::chrono::milliseconds(300))));
      FAIL("5 acknowledgements cannot come from 2 neighbours");
    } catch (const WriteConcernTimeout& e) {
      CHECK(e.acknowledged() == 2);
      CHECK(e.required() == 5);
    }
    // ... at its deadline (virtual time: exactly).
    CHECK(cluster.now() - before >= 300ms);
    CHECK(cluster.now() - before <= 302ms);
    // The write stays: a timeout reports, it does not undo.
    CHECK(cluster.wait(cluster[2].get(std::string("k3"))) == std::optional<std::string>("v"));
    // A write that changes nothing needs no acknowledgement.
    (void)cluster.wait(a.remove(std::string("absent"), WriteConcern::acked(5)));
  }

  // Majority used to mean more than half of the neighbours linked now: a replica cut off
  // from its peers met it alone. It counts the replica's members, down ones included.
  TEST_CASE("majority and all count the members set, down ones included, this one too") {
    VirtualCluster<Map> cluster(3);
    auto& a = cluster[1];
    a.set_membership(5);  // two more members, down: 3 of 5 is still a majority
    (void)cluster.wait(a.put(std::string("k"), std::string("v"), WriteConcern::majority()));
    try {
      (void)cluster.wait(a.put(std::string("k2"), std::string("v"), WriteConcern::all(200ms)));
      FAIL("all 5 cannot hold it with 2 down");
    } catch (const WriteConcernTimeout& e) {
      CHECK(e.acknowledged() == 3);  // a and its two neighbours
      CHECK(e.required() == 5);
    }
    a.set_membership(7);  // 4 of 7 needed, 3 reachable
    try {
      (void)cluster.wait(a.put(std::string("k3"), std::string("v"), WriteConcern::majority(200ms)));
      FAIL("a minority cannot meet majority");
    } catch (const WriteConcernTimeout& e) {
      CHECK(e.acknowledged() == 3);
      CHECK(e.required() == 4);
    }
    // Alone among 3 (its neighbours gone), a replica no longer meets majority by itself.
    a.set_membership(3);
    a.set_neighbours({});
    CHECK_THROWS_AS(
        (void)cluster.wait(a.put(std::string("k4"), std::string("v"), WriteConcern::majority(200ms))),
        WriteConcernTimeout);
    // With no membership set, a replica with no neighbours is alone: majority is itself.
    a.set_membership(0);
    (void)cluster.wait(a.put(std::string("k5"), std::string("v"), WriteConcern::majority(200ms)));
  }

  // With every fsync slowed to 300 ms, isolated majority writes used to complete in 1 ms:
  // before their fsync, weaker than durable ones.
  TEST_CASE("a majority write with no neighbour to wait for is still durable first") {
    LocalCluster<Map> cluster(0);
    auto storage = std::make_shared<FlakyStorage>(1);
    storage->delay = std::chrono::milliseconds(100);
    ReplicaOptions<Map> options;
    options.storage = storage;
    auto& alone = cluster.add(1, options);
    (void)alone.put(std::string("k"), std::string("v"), WriteConcern::majority()).get();
    CHECK(storage->syncs.load() >= 1);
    const int before = storage->syncs.load();
    (void)alone.put(std::string("k2"), std::string("v"), WriteConcern::majority()).get();
    CHECK(storage->syncs.load() > before);
  }

  // A failed fsync used to be ignored once a neighbour acknowledged: 201 for a write that
  // was not durable where it was made, and storage_errors stayed 0.
  TEST_CASE("a majority write whose fsync fails fails, whatever the neighbours say") {
    VirtualCluster<Map> cluster;
    auto storage = std::make_shared<FlakyStorage>(1);
    ReplicaOptions<Map> options;
    options.storage = storage;
    auto& a = cluster.add(1, options);
    auto& b = cluster.add(2);
    cluster.mesh();
    (void)cluster.wait(a.put(std::string("ok"), std::string("v"), WriteConcern::majority()));
    storage->fail = true;
    CHECK_THROWS_AS(
        (void)cluster.wait(a.put(std::string("k"), std::string("v"), WriteConcern::majority())),
        std::system_error);
    CHECK(cluster.wait(a.metrics()).storage_errors == 1);
    // The write is applied and replicates (it is not undone); only its promise failed.
    cluster.run_for(5ms);
    CHECK(cluster.wait(b.get(std::string("k"))).has_value());
    storage->fail = false;
    (void)cluster.wait(a.put(std::string("k2"), std::string("v"), WriteConcern::majority()));
  }

  TEST_CASE("put_chosen writes what the chooser picks from the current state, or nothing") {
    VirtualCluster<Map> cluster(3);
    auto& a = cluster[1];
    // Takes the first free key of k0, k1, ...: the choice sees every earlier write.
    const auto take_free = [&](std::string value) {
      return cluster.wait(a.put_chosen(
          [value](const Map& m) -> std::optional<std::pair<std::string, std::string>> {
            for (int i = 0; i < 3; ++i) {
              std::string key = "k" + std::to_string(i);
              if (!m.contains(key)) return std::pair{key, value};
            }
            return std::nullopt;
          },
          WriteConcern::majority()));
    };
    CHECK(take_free("x").key == std::optional<std::string>("k0"));
    const ChosenWrite<std::string> second = take_free("y");
    CHECK(second.key == std::optional<std::string>("k1"));
    CHECK(second.seq > 0);
    // Majority: both neighbours hold k1 when the write completes.
    CHECK(cluster.wait(cluster[2].get(std::string("k1"))) == std::optional<std::string>("y"));
    CHECK(cluster.wait(cluster[3].get(std::string("k1"))) == std::optional<std::string>("y"));
    CHECK(take_free("z").key == std::optional<std::string>("k2"));
    // Declined: nothing written, and no acknowledgement is awaited (ready at once).
    const std::uint64_t before = cluster.wait(a.sequence());
    auto declined = a.put_chosen(
        [](const Map&) -> std::optional<std::pair<std::string, std::string>> { return {}; },
        WriteConcern::majority());
    REQUIRE(declined.wait_for(0s) == std::future_status::ready);
    CHECK_FALSE(declined.get().key.has_value());
    CHECK(cluster.wait(a.sequence()) == before);
    CHECK(cluster.wait(a.read([](const Map& m) { return m.size(); })) == 3);
  }
}
