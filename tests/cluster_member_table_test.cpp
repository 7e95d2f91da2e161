// MemberTable (cluster/member_table.hpp): gossip applied as a node applies it, with what it
// may add bounded, invented members forgotten, and replicas routed only through their link.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "cluster/member_table.hpp"
#include "cluster/removed_members.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Table = MemberTable<int>;

namespace {

Table::Member& link_up(Table& t, const std::string& peer, int link) {
  Table::Member& m = t.member(peer);
  m.link = link;
  m.ever_linked = true;
  return m;
}

}  // namespace

TEST_SUITE("cluster.member_table") {
  TEST_CASE("gossip from a linked peer records it, its replicas and the members it names") {
    Table t("self", {});
    t.set_self_address("127.0.0.1:7000");
    link_up(t, "n1", 1);
    const wire::Gossip g{{"n1", "127.0.0.1:7001", 5},
                         {{"links", 11}},
                         {{"n2", "127.0.0.1:7002", 6}, {"self", "127.0.0.1:7000", 1}}};
    const auto now = Table::Clock::now();
    const auto r = t.apply_gossip(1, "n1", g, now);
    CHECK(r.status == Table::GossipStatus::applied);
    REQUIRE(r.learned.size() == 1);
    CHECK(r.learned[0].name == "n2");
    CHECK(t.members().size() == 2);  // n1 and n2, not this node itself
    CHECK(t.route(11) == 1);
    CHECK(t.announced(1, "n1", "links", 11, 0));
    CHECK_FALSE(t.announced(2, "n1", "links", 11, 0));  // not through another link
    CHECK_FALSE(t.announced(1, "n1", "other", 11, 0));  // not under another name
    CHECK_FALSE(t.announced(1, "n1", "links", 12, 0));  // not an id it did not announce
    CHECK_FALSE(t.announced(1, "n1", "links", 11, 7));  // not as another type
    CHECK(t.find_dial("127.0.0.1:7002") != nullptr);
  }

  TEST_CASE("gossip that misnames its sender, or comes from a replaced link, changes nothing") {
    Table t("self", {});
    link_up(t, "n1", 1);
    const wire::Gossip g{{"n9", "127.0.0.1:7009", 5}, {{"links", 11}}, {}};
    CHECK(t.apply_gossip(1, "n1", g, Table::Clock::now()).status == Table::GossipStatus::misnamed);
    const wire::Gossip bad_address{{"n1", "no-port", 5}, {}, {}};
    CHECK(t.apply_gossip(1, "n1", bad_address, Table::Clock::now()).status ==
          Table::GossipStatus::misnamed);
    const wire::Gossip stale{{"n1", "127.0.0.1:7001", 5}, {{"links", 11}}, {}};
    CHECK(t.apply_gossip(2, "n1", stale, Table::Clock::now()).status ==
          Table::GossipStatus::stale_link);
    CHECK_FALSE(t.route(11).has_value());
  }

  TEST_CASE("invented members are bounded, malformed ones refused, and all forgotten") {
    Table t("self", {8, 1000ms});
    link_up(t, "evil", 1);
    wire::Gossip g{{"evil", "", 1}, {}, {}};
    for (int i = 0; i < 100; ++i) {
      g.members.push_back({"ghost" + std::to_string(i), "127.0.0.1:" + std::to_string(i + 1), 1});
    }
    g.members.push_back({"bad", "host:99999", 1});
    const auto now = Table::Clock::now();
    const auto r = t.apply_gossip(1, "evil", g, now);
    CHECK(r.learned.size() == 7);  // 8 members at most, evil included
    CHECK(r.rejected_records == 100 - 7 + 1);
    CHECK(t.members().size() == 8);
    CHECK(t.dials().size() <= 16);
    CHECK(t.forget_unreached(now + 500ms) == 0);  // still named recently
    CHECK(t.forget_unreached(now + 1500ms) == 7);
    CHECK(t.members().size() == 1);  // evil: it was linked once (removal is an operator's act)
    CHECK(t.dials().empty());
  }

  TEST_CASE("a member that was ever linked keeps its own address over what others say") {
    Table t("self", {});
    Table::Member& n2 = link_up(t, "n2", 2);
    n2.address = "127.0.0.1:7002";
    n2.link = 0;  // down now
    link_up(t, "n1", 1);
    const wire::Gossip g{{"n1", "127.0.0.1:7001", 5}, {}, {{"n2", "127.0.0.1:6666", 6}}};
    (void)t.apply_gossip(1, "n1", g, Table::Clock::now());
    CHECK(t.members().at("n2").address == "127.0.0.1:7002");
    CHECK(t.find_dial("127.0.0.1:6666") == nullptr);
  }

  TEST_CASE("heartbeats: a member is alive while its heartbeat rises, wherever gossip carried "
            "it from; a linked peer says whether it wants the link") {
    Table t("self", {});
    link_up(t, "n1", 1);
    const auto t0 = Table::Clock::now();
    wire::Gossip g{{"n1", "127.0.0.1:7001", 5, 100},
                   {},
                   {{"n2", "127.0.0.1:7002", 6, 500, true, false},
                    {"self", "127.0.0.1:7000", 1, 9, true, true}}};
    REQUIRE(t.apply_gossip(1, "n1", g, t0).status == Table::GossipStatus::applied);
    const auto& n1 = t.members().at("n1");
    const auto& n2 = t.members().at("n2");
    CHECK(n1.heartbeat == 100);
    CHECK(n1.wants_us);
    CHECK(n2.heartbeat == 500);
    CHECK(Table::heartbeat_fresh(n2, t0 + 1s, 2s));
    CHECK_FALSE(Table::heartbeat_fresh(n2, t0 + 3s, 2s));
    // The same heartbeat again, later: not a sign of life.
    REQUIRE(t.apply_gossip(1, "n1", g, t0 + 1500ms).status == Table::GossipStatus::applied);
    CHECK_FALSE(Table::heartbeat_fresh(n2, t0 + 3s, 2s));
    // A lower one (an old record relayed late) neither.
    g.members[0].heartbeat = 400;
    g.members[1].wanted = false;
    REQUIRE(t.apply_gossip(1, "n1", g, t0 + 2s).status == Table::GossipStatus::applied);
    CHECK(n2.heartbeat == 500);
    CHECK_FALSE(Table::heartbeat_fresh(n2, t0 + 3s, 2s));
    CHECK_FALSE(n1.wants_us);
    // A higher one is.
    g.members[0].heartbeat = 501;
    REQUIRE(t.apply_gossip(1, "n1", g, t0 + 2500ms).status == Table::GossipStatus::applied);
    CHECK(Table::heartbeat_fresh(n2, t0 + 3s, 2s));
  }

  TEST_CASE("member records round-trip with their heartbeat and flags; unknown flags are "
            "malformed") {
    const wire::Gossip g{{"n1", "127.0.0.1:7001", 5, 77},
                         {{"links", 11, 3}},
                         {{"n2", "127.0.0.1:7002", 6, 88, true, false},
                          {"n3", "127.0.0.1:7003", 7, 99, false, true}}};
    std::string bytes = wire::encode_gossip(g);
    const auto back = wire::decode_gossip(bytes);
    REQUIRE(back.has_value());
    CHECK(*back == g);
    bytes[bytes.size() - 9] = 4;  // the last record's flags (before the removal count)
    CHECK_FALSE(wire::decode_gossip(bytes).has_value());
  }

  TEST_CASE("removal records ride in gossip; out-of-order ids, empty names and short lists "
            "are malformed") {
    wire::Gossip g{{"n1", "127.0.0.1:7001", 5, 77}, {{"links", 11, 3}}, {}, {}};
    g.removed = {{"n9", 42, 1000, {3, 7, 19}}, {"n8", 43, 2000, {}}};
    const std::string bytes = wire::encode_gossip(g);
    const auto back = wire::decode_gossip(bytes);
    REQUIRE(back.has_value());
    CHECK(*back == g);
    wire::Gossip bad = g;
    bad.removed[0].replicas = {7, 3};
    CHECK_FALSE(wire::decode_gossip(wire::encode_gossip(bad)).has_value());
    bad = g;
    bad.removed[1].name.clear();
    CHECK_FALSE(wire::decode_gossip(wire::encode_gossip(bad)).has_value());
    CHECK_FALSE(wire::decode_gossip(bytes.substr(0, bytes.size() - 1)).has_value());
    CHECK_FALSE(wire::decode_gossip(bytes + "x").has_value());
  }
}

