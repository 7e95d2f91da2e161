// Catch-up by key-hash ranges: what a key-based CRDT offers the replication engine so that
// a replica that mostly agrees with a neighbour is sent only what differs (docs/protocol.md,
// "Digest catch-up"). Keys are placed on a 64-bit line by the xxHash3 of their canonical
// bytes; a bucket of the hash tree at depth L is the range of hashes sharing their top L
// bits. Pure: no I/O, clocks or threads.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "crdt/causal_context.hpp"
#include "crdt/concept.hpp"
#include "crdt/dot.hpp"

namespace deltacrdt {

// One entry (one key and all its slots) of a state, summarised for digest comparison.
struct HashedEntry {
  std::uint64_t key_hash = 0;    // where the key sits on the hash line (stable everywhere)
  std::uint64_t entry_hash = 0;  // seeded hash of the key and all of its slots (content)
  std::uint32_t index = 0;       // position in the state's iteration order
};

// An inclusive range [lo, hi] of key hashes.
struct KeyHashRange {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  friend bool operator==(const KeyHashRange&, const KeyHashRange&) = default;
};

inline constexpr unsigned kMaxBucketLevel = 64;

// The key hashes of bucket `b` at depth `level` (0..64): those whose top `level` bits are b.
constexpr KeyHashRange bucket_range(std::uint64_t b, unsigned level) {
  if (level == 0) return {0, ~std::uint64_t{0}};
  if (level >= 64) return {b, b};
  const unsigned shift = 64 - level;
  const std::uint64_t lo = b << shift;
  return {lo, lo | ((std::uint64_t{1} << shift) - 1)};
}

// Whether h lies in one of `ranges` (sorted by lo and disjoint).
inline bool in_ranges(std::span<const KeyHashRange> ranges, std::uint64_t h) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), h,
                             [](std::uint64_t x, const KeyHashRange& r) { return x < r.lo; });
  return it != ranges.begin() && h <= std::prev(it)->hi;
}

// Sorts ranges by lo and merges overlapping or adjacent ones.
inline void normalize_ranges(std::vector<KeyHashRange>& ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const KeyHashRange& a, const KeyHashRange& b) { return a.lo < b.lo; });
  std::size_t out = 0;
  for (const KeyHashRange& r : ranges) {
    if (out > 0 && (ranges[out - 1].hi == ~std::uint64_t{0} || r.lo <= ranges[out - 1].hi + 1)) {
      ranges[out - 1].hi = std::max(ranges[out - 1].hi, r.hi);
    } else {
      ranges[out++] = r;
    }
  }
  ranges.resize(out);
}

// A causal CRDT whose state is a set of keyed entries and which supports catch-up by key-hash
// ranges:
//  - hashed_entries(seed): one HashedEntry per key, sorted by key_hash; equal entries give
//    equal entry hashes for one seed on every replica. O(size log size).
//  - extract_entries(indices): the entries at those iteration positions, with a context
//    holding exactly their dots: joining it can add them, never remove or claim anything else.
//  - range_delta(part, their_ctx, ranges): the delta that brings our keys hashing into
//    `ranges` up to `part` (an extract of a replica whose whole context is their_ctx): part's
//    unseen slots, and the dots of our slots there that their_ctx covers and part lacks.
//    Joining it changes nothing outside the ranges.
//  - range_delta_at(part, their_ctx, ranges, candidates): the same, looking for our entries
//    only at the given positions (from an earlier hashed_entries); nullopt when one moved.
//  - context_delta(c): the dots of c we lack, as a delta with no entries (the last step of a
//    catch-up, once every differing range is in).
//  - for_each_keyed_dot(f): f(key_hash, dot) for every slot.
template <class T>
concept BucketedCrdt = DeltaCrdt<T> &&
    requires(const T& c, std::uint64_t seed, std::span<const std::uint32_t> indices,
             std::span<const KeyHashRange> ranges, const CausalContext& ctx,
             std::span<const HashedEntry> hashed) {
  { c.hashed_entries(seed) } -> std::same_as<std::vector<HashedEntry>>;
  { c.extract_entries(indices) } -> std::same_as<T>;
  { c.range_delta(c, ctx, ranges) } -> std::same_as<T>;
  { c.range_delta_at(c, ctx, ranges, hashed) } -> std::same_as<std::optional<T>>;
  { c.context_delta(ctx) } -> std::same_as<T>;
  { c.context() } -> std::convertible_to<const CausalContext&>;
  { c.size() } -> std::convertible_to<std::size_t>;
  c.for_each_keyed_dot([](std::uint64_t, const Dot&) {});
};

}  // namespace deltacrdt
