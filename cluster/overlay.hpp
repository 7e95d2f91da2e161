// The random(k) overlay: which k members a replica pushes its deltas to when it should not
// push to all of them. Sans-I/O and deterministic given the random generator, so the node
// (over its linked members) and the simulated network (over replica ids) draw alike.
//
// A replica's k neighbours are
//   1. its ring successor: members are placed on a ring of 2^64 positions by a hash of
//      their key (a node's name, a replica's id); the successor is the first candidate
//      clockwise from this replica's own position; and
//   2. k - 1 others drawn uniformly at random among the remaining candidates.
//
// Why it stays connected: when every replica knows the same set of live members, each
// pushes to the next one round the ring, so the successor edges alone form one directed
// cycle through every live member, and a delta written anywhere travels the whole cycle
// (anti-entropy retransmits until each hop acknowledges). A member that goes down is
// dropped from the candidates, so its predecessor's successor becomes the next live member
// and the cycle closes round the gap; a member that joins is adopted by its predecessor as
// soon as it is known. While views differ (a member learned by some before others) a
// replica may miss a member for a few gossip rounds, never for good: views converge, and the
// cycle with them. The random draws add shortcuts: a delta then crosses the overlay in
// O(log N) hops on average rather than N (the small-world effect of random chords, as in
// Kleinberg's and Chord's analyses), and losing a few members does not cut anybody off
// while the others adjust. Draws are kept while their members stay candidates (so a member
// going down replaces only itself) and are redrawn periodically by the host (so load
// spreads over members that joined since).
//
// This is a simpler scheme than HyParView's active and passive views: membership here
// already reaches every node (gossip), so each node can place every member on the ring
// and needs no random walks to find members to replace a failed neighbour.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"

namespace deltacrdt::overlay {

// Where a key sits on the ring.
inline std::uint64_t ring_position(std::string_view name) {
  return detail::hash_bytes(name);
}
inline std::uint64_t ring_position(std::uint64_t id) {
  // splitmix64's finaliser: consecutive ids land far apart.
  id += 0x9e3779b97f4a7c15ULL;
  id = (id ^ (id >> 30)) * 0xbf58476d1ce4e5b9ULL;
  id = (id ^ (id >> 27)) * 0x94d049bb133111ebULL;
  return id ^ (id >> 31);
}

// The candidate nearest to `self` going round the ring one way: clockwise (its successor)
// or counter-clockwise (its predecessor, the one whose successor `self` would be).
// `candidates` must not be empty and must not hold `self`. Ties of position (vanishingly
// rare) are broken by the key, so every member computes the same neighbour.
template <class Key>
const Key& ring_neighbour(const Key& self, const std::vector<Key>& candidates, bool clockwise) {
  const std::uint64_t at = ring_position(self);
  // Distances wrap round the ring (unsigned arithmetic).
  const auto distance = [&](const Key& c) {
    return clockwise ? ring_position(c) - at : at - ring_position(c);
  };
  const Key* best = &candidates.front();
  std::uint64_t best_distance = distance(*best);
  for (const Key& c : candidates) {
    const std::uint64_t d = distance(c);
    if (d < best_distance || (d == best_distance && c < *best)) {
      best = &c;
      best_distance = d;
    }
  }
  return *best;
}
template <class Key>
const Key& ring_successor(const Key& self, const std::vector<Key>& candidates) {
  return ring_neighbour(self, candidates, true);
}
template <class Key>
const Key& ring_predecessor(const Key& self, const std::vector<Key>& candidates) {
  return ring_neighbour(self, candidates, false);
}

// The neighbours of `self` among `candidates` (the members it could push to now; `self`
// among them is ignored): the ring successor first, then up to k - 1 others - those of
// `keep` that are still candidates, then uniform random draws from `rng`. Fewer than k
// when there are fewer candidates; empty when k is 0 or there are none.
template <class Key, class Rng>
std::vector<Key> draw(const Key& self, std::vector<Key> candidates, const std::vector<Key>& keep,
                      std::size_t k, Rng& rng) {
  std::erase(candidates, self);
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  std::vector<Key> out;
  if (k == 0 || candidates.empty()) return out;
  out.push_back(ring_successor(self, candidates));
  std::erase(candidates, out.front());
  for (const Key& kept : keep) {
    if (out.size() >= k) break;
    auto at = std::lower_bound(candidates.begin(), candidates.end(), kept);
    if (at == candidates.end() || !(*at == kept)) continue;
    out.push_back(kept);
    candidates.erase(at);
  }
  // A partial Fisher-Yates shuffle: each remaining candidate equally likely.
  for (std::size_t i = 0; out.size() < k && i < candidates.size(); ++i) {
    std::uniform_int_distribution<std::size_t> pick(i, candidates.size() - 1);
    std::swap(candidates[i], candidates[pick(rng)]);
    out.push_back(candidates[i]);
  }
  return out;
}

}  // namespace deltacrdt::overlay
