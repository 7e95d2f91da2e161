// CompactString: contents and ownership across the inline/heap boundary, comparisons and
// hashing, and that maps of CompactString encode and digest exactly like maps of
// std::string.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "crdt/awlww_map.hpp"
#include "crdt/codec.hpp"
#include "crdt/compact_string.hpp"
#include "crdt/hlc.hpp"
#include "crdt/orset.hpp"
#include "crdt/type_signature.hpp"
#include "tests/property.hpp"

using deltacrdt::AWLWWMap;
using deltacrdt::CompactString;
using deltacrdt::HlcTimestamp;
using deltacrdt::testing::for_each_case;
using deltacrdt::testing::PropertyRng;

namespace {

// A string of n bytes covering every byte value, NUL included.
std::string bytes_of(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) & 0xff);
  return s;
}

std::string random_string(PropertyRng& rng) {
  // Lengths around the inline limit are the interesting ones.
  const std::size_t n = rng.chance(0.8) ? rng.below(40) : rng.below(600);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.below(4) == 0 ? rng.below(256) : 'a' + rng.below(3));
  return s;
}

}  // namespace

TEST_SUITE("crdt.compact_string") {
  TEST_CASE("holds every length, inline up to 23 bytes and on the heap beyond") {
    for (const std::size_t n : {0, 1, 15, 16, 22, 23, 24, 25, 32, 100, 70000}) {
      CAPTURE(n);
      const std::string expect = bytes_of(n, static_cast<unsigned>(n));
      const CompactString s(expect);
      CHECK(s.size() == n);
      CHECK(s.empty() == (n == 0));
      CHECK(s.view() == expect);
      CHECK(s.str() == expect);
      CHECK(s.is_inline() == (n <= CompactString::kInlineCapacity));
    }
    static_assert(sizeof(CompactString) == 24);
    CHECK(CompactString().empty());
    CHECK(CompactString("abc", 2) == "ab");
  }

  TEST_CASE("copies own their bytes; moves leave the source empty") {
    for (const std::size_t n : {5, 23, 24, 64}) {
      CAPTURE(n);
      const std::string text = bytes_of(n, 7);
      CompactString a(text);
      CompactString b = a;
      CHECK(b == a);
      if (n > CompactString::kInlineCapacity) CHECK(b.data() != a.data());
      a = CompactString("other");  // replacing a leaves b alone
      CHECK(b == text);
      CompactString c = std::move(b);
      CHECK(c == text);
      CHECK(b.empty());  // NOLINT(bugprone-use-after-move): the documented moved-from state
      b = c;
      CHECK(b == text);
      b = b;  // self-assignment keeps the value
      CHECK(b == text);
      c = std::move(c);
      CHECK(c == text);
      // Every direction across the boundary: inline <- heap, heap <- inline, heap <- heap.
      CompactString small("x"), large(bytes_of(40, 1));
      small = large;
      CHECK(small == large);
      large = CompactString("y");
      CHECK(large == "y");
      small = CompactString(bytes_of(90, 2));
      CHECK(small == bytes_of(90, 2));
    }
  }

  TEST_CASE("compares and orders like std::string, against every string-like type") {
    for_each_case(1, [](PropertyRng& rng) {
      const std::string x = random_string(rng), y = rng.chance(0.3) ? x : random_string(rng);
      const CompactString a(x), b(y);
      CHECK((a == b) == (x == y));
      CHECK((a <=> b) == (x <=> y));
      CHECK((a == y) == (x == y));
      CHECK((a == std::string_view(y)) == (x == y));
      CHECK((a < y) == (x < y));
      CHECK((y == a) == (x == y));  // the reversed forms
      if (x == y) CHECK(hash_value(a) == hash_value(b));
    });
    CHECK(CompactString("abc") == "abc");
    CHECK(CompactString("abc") != "abd");
    CHECK(CompactString("ab") < CompactString("abc"));
  }

  TEST_CASE("works as a key of standard and Boost hash containers") {
    std::unordered_set<CompactString> set;
    for (int i = 0; i < 100; ++i) set.insert(CompactString("key-" + std::to_string(i % 50)));
    CHECK(set.size() == 50);
    CHECK(set.count(CompactString("key-7")) == 1);
    AWLWWMap<CompactString, CompactString> m;
    static_cast<void>(m.put(1, "short", std::string(40, 'v'), HlcTimestamp::from_parts(1, 0)));
    REQUIRE(m.find("short") != nullptr);
    CHECK(*m.find("short") == std::string(40, 'v'));
  }

  TEST_CASE("maps of CompactString encode and digest exactly like maps of std::string") {
    using StringMap = AWLWWMap<std::string, std::string>;
    using CompactMap = AWLWWMap<CompactString, CompactString>;
    for_each_case(4, [](PropertyRng& rng) {
      StringMap s;
      CompactMap c;
      const std::size_t ops = 1 + rng.below(60);
      for (std::size_t i = 0; i < ops; ++i) {
        const std::string key = "k" + std::to_string(rng.below(30));
        const auto self = static_cast<deltacrdt::ReplicaId>(1 + rng.below(3));
        if (rng.below(5) == 0) {
          static_cast<void>(s.remove(key));
          static_cast<void>(c.remove(key));
        } else {
          const std::string value = random_string(rng);
          const HlcTimestamp ts = HlcTimestamp::from_parts(1000 + i, 0);
          static_cast<void>(s.put(self, key, value, ts));
          static_cast<void>(c.put(self, key, value, ts));
        }
      }
      const std::string bytes = deltacrdt::encode(c);
      CHECK(bytes == deltacrdt::encode(s));
      CHECK(c.digest() == s.digest());
      CHECK(CompactMap::key_hash("k1") == StringMap::key_hash("k1"));
      // Either type decodes the other's bytes to the same content.
      const auto back = deltacrdt::decode<CompactMap>(deltacrdt::encode(s));
      REQUIRE(back.has_value());
      CHECK(*back == c);
      std::size_t seen = 0;
      c.for_each([&](const CompactString& k, const CompactString& v) {
        ++seen;
        REQUIRE(s.find(k.str()) != nullptr);
        CHECK(v == *s.find(k.str()));
      });
      CHECK(seen == s.size());
    });
  }

  TEST_CASE("sets of CompactString round-trip; a truncated string is an error") {
    deltacrdt::ORSet<CompactString> set;
    static_cast<void>(set.add(1, "inline"));
    static_cast<void>(set.add(1, CompactString(std::string(300, 'z'))));
    const std::string bytes = deltacrdt::encode(set);
    const auto back = deltacrdt::decode<deltacrdt::ORSet<CompactString>>(bytes);
    REQUIRE(back.has_value());
    CHECK(*back == set);
    for (std::size_t cut = 0; cut < bytes.size(); cut += 7) {
      CHECK_FALSE(
          deltacrdt::decode<deltacrdt::ORSet<CompactString>>(bytes.substr(0, cut)).has_value());
    }
  }
}

