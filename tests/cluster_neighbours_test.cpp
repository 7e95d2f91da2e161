// Neighbour policies across nodes (cluster/neighbour_policy.hpp, cluster/overlay.hpp) over
// real TCP on 127.0.0.1: who pushes to whom - explicit one-way lists (rings, chains, nodes
// named before they exist) and random(k) draws that replace a node that goes down. Every
// wait is bounded.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/node.hpp"
#include "crdt/awlww_map.hpp"
#include "tests/node_test_options.hpp"
#include "tests/test_support.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;

using deltacrdt::testing::eventually;

namespace {

NodeOptions options(const std::string& name, std::vector<std::string> seeds = {}) {
  NodeOptions o;
  o.logger = std::make_shared<Logger>(LogLevel::warn, [](const std::string&) {});
  o.name = name;
  o.cluster = "test";
  o.secret = "test-secret-0123456789";
  o.seeds = std::move(seeds);
  deltacrdt::testing::use_quick_timings(o);
  return o;
}

// Nodes n1..n<count>, every one after n1 seeded with n1's address.
std::vector<std::unique_ptr<Node>> start_nodes(int count, const NodeOptions& first = options("n1")) {
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.push_back(std::make_unique<Node>(first));
  for (int i = 2; i <= count; ++i) {
    nodes.push_back(
        std::make_unique<Node>(options("n" + std::to_string(i), {nodes[0]->address()})));
  }
  return nodes;
}

std::size_t size_of(Replica<Map>& r) {
  return r.read([](const Map& m) { return m.size(); }).get();
}

// A replica named "r" on each of `nodes`, the i-th pushing along `policies[i]`, with a
// short sync interval so that anything that could flow has flowed within a few hundred ms.
std::vector<Replica<Map>*> host(std::vector<std::unique_ptr<Node>>& nodes,
                                const std::vector<NeighbourPolicy>& policies) {
  std::vector<Replica<Map>*> out;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    ReplicaOptions<Map> o;
    o.sync.sync_interval = 50ms;
    o.neighbours = policies[i];
    out.push_back(&nodes[i]->add_replica<Map>("r", o));
  }
  return out;
}

bool holds(Replica<Map>& r, const std::string& key) {
  return r.get(key).get().has_value();
}

bool all_linked(const std::vector<std::unique_ptr<Node>>& nodes) {
  for (const auto& n : nodes)
    if (n->live_members().size() != nodes.size() - 1) return false;
  return true;
}

// Says, for a failed check, whom each node pushes to and which keys it holds.
void describe(const std::vector<std::unique_ptr<Node>>& nodes, std::vector<Replica<Map>*>& r) {
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    std::string line = nodes[i]->name() + " pushes to";
    for (const std::string& n : nodes[i]->pushing_to("r")) line += " " + n;
    line += "; holds";
    r[i]->read([&](const Map& m) {
          m.for_each([&](const std::string& k, const std::string&) { line += " " + k; });
          return 0;
        }).get();
    MESSAGE(line);
  }
}

}  // namespace

