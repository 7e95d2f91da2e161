// Semantics of AWLWWMap beyond the lattice laws: add-wins, LWW order, deltas, value
// semantics.
#include <doctest/doctest.h>
#include <cereal/archives/portable_binary.hpp>

#include <algorithm>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "crdt/awlww_map.hpp"
#include "crdt/codec.hpp"
#include "crdt/ew_flag.hpp"
#include "crdt/hlc.hpp"
#include "crdt/ormap.hpp"
#include "crdt/orset.hpp"
#include "tests/crdt_models.hpp"
#include "tests/property.hpp"

using deltacrdt::AWLWWMap;
using deltacrdt::HlcTimestamp;
using deltacrdt::HybridClock;
using Map = AWLWWMap<std::string, std::string>;

namespace {
HlcTimestamp at(std::uint64_t ms) { return HlcTimestamp::from_parts(ms, 0); }
}  // namespace

TEST_SUITE("crdt.awlww_map") {
  TEST_CASE("a put concurrent with a remove survives (add wins)") {
    Map a, b;
    b.join(a.put(1, "k", "old", at(10)));
    const Map rm = b.remove("k");                 // b removes the version it saw
    const Map put = a.put(1, "k", "new", at(5));  // a concurrently re-puts, with an older clock
    a.join(rm);
    b.join(put);
    CHECK(a == b);
    REQUIRE(a.find("k") != nullptr);
    CHECK(*a.find("k") == "new");
  }

  TEST_CASE("a remove after observing the put deletes the key everywhere") {
    Map a, b;
    b.join(a.put(1, "k", "v", at(1)));
    a.join(b.remove("k"));
    CHECK_FALSE(a.contains("k"));
    CHECK(a.size() == 0);
    CHECK(a == b);
  }

  TEST_CASE("concurrent puts resolve to the later timestamp on both sides") {
    Map a, b;
    const Map da = a.put(1, "k", "from-a", at(20));
    const Map db = b.put(2, "k", "from-b", at(10));
    a.join(db);
    b.join(da);
    CHECK(a == b);
    CHECK(*a.find("k") == "from-a");
    CHECK(*b.find("k") == "from-a");
  }

  TEST_CASE("concurrent writes stay visible as slots until a put observes them") {
    Map a, b;
    const Map da = a.put(1, "k", "from-a", at(20));
    const Map db = b.put(2, "k", "from-b", at(10));
    a.join(db);
    const auto values = [](const Map& m) {
      std::vector<std::string> out;
      m.for_each_slot("k", [&](const Map::Slot& s) { out.push_back(s.value); });
      return out;
    };
    CHECK(values(a) == std::vector<std::string>{"from-a", "from-b"});
    CHECK(values(Map{}).empty());
    b.join(da);
    b.join(b.put(2, "k", "again", at(30)));
    CHECK(values(b) == std::vector<std::string>{"again"});
  }

  TEST_CASE("equal timestamps are ordered by replica id, identically everywhere") {
    Map a, b, c;
    const Map da = a.put(7, "k", "from-7", at(10));
    const Map db = b.put(3, "k", "from-3", at(10));
    a.join(db);
    b.join(da);
    c.join(db);
    c.join(da);
    CHECK(a == b);
    CHECK(b == c);
    CHECK(*a.find("k") == "from-7");
    CHECK(*c.find("k") == "from-7");
    CHECK(a.digest() == c.digest());
  }

  TEST_CASE("a causally later write wins even with a lagging wall clock") {
    HybridClock ca, cb;
    Map a, b;
    const HlcTimestamp t1 = ca.now(1'000'000);  // a's wall clock is far ahead
    b.join(a.put(1, "k", "first", t1));
    const HlcTimestamp t2 = cb.observe(t1, 5);  // b has seen a's write; its wall says 5 ms
    CHECK(t2 > t1);
    a.join(b.put(2, "k", "second", t2));
    CHECK(*a.find("k") == "second");
    CHECK(*b.find("k") == "second");
  }

  TEST_CASE("after a concurrent write is overwritten, only one slot remains") {
    Map a, b;
    const Map da = a.put(1, "k", "a", at(1));
    const Map db = b.put(2, "k", "b", at(2));
    a.join(db);
    b.join(da);
    const Map overwrite = a.put(1, "k", "c", at(3));  // observes both slots
    b.join(overwrite);
    CHECK(*b.find("k") == "c");
    CHECK(a == b);
    CHECK(b.find_slot("k")->dot.replica == 1);
  }

  TEST_CASE("a put delta is minimal: one key, its new dot and the dots it replaces") {
    Map a;
    for (int i = 0; i < 100; ++i) (void)a.put(1, "key" + std::to_string(i), "v", at(1));
    const Map d = a.put(1, "key7", "w", at(2));
    CHECK(d.size() == 1);
    CHECK(*d.find("key7") == "w");
    CHECK(d.context().dot_count() == 2);  // the new dot and the replaced one
    const Map r = a.remove("key8");
    CHECK(r.size() == 0);
    CHECK(r.context().dot_count() == 1);
    CHECK(a.remove("absent").is_bottom());
  }

  TEST_CASE("a remove delta reaches a replica through the dot index") {
    Map a, b;
    for (int i = 0; i < 50; ++i) b.join(a.put(1, "k" + std::to_string(i), "v", at(1)));
    b.join(a.remove("k10"));
    CHECK_FALSE(b.contains("k10"));
    CHECK(b.size() == 49);
    CHECK(a == b);
  }

  TEST_CASE("deltas arriving out of order converge once the gap closes") {
    Map a, b;
    const Map d1 = a.put(1, "x", "1", at(1));
    const Map d2 = a.put(1, "x", "2", at(2));
    const Map d3 = a.remove("x");
    const Map d4 = a.put(1, "y", "4", at(4));  // dot 3 (a remove issues no dot)
    b.join(d4);
    CHECK(b.context().cloud_size() == 1);  // dots 1 and 2 still missing
    b.join(d3);  // removes dot 2, which b has not seen yet: only recorded in the context
    b.join(d1);  // dot 1 is visible until the delta that replaced it arrives
    CHECK(*b.find("x") == "1");
    b.join(d2);  // retires dot 1; its own slot (dot 2) is already known removed
    CHECK_FALSE(b.contains("x"));
    CHECK_FALSE(b.contains("x"));
    CHECK(b.context().cloud_size() == 0);
    CHECK(a == b);
  }

  TEST_CASE("copies are independent values") {
    Map a;
    (void)a.put(1, "k", "v", at(1));
    Map copy = a;
    (void)copy.put(1, "k", "changed", at(2));
    (void)copy.remove("k");
    CHECK(*a.find("k") == "v");
    Map moved = std::move(copy);
    CHECK_FALSE(moved.contains("k"));
    a = moved;
    (void)moved.put(2, "z", "z", at(3));
    CHECK_FALSE(a.contains("z"));
    CHECK(a.valid());
    CHECK(moved.valid());
  }

  TEST_CASE("a large (indexed) map keeps working after copies and moves") {
    Map a;
    for (int i = 0; i < 200; ++i) (void)a.put(1, "k" + std::to_string(i), "v", at(1));
    Map copy = a;
    Map moved = std::move(copy);
    Map assigned;
    assigned = std::move(moved);
    CHECK(assigned == a);
    CHECK(assigned.valid());
    CHECK(*assigned.find("k150") == "v");
    (void)assigned.put(1, "k150", "w", at(2));
    (void)assigned.remove("k3");
    CHECK(*assigned.find("k150") == "w");
    CHECK_FALSE(assigned.contains("k3"));
    CHECK(assigned.valid());
    CHECK(*a.find("k150") == "v");  // the original is untouched
    // Moved-from values are valid, empty, and usable again.
    CHECK(moved.valid());
    CHECK(moved.size() == 0);
    (void)moved.put(2, "fresh", "x", at(3));
    CHECK(*moved.find("fresh") == "x");
    CHECK(moved.valid());
  }

  TEST_CASE("join_each at an indexed map equals joining one delta at a time") {
    // A replica of 40,000 keys (its key index past the size below which join_each does not
    // look ahead) receives a stream mixing one-key puts (new keys and overwrites), removes,
    // grouped deltas of many keys and duplicates: join_each looks ahead across them and
    // must land exactly where one-by-one joins do.
    Map sender;
    for (int i = 0; i < 40000; ++i) {
      (void)sender.put(1, "k" + std::to_string(i), "v", at(1));
    }
    const Map base = sender;
    std::vector<Map> stream;
    for (int i = 0; i < 400; ++i) {
      const std::string key = "k" + std::to_string((i * 7919) % 45000);  // some are new
      if (i % 13 == 0) {
        stream.push_back(sender.remove(key));
      } else if (i % 29 == 0) {
        Map group;  // several deltas joined into one, as a sync message carries them
        for (int j = 0; j < 20; ++j)
          group.join(sender.put(2, key + "/" + std::to_string(j), "g", at(3)));
        stream.push_back(std::move(group));
      } else {
        stream.push_back(sender.put(2, key, "w" + std::to_string(i), at(2)));
      }
      if (i % 50 == 0) stream.push_back(stream[stream.size() / 2]);  // a redelivery
    }
    stream.push_back(base);  // a whole state: a join that looks ahead across its own keys
    Map one_by_one = base;
    for (const Map& d : stream) one_by_one.join(d);
    Map batched = base;
    batched.join_each(stream);
    CHECK(batched == one_by_one);
    CHECK(batched == sender);
    CHECK(batched.valid());
    // The free function hands the range to the member; a type without one joins in a loop.
    Map via_free = base;
    deltacrdt::join_each(via_free, stream);
    CHECK(via_free == sender);
    deltacrdt::ORSet<std::string> set, other;
    std::vector<deltacrdt::ORSet<std::string>> set_deltas;
    set_deltas.push_back(other.add(1, "a"));
    set_deltas.push_back(other.add(1, "b"));
    set_deltas.push_back(other.remove("a"));
    deltacrdt::join_each(set, set_deltas);
    CHECK(set == other);
  }

  TEST_CASE("iteration and lookup read without copying") {
    Map a;
    (void)a.put(1, "a", "1", at(1));
    (void)a.put(1, "b", "2", at(1));
    std::size_t n = 0;
    a.for_each([&](const std::string& k, const std::string& v) { n += k.size() + v.size(); });
    CHECK(n == 4);
    CHECK(a.find("a") == a.find("a"));  // a stable reference into the state
  }

  TEST_CASE("decode reports the precise error") {
    Map a;
    (void)a.put(1, "k", "v", at(1));
    std::string bytes = deltacrdt::encode(a);
    CHECK(deltacrdt::decode<Map>(bytes).has_value());
    CHECK(deltacrdt::decode<Map>(bytes.substr(0, 5)).error() == deltacrdt::Errc::truncated);
    std::string magic = bytes;
    magic[0] = 'X';
    CHECK(deltacrdt::decode<Map>(magic).error() == deltacrdt::Errc::bad_magic);
    std::string flipped = bytes;
    flipped[10] ^= 1;
    CHECK(deltacrdt::decode<Map>(flipped).error() == deltacrdt::Errc::bad_checksum);
    CHECK(deltacrdt::decode<deltacrdt::ORSet<std::string>>(bytes).error() ==
          deltacrdt::Errc::wrong_type);
  }

  TEST_CASE("a payload whose slot dot is outside its context is rejected as corrupt") {
    // A map claiming a dot its context never saw would break the join rule.
    // Encode by hand: an empty context followed by one entry with dot (1, 1).
    std::string payload;
    {
      std::ostringstream os;
      {
        cereal::PortableBinaryOutputArchive ar(os);
        ar(deltacrdt::CausalContext{});
        ar(std::uint64_t{1});
        deltacrdt::detail::save_value(ar, std::string("k"));
        ar(std::uint64_t{1}, std::uint64_t{1}, std::uint64_t{1}, std::uint64_t{7});
        deltacrdt::detail::save_value(ar, std::string("v"));
      }
      payload = os.str();
    }
    CHECK(deltacrdt::detail::decode_payload<Map>(payload).error() == deltacrdt::Errc::corrupt);
  }

  TEST_CASE("an erase observer hears every key that leaves the map and is not part of its value") {
    Map m;
    for (const char* k : {"a", "b", "c", "d"}) (void)m.put(1, k, "v", HlcTimestamp{1});
    Map other = m;  // a replica that will remove "d"
    const Map removal = other.remove("d");
    std::vector<std::string> erased;
    const Map::EraseObserver note = [&](const std::string& k) { erased.push_back(k); };
    m.observe_erasures(&note);
    Map copy = m;  // copies do not carry the observer
    (void)copy.remove("a");
    CHECK(erased.empty());
    CHECK(copy != m);
    (void)m.remove("a");
    m.join(removal);  // a join that removes a key
    CHECK(erased == std::vector<std::string>{"a", "d"});
    (void)m.clear();
    std::sort(erased.begin(), erased.end());
    CHECK(erased == std::vector<std::string>{"a", "b", "c", "d"});
    m.observe_erasures(nullptr);
    (void)m.put(1, "e", "v", HlcTimestamp{2});
    (void)m.remove("e");
    CHECK(erased.size() == 4);
  }

  // A map of 20 keys, some with concurrent slots (replicas 1 and 2 wrote them unaware).
  Map sample_map() {
    Map a;
    Map b;
    for (int i = 0; i < 20; ++i) {
      (void)a.put(1, "key" + std::to_string(i), "a" + std::to_string(i), HlcTimestamp{100u + i});
      if (i % 3 == 0) (void)b.put(2, "key" + std::to_string(i), "b", HlcTimestamp{100u + i});
    }
    a.join(b);
    return a;
  }

  TEST_CASE("the memory archives write and read Cereal's PortableBinary layout") {
    const Map map = sample_map();
    std::string ours;
    {
      deltacrdt::ByteOutputArchive ar(ours);
      ar(map);
    }
    std::ostringstream little;
    std::ostringstream big;
    {
      cereal::PortableBinaryOutputArchive ar(little);
      ar(map);
      cereal::PortableBinaryOutputArchive be(
          big, cereal::PortableBinaryOutputArchive::Options::BigEndian());
      be(map);
    }
    CHECK(ours == little.str());
    REQUIRE(big.str() != little.str());
    // Big-endian data (first byte 0) is read with its bytes swapped back.
    const auto from_big = deltacrdt::detail::decode_payload<Map>(big.str());
    REQUIRE(from_big.has_value());
    CHECK(*from_big == map);
    std::string bad_marker = ours;
    bad_marker[0] = 2;
    CHECK(deltacrdt::detail::decode_payload<Map>(bad_marker).error() == deltacrdt::Errc::corrupt);
  }

  // Hand-encodes `map`'s context and entries, then one more entry (key, dot, value).
  std::string with_extra_entry(const Map& map, const std::string& key, deltacrdt::Dot dot) {
    std::string out;
    deltacrdt::ByteOutputArchive ar(out);
    ar(map.context());
    ar(static_cast<std::uint64_t>(map.size() + 1));
    map.for_each([&](const std::string& k, const std::string&) {
      deltacrdt::detail::save_value(ar, k);
      ar(std::uint64_t{1});
      map.for_each_slot(k, [&](const auto& slot) {
        ar(slot.dot.replica, slot.dot.counter, slot.ts.value);
        deltacrdt::detail::save_value(ar, slot.value);
      });
    });
    deltacrdt::detail::save_value(ar, key);
    ar(std::uint64_t{1}, dot.replica, dot.counter, std::uint64_t{7});
    deltacrdt::detail::save_value(ar, std::string("v"));
    return out;
  }

  TEST_CASE("a payload repeating a key or a dot is rejected, above the index threshold too") {
    Map map;
    for (int i = 0; i < 12; ++i) {
      (void)map.put(1, "key" + std::to_string(i), "v", HlcTimestamp{100u + i});
    }
    (void)map.remove("key11");  // dot (1, 12) is in the context but no longer stored
    REQUIRE(map.size() == 11);
    const auto fine = deltacrdt::detail::decode_payload<Map>(with_extra_entry(map, "new", {1, 12}));
    REQUIRE(fine.has_value());
    CHECK(fine->size() == 12);
    CHECK(deltacrdt::detail::decode_payload<Map>(with_extra_entry(map, "key3", {1, 12})).error() ==
          deltacrdt::Errc::corrupt);
    CHECK(deltacrdt::detail::decode_payload<Map>(with_extra_entry(map, "new", {1, 4})).error() ==
          deltacrdt::Errc::corrupt);
  }
}

