// Catch-up by key-hash ranges for the keyed causal types (ORSet, ORMap): the same law as
// for AWLWWMap (crdt_awlww_map_test.cpp), on random histories of each.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "crdt/bucketed.hpp"
#include "tests/crdt_models.hpp"
#include "tests/property.hpp"

using namespace deltacrdt;
using namespace deltacrdt::testing;

namespace {

std::uint64_t key_hash(const std::string& k) {
  std::string buf;
  detail::append_canonical(buf, k);
  return detail::hash_bytes(buf);
}

// Joining, restricted to their keys, every bucket whose digest differs, and then the
// sender's context, gives exactly Y ⊔ X, and never disturbs the keys of other buckets.
template <class Model>
void check_bucket_catchup_law() {
  using T = typename Model::Type;
  static_assert(BucketedCrdt<T>);
  for_each_case(2, [](PropertyRng& rng) {
    const auto h = random_history<Model>(rng);
    const T x = pick(h, rng), y = pick(h, rng);
    const unsigned level = static_cast<unsigned>(rng.below(4));
    const std::uint64_t seed = rng.below(1000);
    const auto ex = x.hashed_entries(seed), ey = y.hashed_entries(seed);
    REQUIRE(ex.size() == x.size());
    const auto bucket_of = [&](std::uint64_t kh) { return level == 0 ? 0 : kh >> (64 - level); };
    std::vector<std::uint64_t> dx(std::size_t{1} << level, 0), dy = dx;
    for (const auto& e : ex) dx[bucket_of(e.key_hash)] += e.entry_hash;
    for (const auto& e : ey) dy[bucket_of(e.key_hash)] += e.entry_hash;
    std::vector<std::uint64_t> differing;
    for (std::uint64_t b = 0; b < dx.size(); ++b) {
      if (dx[b] != dy[b]) differing.push_back(b);
    }
    std::shuffle(differing.begin(), differing.end(), rng.engine());
    T caught_up = y;
    for (std::uint64_t b : differing) {
      const KeyHashRange range = bucket_range(b, level);
      std::vector<std::uint32_t> indices;
      for (const auto& e : ex) {
        if (e.key_hash >= range.lo && e.key_hash <= range.hi) indices.push_back(e.index);
      }
      const T part = x.extract_entries(indices);
      REQUIRE(part.valid());
      REQUIRE(part.size() == indices.size());
      const T delta = caught_up.range_delta(part, x.context(), std::span(&range, 1));
      REQUIRE(delta.valid());
      caught_up.join(delta);
      // Keys of the other buckets are untouched so far.
      y.store().for_each([&](const std::string& k, const auto& child) {
        if (std::find(differing.begin(), differing.end(), bucket_of(key_hash(k))) !=
            differing.end()) {
          return;
        }
        const auto* now = caught_up.store().find(k);
        REQUIRE(now != nullptr);
        REQUIRE(*now == child);
      });
    }
    CHECK(x.extract_entries({}).is_bottom());
    caught_up.join(caught_up.context_delta(x.context()));
    T expected = y;
    expected.join(x);
    REQUIRE(caught_up == expected);
    REQUIRE(caught_up.valid());
  });
}

}  // namespace

TEST_SUITE("crdt.buckets") {
  TEST_CASE("ORSet: joining the differing buckets and then the context equals the full join") {
    check_bucket_catchup_law<ORSetModel>();
  }
  TEST_CASE("ORMap of counters: the same law") { check_bucket_catchup_law<CounterMapModel>(); }
  TEST_CASE("ORMap of maps of sets: the same law") { check_bucket_catchup_law<NestedMapModel>(); }
}