TEST_SUITE("cluster.neighbours") {
  TEST_CASE("NeighbourPolicy reads all or a list of names and refuses anything else") {
    std::string error;
    CHECK(NeighbourPolicy::parse("all", error) == NeighbourPolicy::all());
    const auto two = NeighbourPolicy::parse("n3,n1,n3", error);
    REQUIRE(two.has_value());
    CHECK(two->describe() == "n1,n3");
    CHECK(two->includes("n1"));
    CHECK_FALSE(two->includes("n2"));
    for (const char* bad : {"", "a,,b", ",a", "a,", "all,a"}) {
      CAPTURE(bad);
      error.clear();
      CHECK_FALSE(NeighbourPolicy::parse(bad, error).has_value());
      CHECK_FALSE(error.empty());
    }
    CHECK_THROWS_AS(NeighbourPolicy::only({""}), std::invalid_argument);
    CHECK(NeighbourPolicy::all().includes("anyone"));
  }

  TEST_CASE("NeighbourPolicy reads random:K for K from 1 to 64") {
    std::string error;
    const auto four = NeighbourPolicy::parse("random:4", error);
    REQUIRE(four.has_value());
    CHECK(*four == NeighbourPolicy::random(4));
    CHECK(four->describe() == "random:4");
    CHECK(NeighbourPolicy::parse("random:64", error) == NeighbourPolicy::random(64));
    for (const char* bad : {"random:", "random:0", "random:65", "random:x", "random:4,a",
                            "random:-1", "random:99999999999999999999999"}) {
      CAPTURE(bad);
      error.clear();
      CHECK_FALSE(NeighbourPolicy::parse(bad, error).has_value());
      CHECK(error.find("random:K") != std::string::npos);
    }
    CHECK_THROWS_AS(NeighbourPolicy::random(0), std::invalid_argument);
    CHECK_THROWS_AS(NeighbourPolicy::random(65), std::invalid_argument);
    NeighbourPolicy hand_made;
    hand_made.kind = NeighbourPolicy::Kind::random;  // k left 0
    CHECK_THROWS_AS(hand_made.validate(), std::invalid_argument);
    hand_made = NeighbourPolicy::only({"b"});
    hand_made.nodes = {"c", "a"};  // unsorted
    CHECK_THROWS_AS(hand_made.validate(), std::invalid_argument);
  }

  TEST_CASE("a ring of five nodes, each pushing to the next, carries a write all the way round") {
    auto nodes = start_nodes(5);
    std::vector<NeighbourPolicy> ring;
    for (int i = 1; i <= 5; ++i) {
      ring.push_back(NeighbourPolicy::only({"n" + std::to_string(i % 5 + 1)}));
    }
    auto r = host(nodes, ring);
    REQUIRE(eventually([&] { return all_linked(nodes); }));
    CHECK(nodes[2]->neighbours("r") == NeighbourPolicy::only({"n4"}));
    r[0]->put(std::string("from-n1"), std::string("v")).get();
    r[3]->put(std::string("from-n4"), std::string("v")).get();
    CHECK(eventually([&] {
      return std::all_of(r.begin(), r.end(), [](Replica<Map>* x) {
        return holds(*x, "from-n1") && holds(*x, "from-n4");
      });
    }));
  }

  TEST_CASE("along a chain nothing flows against the arrows") {
    // a -> b -> c; c pushes to no one.
    std::vector<std::unique_ptr<Node>> nodes;
    nodes.push_back(std::make_unique<Node>(options("a")));
    nodes.push_back(std::make_unique<Node>(options("b", {nodes[0]->address()})));
    nodes.push_back(std::make_unique<Node>(options("c", {nodes[0]->address()})));
    auto r = host(nodes, {NeighbourPolicy::only({"b"}), NeighbourPolicy::only({"c"}),
                          NeighbourPolicy::only({})});
    REQUIRE(eventually([&] { return all_linked(nodes); }));
    r[2]->put(std::string("from-c"), std::string("v")).get();
    r[1]->put(std::string("from-b"), std::string("v")).get();
    r[0]->put(std::string("from-a"), std::string("v")).get();
    // With the arrows: a's write reaches c through b, b's reaches c.
    REQUIRE(eventually([&] { return holds(*r[2], "from-a") && holds(*r[2], "from-b"); }));
    // Against them: after many sync intervals (50 ms) and the catch-ups links trigger,
    // c's write is still only on c, and b's is not on a.
    std::this_thread::sleep_for(600ms);
    CHECK_FALSE(holds(*r[1], "from-c"));
    CHECK_FALSE(holds(*r[0], "from-c"));
    CHECK_FALSE(holds(*r[0], "from-b"));
    CHECK(size_of(*r[0]) == 1);
  }

  TEST_CASE("a node named before it exists is pushed to once it links; "
            "a policy changes at run time") {
    std::vector<std::unique_ptr<Node>> nodes;
    nodes.push_back(std::make_unique<Node>(options("a")));
    nodes.push_back(std::make_unique<Node>(options("b", {nodes[0]->address()})));
    auto r = host(nodes, {NeighbourPolicy::only({"late"}), NeighbourPolicy::all()});
    REQUIRE(eventually([&] { return all_linked(nodes); }));
    r[0]->put(std::string("k"), std::string("v")).get();
    // b is linked but not named: nothing reaches it, while b's own writes reach a.
    r[1]->put(std::string("from-b"), std::string("v")).get();
    REQUIRE(eventually([&] { return holds(*r[0], "from-b"); }));

    Node late(options("late", {nodes[0]->address()}));
    ReplicaOptions<Map> o;
    o.sync.sync_interval = 50ms;
    o.neighbours = NeighbourPolicy::only({});
    auto& rl = late.add_replica<Map>("r", o);
    CHECK(eventually([&] { return holds(rl, "k"); }));
    CHECK_FALSE(holds(*r[1], "k"));

    // Named at run time, b is caught up.
    nodes[0]->set_neighbours("r", NeighbourPolicy::all());
    CHECK(nodes[0]->neighbours("r") == NeighbourPolicy::all());
    CHECK(eventually([&] { return holds(*r[1], "k"); }));
    CHECK_THROWS_AS(nodes[0]->set_neighbours("nope", NeighbourPolicy::all()),
                    std::invalid_argument);
  }

  TEST_CASE("random(2) over six nodes: two pushes per write, every write everywhere, and a "
            "drawn node that goes down is replaced") {
    auto nodes = start_nodes(6);
    auto r = host(nodes, std::vector<NeighbourPolicy>(6, NeighbourPolicy::random(2)));
    REQUIRE(eventually([&] { return all_linked(nodes); }));
    // Each pushes to exactly two of its five namesakes (once they are all announced).
    REQUIRE(eventually([&] {
      return std::all_of(nodes.begin(), nodes.end(),
                         [](const auto& n) { return n->pushing_to("r").size() == 2; });
    }));
    for (const auto& n : nodes) {
      const auto to = n->pushing_to("r");
      CHECK(std::find(to.begin(), to.end(), n->name()) == to.end());
      CHECK(n->neighbours("r") == NeighbourPolicy::random(2));
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      r[i]->put("from-" + nodes[i]->name(), std::string("v")).get();
    }
    CHECK(eventually([&] {
      return std::all_of(r.begin(), r.end(), [](Replica<Map>* x) { return size_of(*x) == 6; });
    }));

    // Stop a node some other pushes to: whoever drew it draws another, and a write made
    // after still reaches the five left.
    std::map<std::string, int> drawn_by;
    for (const auto& n : nodes)
      for (const std::string& to : n->pushing_to("r")) ++drawn_by[to];
    const auto victim = std::max_element(drawn_by.begin(), drawn_by.end(),
                                         [](auto& a, auto& b) { return a.second < b.second; });
    const std::string gone = victim->first;
    const std::size_t at = static_cast<std::size_t>(std::stoi(gone.substr(1)) - 1);
    nodes[at]->stop();
    CHECK(eventually([&] {
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (i == at) continue;
        const auto to = nodes[i]->pushing_to("r");
        if (to.size() != 2 || std::find(to.begin(), to.end(), gone) != to.end()) return false;
      }
      return true;
    }));
    const std::size_t writer = (at + 1) % nodes.size();
    r[writer]->put(std::string("after"), std::string("v")).get();
    CHECK(eventually([&] {
      for (std::size_t i = 0; i < nodes.size(); ++i)
        if (i != at && !holds(*r[i], "after")) return false;
      return true;
    }));
  }

  TEST_CASE("random(k) draws afresh every neighbour_redraw_interval") {
    NodeOptions first = options("n1");
    first.neighbour_redraw_interval = 100ms;
    auto nodes = start_nodes(8, first);
    std::vector<NeighbourPolicy> policies(8, NeighbourPolicy::only({}));
    policies[0] = NeighbourPolicy::random(3);
    host(nodes, policies);
    REQUIRE(eventually([&] { return all_linked(nodes); }));
    REQUIRE(eventually([&] { return nodes[0]->pushing_to("r").size() == 3; }));
    // The successor stays; the two random ones change. Over many redraws n1 pushes to more
    // than the three it started with (each draw: 2 of 6, so 20 redraws all alike is
    // (1/15)^20 unlikely).
    std::set<std::string> seen;
    for (int i = 0; i < 40 && seen.size() < 5; ++i) {
      for (const std::string& n : nodes[0]->pushing_to("r")) seen.insert(n);
      std::this_thread::sleep_for(120ms);
    }
    CHECK(seen.size() >= 5);
  }

  TEST_CASE("random(2) over eight nodes: links only where needed, yet every node lists every "
            "member as up, every write reaches every node, and a stopped node is seen down") {
    auto nodes = start_nodes(8);
    auto r = host(nodes, std::vector<NeighbourPolicy>(8, NeighbourPolicy::random(2)));
    REQUIRE(eventually([&] { return all_linked(nodes); }));
    const auto links = [&] {
      std::size_t ends = 0;
      for (const auto& n : nodes) ends += n->metrics().peers;
      return ends / 2;
    };
    // A full mesh has 28 links. Each node wants its two ring neighbours (the ring: 8 links)
    // and its random(2) draws - the ring successor again and one more (at most 8 more);
    // links neither end wants are closed.
    CHECK(eventually([&] { return links() <= 16; }));
    for (const auto& n : nodes) {
      CHECK(n->known_members().size() == 7);
      CHECK(n->live_members().size() == 7);
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      r[i]->put("from-" + nodes[i]->name(), std::string("v")).get();
    }
    const bool spread = eventually([&] {
      return std::all_of(r.begin(), r.end(), [](Replica<Map>* x) { return size_of(*x) == 8; });
    });
    if (!spread) describe(nodes, r);
    CHECK(spread);

    // n5 stops: every other node sees it down (its heartbeat stops rising; those linked to
    // it see the link go), and a later write still reaches the six others.
    nodes[4]->stop();
    CHECK(eventually([&] {
      for (std::size_t i = 0; i < nodes.size(); ++i)
        if (i != 4 && nodes[i]->live_members().size() != 6) return false;
      return true;
    }));
    r[0]->put(std::string("after"), std::string("v")).get();
    CHECK(eventually([&] {
      for (std::size_t i = 0; i < nodes.size(); ++i)
        if (i != 4 && !holds(*r[i], "after")) return false;
      return true;
    }));
  }
}
