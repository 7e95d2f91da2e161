// GCounter and PNCounter: lattice laws, decoder robustness, and counting semantics under
// duplicated and reordered delta delivery.
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <cereal/archives/portable_binary.hpp>
#include <doctest/doctest.h>

#include "crdt/gcounter.hpp"
#include "crdt/pncounter.hpp"
#include "tests/property.hpp"

namespace {

using deltacrdt::Errc;
using deltacrdt::GCounter;
using deltacrdt::PNCounter;
using deltacrdt::ReplicaId;
using deltacrdt::testing::PropertyRng;

// Mostly small steps, sometimes zero (a bottom delta) and sometimes huge, so that the
// saturating paths are part of the laws too.
std::uint64_t random_amount(PropertyRng& rng) {
  if (rng.chance(0.05)) return 0;
  if (rng.chance(0.05)) return std::numeric_limits<std::uint64_t>::max() / 3;
  return 1 + rng.below(10);
}

// Another replica's entry that `x` holds and could retire, or 0.
template <class T, class Entries>
ReplicaId retirable(const T& x, const Entries& entries, ReplicaId self, PropertyRng& rng) {
  std::vector<ReplicaId> others;
  for (const auto& [r, v] : entries)
    if (r != self && !x.retired(r)) others.push_back(r);
  return others.empty() ? 0 : others[rng.below(others.size())];
}

// Now and then a replica retires another's entry (the laws hold whoever does it; that only
// one replica retires each id is the pruning protocol's business).
struct GCounterModel {
  using Type = GCounter;
  static GCounter mutate(GCounter& x, ReplicaId self, PropertyRng& rng) {
    if (x.retired(self)) return {};  // a removed replica writes no more
    if (rng.chance(0.1)) {
      if (const ReplicaId r = retirable(x, x.entries(), self, rng)) return x.retire(r, self);
    }
    return x.increment(self, random_amount(rng));
  }
};

struct PNCounterModel {
  using Type = PNCounter;
  static PNCounter mutate(PNCounter& x, ReplicaId self, PropertyRng& rng) {
    if (x.retired(self)) return {};
    if (rng.chance(0.1)) {
      if (const ReplicaId r = retirable(x, x.increments().entries(), self, rng)) {
        return x.retire(r, self);
      }
    }
    if (rng.chance(0.5)) return x.increment(self, random_amount(rng));
    return x.decrement(self, random_amount(rng));
  }
};

template <class T>
T joined(T x, const T& y) {
  x.join(y);
  return x;
}

// A bare payload as the encoder would write it for a GCounter with these raw entries.
std::string gcounter_payload(std::initializer_list<std::pair<std::uint64_t, std::uint64_t>> es) {
  std::ostringstream os;
  {
    cereal::PortableBinaryOutputArchive ar(os);
    ar(static_cast<std::uint64_t>(es.size()));
    for (const auto& [r, v] : es) ar(r, v);
    ar(std::uint64_t{0});  // no retired marks (format 2)
  }
  return std::move(os).str();
}

}  // namespace

