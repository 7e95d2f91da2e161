// CausalContext as a set of dots: every operation checked against a plain set model on
// random contexts, and contexts claiming counters up to the sanity bound (and beyond it,
// from hostile bytes) handled by ranges in bounded time.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "crdt/awlww_map.hpp"
#include "crdt/causal_context.hpp"
#include "crdt/causal_counter.hpp"
#include "crdt/codec.hpp"
#include "crdt/ormap.hpp"
#include "crdt/orset.hpp"
#include "tests/property.hpp"

using namespace deltacrdt;
using deltacrdt::testing::for_each_case;
using deltacrdt::testing::PropertyRng;

namespace {

using Model = std::set<Dot>;
constexpr std::uint64_t kSpan = 48;  // counters 1..kSpan: runs, gaps and overlaps are common

// A random context built the ways contexts are built: single dots, runs, joins of others.
CausalContext random_context(PropertyRng& rng, Model& model, int depth = 0) {
  CausalContext c;
  const std::uint64_t steps = rng.below(12);
  for (std::uint64_t i = 0; i < steps; ++i) {
    const ReplicaId r = 1 + rng.below(3);
    const auto roll = rng.below(10);
    if (roll < 5) {
      const std::uint64_t n = 1 + rng.below(kSpan);
      c.insert(Dot{r, n});
      model.insert(Dot{r, n});
    } else if (roll < 8) {
      const std::uint64_t a = 1 + rng.below(kSpan);
      const std::uint64_t b = a + rng.below(kSpan - a + 1);
      c.insert_range(r, a, b);
      for (std::uint64_t n = a; n <= b; ++n) model.insert(Dot{r, n});
    } else if (depth < 2) {
      Model other_model;
      const CausalContext other = random_context(rng, other_model, depth + 1);
      c.join(other);
      model.insert(other_model.begin(), other_model.end());
    }
  }
  return c;
}

Model model_of(const CausalContext& c) {
  Model m;
  c.for_each_dot([&](const Dot& d) { m.insert(d); });
  return m;
}

// Bytes of `c` in format version 1 (cloud dot by dot), as an older build wrote them.
std::string encode_v1(const CausalContext& c) {
  std::string out = encode(c);
  std::string payload;
  {
    ByteOutputArchive ar(payload);
    const auto vec = c.sorted_vector();
    ar(static_cast<std::uint64_t>(vec.size()));
    for (const auto& [r, n] : vec) ar(r, n);
    std::uint64_t dots = 0;
    for (const DotRange& x : c.sorted_cloud()) dots += x.last - x.first + 1;
    ar(dots);
    for (const DotRange& x : c.sorted_cloud()) {
      for (std::uint64_t n = x.first; n <= x.last; ++n) ar(x.replica, n);
    }
  }
  std::string bytes = out.substr(0, kEncodingHeaderBytes);
  bytes[6] = 1;  // format version 1
  bytes[7] = 0;
  bytes += payload;
  detail::append_le64(bytes, detail::hash_bytes(bytes));
  return bytes;
}

}  // namespace