TEST_SUITE("crdt.awlww_map.buckets") {
  // Digests of the buckets of one level, as the catch-up computes them from hashed entries.
  std::vector<std::uint64_t> level_digests(const std::vector<deltacrdt::HashedEntry>& entries,
                                           unsigned level) {
    std::vector<std::uint64_t> out(std::size_t{1} << level, 0);
    for (const auto& e : entries) out[level == 0 ? 0 : e.key_hash >> (64 - level)] += e.entry_hash;
    return out;
  }

  // The law behind catch-up by key-hash ranges: joining, restricted to their keys, every
  // bucket whose digest differs, and then the sender's context, gives exactly Y ⊔ X - and
  // never disturbs the keys of other buckets on the way.
  TEST_CASE("joining the differing buckets and then the context equals the full join") {
    deltacrdt::testing::for_each_case(2, [](deltacrdt::testing::PropertyRng& rng) {
      using Model = deltacrdt::testing::AWLWWMapWideModel;
      const auto h = deltacrdt::testing::random_history<Model>(rng);
      const Map x = deltacrdt::testing::pick(h, rng), y = deltacrdt::testing::pick(h, rng);
      const unsigned level = static_cast<unsigned>(rng.below(5));
      const std::uint64_t seed = rng.below(1000);
      const auto ex = x.hashed_entries(seed), ey = y.hashed_entries(seed);
      REQUIRE(std::is_sorted(ex.begin(), ex.end(),
                             [](const auto& a, const auto& b) { return a.key_hash < b.key_hash; }));
      const auto dx = level_digests(ex, level), dy = level_digests(ey, level);
      std::vector<std::uint64_t> differing;
      for (std::uint64_t b = 0; b < dx.size(); ++b) {
        if (dx[b] != dy[b]) differing.push_back(b);
      }
      Map caught_up = y;
      // Ship the differing buckets one at a time, in random order.
      std::shuffle(differing.begin(), differing.end(), rng.engine());
      for (std::uint64_t b : differing) {
        const deltacrdt::KeyHashRange range = deltacrdt::bucket_range(b, level);
        std::vector<std::uint32_t> indices;
        for (const auto& e : ex) {
          if (e.key_hash >= range.lo && e.key_hash <= range.hi) indices.push_back(e.index);
        }
        const Map part = x.extract_entries(indices);
        REQUIRE(part.valid());
        REQUIRE(part.size() == indices.size());
        const Map delta = caught_up.range_delta(part, x.context(), std::span(&range, 1));
        REQUIRE(delta.valid());
        // Looking only at the entries a fresh summary places in the range gives the same.
        std::vector<deltacrdt::HashedEntry> candidates;
        for (const auto& e : caught_up.hashed_entries(seed)) {
          if (e.key_hash >= range.lo && e.key_hash <= range.hi) candidates.push_back(e);
        }
        const auto at =
            caught_up.range_delta_at(part, x.context(), std::span(&range, 1), candidates);
        REQUIRE(at.has_value());
        REQUIRE(*at == delta);
        caught_up.join(delta);
        // Keys of other buckets are untouched so far.
        y.for_each([&](const std::string& k, const std::string& v) {
          const std::uint64_t kb = level == 0 ? 0 : Map::key_hash(k) >> (64 - level);
          if (std::find(differing.begin(), differing.end(), kb) == differing.end()) {
            REQUIRE(caught_up.find(k) != nullptr);
            REQUIRE(*caught_up.find(k) == v);
          }
        });
      }
      REQUIRE(x.extract_entries({}).is_bottom());
      // The sender's context goes last, as in the protocol once every bucket is in.
      const Map last = caught_up.context_delta(x.context());
      REQUIRE(last.size() == 0);
      caught_up.join(last);
      Map expected = y;
      expected.join(x);
      REQUIRE(caught_up == expected);
      REQUIRE(caught_up.valid());
    });
  }

  TEST_CASE("equal content gives equal entry hashes, different content differs") {
    Map a, b;
    for (int i = 0; i < 50; ++i) b.join(a.put(1, "k" + std::to_string(i), "v", HlcTimestamp{1}));
    CHECK(level_digests(a.hashed_entries(7), 4) == level_digests(b.hashed_entries(7), 4));
    (void)b.put(2, "k7", "changed", HlcTimestamp{2});
    const auto da = level_digests(a.hashed_entries(7), 4);
    const auto db = level_digests(b.hashed_entries(7), 4);
    int differing = 0;
    for (std::size_t i = 0; i < da.size(); ++i) differing += da[i] != db[i] ? 1 : 0;
    CHECK(differing == 1);
    const std::uint64_t k7 = Map::key_hash("k7") >> 60;
    CHECK(da[k7] != db[k7]);
    // Another seed hashes the same content differently.
    CHECK(a.hashed_entries(7)[0].entry_hash != a.hashed_entries(8)[0].entry_hash);
  }

  TEST_CASE("key-hash ranges") {
    using deltacrdt::bucket_range;
    using deltacrdt::KeyHashRange;
    CHECK(bucket_range(0, 0) == KeyHashRange{0, ~std::uint64_t{0}});
    CHECK(bucket_range(1, 1) == KeyHashRange{std::uint64_t{1} << 63, ~std::uint64_t{0}});
    CHECK(bucket_range(5, 64) == KeyHashRange{5, 5});
    std::vector<KeyHashRange> r{{10, 20}, {0, 5}, {21, 30}, {100, 100}, {6, 6}};
    deltacrdt::normalize_ranges(r);
    CHECK(r == std::vector<KeyHashRange>{{0, 6}, {10, 30}, {100, 100}});
    CHECK(deltacrdt::in_ranges(r, 0));
    CHECK_FALSE(deltacrdt::in_ranges(r, 8));
    CHECK(deltacrdt::in_ranges(r, 30));
    CHECK_FALSE(deltacrdt::in_ranges(r, 31));
    CHECK(deltacrdt::in_ranges(r, 100));
    CHECK_FALSE(deltacrdt::in_ranges(r, 101));
    CHECK_THROWS_AS((void)Map{}.extract_entries(std::vector<std::uint32_t>{0}), std::out_of_range);
    // A candidate that is no longer at its position is detected.
    Map m;
    for (int i = 0; i < 20; ++i) (void)m.put(1, "k" + std::to_string(i), "v", HlcTimestamp{1});
    const auto entries = m.hashed_entries(0);
    (void)m.remove("k0");  // moves the last entry into k0's place
    const KeyHashRange all{0, ~std::uint64_t{0}};
    CHECK_FALSE(m.range_delta_at(Map{}, m.context(), std::span(&all, 1), entries).has_value());
  }
}

static_assert(deltacrdt::BucketedCrdt<Map>);
// The keyed causal types catch up by key ranges too; those without keys do not.
static_assert(deltacrdt::BucketedCrdt<deltacrdt::ORSet<std::string>>);
static_assert(
    deltacrdt::BucketedCrdt<deltacrdt::ORMap<std::string, deltacrdt::ORSet<std::string>>>);
static_assert(!deltacrdt::BucketedCrdt<deltacrdt::EWFlag>);
