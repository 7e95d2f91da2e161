// StreamingDecoder: decoding an encoding handed over in arbitrary pieces gives exactly what
// decode() gives for the whole - the same value, or a failure for the same bytes.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "crdt/streaming_decoder.hpp"
#include "tests/crdt_models.hpp"
#include "tests/property.hpp"

using namespace deltacrdt;
using namespace deltacrdt::testing;

namespace {

// Cuts `bytes` at random points (pieces may be empty or one byte) and decodes them.
template <class T>
Result<T> decode_in_pieces(std::string_view bytes, PropertyRng& rng) {
  StreamingDecoder<T> decoder;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const std::size_t take =
        rng.chance(0.2) ? rng.below(2) : rng.below(std::max<std::size_t>(1, bytes.size() / 3) + 1);
    const auto fed = decoder.feed(bytes.substr(at, std::min(take, bytes.size() - at)));
    at += std::min(take, bytes.size() - at);
    if (!fed) {
      // An error is final, and finish() reports it too.
      REQUIRE_FALSE(decoder.finish().has_value());
      return fed.error();
    }
  }
  return decoder.finish();
}

// Rewrites the checksum so that corrupted payloads reach the payload decoder.
std::string with_valid_checksum(std::string bytes) {
  const std::size_t body = bytes.size() - kEncodingTrailerBytes;
  bytes.resize(body);
  detail::append_le64(bytes, detail::hash_bytes(bytes));
  return bytes;
}

template <class Model>
void check_streaming_matches_decode() {
  using T = typename Model::Type;
  for_each_case(2, [](PropertyRng& rng) {
    const History<Model> h = random_history<Model>(rng);
    const T x = pick(h, rng);
    const std::string bytes = encode(x);

    const Result<T> whole = decode_in_pieces<T>(bytes, rng);
    REQUIRE(whole.has_value());
    CHECK(*whole == x);
    CHECK(whole->valid());

    // Any strict prefix is refused: the decoder never takes a partial value as complete.
    const std::size_t cut = rng.below(bytes.size());
    CHECK_FALSE(decode_in_pieces<T>(std::string_view(bytes).substr(0, cut), rng).has_value());

    // A flipped byte is refused (if nothing else, by the checksum).
    std::string flipped = bytes;
    flipped[rng.below(flipped.size())] ^= static_cast<char>(1 + rng.below(255));
    CHECK_FALSE(decode_in_pieces<T>(flipped, rng).has_value());

    // Payloads corrupted behind a valid checksum: accepted exactly when decode accepts
    // them, and then as the same value.
    std::string corrupted = bytes;
    for (int k = 0; k < 3; ++k) {
      const std::size_t at = kEncodingHeaderBytes +
                             rng.below(bytes.size() - kEncodingHeaderBytes - kEncodingTrailerBytes);
      corrupted[at] = static_cast<char>(rng.below(256));
    }
    corrupted = with_valid_checksum(corrupted);
    const Result<T> reference = decode<T>(corrupted);
    const Result<T> streamed = decode_in_pieces<T>(corrupted, rng);
    REQUIRE(streamed.has_value() == reference.has_value());
    if (streamed) CHECK(*streamed == *reference);
  });
}

}  // namespace

TEST_SUITE("crdt.streaming_decoder") {
  TEST_CASE("small maps in random pieces decode as decode() does") {
    check_streaming_matches_decode<AWLWWMapModel>();
  }

  TEST_CASE("indexed maps in random pieces decode as decode() does") {
    check_streaming_matches_decode<AWLWWMapWideModel>();
  }

  TEST_CASE("framing errors are reported as decode() reports them") {
    using Map = AWLWWMap<std::string, std::string>;
    Map m;
    (void)m.put(1, "k", "v", HlcTimestamp{1});
    const std::string bytes = encode(m);
    const auto streamed = [](std::string_view b) {
      StreamingDecoder<Map> d;
      (void)d.feed(b);
      return d.finish();
    };
    std::string magic = bytes;
    magic[0] = 'X';
    CHECK(streamed(magic).error() == Errc::bad_magic);
    CHECK(streamed(encode(ORSet<std::string>{})).error() == Errc::wrong_type);
    std::string version = bytes;
    version[6] ^= 1;
    CHECK(streamed(version).error() == Errc::bad_version);
    std::string checksum = bytes;
    checksum.back() ^= 1;
    CHECK(streamed(checksum).error() == Errc::bad_checksum);
    CHECK(streamed(std::string_view(bytes).substr(0, 5)).error() == Errc::truncated);
    CHECK(streamed(bytes + "x").error() == Errc::corrupt);  // bytes after the value
    CHECK(streamed(bytes).has_value());
  }

  TEST_CASE("a value far larger than the pieces decodes") {
    // One entry of 1 MiB arriving in 1 KiB pieces: it is parsed whole only once enough of
    // it is there.
    using Map = AWLWWMap<std::string, std::string>;
    Map m;
    for (int i = 0; i < 100; ++i) {
      (void)m.put(1, "k" + std::to_string(i), std::string(i == 50 ? 1 << 20 : 10, 'x'),
                  HlcTimestamp{1u + i});
    }
    const std::string bytes = encode(m);
    StreamingDecoder<Map> d;
    for (std::size_t at = 0; at < bytes.size(); at += 1024) {
      REQUIRE(d.feed(std::string_view(bytes).substr(at, 1024)));
    }
    const auto back = d.finish();
    REQUIRE(back.has_value());
    CHECK(*back == m);
  }
}
