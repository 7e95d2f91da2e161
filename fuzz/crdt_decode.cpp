// Fuzz target: every CRDT type's decoder (crdt/codec.hpp), the streaming decoder of the types
// that have one, and what a decoded value must then satisfy: its invariants, an exact round
// trip (equal value, equal digest), and the lattice laws that hold for any value - join is
// idempotent, bottom is its identity, the order is reflexive, the novel part of a value in
// itself is bottom - and, with a second decoded value, that joining never breaks invariants
// and is an upper bound of both. (Equalities between two arbitrary values, such as
// commutativity, need values from one history - two decoded values may give one dot two
// meanings - and are the property tests' business.) Input layout: fuzz/crdt_types.hpp.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crdt/concept.hpp"
#include "crdt/streaming_decoder.hpp"
#include "fuzz/crdt_types.hpp"
#include "fuzz/fuzz_input.hpp"

namespace {

using namespace deltacrdt;
using namespace deltacrdt::fuzz;

template <class T>
std::optional<T> decode_sealed(std::string_view payload, bool oldest) {
  const std::uint16_t version = oldest ? detail::oldest_readable_version<T>() : T::kFormatVersion;
  Result<T> r = decode<T>(seal_value(static_cast<std::uint16_t>(T::kTypeTag), version, payload));
  if (!r) return std::nullopt;
  return std::move(*r);
}

template <class T>
void check_round_trip(const T& x) {
  require(x.valid(), "a decoded value satisfies its invariants");
  const std::string bytes = encode(x);
  Result<T> back = decode<T>(bytes);
  require(back.has_value(), "an encoding decodes");
  require(*back == x, "a round trip gives an equal value");
  if constexpr (requires { x.digest(); }) {
    require(back->digest() == x.digest(), "a round trip keeps the digest");
  }
}

template <class T>
void check_laws(const T& a, const std::optional<T>& b) {
  T aa = a;
  aa.join(a);
  require(aa == a, "join is idempotent");
  T from_bottom;
  from_bottom.join(a);
  require(from_bottom == a, "bottom is the identity of join");
  require(a.leq(a), "leq is reflexive");
  require(T{}.leq(a), "bottom is below everything");
  if constexpr (DeltaCrdt<T>) {
    require(a.novel_part(a).is_bottom(), "nothing of a value is novel to itself");
    require(T{}.novel_part(a) == a, "all of a value is novel to bottom");
  }
  if (!b) return;
  T ab = a;
  ab.join(*b);
  require(ab.valid(), "a join keeps the invariants");
  require(a.leq(ab) && b->leq(ab), "a join is an upper bound");
  if constexpr (DeltaCrdt<T>) {
    const T novel = a.novel_part(*b);
    require(novel.valid(), "a novel part satisfies the invariants");
    T a_novel = a;
    a_novel.join(novel);
    require(a_novel.valid(), "joining a novel part keeps the invariants");
    require(ab.novel_part(*b).is_bottom(), "nothing of b is novel after joining b");
  }
  check_round_trip(ab);
}

// The streaming decoder, fed the sealed bytes in the pieces the input names, must agree with
// decode (same value, or both failing).
template <class T>
void check_streaming(std::string_view sealed, FuzzReader& pieces) {
  if constexpr (StreamDecodable<T>) {
    StreamingDecoder<T> s;
    std::size_t at = 0;
    bool failed = false;
    while (at < sealed.size() && !failed) {
      std::size_t n = pieces.empty() ? sealed.size() : 1 + pieces.u16() % 4096;
      if (n > sealed.size() - at) n = sealed.size() - at;
      failed = !s.feed(sealed.substr(at, n));
      at += n;
    }
    Result<T> streamed = s.finish();
    Result<T> whole = decode<T>(sealed);
    require(streamed.has_value() == whole.has_value(),
            "the streaming decoder accepts exactly what decode accepts");
    if (whole) require(*streamed == *whole, "the streaming decoder gives decode's value");
  }
}

template <class T>
void run(FuzzReader& in, std::uint8_t flags) {
  const bool oldest = (flags & kOldestVersion) != 0;
  const std::string_view payload_a = in.blob();
  const std::string_view payload_b = in.blob();
  // The unsealed path too: the payload parser behind a checksum that happens to pass.
  (void)detail::decode_payload<T>(payload_a);
  const std::optional<T> a = decode_sealed<T>(payload_a, oldest);
  const std::optional<T> b = decode_sealed<T>(payload_b, oldest);
  const std::uint16_t version = oldest ? detail::oldest_readable_version<T>() : T::kFormatVersion;
  check_streaming<T>(seal_value(static_cast<std::uint16_t>(T::kTypeTag), version, payload_a), in);
  if (!a) return;
  check_round_trip(*a);
  check_laws(*a, b);
}

template <std::size_t... I>
void dispatch(std::size_t type, FuzzReader& in, std::uint8_t flags, std::index_sequence<I...>) {
  ((type == I ? run<std::tuple_element_t<I, CrdtTypes>>(in, flags) : void()), ...);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzReader in(data, size);
  const std::size_t type = in.u8() % kTypeCount;
  const std::uint8_t flags = in.u8();
  dispatch(type, in, flags, std::make_index_sequence<kTypeCount>{});
  return 0;
}
