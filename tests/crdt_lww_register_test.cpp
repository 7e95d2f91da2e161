// LWWRegister: lattice laws, decoder robustness, and the (timestamp, writer) total order
// that keeps replicas from diverging on equal timestamps.
#include <cstdint>
#include <sstream>
#include <string>

#include <cereal/archives/portable_binary.hpp>
#include <doctest/doctest.h>

#include "crdt/hlc.hpp"
#include "crdt/lww_register.hpp"
#include "tests/property.hpp"

namespace {

using deltacrdt::Errc;
using deltacrdt::HlcTimestamp;
using deltacrdt::HybridClock;
using deltacrdt::ReplicaId;
using deltacrdt::testing::PropertyRng;
using Register = deltacrdt::LWWRegister<std::string>;

HlcTimestamp ts(std::uint64_t physical_ms, std::uint64_t logical = 0) {
  return HlcTimestamp::from_parts(physical_ms, logical);
}

// Most writes are stamped the way a correct replica stamps them: by an HLC that has
// observed the state's current write (a fresh clock observing it is what a long-lived
// per-replica clock would give here, and keeps every case replayable from its seed).
// rng.physical_ms() repeats, so different writers often share a timestamp. The remaining
// writes use raw timestamps and sometimes another replica's id: stale writes, and one
// (timestamp, writer) pair carrying two values - misuse (a reused replica id), but the laws
// must hold even then, and only this makes the value tie-break reachable.
template <class V, V (*Value)(PropertyRng&)>
struct RegisterModel {
  using Type = deltacrdt::LWWRegister<V>;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    if (rng.chance(0.75)) {
      HybridClock clock;
      return x.assign(self, Value(rng), clock, rng.physical_ms());
    }
    const ReplicaId writer = rng.chance(0.5) ? self : 1 + rng.below(5);
    return x.assign(writer, Value(rng), ts(rng.physical_ms(), rng.below(3)));
  }
};

std::string string_value(PropertyRng& rng) { return rng.value(); }
std::uint64_t integer_value(PropertyRng& rng) { return rng.below(8); }

using StringModel = RegisterModel<std::string, &string_value>;
using IntegerModel = RegisterModel<std::uint64_t, &integer_value>;

Register joined(Register x, const Register& y) {
  x.join(y);
  return x;
}

}  // namespace

TEST_SUITE("crdt.lww_register") {
  TEST_CASE("satisfies the lattice laws on random histories") {
    deltacrdt::testing::check_lattice_laws<StringModel>();
  }

  TEST_CASE("satisfies the lattice laws with integer values") {
    deltacrdt::testing::check_lattice_laws<IntegerModel>();
  }

  TEST_CASE("rejects truncated and corrupted encodings without crashing") {
    deltacrdt::testing::check_decoder_robustness<StringModel>();
  }

  TEST_CASE("a register never written reads as nothing") {
    const Register r;
    CHECK(r.get() == nullptr);
    CHECK_FALSE(r.timestamp().has_value());
    CHECK(r.is_bottom());
  }

  TEST_CASE("the write with the later timestamp wins in either delivery order") {
    Register a, b;
    const Register early = a.assign(1, "early", ts(1000));
    const Register late = b.assign(2, "late", ts(1001));
    a.join(late);
    b.join(early);
    REQUIRE(a.get() != nullptr);
    CHECK(*a.get() == "late");
    CHECK(a == b);
    CHECK(a.timestamp() == ts(1001));
    CHECK(a.writer() == ReplicaId{2});
  }

  TEST_CASE("equal timestamps are resolved by writer id identically on both replicas") {
    // The values order the other way round, so only the writer id can pick "a".
    Register a, b;
    const Register da = a.assign(7, "a", ts(1000, 3));
    const Register db = b.assign(3, "b", ts(1000, 3));
    a.join(db);
    b.join(da);
    CHECK(a == b);
    CHECK(*a.get() == "a");
    CHECK(a.digest() == b.digest());
  }

  TEST_CASE("a reused timestamp with different values still resolves identically") {
    // Misuse (one writer, one timestamp, two values), yet both join orders must agree.
    const Register x = Register{}.assign(1, "apple", ts(1000));
    const Register y = Register{}.assign(1, "pear", ts(1000));
    CHECK(joined(x, y) == joined(y, x));
    CHECK(x.leq(joined(x, y)));
    CHECK(y.leq(joined(x, y)));
  }

  TEST_CASE("a causally later write wins even when its writer's wall clock is behind") {
    HybridClock clock_a, clock_b;
    Register a, b;
    const Register first = a.assign(9, "first", clock_a, 50'000);  // A's wall runs ahead
    b.join(first);
    const Register second = b.assign(1, "second", clock_b, 1'000);  // B's wall is behind
    CHECK(*second.timestamp() > *first.timestamp());
    a.join(second);
    CHECK(*a.get() == "second");
    CHECK(a == b);
  }

  TEST_CASE("a stale write returns a bottom delta and leaves the value unchanged") {
    Register r;
    (void)r.assign(1, "new", ts(2000));
    const Register before = r;
    CHECK(r.assign(2, "old", ts(1000)).is_bottom());
    CHECK(r.assign(1, "new", ts(2000)).is_bottom());  // exactly the current write
    CHECK(r == before);
  }

  TEST_CASE("the novel part of a delta is all of it or nothing") {
    const Register newer = Register{}.assign(1, "b", ts(2000));
    const Register older = Register{}.assign(1, "a", ts(1000));
    CHECK(older.novel_part(newer) == newer);
    CHECK(newer.novel_part(older).is_bottom());
    CHECK(Register{}.novel_part(older) == older);
  }

  TEST_CASE("a presence flag other than 0 or 1 is rejected as corrupt") {
    std::ostringstream os;
    {
      cereal::PortableBinaryOutputArchive ar(os);
      ar(std::uint8_t{2});
    }
    const auto r = deltacrdt::detail::decode_payload<Register>(std::move(os).str());
    CHECK(r.error() == deltacrdt::make_error_code(Errc::corrupt));
  }
}
