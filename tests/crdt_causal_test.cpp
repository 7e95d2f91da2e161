// Semantics of the causal context, ORSet, EWFlag, MVRegister, CausalCounter and ORMap.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "crdt/archive.hpp"
#include "crdt/causal_context.hpp"
#include "crdt/causal_counter.hpp"
#include "crdt/ew_flag.hpp"
#include "crdt/mv_register.hpp"
#include "crdt/ormap.hpp"
#include "crdt/orset.hpp"

using namespace deltacrdt;

TEST_SUITE("crdt.causal_context") {
  TEST_CASE("dots past a gap wait in the cloud and compact when it closes") {
    CausalContext c;
    c.insert(Dot{1, 1});
    c.insert(Dot{1, 3});
    c.insert(Dot{1, 4});
    CHECK(c.max_contiguous(1) == 1);
    CHECK(c.cloud_size() == 2);
    CHECK(c.contains(Dot{1, 4}));
    CHECK_FALSE(c.contains(Dot{1, 2}));
    c.insert(Dot{1, 2});
    CHECK(c.max_contiguous(1) == 4);
    CHECK(c.cloud_size() == 0);
    CHECK(c.dot_count() == 4);
  }

  TEST_CASE("join compacts the cloud against the other side's vector") {
    CausalContext a, b;
    a.insert(Dot{2, 5});
    b.insert(Dot{2, 1});
    b.insert(Dot{2, 2});
    b.insert(Dot{2, 3});
    b.insert(Dot{2, 4});
    a.join(b);
    CHECK(a.max_contiguous(2) == 5);
    CHECK(a.cloud_size() == 0);
    CHECK(b.leq(a));
    CHECK_FALSE(a.leq(b));
  }

  TEST_CASE("a cloud that outgrows its inline storage still compacts and compares") {
    CausalContext scattered, in_order;
    for (std::uint64_t c = 40; c >= 2; c -= 2) scattered.insert(Dot{3, c});  // 20 gaps
    CHECK(scattered.cloud_size() == 20);
    CHECK(scattered.contains(Dot{3, 24}));
    CHECK_FALSE(scattered.contains(Dot{3, 23}));
    for (std::uint64_t c = 1; c <= 40; c += 2) scattered.insert(Dot{3, c});
    CHECK(scattered.cloud_size() == 0);
    CHECK(scattered.max_contiguous(3) == 40);
    for (std::uint64_t c = 1; c <= 40; ++c) in_order.insert(Dot{3, c});
    CHECK(scattered == in_order);
    CausalContext mixed;
    for (std::uint64_t c = 10; c <= 30; c += 2) mixed.insert(Dot{4, c});
    CausalContext few;
    few.insert(Dot{4, 30});
    few.insert(Dot{4, 10});
    CHECK(few.leq(mixed));
    CHECK_FALSE(mixed.leq(few));
    mixed.join(few);
    CHECK(mixed.cloud_size() == 11);
  }

  TEST_CASE("make_dot issues consecutive dots") {
    CausalContext c;
    CHECK(c.make_dot(9) == Dot{9, 1});
    CHECK(c.make_dot(9) == Dot{9, 2});
    CHECK(c.next_dot(9) == Dot{9, 3});
  }
}

TEST_SUITE("crdt.orset") {
  // docs/crdt-encoding.md: entries come in no particular order (the encoding is not
  // canonical; digests are), and a repeated key is corrupt.
  TEST_CASE("a decoder takes entries in any order and refuses a repeated one") {
    ORSet<std::string> s;
    for (const char* e : {"a", "b", "c"}) (void)s.add(1, e);
    const auto payload = [&](bool reversed, bool repeat) {
      std::vector<std::pair<std::string, const DotSet*>> entries;
      s.store().for_each(
          [&](const std::string& k, const DotSet& d) { entries.emplace_back(k, &d); });
      std::sort(entries.begin(), entries.end());
      if (reversed) std::reverse(entries.begin(), entries.end());
      if (repeat) entries.push_back(entries.front());
      std::string out;
      ByteOutputArchive ar(out);
      ar(static_cast<std::uint64_t>(entries.size()));
      for (const auto& [k, d] : entries) {
        detail::save_value(ar, k);
        ar(*d);
      }
      ar(s.context());
      return out;
    };
    for (const bool reversed : {false, true}) {
      const auto back = detail::decode_payload<ORSet<std::string>>(payload(reversed, false));
      REQUIRE(back.has_value());
      CHECK(*back == s);
      CHECK(back->digest() == s.digest());
    }
    CHECK(detail::decode_payload<ORSet<std::string>>(payload(false, true)).error() ==
          Errc::corrupt);
  }

  TEST_CASE("an add concurrent with a remove survives (add wins)") {
    ORSet<std::string> a, b;
    b.join(a.add(1, "x"));
    const auto rm = b.remove("x");
    const auto add = a.add(1, "x");
    a.join(rm);
    b.join(add);
    CHECK(a.contains("x"));
    CHECK(a == b);
  }

  TEST_CASE("an observed remove leaves no tombstone") {
    ORSet<std::string> a, b;
    for (int i = 0; i < 20; ++i) b.join(a.add(1, "e" + std::to_string(i)));
    for (int i = 0; i < 20; ++i) b.join(a.remove("e" + std::to_string(i)));
    CHECK(a.empty());
    CHECK(b.empty());
    CHECK(b.store().dot_count() == 0);
    CHECK(b.context().cloud_size() == 0);
    CHECK(a == b);
  }

  TEST_CASE("re-adding an element keeps one dot per element") {
    ORSet<int> s;
    for (int i = 0; i < 10; ++i) (void)s.add(1, 42);
    CHECK(s.size() == 1);
    CHECK(s.store().dot_count() == 1);
  }
}

