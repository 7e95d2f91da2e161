// KeyIndex against a reference map over long random histories: growth, tombstone churn,
// relocation, copies, and hashes that collide on purpose (the index then tells keys apart
// only through the caller's comparison).
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <vector>

#include "crdt/key_index.hpp"
#include "tests/property.hpp"

using deltacrdt::detail::KeyIndex;
using deltacrdt::testing::PropertyRng;

namespace {

// Keys are integers; positions are slots of `at` (position -> key), as in EntryTable.
struct Model {
  KeyIndex index;
  std::vector<std::uint64_t> at;                 // position -> key, dense
  std::map<std::uint64_t, std::uint32_t> where;  // key -> position
  std::uint32_t hash_mask;                       // narrow masks force collisions

  std::uint32_t hash(std::uint64_t key) const {
    return static_cast<std::uint32_t>((key * 0x9e3779b97f4a7c15ULL) >> 29) & hash_mask;
  }
  std::uint32_t find(const KeyIndex& ix, std::uint64_t key) const {
    return ix.find(hash(key), [&](std::uint32_t p) { return at[p] == key; });
  }
  void insert(std::uint64_t key) {
    const auto pos = static_cast<std::uint32_t>(at.size());
    at.push_back(key);
    where[key] = pos;
    index.insert(hash(key), pos);
  }
  // EntryTable's erase: the last position moves into the hole.
  void erase(std::uint64_t key) {
    const std::uint32_t pos = where.at(key);
    const auto last = static_cast<std::uint32_t>(at.size() - 1);
    index.erase(hash(key), pos);
    where.erase(key);
    if (pos != last) {
      index.relocate(hash(at[last]), last, pos);
      at[pos] = at[last];
      where[at[pos]] = pos;
    }
    at.pop_back();
  }
};

}  // namespace

TEST_SUITE("crdt.key_index") {
  TEST_CASE("finds exactly what a reference map holds through growth, churn and collisions") {
    deltacrdt::testing::for_each_case(50, [](PropertyRng& rng) {
      const std::uint32_t masks[] = {0xffffffffu, 0xffu, 0x3u, 0x0u};
      Model m{KeyIndex{}, {}, {}, masks[rng.below(4)]};
      const std::uint64_t universe = 50 + rng.below(3000);
      if (rng.chance(0.3)) m.index.reserve(rng.below(2000));
      const int steps = m.hash_mask <= 0x3u ? 600 : 6000;  // colliding hashes probe linearly
      for (int step = 0; step < steps; ++step) {
        const std::uint64_t key = rng.below(universe);
        const bool present = m.where.contains(key);
        if (!present && rng.below(100) < 60) {
          m.insert(key);
        } else if (present && rng.below(100) < 70) {
          m.erase(key);
        }
        if (step % 500 == 0) {
          const KeyIndex copy = m.index;  // a copy answers alike and is independent
          m.insert(universe + static_cast<std::uint64_t>(step));
          REQUIRE(m.find(copy, universe + static_cast<std::uint64_t>(step)) == KeyIndex::kNone);
          REQUIRE(m.find(m.index, universe + static_cast<std::uint64_t>(step)) != KeyIndex::kNone);
          m.erase(universe + static_cast<std::uint64_t>(step));
        }
      }
      REQUIRE(m.index.size() == m.where.size());
      for (std::uint64_t k = 0; k < universe; ++k) {
        const auto it = m.where.find(k);
        REQUIRE(m.find(m.index, k) == (it == m.where.end() ? KeyIndex::kNone : it->second));
      }
      m.index.clear();
      CHECK(m.index.size() == 0);
      CHECK(m.find(m.index, 0) == KeyIndex::kNone);
    });
  }
}
