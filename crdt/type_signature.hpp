// type_signature<T>(): a 64-bit tag naming a CRDT type and its encoding, the same in every
// build and on every machine. Nodes announce it beside each hosted replica's name, so two
// replicas that share a name but not a type (an AWLWWMap<string, string> and an
// AWLWWMap<string, int64_t>, or an ORSet and an AWLWWMap) never become neighbours: every
// delta between them would be refused as undecodable.
//
// What goes in: the type's TypeTag and format version (crdt/codec.hpp), then, for the
// templates, the signatures of their parameters: keys and values of maps, elements of sets,
// register values, nested CRDTs. Value types are named by how they are encoded, not by
// their C++ name: std::string and CompactString encode alike and share a signature;
// integers by width and signedness; byte arrays by length. A value type not listed here
// contributes nothing (only its CRDT's tag and version then tell types apart). Hash and
// equality parameters do not change the encoding and are left out.
//
// FNV-1a over the bytes of those numbers. Pure and constexpr.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "crdt/codec.hpp"

namespace deltacrdt {

template <class K, class V, class H, class E>
class AWLWWMap;
template <class E, class H, class Eq>
class ORSet;
template <class K, class V, class H, class E>
class ORMap;
template <class V>
class LWWRegister;
template <class V>
class MVRegister;
class CompactString;

namespace detail {

struct Fnv1a {
  std::uint64_t h = 0xcbf29ce484222325ull;
  constexpr Fnv1a& add(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
    return *this;
  }
};

// How a value type is encoded: a small code per kind, or 0 when not known.
template <class V>
struct ValueSignature {
  static constexpr std::uint64_t value = 0;
};
template <>
struct ValueSignature<std::string> {
  static constexpr std::uint64_t value = 's';
};
template <>
struct ValueSignature<CompactString> {
  static constexpr std::uint64_t value = 's';  // encoded exactly as std::string
};
template <class I>
requires std::is_integral_v<I>
struct ValueSignature<I> {
  static constexpr std::uint64_t value =
      (std::is_same_v<I, bool> ? 'b' : std::is_signed_v<I> ? 'i' : 'u') | (sizeof(I) << 8);
};
template <class C, std::size_t N>
struct ValueSignature<std::array<C, N>> {
  static constexpr std::uint64_t value = 'a' | (ValueSignature<C>::value << 8) | (N << 24);
};

template <class T>
struct Signature;

template <class T>
constexpr std::uint64_t signature_of() {
  if constexpr (requires { T::kTypeTag; }) {
    return Signature<T>::value;
  } else {
    return ValueSignature<T>::value;
  }
}

template <class T>
constexpr Fnv1a crdt_head() {
  return Fnv1a{}.add(static_cast<std::uint64_t>(T::kTypeTag)).add(T::kFormatVersion);
}

// Types without parameters: tag and version.
template <class T>
struct Signature {
  static constexpr std::uint64_t value = crdt_head<T>().h;
};
template <class K, class V, class H, class E>
struct Signature<AWLWWMap<K, V, H, E>> {
  using T = AWLWWMap<K, V, H, E>;
  static constexpr std::uint64_t value =
      crdt_head<T>().add(signature_of<K>()).add(signature_of<V>()).h;
};
template <class K, class V, class H, class E>
struct Signature<ORMap<K, V, H, E>> {
  using T = ORMap<K, V, H, E>;
  static constexpr std::uint64_t value =
      crdt_head<T>().add(signature_of<K>()).add(signature_of<V>()).h;
};
template <class E, class H, class Eq>
struct Signature<ORSet<E, H, Eq>> {
  using T = ORSet<E, H, Eq>;
  static constexpr std::uint64_t value = crdt_head<T>().add(signature_of<E>()).h;
};
template <class V>
struct Signature<LWWRegister<V>> {
  static constexpr std::uint64_t value = crdt_head<LWWRegister<V>>().add(signature_of<V>()).h;
};
template <class V>
struct Signature<MVRegister<V>> {
  static constexpr std::uint64_t value = crdt_head<MVRegister<V>>().add(signature_of<V>()).h;
};

}  // namespace detail

template <class T>
constexpr std::uint64_t type_signature() {
  return detail::Signature<T>::value;
}

}  // namespace deltacrdt