TEST_SUITE("crdt.gcounter") {
  TEST_CASE("satisfies the lattice laws on random histories") {
    deltacrdt::testing::check_lattice_laws<GCounterModel>();
  }

  TEST_CASE("rejects truncated and corrupted encodings without crashing") {
    deltacrdt::testing::check_decoder_robustness<GCounterModel>();
  }

  TEST_CASE("replicas sum every replica's increments after exchanging deltas") {
    GCounter a, b, c;
    const GCounter da = a.increment(1, 3);
    const GCounter db = b.increment(2, 4);
    const GCounter dc = c.increment(3);
    for (GCounter* r : {&a, &b, &c}) {
      r->join(da);
      r->join(db);
      r->join(dc);
    }
    CHECK(a.value() == 8);
    CHECK(a == b);
    CHECK(b == c);
    CHECK(a.value_of(1) == 3);
    CHECK(a.value_of(2) == 4);
    CHECK(a.value_of(3) == 1);
    CHECK(a.value_of(99) == 0);
  }

  TEST_CASE("duplicated and reordered deltas are not counted twice") {
    GCounter source;
    const GCounter d1 = source.increment(1, 5);
    const GCounter d2 = source.increment(1, 2);
    GCounter sink;
    sink.join(d2);
    sink.join(d1);  // older delta after newer: must not lower or add
    sink.join(d2);
    sink.join(d1);
    CHECK(sink.value() == 7);
    CHECK(sink == source);
  }

  TEST_CASE("an increment's delta is the single entry of its replica with the new total") {
    GCounter x;
    x.join(GCounter{}.increment(2, 10));
    (void)x.increment(1, 4);
    const GCounter d = x.increment(1, 3);
    REQUIRE(d.size() == 1);
    CHECK(d.value_of(1) == 7);
    CHECK(d.value() == 7);
  }

  TEST_CASE("a zero increment changes nothing and returns bottom") {
    GCounter x;
    (void)x.increment(1, 2);
    const GCounter before = x;
    CHECK(x.increment(1, 0).is_bottom());
    CHECK(x == before);
  }

  TEST_CASE("entries and the sum saturate at the maximum instead of wrapping") {
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    GCounter x;
    (void)x.increment(1, kMax - 1);
    CHECK(x.increment(1, 5).value_of(1) == kMax);
    CHECK(x.increment(1, 5).is_bottom());  // already saturated
    (void)x.increment(2, 10);
    CHECK(x.value() == kMax);
  }

  TEST_CASE("novel part keeps only the entries the receiver lacks") {
    GCounter x, y;
    (void)x.increment(1, 5);
    (void)y.increment(1, 3);
    (void)y.increment(2, 1);
    const GCounter novel = x.novel_part(y);
    CHECK(novel.size() == 1);
    CHECK(novel.value_of(2) == 1);
    CHECK(joined(x, novel) == joined(x, y));
  }

  TEST_CASE("decoding rejects non-canonical payloads") {
    using deltacrdt::detail::decode_payload;
    CHECK(decode_payload<GCounter>(gcounter_payload({{1, 5}, {2, 6}})).has_value());
    CHECK(decode_payload<GCounter>(gcounter_payload({{1, 5}, {1, 6}})).error() ==
          deltacrdt::make_error_code(Errc::corrupt));
    CHECK(decode_payload<GCounter>(gcounter_payload({{2, 5}, {1, 6}})).error() ==
          deltacrdt::make_error_code(Errc::corrupt));
    CHECK(decode_payload<GCounter>(gcounter_payload({{1, 0}})).error() ==
          deltacrdt::make_error_code(Errc::corrupt));
  }

  TEST_CASE("format 1 (no retired marks) is still read") {
    using deltacrdt::detail::decode_payload;
    std::string v2 = gcounter_payload({{1, 5}, {2, 6}});
    const std::string v1 = v2.substr(0, v2.size() - 8);
    const auto old = decode_payload<GCounter>(v1, 1);
    REQUIRE(old.has_value());
    CHECK(old->value() == 11);
    CHECK(decode_payload<GCounter>(v1, 2).error() == deltacrdt::make_error_code(Errc::truncated));
  }

  TEST_CASE("retiring a removed replica moves its total into the owner's entry; stale "
            "copies of its entry never come back") {
    GCounter owner, other, removed;
    const GCounter old = removed.increment(3, 4);
    const GCounter last = removed.increment(3, 1);
    (void)owner.increment(1, 2);
    (void)other.increment(2, 7);
    for (GCounter* r : {&owner, &other}) {
      r->join(old);
      r->join(last);
    }
    other.join(owner);
    owner.join(other);
    REQUIRE(owner.value() == 14);
    const GCounter retiring = owner.retire(3, 1);
    CHECK(owner.value() == 14);
    CHECK(owner.value_of(1) == 7);
    CHECK(owner.value_of(3) == 0);
    CHECK(owner.retired(3));
    CHECK(retiring.size() == 1);  // the owner's entry, with its mark
    other.join(retiring);
    CHECK(other.value() == 14);
    CHECK(other.value_of(3) == 0);
    // A retransmitted delta of the removed replica, or a state that never saw the retire.
    other.join(old);
    other.join(last);
    CHECK(other.value() == 14);
    GCounter away;
    away.join(old);
    away.join(last);
    away.join(other);
    CHECK(away.value() == 14);
    other.join(away);
    CHECK(other == owner);
    CHECK_THROWS_AS((void)owner.retire(3, 1), std::invalid_argument);
    CHECK_THROWS_AS((void)owner.retire(1, 1), std::invalid_argument);
  }

  TEST_CASE("the owner's later increments carry its marks: a replica that missed the "
            "retire never counts the moved total twice") {
    GCounter owner, late;
    const GCounter removed = GCounter{}.increment(3, 5);
    owner.join(removed);
    late.join(removed);
    (void)owner.retire(3, 1);              // this delta is lost on the way to `late`
    const GCounter next = owner.increment(1, 1);
    late.join(next);
    CHECK(late.value() == 6);
    CHECK(late.value_of(3) == 0);
    CHECK(late.retired(3));
  }

  TEST_CASE("forgetting a mark is local; the encoding carries the marks") {
    GCounter x;
    x.join(GCounter{}.increment(3, 5));
    (void)x.retire(3, 1);
    const auto back = deltacrdt::decode<GCounter>(deltacrdt::encode(x));
    REQUIRE(back.has_value());
    CHECK(*back == x);
    CHECK(back->retired_count() == 1);
    x.forget_retired(3);
    CHECK(x.retired_count() == 0);
    CHECK(x.value() == 5);
  }

  TEST_CASE("a hostile element count fails without allocating") {
    std::ostringstream os;
    {
      cereal::PortableBinaryOutputArchive ar(os);
      ar(std::uint64_t{1} << 31);
    }
    const auto r = deltacrdt::detail::decode_payload<GCounter>(std::move(os).str());
    CHECK(r.error() == deltacrdt::make_error_code(Errc::truncated));
  }
}