TEST_SUITE("crdt.causal_context") {
  TEST_CASE("contexts agree with a set of dots in every operation") {
    for_each_case(1, [](PropertyRng& rng) {
      Model ma, mb;
      const CausalContext a = random_context(rng, ma);
      const CausalContext b = random_context(rng, mb);
      REQUIRE(model_of(a) == ma);
      REQUIRE(a.dot_count() == ma.size());
      for (int k = 0; k < 8; ++k) {
        const Dot d{1 + rng.below(3), 1 + rng.below(kSpan + 2)};
        REQUIRE(a.contains(d) == ma.contains(d));
      }
      for (ReplicaId r = 1; r <= 3; ++r) {
        std::uint64_t top = 0;
        while (ma.contains(Dot{r, top + 1})) ++top;
        REQUIRE(a.max_contiguous(r) == top);
        std::uint64_t highest = 0;
        for (const Dot& d : ma) highest = d.replica == r ? std::max(highest, d.counter) : highest;
        REQUIRE(a.max_counter(r) == highest);
        REQUIRE(a.next_dot(r) == Dot{r, highest + 1});
      }
      const bool subset = std::includes(mb.begin(), mb.end(), ma.begin(), ma.end());
      REQUIRE(a.leq(b) == subset);
      REQUIRE((a == b) == (ma == mb));

      CausalContext joined = a;
      joined.join(b);
      Model mu = ma;
      mu.insert(mb.begin(), mb.end());
      REQUIRE(model_of(joined) == mu);
      REQUIRE(a.leq(joined));
      REQUIRE(b.leq(joined));

      Model diff;
      std::set_difference(ma.begin(), ma.end(), mb.begin(), mb.end(),
                          std::inserter(diff, diff.end()));
      REQUIRE(model_of(a.missing_from(b)) == diff);
      std::uint64_t runs_total = 0;
      a.for_each_range_missing_from(b, [&](const DotRange& x) {
        REQUIRE(x.first >= 1);
        REQUIRE(x.first <= x.last);
        runs_total += x.last - x.first + 1;
      });
      REQUIRE(runs_total == diff.size());

      // Equal sets are equal values with equal bytes and digests, however they were built.
      CausalContext rebuilt;
      for (const Dot& d : ma) rebuilt.insert(d);
      REQUIRE(rebuilt == a);
      REQUIRE(encode(rebuilt) == encode(a));
      std::string ca, cb;
      a.append_canonical(ca);
      rebuilt.append_canonical(cb);
      REQUIRE(ca == cb);

      const Result<CausalContext> back = decode<CausalContext>(encode(a));
      REQUIRE(back.has_value());
      REQUIRE(*back == a);
      const Result<CausalContext> old = decode<CausalContext>(encode_v1(a));
      REQUIRE(old.has_value());
      REQUIRE(*old == a);
    });
  }

  TEST_CASE("runs of any length cost one entry, and every operation on them stays bounded") {
    const std::uint64_t top = kMaxDotCounter;
    CausalContext huge;
    huge.insert_range(7, 5, top);  // all but dots 1..4 of replica 7
    CHECK(huge.cloud_runs() == 1);
    CHECK(huge.contains(Dot{7, top}));
    CHECK_FALSE(huge.contains(Dot{7, 4}));
    CHECK(huge.dot_count() == top - 4);
    CHECK(huge.leq(huge));
    CausalContext small;
    small.insert(Dot{7, 3});
    CHECK_FALSE(huge.leq(small));
    CHECK_FALSE(small.leq(huge));
    small.join(huge);
    CHECK(small.cloud_runs() == 2);  // 3 and 5.. are not adjacent
    small.insert(Dot{7, 4});
    CHECK(small.cloud_runs() == 1);  // 3..top is one run now, but 1..2 are still missing
    CHECK(small.cloud_size() == top - 2);
    small.insert_range(7, 1, 2);
    CHECK(small.cloud_runs() == 0);
    CHECK(small.max_contiguous(7) == top);
    CHECK(huge.leq(small));
    const CausalContext missing = small.missing_from(huge);
    CHECK(missing.dot_count() == 4);
    CHECK(missing.contains(Dot{7, 1}));
    CHECK_FALSE(missing.contains(Dot{7, 5}));
    const Result<CausalContext> back = decode<CausalContext>(encode(huge));
    REQUIRE(back.has_value());
    CHECK(*back == huge);
  }

  TEST_CASE("decoding rejects counters beyond the sanity bound as corrupt") {
    for (const std::uint64_t bad : {kMaxDotCounter + 1, UINT64_MAX}) {
      CAPTURE(bad);
      std::string payload;
      {
        ByteOutputArchive ar(payload);
        ar(std::uint64_t{1}, ReplicaId{0xEE}, bad, std::uint64_t{0});
      }
      CHECK(detail::decode_payload<CausalContext>(payload).error() == Errc::corrupt);
      std::string run;
      {
        ByteOutputArchive ar(run);
        ar(std::uint64_t{0}, std::uint64_t{1}, ReplicaId{0xEE}, std::uint64_t{3}, bad);
      }
      CHECK(detail::decode_payload<CausalContext>(run).error() == Errc::corrupt);
    }
    std::string reversed;  // a run whose end comes before its start
    {
      ByteOutputArchive ar(reversed);
      ar(std::uint64_t{0}, std::uint64_t{1}, ReplicaId{1}, std::uint64_t{9}, std::uint64_t{3});
    }
    CHECK(detail::decode_payload<CausalContext>(reversed).error() == Errc::corrupt);
  }

  TEST_CASE("a replica at the largest counter refuses to issue a dot, changing nothing") {
    CausalContext c;
    c.insert_range(5, 1, kMaxDotCounter);
    CHECK_THROWS_AS((void)c.make_dot(5), std::overflow_error);
    CHECK(c.max_contiguous(5) == kMaxDotCounter);
    AWLWWMap<std::string, std::string> m;
    AWLWWMap<std::string, std::string> claim;
    claim.join(m.context_delta(c));
    m.join(claim);
    const auto before = m;
    CHECK_THROWS_AS((void)m.put(5, "k", "v", HlcTimestamp::from_parts(1, 0)), std::overflow_error);
    CHECK(m == before);
    ORMap<std::string, CausalCounter> counters;
    (void)counters.update("a", [](CausalCounter::Ref& x) { return x.increment(5); });
    counters.join(ORMap<std::string, CausalCounter>{}.context_delta(c));
    const auto counters_before = counters;
    CHECK_THROWS_AS(
        (void)counters.update("a", [](CausalCounter::Ref& x) { return x.increment(5); }),
        std::overflow_error);
    CHECK(counters == counters_before);
    ORSet<std::string> set;
    set.join(ORSet<std::string>{}.context_delta(c));
    const auto set_before = set;
    CHECK_THROWS_AS((void)set.add(5, "e"), std::overflow_error);
    CHECK(set == set_before);
  }
}

