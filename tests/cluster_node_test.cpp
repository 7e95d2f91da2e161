// Nodes over real TCP on 127.0.0.1 (cluster/node.hpp): convergence, membership by gossip,
// authentication, hostile connections, reconnection. Every wait is bounded.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/membership.hpp"
#include "cluster/node.hpp"
#include "transport/frame.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/pncounter.hpp"
#include "tests/node_test_options.hpp"
#include "tests/test_support.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

using deltacrdt::testing::eventually;
using deltacrdt::testing::free_port;

namespace {

constexpr const char* kSecret = "test-secret-0123456789";

// Log lines of every node in a test, kept for assertions.
struct CapturedLog {
  std::mutex mu;
  std::vector<std::string> lines;
  std::size_t count(const std::string& needle) {
    std::lock_guard lock(mu);
    std::size_t n = 0;
    for (const auto& l : lines) n += l.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }
};
CapturedLog captured;

NodeOptions options(const std::string& name, std::vector<std::string> seeds = {},
                    std::string secret = kSecret) {
  NodeOptions o;
  o.logger = std::make_shared<Logger>(LogLevel::info, [](const std::string& line) {
    std::lock_guard lock(captured.mu);
    captured.lines.push_back(line);
  });
  o.name = name;
  o.cluster = "test";
  o.secret = std::move(secret);
  o.seeds = std::move(seeds);
  deltacrdt::testing::use_quick_timings(o);
  o.refusal_log_interval = 0ms;  // every refusal logged (one test checks the throttle)
  return o;
}

std::size_t size_of(Replica<Map>& r) {
  return r.read([](const Map& m) { return m.size(); }).get();
}

// A raw client socket to a node, for sending it whatever bytes a test likes.
struct RawClient {
  asio::io_context io;
  asio::ip::tcp::socket socket{io};
  explicit RawClient(std::uint16_t port) {
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  void write(const std::string& bytes) { asio::write(socket, asio::buffer(bytes)); }
  // True when the node closed the connection within `limit`.
  bool closed_by_peer(std::chrono::milliseconds limit) {
    socket.non_blocking(true);
    const auto until = std::chrono::steady_clock::now() + limit;
    char buf[256];
    while (std::chrono::steady_clock::now() < until) {
      boost::system::error_code ec;
      socket.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

}  // namespace

TEST_SUITE("cluster.node") {
  TEST_CASE("three nodes converge; a node seeded with one member learns all of them") {
    Node n1(options("n1"));
    Node n2(options("n2", {n1.address()}));
    Node n3(options("n3", {n1.address()}));
    auto& m1 = n1.add_replica<Map>("links");
    auto& m2 = n2.add_replica<Map>("links");
    auto& m3 = n3.add_replica<Map>("links");
    auto& c1 = n1.add_replica<PNCounter>("hits");
    auto& c3 = n3.add_replica<PNCounter>("hits");
    REQUIRE(eventually([&] { return n3.live_members().size() == 2; }));
    CHECK(n3.live_members() == std::vector<std::string>{"n1", "n2"});  // n2 via gossip
    for (int i = 0; i < 100; ++i) {
      m1.put("a" + std::to_string(i), "1").get();
      m2.put("b" + std::to_string(i), "2").get();
      m3.put("c" + std::to_string(i), "3").get();
    }
    const ReplicaId id1 = c1.id(), id3 = c3.id();
    c1.mutate([id1](PNCounter& c) { return c.increment(id1, 5); }).get();
    c3.mutate([id3](PNCounter& c) { return c.increment(id3, 7); }).get();
    CHECK(
        eventually([&] { return size_of(m1) == 300 && size_of(m2) == 300 && size_of(m3) == 300; }));
    CHECK(m1.snapshot().get() == m3.snapshot().get());
    CHECK(eventually([&] {
      return c1.read([](const PNCounter& c) { return c.value(); }).get() == 12 &&
             c3.read([](const PNCounter& c) { return c.value(); }).get() == 12;
    }));
    CHECK(n1.metrics().peers == 2);
    CHECK(n1.metrics().frames_rejected == 0);
  }

  // A majority used to be one of the peers linked now: a node cut off from the others met
  // it by itself. It is a majority of the members hosting the replica, down ones counted.
  TEST_CASE("majority counts the members that are down: a node left alone cannot meet it, "
            "for writes or reads") {
    Node n1(options("n1"));
    auto n2 = std::make_unique<Node>(options("n2", {n1.address()}));
    auto n3 = std::make_unique<Node>(options("n3", {n1.address()}));
    auto& m1 = n1.add_replica<Map>("links");
    n2->add_replica<Map>("links");
    n3->add_replica<Map>("links");
    REQUIRE(eventually([&] { return n1.live_members().size() == 2; }));
    (void)m1.put(std::string("k"), std::string("v"), WriteConcern::all()).get();
    CHECK(m1.get(std::string("k"), ReadConcern::all()).get() == std::optional<std::string>("v"));
    n3->stop();
    REQUIRE(eventually([&] { return n1.live_members().size() == 1; }));
    (void)m1.put(std::string("k2"), std::string("v"), WriteConcern::majority()).get();  // 2 of 3
    CHECK(m1.get(std::string("k2"), ReadConcern::majority()).get().has_value());
    n2->stop();
    REQUIRE(eventually([&] { return n1.live_members().empty(); }));
    try {
      (void)m1.put(std::string("k3"), std::string("v"), WriteConcern::majority(300ms)).get();
      FAIL("one node of three met majority");
    } catch (const WriteConcernTimeout& e) {
      CHECK(e.acknowledged() == 1);
      CHECK(e.required() == 2);
    }
    try {
      (void)m1.get(std::string("k"), ReadConcern::majority(300ms)).get();
      FAIL("one node of three met a majority read");
    } catch (const ReadConcernTimeout& e) {
      CHECK(e.caught_up() == 1);
      CHECK(e.required() == 2);
    }
    // A replica the others never hosted: its members are n1 alone.
    auto& other = n1.add_replica<Map>("alone-here");
    (void)other.put(std::string("k"), std::string("v"), WriteConcern::majority(300ms)).get();
  }

  // Namesakes of different types used to become neighbours, and every delta between them
  // was dropped as wrong_type, visible only in a counter.
  TEST_CASE("a namesake replica of another type is never a neighbour, and is reported") {
    using Counts = AWLWWMap<std::string, std::int64_t>;
    Node n1(options("n1"));
    Node n2(options("n2", {n1.address()}));
    auto& links1 = n1.add_replica<Map>("links");
    auto& links2 = n2.add_replica<Counts>("links");  // same name, another type
    auto& hits1 = n1.add_replica<PNCounter>("hits");
    auto& hits2 = n2.add_replica<PNCounter>("hits");
    REQUIRE(eventually([&] { return n1.live_members().size() == 1; }));
    links1.put(std::string("k"), std::string("v")).get();
    links2.put(std::string("k"), std::int64_t{7}).get();
    const ReplicaId id1 = hits1.id();
    hits1.mutate([id1](PNCounter& c) { return c.increment(id1, 3); }).get();
    // "hits" replicates, so deltas flow on the link; "links" does not, either way.
    CHECK(eventually([&] {
      return hits2.read([](const PNCounter& c) { return c.value(); }).get() == 3;
    }));
    CHECK(eventually([&] {
      return n1.metrics().replica_type_mismatches == 1 && n2.metrics().replica_type_mismatches == 1;
    }));
    std::this_thread::sleep_for(300ms);  // a push and a sync round, had they been neighbours
    CHECK(links1.get(std::string("k")).get() == std::optional<std::string>("v"));
    CHECK(links2.get(std::string("k")).get() == std::optional<std::int64_t>(7));
    CHECK(links1.metrics().get().payloads_rejected == 0);
    CHECK(links2.metrics().get().payloads_rejected == 0);
    CHECK(links1.metrics().get().deltas_sent == 0);
    CHECK(captured.count("event=replica_type_mismatch node=n1 peer=n2 replica=links") == 1);
  }

  TEST_CASE("a node with the wrong secret is refused and learns nothing") {
    Node n1(options("n1"));
    auto& m1 = n1.add_replica<Map>("links");
    m1.put("secret-key", "v").get();
    Node intruder(options("intruder", {n1.address()}, "not-the-secret"));
    auto& mi = intruder.add_replica<Map>("links");
    CHECK(eventually([&] { return n1.metrics().handshakes_failed >= 1; }));
    std::this_thread::sleep_for(300ms);
    CHECK(n1.live_members().empty());
    CHECK(intruder.live_members().empty());
    CHECK(size_of(mi) == 0);
    CHECK(n1.known_members().empty());
  }

  TEST_CASE("garbage, a huge length and a silent connection close only that connection") {
    Node n1(options("n1"));
    Node n2(options("n2", {n1.address()}));
    auto& m1 = n1.add_replica<Map>("links");
    auto& m2 = n2.add_replica<Map>("links");
    REQUIRE(eventually([&] { return n1.live_members().size() == 1; }));

    const std::size_t rejected_before = captured.count("event=link_rejected node=n1");
    RawClient garbage(n1.port());
    garbage.write(std::string(64, '\x7f'));
    CHECK(garbage.closed_by_peer(2s));

    RawClient huge(n1.port());
    std::string header = transport::make_frame(transport::FrameType::hello, "x").substr(0, 8);
    header += std::string("\xff\xff\xff\x7f", 4);  // a 2 GiB payload announced
    huge.write(header);
    CHECK(huge.closed_by_peer(2s));

    RawClient silent(n1.port());  // connects, never speaks: the handshake times out
    CHECK(silent.closed_by_peer(3s));

    CHECK(n1.metrics().frames_rejected >= 2);
    // Each hostile connection is logged once, as a warning naming its reason.
    CHECK(eventually(
        [&] { return captured.count("event=link_rejected node=n1") == rejected_before + 3; }));
    CHECK(captured.count("reason=\"handshake timeout\"") == 1);
    // The node kept serving its real peer throughout.
    m2.put("after", "ok").get();
    CHECK(eventually([&] { return size_of(m1) == 1; }));
    CHECK(n1.live_members() == std::vector<std::string>{"n2"});
  }

  TEST_CASE("refusals anyone can cause are logged once per interval, with a count") {
    NodeOptions o = options("n1");
    o.refusal_log_interval = 60s;
    Node n1(o);
    const std::size_t before = captured.count("event=link_rejected node=n1");
    for (int i = 0; i < 5; ++i) {
      RawClient garbage(n1.port());
      garbage.write(std::string(64, '\x7f'));
      CHECK(garbage.closed_by_peer(2s));
    }
    CHECK(n1.metrics().frames_rejected == 5);  // every one counted
    std::this_thread::sleep_for(200ms);
    CHECK(captured.count("event=link_rejected node=n1") == before + 1);  // one line logged
  }

  TEST_CASE("a node that goes away and comes back on the same address is relinked") {
    Node n1(options("n1"));
    auto& m1 = n1.add_replica<Map>("links");
    std::string address;
    {
      Node n2(options("n2", {n1.address()}));
      auto& m2 = n2.add_replica<Map>("links");
      m2.put("before", "1").get();
      REQUIRE(eventually([&] { return size_of(m1) == 1; }));
      address = n2.address();
    }  // n2 stops
    CHECK(eventually([&] { return n1.live_members().empty(); }));
    m1.put("while-away", "2").get();
    NodeOptions o = options("n2");
    o.listen = address;  // the same port: n1 redials it
    Node n2(o);
    auto& m2 = n2.add_replica<Map>("links");
    CHECK(eventually([&] { return n1.live_members() == std::vector<std::string>{"n2"}; }));
    CHECK(eventually([&] { return size_of(m2) == 2; }));
    CHECK(n1.metrics().reconnects >= 1);
  }

  TEST_CASE("a DNS seed name is resolved and every address it names is dialed") {
    Node n1(options("n1"));
    NodeOptions o = options("n2");
    o.dns_seeds = {"localhost:" + std::to_string(n1.port())};
    o.dns_interval = 200ms;
    Node n2(o);
    CHECK(eventually([&] { return n2.live_members() == std::vector<std::string>{"n1"}; }));
    CHECK(captured.count("event=discovered node=n2 strategy=dns") >= 1);
  }

  // A strategy of the application's own: it finds nothing at first, then names n1 (say, a
  // service registry that n1 registered with late); failures are logged and retried.
  TEST_CASE("a custom membership strategy is polled and the addresses it finds are dialed") {
    struct Registry final : MembershipStrategy {
      std::atomic<int> calls{0};
      std::string address;
      std::string name() const override { return "registry"; }
      std::chrono::milliseconds interval() const override { return 50ms; }
      asio::awaitable<std::vector<std::string>> discover(asio::any_io_executor) override {
        const int call = ++calls;
        if (call == 1) throw std::runtime_error("registry unreachable");
        if (call < 4) co_return std::vector<std::string>{};
        co_return std::vector<std::string>{address, "not an address"};
      }
    };
    Node n1(options("n1"));
    auto registry = std::make_shared<Registry>();
    registry->address = n1.address();
    NodeOptions o = options("n2");
    o.membership = {registry};
    Node n2(o);
    CHECK(eventually([&] { return n2.live_members() == std::vector<std::string>{"n1"}; }));
    CHECK(registry->calls.load() >= 4);
    CHECK(captured.count("event=discovery_failed node=n2 strategy=registry reason=\"registry "
                         "unreachable\"") == 1);
    CHECK(captured.count("event=discovered node=n2 strategy=registry address=" + n1.address()) ==
          1);
    NodeOptions bad = options("n3");
    bad.membership = {nullptr};
    CHECK_THROWS_AS(Node{bad}, std::invalid_argument);
  }

  // on_diffs used to be installed after add_replica had set the replica's neighbours, and
  // deltas that arrived in between were joined unreported. Now it comes with the replica:
  // hundreds of replicas added to a running node each report every key they receive.
  TEST_CASE("deltas arriving right after add_replica are all reported, every time") {
    Node a(options("a"));
    Node b(options("b", {a.address()}));
    REQUIRE(eventually([&] { return b.live_members().size() == 1; }));
    constexpr int kReplicas = 200;
    constexpr std::size_t kKeys = 3;
    std::mutex mu;
    std::vector<std::size_t> reported(kReplicas, 0);
    for (int i = 0; i < kReplicas; ++i) {
      const std::string name = "r" + std::to_string(i);
      auto& ra = a.add_replica<Map>(name);
      for (std::size_t k = 0; k < kKeys; ++k) ra.put("k" + std::to_string(k), "v").get();
      ReplicaOptions<Map> o;  // notified on b's own thread: no executor made here
      o.on_diffs = [&mu, &reported, i](const auto& changes) {
        std::lock_guard lock(mu);
        reported[static_cast<std::size_t>(i)] += changes.size();
      };
      b.add_replica<Map>(name, o);
    }
    CHECK(eventually([&] {
      std::lock_guard lock(mu);
      return std::all_of(reported.begin(), reported.end(),
                         [](std::size_t n) { return n >= kKeys; });
    }, 30s));
    {
      std::lock_guard lock(mu);
      CHECK(std::count(reported.begin(), reported.end(), kKeys) == kReplicas);
    }
    b.stop();  // no notification runs after this: `reported` and `mu` go first otherwise
  }

  TEST_CASE("member events report links coming up and going down") {
    std::mutex mu;
    std::vector<std::string> events;
    Node n1(options("n1"));
    n1.on_member_event([&](const MemberEvent& e) {
      std::lock_guard lock(mu);
      events.push_back(e.node + (e.up ? " up" : " down"));
    });
    {
      Node n2(options("n2", {n1.address()}));
      REQUIRE(eventually([&] { return n1.live_members().size() == 1; }));
    }
    CHECK(eventually([&] {
      std::lock_guard lock(mu);
      return events == std::vector<std::string>{"n2 up", "n2 down"};
    }));
  }

  TEST_CASE("log lines are logfmt with levels") {
    std::vector<std::string> lines;
    Logger log(LogLevel::info, [&](const std::string& l) { lines.push_back(l); });
    log.log(LogLevel::debug, "hidden", {});
    log.log(LogLevel::warn, "link_rejected", {{"peer", "n2"}, {"reason", "bad \"frame\" x=1"}});
    REQUIRE(lines.size() == 1);
    CHECK(
        lines[0].find(" level=warn event=link_rejected peer=n2 reason=\"bad \\\"frame\\\" x=1\"") !=
        std::string::npos);
    CHECK(lines[0].rfind("ts=", 0) == 0);
    LogLevel l{};
    CHECK(parse_log_level("debug", l));
    CHECK(l == LogLevel::debug);
    CHECK_FALSE(parse_log_level("loud", l));
  }

  TEST_CASE("a node with a data directory recovers its replicas, ids and c after a restart") {
    const auto dir =
        std::filesystem::temp_directory_path() / ("deltacrdt-node-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    ReplicaId id = 0;
    std::uint64_t seq = 0;
    {
      NodeOptions o = options("n1");
      o.data_dir = dir.string();
      Node n(o);
      ReplicaOptions<Map> ro;
      ro.sync.snapshot_log_bytes = 2048;  // snapshots (in the background) during the test
      auto& m = n.add_replica<Map>("links", ro);
      for (int i = 0; i < 300; ++i) {
        m.put("k" + std::to_string(i), "v", WriteConcern::durable()).get();
        if (i % 100 == 0) std::this_thread::sleep_for(250ms);  // let sync ticks snapshot
      }
      (void)m.remove(std::string("k3"), WriteConcern::durable()).get();
      id = m.id();
      seq = m.sequence().get();
    }
    CHECK(std::filesystem::exists(dir / "links" / "snapshot"));
    NodeOptions o = options("n1");
    o.data_dir = dir.string();
    Node n(o);
    auto& m = n.add_replica<Map>("links");
    CHECK(m.id() == id);
    CHECK(m.sequence().get() == seq);
    CHECK(size_of(m) == 299);
    CHECK_FALSE(m.get(std::string("k3")).get().has_value());
    // Without storage a durable write is refused, not silently weakened.
    Node plain(options("n2"));
    auto& p = plain.add_replica<Map>("links");
    CHECK_THROWS_AS(p.put(std::string("k"), std::string("v"), WriteConcern::durable()).get(),
                    std::logic_error);
    std::filesystem::remove_all(dir);
    o.data_dir = (dir / "missing").string();
    CHECK_THROWS_AS(Node{o}, StorageError);
  }

  TEST_CASE("bad options are clear errors") {
    CHECK_THROWS_AS(Node(options("")), std::invalid_argument);
    CHECK_THROWS_AS(Node(options("n", {}, "")), std::invalid_argument);
    CHECK_THROWS_AS(Node(options("n", {"no-port"})), std::invalid_argument);
    CHECK_THROWS_AS(Node(options("n", {"host:99999"})), std::invalid_argument);
    NodeOptions o = options("n");
    o.listen = "127.0.0.1:x";
    CHECK_THROWS_AS(Node{o}, std::invalid_argument);
  }
}