TEST_SUITE("crdt.pncounter") {
  TEST_CASE("retiring moves both the increments and the decrements of the removed replica") {
    PNCounter owner, other;
    PNCounter removed;
    const PNCounter up = removed.increment(3, 10);
    const PNCounter down = removed.decrement(3, 4);
    for (PNCounter* r : {&owner, &other}) {
      r->join(up);
      r->join(down);
    }
    (void)owner.increment(1, 1);
    const PNCounter retiring = owner.retire(3, 1);
    CHECK(owner.value() == 7);
    other.join(retiring);
    other.join(up);
    CHECK(other.value() == 7);
    CHECK(other.retired(3));
    CHECK(other.increments().value_of(3) == 0);
    CHECK(other.decrements().value_of(3) == 0);
    CHECK(other == owner);
  }

  TEST_CASE("satisfies the lattice laws on random histories") {
    deltacrdt::testing::check_lattice_laws<PNCounterModel>();
  }

  TEST_CASE("rejects truncated and corrupted encodings without crashing") {
    deltacrdt::testing::check_decoder_robustness<PNCounterModel>();
  }

  TEST_CASE("replicas agree on increments minus decrements after exchanging deltas") {
    PNCounter a, b;
    const PNCounter d1 = a.increment(1, 10);
    const PNCounter d2 = b.decrement(2, 3);
    const PNCounter d3 = b.increment(2, 1);
    a.join(d2);
    a.join(d3);
    b.join(d1);
    CHECK(a.value() == 8);
    CHECK(a == b);
  }

  TEST_CASE("duplicated and reordered deltas are not counted twice") {
    PNCounter source;
    const PNCounter d1 = source.increment(1, 4);
    const PNCounter d2 = source.decrement(1, 1);
    const PNCounter d3 = source.decrement(1, 2);
    PNCounter sink;
    for (const PNCounter* d : {&d3, &d1, &d3, &d2, &d1, &d2}) sink.join(*d);
    CHECK(sink.value() == 1);
    CHECK(sink == source);
  }

  TEST_CASE("decrementing below zero gives a negative value") {
    PNCounter x;
    (void)x.increment(1, 2);
    (void)x.decrement(2, 5);
    CHECK(x.value() == -3);
  }

  TEST_CASE("each mutator's delta is a single entry of one half") {
    PNCounter x;
    (void)x.increment(1, 5);
    const PNCounter inc = x.increment(1, 2);
    CHECK(inc.increments().size() == 1);
    CHECK(inc.increments().value_of(1) == 7);
    CHECK(inc.decrements().is_bottom());
    const PNCounter dec = x.decrement(1, 4);
    CHECK(dec.increments().is_bottom());
    CHECK(dec.decrements().size() == 1);
    CHECK(dec.decrements().value_of(1) == 4);
  }

  TEST_CASE("the value is clamped to the int64 range") {
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    PNCounter up, down;
    (void)up.increment(1, kMax);
    (void)down.decrement(1, kMax);
    CHECK(up.value() == std::numeric_limits<std::int64_t>::max());
    CHECK(down.value() == std::numeric_limits<std::int64_t>::min());
    PNCounter edge;
    (void)edge.decrement(1, std::uint64_t{1} << 63);  // exactly INT64_MIN
    CHECK(edge.value() == std::numeric_limits<std::int64_t>::min());
    (void)edge.increment(1, 1);
    CHECK(edge.value() == std::numeric_limits<std::int64_t>::min() + 1);
  }
}