TEST_SUITE("cluster.removed_members") {
  TEST_CASE("records merge by name and incarnation: the union of ids, the earliest time") {
    RemovedMembers r;
    CHECK(r.add({"n3", 7, 5000, {30, 10}}, 6000));
    CHECK_FALSE(r.add({"n3", 7, 5000, {10}}, 6000));  // nothing new
    CHECK(r.add({"n3", 7, 4000, {20}}, 6000));
    REQUIRE(r.records().size() == 1);
    CHECK(r.records()[0] == RemovedMember{"n3", 7, 4000, {10, 20, 30}});
    CHECK(r.add({"n3", 8, 9000, {40}}, 9000));  // another process of that name
    CHECK(r.records().size() == 2);
  }

  TEST_CASE("a member is removed by its process or by any of its replica ids, not by its "
            "name alone") {
    RemovedMembers r;
    r.add({"n3", 7, 1000, {30, 10}}, 1000);
    CHECK(r.match("n3", 7, {}) != nullptr);           // the process that was removed
    CHECK(r.match("n3", 8, {10}) != nullptr);         // restarted with its data
    CHECK(r.match("other", 9, {99, 30}) != nullptr);  // its data under another name
    CHECK(r.match("n3", 8, {11, 12}) == nullptr);     // wiped: a new member
    CHECK(r.removed_replica(30));
    CHECK_FALSE(r.removed_replica(31));
  }

  TEST_CASE("records expire after `retain`, and beyond max_records the oldest go") {
    RemovedMembers r({3, std::chrono::milliseconds(1000)});
    CHECK_FALSE(r.add({"old", 1, 100, {}}, 5000));  // already past retain: ignored
    for (std::uint64_t i = 0; i < 5; ++i) r.add({"n" + std::to_string(i), i, 4000 + i, {i}}, 4500);
    REQUIRE(r.records().size() == 3);
    for (const auto& m : r.records()) CHECK(m.removed_at_ms >= 4002);
    CHECK(r.expire(5003) == 1);  // n2, removed at 4002, is 1001 ms old
    CHECK(r.records().size() == 2);
    CHECK(r.expire(4000) == 0);  // a clock that went back expires nothing
  }

  TEST_CASE("the file form round-trips; damage, a wrong magic or trailing bytes are "
            "reported, never half-read") {
    RemovedMembers r;
    r.add({"n3", 7, 1000, {10, 30}}, 1000);
    r.add({"n4", 8, 2000, {}}, 2000);
    const std::string bytes = r.encode_file();
    RemovedMembers back;
    REQUIRE_FALSE(RemovedMembers::decode_file(bytes, back).has_value());
    CHECK(back.records() == r.records());
    for (std::size_t at : {std::size_t{0}, std::size_t{4}, std::size_t{20}, bytes.size() - 1}) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ 0x40);
      RemovedMembers none;
      const auto why = RemovedMembers::decode_file(damaged, none);
      REQUIRE(why.has_value());
      CHECK(why->find("checksum") != std::string::npos);
      CHECK(none.empty());
    }
    RemovedMembers none;
    CHECK(RemovedMembers::decode_file(bytes.substr(0, 10), none) == std::optional<std::string>("too short"));
  }
}
