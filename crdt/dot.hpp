// Replica identities and dots: the unique names of events in the causal machinery.
// Pure value types; safe to copy between threads.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

#include <boost/container_hash/hash.hpp>

namespace deltacrdt {

// 64-bit replica identity. A replica that lost its state must take a fresh id: reusing an
// id would reissue dots that other replicas already consider seen (or removed).
using ReplicaId = std::uint64_t;

// The largest dot counter any replica issues or any decoder accepts: a sanity bound, so that
// counter arithmetic never wraps and a hostile encoding cannot claim absurd counters (a
// replica issuing a billion dots per second needs 146 years to reach it). Decoding a
// context, dot or run beyond it fails as corrupt; a replica that reaches it must take a new
// id (CausalContext::make_dot throws).
inline constexpr std::uint64_t kMaxDotCounter = std::uint64_t{1} << 62;

// One event: the `counter`-th event created by `replica` (counters start at 1).
struct Dot {
  ReplicaId replica = 0;
  std::uint64_t counter = 0;

  friend constexpr auto operator<=>(const Dot&, const Dot&) = default;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(replica, counter);
  }
};

struct DotHash {
  // Dots from one replica are dense counters, so mix both halves well.
  std::size_t operator()(const Dot& d) const noexcept {
    std::size_t seed = 0;
    boost::hash_combine(seed, d.replica);
    boost::hash_combine(seed, d.counter);
    return seed;
  }
};

}  // namespace deltacrdt
