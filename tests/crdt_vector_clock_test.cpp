// VectorClock: lattice laws, decoder robustness, and the causal comparison.
#include <cstdint>
#include <initializer_list>
#include <utility>

#include <doctest/doctest.h>

#include <vector>

#include "crdt/vector_clock.hpp"
#include "tests/property.hpp"

namespace {

using deltacrdt::ReplicaId;
using deltacrdt::VectorClock;
using deltacrdt::testing::PropertyRng;
using Ordering = VectorClock::Ordering;

struct VectorClockModel {
  using Type = VectorClock;
  static VectorClock mutate(VectorClock& x, ReplicaId self, PropertyRng& rng) {
    if (x.retired(self)) return {};  // a removed replica counts no more
    if (rng.chance(0.1)) {
      std::vector<ReplicaId> others;
      for (const auto& [r, n] : x.entries())
        if (r != self) others.push_back(r);
      if (!others.empty()) return x.retire(others[rng.below(others.size())], self);
    }
    return x.increment(self);
  }
};

// A clock holding exactly these counts, built only through the public mutators.
VectorClock clock_of(std::initializer_list<std::pair<ReplicaId, std::uint64_t>> counts) {
  VectorClock c;
  for (const auto& [r, n] : counts) {
    for (std::uint64_t i = 0; i < n; ++i) (void)c.increment(r);
  }
  return c;
}

}  // namespace

TEST_SUITE("crdt.vector_clock") {
  TEST_CASE("a retired replica's entry is dropped for good; comparisons no longer see it") {
    VectorClock a = clock_of({{1, 2}, {3, 4}});
    VectorClock b = clock_of({{2, 1}, {3, 4}});
    const VectorClock stale = clock_of({{3, 4}});
    const VectorClock retiring = a.retire(3, 1);
    CHECK(a.get(3) == 0);
    CHECK(a.retired(3));
    b.join(retiring);
    CHECK(b.get(3) == 0);
    b.join(stale);
    CHECK(b.get(3) == 0);
    CHECK(b.compare(clock_of({{2, 1}})) == Ordering::equal);  // as if 3 never was
    a.join(b);
    b.join(a);
    CHECK(a == b);
    CHECK(a.retired_count() == 1);
  }

  TEST_CASE("satisfies the lattice laws on random histories") {
    deltacrdt::testing::check_lattice_laws<VectorClockModel>();
  }

  TEST_CASE("rejects truncated and corrupted encodings without crashing") {
    deltacrdt::testing::check_decoder_robustness<VectorClockModel>();
  }

  TEST_CASE("identical clocks compare equal, including two empty clocks") {
    CHECK(VectorClock{}.compare(VectorClock{}) == Ordering::equal);
    const VectorClock a = clock_of({{1, 2}, {2, 1}});
    CHECK(a.compare(clock_of({{2, 1}, {1, 2}})) == Ordering::equal);
    CHECK(a.dominates(a));
  }

  TEST_CASE("a clock that saw a subset of the events is before, and the other after") {
    const VectorClock a = clock_of({{1, 2}});
    const VectorClock b = clock_of({{1, 3}, {2, 1}});
    CHECK(a.compare(b) == Ordering::before);
    CHECK(b.compare(a) == Ordering::after);
    CHECK(VectorClock{}.compare(a) == Ordering::before);
    CHECK(b.dominates(a));
    CHECK_FALSE(a.dominates(b));
  }

  TEST_CASE("clocks with events unknown to each other are concurrent") {
    const VectorClock a = clock_of({{1, 2}, {2, 1}});
    const VectorClock b = clock_of({{1, 1}, {2, 2}});
    CHECK(a.compare(b) == Ordering::concurrent);
    CHECK(b.compare(a) == Ordering::concurrent);
    CHECK_FALSE(a.dominates(b));
    CHECK_FALSE(b.dominates(a));
    // Disjoint replicas: neither saw the other's event.
    CHECK(clock_of({{1, 1}}).compare(clock_of({{2, 1}})) == Ordering::concurrent);
  }

  TEST_CASE("merging concurrent clocks gives a clock after both") {
    VectorClock a = clock_of({{1, 2}, {2, 1}});
    const VectorClock b = clock_of({{1, 1}, {2, 2}, {3, 4}});
    const VectorClock a0 = a;
    a.merge(b);
    CHECK(a == clock_of({{1, 2}, {2, 2}, {3, 4}}));
    CHECK(a.compare(a0) == Ordering::after);
    CHECK(a.compare(b) == Ordering::after);
    CHECK(a.dominates(b));
  }

  TEST_CASE("an increment is after the clock it came from and its delta is one entry") {
    VectorClock a = clock_of({{1, 3}, {2, 5}});
    const VectorClock before = a;
    const VectorClock d = a.increment(2);
    CHECK(a.compare(before) == Ordering::after);
    CHECK(a.get(2) == 6);
    CHECK(a.get(7) == 0);
    REQUIRE(d.size() == 1);
    CHECK(d.get(2) == 6);
    // A replica that only receives the delta learns the event but not its past.
    VectorClock other;
    other.join(d);
    CHECK(other.compare(a) == Ordering::before);
    CHECK(other.compare(before) == Ordering::concurrent);
  }

  TEST_CASE("the delta of an event received late still orders correctly after merging") {
    VectorClock a, b;
    const VectorClock d1 = a.increment(1);
    const VectorClock d2 = a.increment(1);
    b.join(d2);
    b.join(d1);  // stale delta after the newer one changes nothing
    CHECK(b == a);
    CHECK(b.novel_part(d1).is_bottom());
  }
}