TEST_SUITE("crdt.type_signature") {
  // Nodes compare these across releases and machines: they must never change by accident.
  TEST_CASE("a type signature is pinned, and names the type and its encoding") {
    using deltacrdt::ORSet;
    using deltacrdt::type_signature;
    using StringMap = AWLWWMap<std::string, std::string>;
    static_assert(type_signature<StringMap>() == 0x64bb0354d59fc986ull);
    // Encoded alike, so alike: string and CompactString.
    static_assert(type_signature<StringMap>() ==
                  type_signature<AWLWWMap<CompactString, CompactString>>());
    // Anything that changes the bytes changes the signature.
    static_assert(type_signature<StringMap>() != type_signature<AWLWWMap<std::string, std::int64_t>>());
    static_assert(type_signature<AWLWWMap<std::string, std::int64_t>>() !=
                  type_signature<AWLWWMap<std::string, std::uint64_t>>());
    static_assert(type_signature<AWLWWMap<std::string, std::int32_t>>() !=
                  type_signature<AWLWWMap<std::string, std::int64_t>>());
    static_assert(type_signature<ORSet<std::string>>() != type_signature<StringMap>());
    static_assert(type_signature<ORSet<std::string>>() != type_signature<ORSet<std::int64_t>>());
    CHECK(type_signature<StringMap>() != 0);
  }
}
