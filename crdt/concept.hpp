// The one concept every CRDT type in crdt/ satisfies; the replication engine is written
// against it and nothing else.
#pragma once

#include <concepts>
#include <cstdint>
#include <ranges>

#include "crdt/codec.hpp"

namespace deltacrdt {

// A join-semilattice value with delta mutators:
//  - value semantics (std::regular: default = bottom, copy, move, ==; no aliasing);
//  - x.join(y): commutative, associative, idempotent; O(|y|) when y is a small delta;
//  - x.leq(y): lattice order, x ⊑ y iff x ⊔ y == y;
//  - x.novel_part(d): Δ(d, x), the smallest part of d with x ⊔ Δ(d, x) == x ⊔ d;
//  - x.is_bottom(): x is the empty/initial state (a no-op delta);
//  - x.digest(): stable xxHash3 digest of the canonical content (equal values, equal digest);
//  - kTypeTag/kFormatVersion + Cereal serialisation (PortableBinary layout, crdt/archive.hpp);
//  - x.valid(): checks the invariants a decoded value must satisfy.
template <class T>
concept DeltaCrdt = std::regular<T> && requires(T& x, const T& c) {
  { x.join(c) } -> std::same_as<void>;
  { c.leq(c) } -> std::same_as<bool>;
  { c.novel_part(c) } -> std::same_as<T>;
  { c.is_bottom() } -> std::same_as<bool>;
  { c.digest() } -> std::same_as<std::uint64_t>;
  { c.valid() } -> std::same_as<bool>;
  { T::kTypeTag } -> std::convertible_to<TypeTag>;
  { T::kFormatVersion } -> std::convertible_to<std::uint16_t>;
  requires cereal::traits::is_output_serializable<T, ByteOutputArchive>::value;
  requires cereal::traits::is_input_serializable<T, ByteInputArchive>::value;
};

// Joins each of `deltas` into `state`, in order: the same state as state.join(d) for each.
// A type with a member join_each that overlaps the memory accesses of consecutive deltas
// (AWLWWMap) is handed the whole range.
template <DeltaCrdt T, std::ranges::forward_range R>
requires std::same_as<std::ranges::range_value_t<R>, T>
void join_each(T& state, const R& deltas) {
  if constexpr (requires { state.join_each(deltas); }) {
    state.join_each(deltas);
  } else {
    for (const T& d : deltas) state.join(d);
  }
}

}  // namespace deltacrdt
