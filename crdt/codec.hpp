// Encoding of CRDT values and canonical hashing of their contents.
//
// encode(x) -> bytes and decode<T>(bytes) -> Result<T> frame a Cereal PortableBinary-layout
// payload (explicit little-endian, written and read by crdt/archive.hpp) with a magic, type tag,
// format version and an xxHash3 checksum; docs/crdt-encoding.md specifies the layout. decode never
// throws and never trusts a declared size: containers load element by element and byte strings in
// bounded chunks, so hostile input fails on truncation instead of allocating. Stateless and
// thread-safe.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <cereal/cereal.hpp>

#include "base/bytes.hpp"
#include "base/error.hpp"
#include "crdt/archive.hpp"
#include "crdt/compact_string.hpp"

namespace deltacrdt {

// Bytes: "DCRT" | u16 type tag | u16 format version | payload | u64 xxh3 of all before.
inline constexpr std::array<char, 4> kEncodingMagic{'D', 'C', 'R', 'T'};
inline constexpr std::size_t kEncodingHeaderBytes = 8;
inline constexpr std::size_t kEncodingTrailerBytes = 8;
// Upper bound on any single declared element count or byte-string length in a payload.
inline constexpr std::uint64_t kMaxDeclaredCount = std::uint64_t{1} << 32;

// Type tags of the built-in types (stable: they are part of the encoding).
enum class TypeTag : std::uint16_t {
  aw_lww_map = 1,
  or_set = 2,
  g_counter = 3,
  pn_counter = 4,
  vector_clock = 5,
  lww_register = 6,
  mv_register = 7,
  ew_flag = 8,
  or_map = 9,
  causal_counter = 10,
  causal_context = 11,  // a bare CausalContext (sent by digest catch-up)
};

namespace detail {

template <class T>
inline constexpr bool is_byte_like_v =
    std::is_same_v<T, char> || std::is_same_v<T, unsigned char> || std::is_same_v<T, std::byte>;

// Byte strings encoded as a 64-bit length and the bytes: std::string and CompactString
// share one encoding, one canonical form and hence one digest.
template <class T>
inline constexpr bool is_string_like_v =
    std::is_same_v<T, std::string> || std::is_same_v<T, CompactString>;

template <class T>
struct is_byte_array : std::false_type {};
template <class C, std::size_t N>
struct is_byte_array<std::array<C, N>> : std::bool_constant<is_byte_like_v<C>> {};

// Appends a canonical, platform-independent byte form of `v`: the basis of digests, so it
// must never depend on memory layout or container order.
template <class T>
void append_canonical(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    out.push_back(v ? 1 : 0);
  } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
    append_le64(out, static_cast<std::uint64_t>(v));
  } else if constexpr (is_string_like_v<T> || std::is_same_v<T, std::string_view>) {
    append_le64(out, v.size());
    out.append(v.data(), v.size());
  } else if constexpr (is_byte_array<T>::value) {
    out.append(reinterpret_cast<const char*>(v.data()), v.size());
  } else if constexpr (requires { v.digest(); }) {
    append_le64(out, v.digest());
  } else {
    // Any other Cereal-serialisable type: its PortableBinary bytes are canonical.
    std::string bytes;
    {
      ByteOutputArchive ar(bytes);
      ar(v);
    }
    append_le64(out, bytes.size());
    out.append(bytes);
  }
}

template <class T>
std::uint64_t hash_value(const T& v) {
  std::string buf;
  append_canonical(buf, v);
  return hash_bytes(buf);
}

// A cheap estimate of how many bytes `v` adds to a payload (exact for integers and
// strings); used to account buffered deltas without encoding them.
template <class T>
std::size_t approx_encoded_size(const T& v) {
  if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    return sizeof(T);
  } else if constexpr (is_string_like_v<T>) {
    return 8 + v.size();
  } else if constexpr (is_byte_array<T>::value) {
    return v.size();
  } else {
    return 16;
  }
}

// Reads a declared element count and rejects absurd ones before any loop runs.
template <class Archive>
std::uint64_t load_count(Archive& ar) {
  std::uint64_t n = 0;
  ar(n);
  if (n > kMaxDeclaredCount) throw std::length_error("declared count too large");
  return n;
}

// Values inside CRDT payloads go through these two so that byte strings are read in
// bounded chunks (Cereal's own string loader resizes to the declared length up front).
template <class Archive, class T>
void save_value(Archive& ar, const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    ar(static_cast<std::uint8_t>(v ? 1 : 0));
  } else if constexpr (is_string_like_v<T>) {
    ar(static_cast<std::uint64_t>(v.size()));
    ar(cereal::binary_data(v.data(), v.size()));
  } else {
    ar(v);
  }
}