TEST_SUITE("crdt.registers") {
  TEST_CASE("EWFlag: enable wins over a concurrent disable") {
    EWFlag a, b;
    b.join(a.enable(1));
    const auto off = b.disable();
    const auto on = a.enable(1);
    a.join(off);
    b.join(on);
    CHECK(a.enabled());
    CHECK(a == b);
  }

  TEST_CASE("MVRegister keeps concurrent values until one assignment observes them") {
    MVRegister<std::string> a, b;
    const auto da = a.assign(1, "a");
    const auto db = b.assign(2, "b");
    a.join(db);
    b.join(da);
    CHECK(a.values() == std::vector<std::string>{"a", "b"});
    CHECK(a == b);
    b.join(a.assign(1, "c"));
    CHECK(b.values() == std::vector<std::string>{"c"});
  }

  TEST_CASE("CausalCounter sums across replicas; a reset removes only what it observed") {
    CausalCounter a, b, c;
    b.join(a.increment(1, 5));
    c.join(b.increment(2, 3));
    c.join(a.increment(1, 2));  // a's second delta alone carries its running total
    CHECK(c.value() == 10);
    const auto reset = c.reset();
    const auto inc = a.increment(1, 1);  // concurrent with the reset
    c.join(inc);
    a.join(reset);
    CHECK(a == c);
    // Replica 1's concurrent increment carries its running total (5 + 2 + 1): a reset
    // cannot retire a contribution that is re-issued concurrently. Replica 2's observed
    // contribution is gone.
    CHECK(a.value() == 8);
    const auto reset_all = a.reset();
    c.join(reset_all);
    CHECK(c.value() == 0);
  }
}

TEST_SUITE("crdt.ormap") {
  TEST_CASE("nested counter updates from three replicas converge to the sum") {
    using Hits = ORMap<std::string, CausalCounter>;
    Hits r[3];
    std::vector<Hits> deltas;
    for (int i = 0; i < 3; ++i) {
      for (int k = 0; k < 4; ++k) {
        deltas.push_back(r[i].update("home", [&](CausalCounter::Ref& c) {
          return c.increment(static_cast<ReplicaId>(i + 1), 1);
        }));
      }
    }
    for (auto& x : r) {
      for (const auto& d : deltas) x.join(d);
    }
    CHECK(r[0] == r[1]);
    CHECK(r[1] == r[2]);
    CHECK(CausalCounter::read(*r[0].find("home")) == 12);
  }

  TEST_CASE("nested maps converge and a key removal keeps unobserved nested adds") {
    using Inner = ORMap<std::string, ORSet<int>>;
    using Outer = ORMap<std::string, Inner>;
    Outer a, b;
    const auto add = [](ReplicaId self, int v) {
      return [=](Inner::Ref& m) {
        return m.update("tags", [&](ORSet<int>::Ref& s) { return s.add(self, v); });
      };
    };
    b.join(a.update("doc", add(1, 1)));
    const auto rm = b.remove("doc");               // b removes what it saw
    const auto more = a.update("doc", add(1, 2));  // concurrently a adds another tag
    a.join(rm);
    b.join(more);
    CHECK(a == b);
    const Inner::Store* doc = a.find("doc");
    REQUIRE(doc != nullptr);
    const ORSet<int>::Store* tags = doc->find("tags");
    REQUIRE(tags != nullptr);
    CHECK(tags->size() == 1);
    CHECK(tags->contains(2));
  }

  TEST_CASE("maps of flags and of multi-value registers: enable wins, concurrent values kept") {
    using Flags = ORMap<std::string, EWFlag>;
    Flags a, b;
    b.join(a.update("dark-mode", [](EWFlag::Ref& f) { return f.enable(1); }));
    const auto off = b.update("dark-mode", [](EWFlag::Ref& f) { return f.disable(); });
    const auto on = a.update("dark-mode", [](EWFlag::Ref& f) { return f.enable(1); });
    a.join(off);
    b.join(on);
    CHECK(a == b);
    REQUIRE(a.find("dark-mode") != nullptr);
    CHECK(EWFlag::read(*a.find("dark-mode")));  // the concurrent enable wins
    CHECK(decode<Flags>(encode(a)).value() == a);

    using Names = ORMap<int, MVRegister<std::string>>;
    Names x, y;
    const auto dx = x.update(7, [](MVRegister<std::string>::Ref& r) { return r.assign(1, "x"); });
    const auto dy = y.update(7, [](MVRegister<std::string>::Ref& r) { return r.assign(2, "y"); });
    x.join(dy);
    y.join(dx);
    CHECK(x == y);
    REQUIRE(x.find(7) != nullptr);
    CHECK(x.find(7)->dot_count() == 2);  // both concurrent assignments, until one observes them
    CHECK(decode<Names>(encode(x)).value() == x);
  }
}
