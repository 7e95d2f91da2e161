// The member lifecycle over real TCP on 127.0.0.1 (docs/node.md, "Member lifecycle"):
// members removed by an operator or after a long time down, removals spread by gossip and
// kept across restarts, and a removed node refused when it comes back with its data but
// welcome when wiped. Every wait is bounded.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/node.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/pncounter.hpp"
#include "tests/node_test_options.hpp"
#include "tests/test_support.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

using deltacrdt::testing::eventually;
using deltacrdt::testing::TempDir;

namespace {

constexpr const char* kSecret = "test-secret-0123456789";

struct CapturedLog {
  std::mutex mu;
  std::vector<std::string> lines;
  std::size_t count(const std::string& needle) {
    std::lock_guard lock(mu);
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [&](const auto& l) {
      return l.find(needle) != std::string::npos;
    }));
  }
};
CapturedLog captured;

NodeOptions options(const std::string& name, std::vector<std::string> seeds = {},
                    std::string data_dir = {}) {
  NodeOptions o;
  o.logger = std::make_shared<Logger>(LogLevel::info, [](const std::string& line) {
    std::lock_guard lock(captured.mu);
    captured.lines.push_back(line);
  });
  o.name = name;
  o.cluster = "test";
  o.secret = kSecret;
  o.seeds = std::move(seeds);
  o.data_dir = std::move(data_dir);
  o.refusal_log_interval = 0ms;
  deltacrdt::testing::use_quick_timings(o);
  return o;
}

// The member's status on `n`, or nullopt while `n` does not know it.
std::optional<MemberInfo::Status> status_of(const Node& n, const std::string& member) {
  for (const MemberInfo& m : n.members())
    if (m.name == member) return m.status;
  return std::nullopt;
}

bool lists(const Node& n, const std::string& member) {
  const auto all = n.members();
  return std::any_of(all.begin(), all.end(), [&](const MemberInfo& m) { return m.name == member; });
}

std::size_t size_of(Replica<Map>& r) {
  return r.read([](const Map& m) { return m.size(); }).get();
}

}  // namespace

