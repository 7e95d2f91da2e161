// HybridClock: monotone whatever the wall clock does, and ordering every event after all
// it has observed - the guarantees the LWW types build on.
#include <algorithm>
#include <cstdint>

#include <doctest/doctest.h>

#include "crdt/hlc.hpp"
#include "tests/property.hpp"

namespace {

using deltacrdt::HlcTimestamp;
using deltacrdt::HybridClock;
using deltacrdt::testing::PropertyRng;

constexpr std::uint64_t kLogicalMax = HlcTimestamp::kLogicalMask;

// Next wall reading of a badly behaved clock: mostly small steps forward, but it also
// stalls, steps back (NTP corrections) and jumps far either way.
std::uint64_t next_wall(std::uint64_t wall, PropertyRng& rng) {
  switch (rng.below(6)) {
    case 0:
      return wall;  // stalled
    case 1:
      return wall > 5 ? wall - 1 - rng.below(5) : wall;  // small step back
    case 2:
      return wall > 100'000 ? wall - rng.below(100'000) : 0;  // big step back
    case 3:
      return wall + 10'000 + rng.below(100'000);  // big jump forward
    default:
      return wall + rng.below(3);
  }
}

}  // namespace

TEST_SUITE("crdt.hlc") {
  TEST_CASE("timestamps strictly increase while the wall clock stalls and goes backwards") {
    deltacrdt::testing::for_each_case(10, [](PropertyRng& rng) {
      HybridClock clock;
      std::uint64_t wall = 1'000'000;
      HlcTimestamp prev = clock.last();
      for (int step = 0; step < 5000; ++step) {
        wall = next_wall(wall, rng);
        const HlcTimestamp t = clock.now(wall);
        REQUIRE(t > prev);
        REQUIRE(t.physical_ms() >= wall);  // never behind the wall clock it was given
        REQUIRE(clock.last() == t);
        prev = t;
      }
    });
  }

  TEST_CASE("observe returns a timestamp after the remote one and after the previous one") {
    deltacrdt::testing::for_each_case(10, [](PropertyRng& rng) {
      HybridClock clock;
      std::uint64_t wall = 1'000'000;
      HlcTimestamp prev = clock.last();
      for (int step = 0; step < 2000; ++step) {
        wall = next_wall(wall, rng);
        if (rng.chance(0.5)) {
          // Remote clocks skewed both ways, sometimes exactly equal to ours.
          const std::uint64_t skewed =
              wall + rng.below(200'000) - std::min<std::uint64_t>(wall, 100'000);
          const HlcTimestamp remote =
              rng.chance(0.2) ? prev : HlcTimestamp::from_parts(skewed, rng.below(kLogicalMax + 1));
          const HlcTimestamp t = clock.observe(remote, wall);
          REQUIRE(t > remote);
          REQUIRE(t > prev);
          prev = t;
        } else {
          const HlcTimestamp t = clock.now(wall);
          REQUIRE(t > prev);
          prev = t;
        }
      }
    });
  }

  TEST_CASE("follows the wall clock when the wall clock is ahead") {
    HybridClock clock;
    CHECK(clock.now(1000) == HlcTimestamp::from_parts(1000, 0));
    CHECK(clock.now(1000) == HlcTimestamp::from_parts(1000, 1));
    CHECK(clock.now(999) == HlcTimestamp::from_parts(1000, 2));
    CHECK(clock.now(2000) == HlcTimestamp::from_parts(2000, 0));
  }

  TEST_CASE("a write that observed another is ordered after it despite a wall clock far behind") {
    HybridClock a, b;
    const HlcTimestamp write_a = a.now(9'000'000);  // A's wall clock runs hours ahead
    (void)b.now(1'000);
    const HlcTimestamp receive = b.observe(write_a, 1'001);
    const HlcTimestamp write_b = b.now(1'002);
    CHECK(receive > write_a);
    CHECK(write_b > write_a);
    CHECK(write_b.physical_ms() == write_a.physical_ms());  // no more than needed
    // Without observing, B's write would have been ordered first: the HLC is what fixes it.
    HybridClock unaware;
    CHECK(unaware.now(1'002) < write_a);
  }

  TEST_CASE("logical counter overflow borrows a millisecond and stays monotone") {
    HybridClock clock;
    HlcTimestamp prev = clock.now(5000);
    for (std::uint64_t i = 0; i < kLogicalMax; ++i) prev = clock.now(5000);
    REQUIRE(prev == HlcTimestamp::from_parts(5000, kLogicalMax));
    const HlcTimestamp borrowed = clock.now(5000);
    CHECK(borrowed > prev);
    CHECK(borrowed == HlcTimestamp::from_parts(5001, 0));
    // The real millisecond 5001 then arrives: still strictly after the borrowed one.
    const HlcTimestamp next = clock.now(5001);
    CHECK(next > borrowed);
    CHECK(next == HlcTimestamp::from_parts(5001, 1));

    // Observing a remote timestamp at the end of its logical range borrows as well.
    HybridClock other;
    const HlcTimestamp remote = HlcTimestamp::from_parts(7000, kLogicalMax);
    const HlcTimestamp t = other.observe(remote, 6000);
    CHECK(t > remote);
    CHECK(t == HlcTimestamp::from_parts(7001, 0));
  }

  TEST_CASE("integer order of packed timestamps is (physical, logical) order") {
    CHECK(HlcTimestamp::from_parts(10, kLogicalMax) < HlcTimestamp::from_parts(11, 0));
    CHECK(HlcTimestamp::from_parts(10, 1) < HlcTimestamp::from_parts(10, 2));
    const HlcTimestamp t = HlcTimestamp::from_parts(123'456, 789);
    CHECK(t.physical_ms() == 123'456);
    CHECK(t.logical() == 789);
  }
}