TEST_SUITE("crdt.hostile_context") {
  // The 57-byte delta: an AWLWWMap with no entries whose context claims 2^62 dots of one
  // replica. Applying it (novel part, join, catch-up's context delta, order) must take
  // time proportional to the states, not to the counters.
  TEST_CASE("a delta claiming 2^62 dots is applied in bounded time") {
    using Map = AWLWWMap<std::string, std::string>;
    CausalContext claim;
    claim.insert_range(0xEE, 1, kMaxDotCounter);
    Map attacker;
    attacker.join(Map{}.context_delta(claim));
    const std::string bytes = encode(attacker);
    CHECK(bytes.size() == 57);
    const Result<Map> d = decode<Map>(bytes);
    REQUIRE(d.has_value());

    Map victim;
    for (int i = 0; i < 100; ++i) {
      (void)victim.put(1, "k" + std::to_string(i), "v", HlcTimestamp::from_parts(1, 0));
    }
    const Map novel = victim.novel_part(*d);
    CHECK(novel.context().dot_count() == kMaxDotCounter);
    CHECK(victim.context_delta(d->context()).context() == d->context());
    CHECK(d->leq(*d));
    CHECK_FALSE(d->leq(victim));
    victim.join(novel);
    CHECK(victim.size() == 100);  // none of its slots carried a dot of 0xEE
    CHECK(d->leq(victim));
    CHECK(victim.novel_part(*d).is_bottom());
    CHECK(victim.valid());
    // A neighbour that holds nothing takes it over whole and passes it on alike.
    Map empty;
    empty.join(*d);
    Map third;
    (void)third.put(2, "x", "y", HlcTimestamp::from_parts(1, 0));
    third.join(third.novel_part(empty));
    CHECK(third.contains("x"));
    CHECK(d->leq(third));
  }

  TEST_CASE("the same claim in ORSet and ORMap contexts is applied in bounded time") {
    CausalContext claim;
    claim.insert_range(0xEE, 1, kMaxDotCounter);
    ORSet<std::string> s;
    (void)s.add(1, "a");
    const ORSet<std::string> hostile = ORSet<std::string>{}.context_delta(claim);
    const auto novel = s.novel_part(hostile);
    s.join(novel);
    CHECK(s.contains("a"));
    CHECK(hostile.leq(s));
    ORMap<std::string, CausalCounter> m;
    (void)m.update("k", [](CausalCounter::Ref& c) { return c.increment(1); });
    const auto hostile_map = ORMap<std::string, CausalCounter>{}.context_delta(claim);
    m.join(m.novel_part(hostile_map));
    CHECK(m.contains("k"));
    const Result<ORSet<std::string>> back = decode<ORSet<std::string>>(encode(hostile));
    REQUIRE(back.has_value());
    CHECK(*back == hostile);
  }
}