TEST_SUITE("cluster.lifecycle") {
  TEST_CASE("a member removed by an operator is forgotten by every member and no longer "
            "counts in majorities") {
    Node n1(options("n1"));
    Node n2(options("n2", {n1.address()}));
    auto n3 = std::make_unique<Node>(options("n3", {n1.address()}));
    auto& m1 = n1.add_replica<Map>("links");
    n2.add_replica<Map>("links");
    n3->add_replica<Map>("links");
    std::mutex mu;
    std::vector<std::string> removed_on_n2;
    n2.on_member_event([&](const MemberEvent& e) {
      std::lock_guard lock(mu);
      if (e.removed) removed_on_n2.push_back(e.node);
    });
    REQUIRE(eventually([&] { return n1.live_members().size() == 2 && n2.live_members().size() == 2; }));
    n3->stop();
    REQUIRE(eventually([&] { return status_of(n1, "n3") == MemberInfo::Status::down; }));
    // Three members, one down: `all` cannot be met.
    CHECK_THROWS_AS((void)m1.put(std::string("a"), std::string("1"), WriteConcern::all(300ms)).get(),
                    WriteConcernTimeout);

    CHECK_THROWS_AS(n1.remove_member("n1"), std::invalid_argument);
    CHECK_THROWS_AS(n1.remove_member("nobody"), std::invalid_argument);
    CHECK(n1.remove_member("n3"));
    CHECK_FALSE(n1.remove_member("n3"));  // already removed
    CHECK(status_of(n1, "n3") == MemberInfo::Status::removed);
    CHECK(n1.metrics().members_removed == 1);
    CHECK(n1.known_members() == std::vector<std::string>{"n2"});
    // The removal reaches n2 by gossip.
    CHECK(eventually([&] { return status_of(n2, "n3") == MemberInfo::Status::removed; }));
    CHECK(eventually([&] {
      std::lock_guard lock(mu);
      return removed_on_n2 == std::vector<std::string>{"n3"};
    }));
    CHECK(n2.known_members() == std::vector<std::string>{"n1"});
    // Two members now: `all` is met by n1 and n2.
    (void)m1.put(std::string("b"), std::string("2"), WriteConcern::all(5s)).get();
    CHECK(captured.count("event=member_removed node=n1 member=n3 by=operator") == 1);
  }

  TEST_CASE("a removed node that comes back with its data is refused and learns that it was "
            "removed; wiped, it joins as a new member") {
    TempDir dir3("deltacrdt-lifecycle");
    Node n1(options("n1"));
    Node n2(options("n2", {n1.address()}));
    auto& m1 = n1.add_replica<Map>("links");
    auto& m2 = n2.add_replica<Map>("links");
    const std::string data3 = dir3.path.string();
    {
      Node n3(options("n3", {n1.address()}, data3));
      auto& m3 = n3.add_replica<Map>("links");
      REQUIRE(eventually([&] { return n1.live_members().size() == 2; }));
      (void)m3.put(std::string("from-n3"), std::string("x"), WriteConcern::all(5s)).get();
    }
    REQUIRE(eventually([&] { return status_of(n1, "n3") == MemberInfo::Status::down; }));
    CHECK(n1.remove_member("n3"));
    REQUIRE(eventually([&] { return status_of(n2, "n3") == MemberInfo::Status::removed; }));

    {
      // Back with its data (the same replica id): refused by both, and told so.
      Node n3(options("n3", {n1.address(), n2.address()}, data3));
      auto& m3 = n3.add_replica<Map>("links");
      CHECK(eventually([&] { return n3.removed(); }));
      (void)m3.put(std::string("stale"), std::string("y")).get();
      CHECK(eventually([&] { return n1.metrics().removed_refused >= 1; }));
      std::this_thread::sleep_for(1s);  // time enough to replicate, were it linked
      CHECK(n3.live_members().empty());
      CHECK(status_of(n1, "n3") == MemberInfo::Status::removed);
      CHECK_FALSE(m1.get(std::string("stale")).get().has_value());
      CHECK(captured.count("event=node_removed node=n3") >= 1);
    }

    // Wiped: new replica ids, a new member under the old name.
    std::filesystem::remove_all(dir3.path);
    std::filesystem::create_directories(dir3.path);
    Node n3(options("n3", {n1.address()}, data3));
    auto& m3 = n3.add_replica<Map>("links");
    CHECK(eventually([&] {
      return status_of(n1, "n3") == MemberInfo::Status::up &&
             status_of(n2, "n3") == MemberInfo::Status::up;
    }));
    CHECK_FALSE(n3.removed());
    (void)m3.put(std::string("new-n3"), std::string("z"), WriteConcern::all(5s)).get();
    CHECK(eventually([&] { return m2.get(std::string("new-n3")).get().has_value(); }));
    CHECK(eventually([&] { return size_of(m3) == 2; }));  // from-n3 and new-n3
  }

  TEST_CASE("a removed member's counts are retired into a live member's entry on every node") {
    Node n1(options("n1"));
    Node n2(options("n2", {n1.address()}));
    auto n3 = std::make_unique<Node>(options("n3", {n1.address()}));
    auto& c1 = n1.add_replica<PNCounter>("hits");
    auto& c2 = n2.add_replica<PNCounter>("hits");
    auto& c3 = n3->add_replica<PNCounter>("hits");
    REQUIRE(eventually([&] { return n1.live_members().size() == 2 && n3->live_members().size() == 2; }));
    const ReplicaId id3 = c3.id();
    const auto value = [](Replica<PNCounter>& r) {
      return r.read([](const PNCounter& c) { return c.value(); }).get();
    };
    (void)c3.mutate([id3](PNCounter& c) { return c.increment(id3, 7); }, WriteConcern::all(5s)).get();
    (void)c2.mutate([id = c2.id()](PNCounter& c) { return c.increment(id, 1); }, WriteConcern::all(5s)).get();
    n3.reset();
    REQUIRE(eventually([&] { return n1.live_members().size() == 1; }));
    CHECK(n1.remove_member("n3"));
    const auto retired = [&](Replica<PNCounter>& r) {
      return r.read([id3](const PNCounter& c) { return c.retired(id3) && !c.mentions(id3); }).get();
    };
    CHECK(eventually([&] { return retired(c1) && retired(c2); }));
    CHECK(value(c1) == 8);
    CHECK(value(c2) == 8);
    // One entry per live replica at most: the retiring one (the smaller id) took n3's.
    CHECK(c1.read([](const PNCounter& c) { return c.increments().size(); }).get() <= 2);
  }

  TEST_CASE("a member removed while it runs learns it at once and stays out") {
    Node n1(options("n1"));
    Node n2(options("n2", {n1.address()}));
    Node n3(options("n3", {n1.address(), n2.address()}));
    n1.add_replica<Map>("links");
    n2.add_replica<Map>("links");
    auto& m3 = n3.add_replica<Map>("links");
    REQUIRE(eventually([&] { return n3.live_members().size() == 2; }));
    CHECK(n2.remove_member("n3"));
    CHECK(eventually([&] { return n3.removed(); }));
    CHECK(eventually([&] { return n3.live_members().empty(); }));
    CHECK(eventually([&] { return status_of(n1, "n3") == MemberInfo::Status::removed; }));
    std::this_thread::sleep_for(1s);  // several redial and gossip rounds
    CHECK(n3.live_members().empty());
    CHECK(n1.live_members() == std::vector<std::string>{"n2"});
    // Its replica still serves locally.
    (void)m3.put(std::string("k"), std::string("v")).get();
    CHECK(m3.get(std::string("k")).get().has_value());
  }

  TEST_CASE("a removal is kept across a restart of the node that made it") {
    TempDir dir1("deltacrdt-lifecycle"), dir2("deltacrdt-lifecycle");
    const std::string data1 = dir1.path.string(), data2 = dir2.path.string();
    std::string n1_address;
    {
      Node n1(options("n1", {}, data1));
      n1.add_replica<Map>("links");
      n1_address = n1.address();
      {
        Node n2(options("n2", {n1.address()}, data2));
        n2.add_replica<Map>("links");
        REQUIRE(eventually([&] { return n1.live_members().size() == 1; }));
      }
      REQUIRE(eventually([&] { return n1.live_members().empty(); }));
      CHECK(n1.remove_member("n2"));
    }
    CHECK(std::filesystem::exists(dir1.path / ".members"));

    NodeOptions o1 = options("n1", {}, data1);
    o1.listen = n1_address;
    Node n1(o1);
    n1.add_replica<Map>("links");
    CHECK(status_of(n1, "n2") == MemberInfo::Status::removed);
    Node n2(options("n2", {n1.address()}, data2));
    n2.add_replica<Map>("links");
    CHECK(eventually([&] { return n2.removed(); }));
    CHECK(eventually([&] { return n1.live_members().empty(); }));
    std::this_thread::sleep_for(1s);
    CHECK(n1.live_members().empty());
    CHECK(n1.metrics().removed_refused >= 1);
  }

  TEST_CASE("with remove_after_down, a member down that long is removed; without, never") {
    NodeOptions o1 = options("n1");
    o1.remove_after_down = 600ms;
    Node n1(o1);
    Node keeper(options("keeper"));  // remove_after_down off
    n1.add_replica<Map>("links");
    keeper.add_replica<Map>("links");
    {
      Node n2(options("n2", {n1.address(), keeper.address()}));
      n2.add_replica<Map>("links");
      REQUIRE(eventually([&] { return n1.live_members().size() == 2; }));
      REQUIRE(eventually([&] { return keeper.live_members().size() == 2; }));
    }
    CHECK(eventually([&] { return status_of(n1, "n2") == MemberInfo::Status::removed; }, 10s));
    CHECK(captured.count("event=member_removed node=n1 member=n2 by=\"down for") == 1);
    // keeper learns the removal by gossip, although it would never have removed n2 itself.
    CHECK(eventually([&] { return status_of(keeper, "n2") == MemberInfo::Status::removed; }));
    CHECK(lists(keeper, "n1"));
    CHECK(status_of(n1, "keeper") == MemberInfo::Status::up);
  }

  TEST_CASE("a damaged removal file stops the node with a clear error") {
    TempDir dir("deltacrdt-lifecycle");
    std::ofstream(dir.path / ".members", std::ios::binary) << "not a removal file at all, no";
    try {
      Node n(options("n1", {}, dir.path.string()));
      FAIL("a damaged .members file was accepted");
    } catch (const StorageError& e) {
      CHECK(std::string(e.what()).find(".members") != std::string::npos);
    }
    // Deleted, the records are learned again from the other members: the node starts.
    std::filesystem::remove(dir.path / ".members");
    Node n(options("n1", {}, dir.path.string()));
    CHECK(n.members().empty());
  }
}
