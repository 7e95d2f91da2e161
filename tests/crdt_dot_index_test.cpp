// DotIndex against a reference map, over long random histories: windows that grow, gap,
// fold into the sparse map when overwrites leave them mostly empty, and restart.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "crdt/awlww_map.hpp"
#include "crdt/dot_index.hpp"
#include "tests/property.hpp"

using deltacrdt::Dot;
using deltacrdt::detail::DotIndex;
using deltacrdt::testing::PropertyRng;

TEST_SUITE("crdt.dot_index") {
  TEST_CASE("finds exactly what a reference map holds through growth, gaps and folds") {
    deltacrdt::testing::for_each_case(50, [](PropertyRng& rng) {
      DotIndex index;
      std::map<Dot, std::uint32_t> reference;
      std::uint64_t next[3] = {1, 1, 1};
      for (int step = 0; step < 4000; ++step) {
        const auto r = rng.below(3);
        const auto roll = rng.below(100);
        if (roll < 55) {
          // Mostly the next counter; sometimes a gap, sometimes an old counter (late arrival).
          std::uint64_t c = next[r];
          if (rng.chance(0.1)) c += rng.below(200);
          if (rng.chance(0.05) && c > 10) c -= 1 + rng.below(std::min<std::uint64_t>(c - 1, 300));
          next[r] = std::max(next[r], c + 1);
          const auto pos = static_cast<std::uint32_t>(rng.below(100000));
          index.insert_or_assign(Dot{r + 1, c}, pos);
          reference[Dot{r + 1, c}] = pos;
        } else if (roll < 95 && !reference.empty()) {
          // Erase (overwrites retire old dots), biased to older ones so windows thin out.
          auto it = reference.begin();
          std::advance(it,
                       static_cast<long>(rng.below(std::min<std::uint64_t>(reference.size(), 64))));
          index.erase(it->first);
          reference.erase(it);
        } else if (!reference.empty()) {
          // Reassign an existing dot (an entry moved to another position).
          auto it = reference.begin();
          std::advance(it, static_cast<long>(rng.below(reference.size())));
          it->second = static_cast<std::uint32_t>(rng.below(100000));
          index.insert_or_assign(it->first, it->second);
        }
      }
      REQUIRE(index.size() == reference.size());
      for (const auto& [d, pos] : reference) REQUIRE(index.find(d) == pos);
      for (std::uint64_t r = 1; r <= 3; ++r) {
        for (std::uint64_t c = 1; c < next[r - 1] + 5; ++c) {
          REQUIRE(index.contains(Dot{r, c}) == reference.contains(Dot{r, c}));
        }
      }
    });
  }

  TEST_CASE("a large map with heavy overwrites converges and stays valid") {
    using Map = deltacrdt::AWLWWMap<std::string, std::string>;
    PropertyRng rng(deltacrdt::testing::base_seed());
    Map a, b;
    std::vector<Map> from_a, from_b;
    for (int i = 0; i < 6000; ++i) {
      Map& x = rng.chance(0.5) ? a : b;
      auto& out = &x == &a ? from_a : from_b;
      const deltacrdt::ReplicaId self = &x == &a ? 1 : 2;
      const std::string key = "k" + std::to_string(rng.below(300));
      if (rng.chance(0.85)) {
        out.push_back(x.put(self, key, rng.value(), deltacrdt::HlcTimestamp{rng.below(1000)}));
      } else {
        out.push_back(x.remove(key));
      }
    }
    std::shuffle(from_b.begin(), from_b.end(), rng.engine());
    for (const Map& d : from_b) a.join(d);
    for (const Map& d : from_a) b.join(d);
    CHECK(a == b);
    CHECK(a.valid());
    CHECK(b.valid());
    CHECK(a.size() > 200);
  }
}