template <class Archive, class T>
void load_value(Archive& ar, T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    // Reading a byte straight into a bool is undefined for values other than 0 and 1.
    std::uint8_t b = 0;
    ar(b);
    if (b > 1) throw std::domain_error("bool out of range");
    v = b != 0;
  } else if constexpr (is_string_like_v<T> && requires { ar.read_bytes(std::size_t{}); }) {
    // From memory: the bytes are there (or this throws) before anything is allocated.
    const std::uint64_t n = load_count(ar);
    const std::string_view bytes = ar.read_bytes(static_cast<std::size_t>(n));
    if constexpr (std::is_same_v<T, std::string>) {
      v.assign(bytes.data(), bytes.size());
    } else {
      v = T(bytes);
    }
  } else if constexpr (std::is_same_v<T, CompactString>) {
    std::string bytes;
    load_value(ar, bytes);
    v = CompactString(bytes);
  } else if constexpr (std::is_same_v<T, std::string>) {
    const std::uint64_t n = load_count(ar);
    constexpr std::size_t kChunk = 64 * 1024;
    v.clear();
    while (v.size() < n) {
      const std::size_t have = v.size();
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, n - have));
      v.resize(have + take);
      ar(cereal::binary_data(v.data() + have, take));
    }
  } else {
    ar(v);
  }
}

template <class T>
Result<T> decode_payload(std::string_view payload,
                         std::uint16_t version = ByteInputArchive::kLatestFormat);

// The oldest format version of T that this build still reads: T::kOldestReadableVersion
// where a type kept a reader for an older layout, else only the current one.
template <class T>
constexpr std::uint16_t oldest_readable_version() {
  if constexpr (requires { T::kOldestReadableVersion; }) {
    return T::kOldestReadableVersion;
  } else {
    return T::kFormatVersion;
  }
}
template <class T>
constexpr bool readable_version(std::uint16_t v) {
  return v >= oldest_readable_version<T>() && v <= T::kFormatVersion;
}

// The checks a freshly decoded value must pass: T::valid_decoded() where a type's loader
// already enforces part of valid() while building the value, else T::valid().
template <class T>
bool checked_after_decode(const T& value) {
  if constexpr (requires { value.valid_decoded(); }) {
    return value.valid_decoded();
  } else {
    return value.valid();
  }
}

}  // namespace detail

// Cereal serialization of CompactString, for applications that put one in their own
// Cereal types: the same bytes as Cereal's std::string (length, then the bytes).
template <class Archive>
void save(Archive& ar, const CompactString& s) {
  detail::save_value(ar, s);
}
template <class Archive>
void load(Archive& ar, CompactString& s) {
  detail::load_value(ar, s);
}

// Encodes any type with kTypeTag, kFormatVersion and Cereal save/serialize.
template <class T>
std::string encode(const T& value) {
  std::string out;
  out.append(kEncodingMagic.data(), kEncodingMagic.size());
  const auto tag = static_cast<std::uint16_t>(T::kTypeTag);
  const auto version = static_cast<std::uint16_t>(T::kFormatVersion);
  out.push_back(static_cast<char>(tag & 0xff));
  out.push_back(static_cast<char>(tag >> 8));
  out.push_back(static_cast<char>(version & 0xff));
  out.push_back(static_cast<char>(version >> 8));
  {
    ByteOutputArchive ar(out);
    ar(value);
  }
  detail::append_le64(out, detail::hash_bytes(out));
  return out;
}

// Decodes bytes produced by encode<T>. Checks framing, checksum, tag and version, then
// the payload, then T::valid() (structural invariants such as "every stored dot is in the
// context"). Never throws.
template <class T>
Result<T> decode(std::string_view bytes) {
  if (bytes.size() < kEncodingHeaderBytes + kEncodingTrailerBytes) return Errc::truncated;
  if (std::memcmp(bytes.data(), kEncodingMagic.data(), kEncodingMagic.size()) != 0) {
    return Errc::bad_magic;
  }
  const std::size_t body = bytes.size() - kEncodingTrailerBytes;
  if (detail::read_le64(bytes.data() + body) != detail::hash_bytes(bytes.substr(0, body))) {
    return Errc::bad_checksum;
  }
  const auto u16 = [&](std::size_t at) {
    return static_cast<std::uint16_t>(static_cast<unsigned char>(bytes[at]) |
                                      (static_cast<unsigned char>(bytes[at + 1]) << 8));
  };
  if (u16(4) != static_cast<std::uint16_t>(T::kTypeTag)) return Errc::wrong_type;
  const std::uint16_t version = u16(6);
  if (!detail::readable_version<T>(version)) return Errc::bad_version;
  return detail::decode_payload<T>(bytes.substr(kEncodingHeaderBytes, body - kEncodingHeaderBytes),
                                   version);
}

namespace detail {
// Decodes a bare PortableBinary payload (no header or checksum). Exposed in detail so the
// robustness tests can feed corrupted payloads past the checksum.
template <class T>
Result<T> decode_payload(std::string_view payload, std::uint16_t version) {
  try {
    T value;
    ByteInputArchive ar(payload);
    ar.set_format_version(version);
    ar(value);
    if (ar.remaining() != 0) return Errc::corrupt;
    if (!checked_after_decode(value)) return Errc::corrupt;
    return value;
  } catch (const cereal::Exception&) {
    return Errc::truncated;
  } catch (const std::length_error&) {
    return Errc::too_large;
  } catch (const std::bad_alloc&) {
    return Errc::too_large;
  } catch (const std::exception&) {
    return Errc::corrupt;
  }
}
}  // namespace detail

}  // namespace deltacrdt
