// GCounter and PNCounter: lattice laws, decoder robustness, and counting semantics under
// duplicated and reordered delta delivery.
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

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

struct GCounterModel {
  using Type = GCounter;
  static GCounter mutate(GCounter& x, ReplicaId self, PropertyRng& rng) {
    return x.increment(self, random_amount(rng));
  }
};

struct PNCounterModel {
  using Type = PNCounter;
  static PNCounter mutate(PNCounter& x, ReplicaId self, PropertyRng& rng) {
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
