// Generic property tests for the lattice laws of any DeltaCrdt type.
//
// A model describes how to mutate a type at random:
//   struct Model {
//     using Type = T;
//     // Applies one random mutator of x at replica `self` and returns its delta.
//     static T mutate(T& x, deltacrdt::ReplicaId self, PropertyRng& rng);
//   };
// Seeds and case counts come from DELTACRDT_SEED / DELTACRDT_CASES. The seed is fixed
// unless DELTACRDT_SEED says otherwise, so a red run replays as it ran; DELTACRDT_SEED=random
// explores (the seed drawn is printed). The seed of a failing case is printed through
// doctest's CAPTURE so any failure can be replayed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "crdt/codec.hpp"
#include "crdt/concept.hpp"
#include "crdt/dot.hpp"

namespace deltacrdt::testing {

// Deterministic generator with helpers that models share.
class PropertyRng {
 public:
  explicit PropertyRng(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t below(std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(engine_);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(engine_); }
  // Small key/element universe so that concurrent operations collide often.
  std::string key() { return "k" + std::to_string(below(8)); }
  std::string value() { return "v" + std::to_string(below(1000)); }
  // Fake wall time from a tiny range: it repeats and goes backwards on purpose, so equal
  // physical times across replicas (LWW ties) and clocks behind each other are exercised.
  std::uint64_t physical_ms() { return 1000 + below(4); }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

inline std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  if (const char* v = std::getenv(name); v != nullptr && *v != '\0') {
    return std::strtoull(v, nullptr, 10);
  }
  return fallback;
}

inline constexpr std::uint64_t kDefaultSeed = 20261205;

inline std::uint64_t base_seed() {
  static const std::uint64_t seed = []() -> std::uint64_t {
    const char* v = std::getenv("DELTACRDT_SEED");
    if (v == nullptr || *v == '\0') return kDefaultSeed;
    if (std::string_view(v) == "random") {
      std::random_device rd;
      const std::uint64_t drawn = (std::uint64_t{rd()} << 32) | rd();
      std::fprintf(stderr, "DELTACRDT_SEED=%llu\n", static_cast<unsigned long long>(drawn));
      return drawn;
    }
    return std::strtoull(v, nullptr, 10);
  }();
  return seed;
}
inline std::uint64_t case_count() { return env_u64("DELTACRDT_CASES", 1000); }

// Runs body(rng) for case_count() / divisor cases (at least one), each with its own seed
// (base seed + case index) captured so that a failure names the seed to replay.
template <class Body>
void for_each_case(std::uint64_t divisor, Body&& body) {
  const std::uint64_t cases = std::max<std::uint64_t>(1, case_count() / divisor);
  for (std::uint64_t i = 0; i < cases; ++i) {
    const std::uint64_t seed = base_seed() + i;
    CAPTURE(seed);
    PropertyRng rng(seed);
    body(rng);
  }
}

// A random history: 2-5 replicas apply random mutators and exchange random subsets of
// each other's deltas (out of order, with duplicates). Returns the replica states and every
// delta ever produced.
template <class Model>
struct History {
  using T = typename Model::Type;
  std::vector<T> replicas;
  std::vector<T> deltas;
};

template <class Model>
History<Model> random_history(PropertyRng& rng) {
  using T = typename Model::Type;
  History<Model> h;
  const std::size_t n = 2 + rng.below(4);
  h.replicas.resize(n);
  const std::size_t steps = 1 + rng.below(40);
  for (std::size_t s = 0; s < steps; ++s) {
    const std::size_t i = rng.below(n);
    if (h.deltas.empty() || rng.chance(0.6)) {
      T d = Model::mutate(h.replicas[i], static_cast<ReplicaId>(i + 1), rng);
      h.deltas.push_back(std::move(d));
    } else {
      // Deliver a random earlier delta (possibly again, possibly out of causal order).
      h.replicas[i].join(h.deltas[rng.below(h.deltas.size())]);
      if (rng.chance(0.15)) h.replicas[i].join(h.replicas[rng.below(n)]);  // full-state sync
    }
  }
  return h;
}

// Picks a random lattice value from a history: a replica state, a delta, or a join of some.
template <class Model>
typename Model::Type pick(const History<Model>& h, PropertyRng& rng) {
  using T = typename Model::Type;
  switch (rng.below(3)) {
    case 0:
      return h.replicas[rng.below(h.replicas.size())];
    case 1:
      return h.deltas[rng.below(h.deltas.size())];
    default: {
      T x = h.deltas[rng.below(h.deltas.size())];
      x.join(h.replicas[rng.below(h.replicas.size())]);
      return x;
    }
  }
}

// Runs every law on case_count() random cases. Each law's failure reports the seed.
template <class Model>
void check_lattice_laws() {
  using T = typename Model::Type;
  static_assert(DeltaCrdt<T>);
  for_each_case(1, [](PropertyRng& rng) {
    const History<Model> h = random_history<Model>(rng);
    const T a = pick(h, rng), b = pick(h, rng), c = pick(h, rng);
    const auto joined = [](T x, const T& y) {
      x.join(y);
      return x;
    };

    // Commutative, associative, idempotent.
    REQUIRE(joined(a, b) == joined(b, a));
    REQUIRE(joined(a, b).valid());  // derived state (indexes, counts) kept in step
    REQUIRE(joined(joined(a, b), c) == joined(a, joined(b, c)));
    REQUIRE(joined(a, a) == a);
    // Lattice order agrees with join; join is an upper bound (monotone).
    REQUIRE(a.leq(joined(a, b)));
    REQUIRE(b.leq(joined(a, b)));
    REQUIRE(a.leq(b) == (joined(a, b) == b));
    REQUIRE(T{}.leq(a));
    REQUIRE(T{}.is_bottom());

    // Mutators inflate, and m(x) == x ⊔ mδ(x).
    {
      T x = a;
      const T before = x;
      const T d = Model::mutate(x, static_cast<ReplicaId>(1 + rng.below(5)), rng);
      REQUIRE(before.leq(x));
      REQUIRE(joined(before, d) == x);
      REQUIRE(d.leq(x));
      // The delta is minimal: nothing in it was already in the state it was made from.
      REQUIRE(before.novel_part(d) == d);
      REQUIRE(x.valid());
      REQUIRE(d.valid());
    }

    // Join decomposition: X ⊔ Δ(d, X) == X ⊔ d, Δ(d, X) ⊑ d, and Δ(X, X) is bottom.
    {
      const T delta = a.novel_part(b);
      REQUIRE(joined(a, delta) == joined(a, b));
      REQUIRE(delta.valid());
      REQUIRE(delta.leq(b));
      REQUIRE(a.novel_part(a).is_bottom());
      REQUIRE(joined(a, b).novel_part(b).is_bottom());
    }

    // Same deltas in any order, with duplicates, give equal states.
    {
      std::vector<std::size_t> order(h.deltas.size());
      for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
      T forward;
      for (std::size_t k : order) forward.join(h.deltas[k]);
      std::shuffle(order.begin(), order.end(), rng.engine());
      T shuffled;
      std::vector<T> sequence;  // what `shuffled` joined, in order
      for (std::size_t k : order) {
        shuffled.join(h.deltas[k]);
        sequence.push_back(h.deltas[k]);
        if (rng.chance(0.3)) {
          const T& again = h.deltas[order[rng.below(order.size())]];
          shuffled.join(again);
          sequence.push_back(again);
        }
      }
      REQUIRE(forward == shuffled);
      REQUIRE(forward.digest() == shuffled.digest());
      // join_each (which may look ahead across deltas) equals joining one at a time, from
      // bottom and from a non-bottom start.
      T batched;
      join_each(batched, sequence);
      REQUIRE(batched == shuffled);
      REQUIRE(batched.valid());
      T from_a = a;
      T batched_from_a = a;
      for (const T& d : sequence) from_a.join(d);
      join_each(batched_from_a, sequence);
      REQUIRE(batched_from_a == from_a);
      REQUIRE(batched_from_a.valid());
      // Every replica state is below the join of all deltas it could have seen.
      for (const T& r : h.replicas) REQUIRE(r.leq(forward));
    }

    // Serialisation round-trips to an equal value with an equal digest.
    {
      const auto bytes = encode(a);
      const Result<T> back = decode<T>(bytes);
      REQUIRE(back.has_value());
      REQUIRE(*back == a);
      REQUIRE(back->digest() == a.digest());
      REQUIRE(back->valid());
    }

    // Equal values have equal digests; different values (almost always) differ.
    if (a == b)
      REQUIRE(a.digest() == b.digest());
    else
      REQUIRE(a.digest() != b.digest());
  });
}

// Decoding truncated or corrupted bytes returns an error (never crashes or hangs). Run
// under ASan/UBSan in CI. Corruptions that keep the checksum valid go straight to the
// payload decoder, so the structural checks are exercised too.
template <class Model>
void check_decoder_robustness() {
  using T = typename Model::Type;
  for_each_case(4, [](PropertyRng& rng) {
    const History<Model> h = random_history<Model>(rng);
    const T x = pick(h, rng);
    const std::string bytes = encode(x);

    // Every strict prefix fails cleanly.
    const std::size_t cut = rng.below(bytes.size());
    REQUIRE_FALSE(decode<T>(std::string_view(bytes).substr(0, cut)).has_value());

    // A flipped byte anywhere is caught (the checksum covers the whole encoding).
    std::string flipped = bytes;
    flipped[rng.below(flipped.size())] ^= static_cast<char>(1 + rng.below(255));
    REQUIRE_FALSE(decode<T>(flipped).has_value());

    // Corrupted payloads behind a valid checksum: may decode to some valid value or fail,
    // but must never crash, and anything accepted must satisfy the invariants.
    std::string payload = bytes.substr(kEncodingHeaderBytes,
                                       bytes.size() - kEncodingHeaderBytes - kEncodingTrailerBytes);
    for (int k = 0; k < 3 && !payload.empty(); ++k) {
      payload[rng.below(payload.size())] = static_cast<char>(rng.below(256));
    }
    if (rng.chance(0.3)) payload.resize(rng.below(payload.size() + 1));
    if (rng.chance(0.2)) payload.append(std::string(rng.below(16), '\xff'));
    const Result<T> r = detail::decode_payload<T>(payload);
    if (r.has_value()) REQUIRE(r->valid());
  });
}

}  // namespace deltacrdt::testing
