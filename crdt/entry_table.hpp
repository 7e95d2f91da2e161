// EntryTable<K, Entry>: the storage behind the keyed CRDTs. Entries live in one dense
// vector (removal swaps the last entry into the hole); a key index and a dot index hold
// positions into it. Both indexes are built only once the table outgrows kIndexAbove
// entries: below that, lookups scan, so a one-key delta costs one small allocation
// instead of three hash tables. An empty table allocates nothing.
//
// Entry must have a member `key` (of type K) and `for_each_dot(f)` listing its dots.
// Positions and references are invalidated by append/erase; callers re-find after them.
// Value type (a copy copies its indexes, since positions do not change; a move keeps them:
// they live behind one heap pointer). Not thread-safe.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "crdt/dot.hpp"
#include "crdt/dot_index.hpp"
#include "crdt/key_index.hpp"
#include "crdt/segmented_vector.hpp"

namespace deltacrdt::detail {

template <class K, class Entry, class Hash, class KeyEqual>
class EntryTable {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  // Below this many entries lookups scan the vector: cheaper than hashing for deltas.
  static constexpr std::size_t kIndexAbove = 8;
  // A key index up to this size (about 28k keys) is taken to stay in cache.
  static constexpr std::size_t kCachedIndexBytes = std::size_t{256} << 10;

  EntryTable() = default;
  // A copy keeps every position, so the indexes are copied rather than rebuilt.
  EntryTable(const EntryTable& o) {
    if (o.impl_ && !o.impl_->entries.empty()) impl_ = std::make_unique<Impl>(*o.impl_);
  }
  EntryTable(EntryTable&&) noexcept = default;
  EntryTable& operator=(const EntryTable& o) {
    if (this != &o) *this = EntryTable(o);
    return *this;
  }
  EntryTable& operator=(EntryTable&&) noexcept = default;
  ~EntryTable() = default;

  std::size_t size() const { return impl_ ? impl_->entries.size() : 0; }
  bool empty() const { return size() == 0; }
  std::size_t dot_count() const { return impl_ ? impl_->dot_count : 0; }

  Entry& at(std::uint32_t pos) { return impl_->entries[pos]; }
  const Entry& at(std::uint32_t pos) const { return impl_->entries[pos]; }

  using const_iterator = typename SegmentedVector<Entry>::const_iterator;
  const_iterator begin() const { return impl_ ? impl_->entries.begin() : const_iterator{}; }
  const_iterator end() const { return impl_ ? impl_->entries.end() : const_iterator{}; }

  std::uint32_t find(const K& key) const {
    if (!impl_) return kNone;
    if (impl_->indexed) return find_hashed<false>(key, short_hash(key));
    return scan(key);
  }
  // The lookup of a caller about to change or add the entry, split in two so that it can
  // overlap the key index's cache miss with work of its own: start_find hashes the key and
  // starts loading its index line; finish_find_for_update completes the lookup, and
  // finish_append adds the key if absent, neither hashing it again. While a candidate's key
  // is compared, the lines the change touches (its dots' index slots, its value's bytes)
  // start loading too, so that in a large table these misses overlap instead of following
  // one another; plain reads (find) skip that work. A PendingFind is valid only until the
  // table next changes: the table is then indexed exactly when it was at start_find, so
  // `hash` is set exactly when the finish calls read it.
  struct PendingFind {
    std::uint32_t hash = 0;  // short_hash(key) if the table is indexed, else unused
  };
  PendingFind start_find(const K& key) const {
    if (!impl_ || !impl_->indexed) return {};
    const std::uint32_t hash = short_hash(key);
    impl_->keys.prefetch(hash);
    return {hash};
  }
  std::uint32_t finish_find_for_update(const K& key, PendingFind pending) const {
    if (!impl_) return kNone;
    if (impl_->indexed) return find_hashed<true>(key, pending.hash);
    return scan(key);
  }
  // append(e), for the key start_find was given (and finish_find_for_update did not find).
  std::uint32_t finish_append(Entry e, PendingFind pending) {
    return append_hashed(std::move(e), pending.hash);
  }

  // Starts loading the index line a lookup of key reads first; a hint that changes nothing.
  // Callers working through many keys issue it a few keys ahead, so that in a large table
  // the index misses of several keys overlap instead of following one another.
  void prefetch(const K& key) const {
    if (impl_ && impl_->indexed) impl_->keys.prefetch(short_hash(key));
  }
  // Whether lookups are likely to miss the cache, so that prefetching ahead pays for the
  // extra hash it costs: the key index outgrows what a core's L2 cache typically holds.
  bool index_exceeds_cache() const {
    return impl_ && impl_->indexed && impl_->keys.bytes() > kCachedIndexBytes;
  }

  std::uint32_t find_dot(const Dot& d) const {
    if (!impl_) return kNone;
    if (impl_->indexed) {
      return impl_->dots.find(d);
    }
    const auto& v = impl_->entries;
    for (std::uint32_t i = 0; i < v.size(); ++i) {
      bool hit = false;
      v[i].for_each_dot([&](const Dot& x) { hit = hit || x == d; });
      if (hit) return i;
    }
    return kNone;
  }
  bool contains_dot(const Dot& d) const { return find_dot(d) != kNone; }

  template <class F>
  void for_each_dot(F&& f) const {
    if (!impl_) return;
    for (const Entry& e : impl_->entries) e.for_each_dot(f);
  }

  // Adds an entry whose key is absent; indexes its dots. Returns its position.
  std::uint32_t append(Entry e) {
    const std::uint32_t hash = impl_ && impl_->indexed ? short_hash(e.key) : 0;
    return append_hashed(std::move(e), hash);
  }

  // For decoding: appends e and reports whether its key and all its dots were new to the
  // table (the caller checks e's own dots against each other). On false the table's dot
  // index no longer describes it: the caller must discard the table. One dot index probe per
  // dot instead of a lookup before every insertion.
  bool append_if_unique(Entry e) {
    if (!impl_ || !impl_->indexed) {
      if (find(e.key) != kNone) return false;
      bool seen = false;
      e.for_each_dot([&](const Dot& d) { seen = seen || contains_dot(d); });
      if (seen) return false;
      append(std::move(e));
      return !impl_->indexed || impl_->dots.size() == impl_->dot_count;
    }
    const std::uint32_t hash = short_hash(e.key);
    if (find_hashed<false>(e.key, hash) != kNone) return false;
    append_hashed(std::move(e), hash);
    return impl_->dots.size() == impl_->dot_count;
  }

  // Removes the entry at pos (its dots leave the dot index); the last entry moves into pos.
  void erase(std::uint32_t pos) {
    auto& v = impl_->entries;
    const auto last = static_cast<std::uint32_t>(v.size() - 1);
    v[pos].for_each_dot([&](const Dot& d) {
      --impl_->dot_count;
      if (impl_->indexed) impl_->dots.erase(d);
    });
    if (impl_->indexed) {
      // By position: neither slot needs its key compared.
      impl_->keys.erase(short_hash(v[pos].key), pos);
      if (pos != last) impl_->keys.relocate(short_hash(v[last].key), last, pos);
    }
    if (pos != last) {
      v[pos] = std::move(v[last]);
      if (impl_->indexed) {
        v[pos].for_each_dot([&](const Dot& d) { impl_->dots.insert_or_assign(d, pos); });
      }
    }
    v.pop_back();
  }

  // An entry gained or lost one dot in place.
  void dot_added(const Dot& d, std::uint32_t pos) {
    ++impl_->dot_count;
    if (impl_->indexed) impl_->dots.insert_or_assign(d, pos);
  }
  void dot_removed(const Dot& d) {
    --impl_->dot_count;
    if (impl_->indexed) impl_->dots.erase(d);
  }

  void reserve(std::size_t n) {
    if (n <= kIndexAbove) return;
    if (!impl_) impl_ = std::make_unique<Impl>();
    impl_->entries.reserve(n);
    if (!impl_->indexed) build_indexes();
    impl_->keys.reserve(n);
  }

  void clear() { impl_.reset(); }

  // Consistency of the derived state (for valid()): dot count, and both indexes when built.
  bool indexes_consistent() const {
    if (!impl_) return true;
    std::size_t dots = 0;
    bool ok = true;
    const auto& v = impl_->entries;
    for (std::uint32_t i = 0; i < v.size(); ++i) {
      if (find(v[i].key) != i) ok = false;
      v[i].for_each_dot([&](const Dot& d) {
        ++dots;
        if (find_dot(d) != i) ok = false;
      });
    }
    if (impl_->indexed && (impl_->keys.size() != v.size() || impl_->dots.size() != dots))
      ok = false;
    return ok && dots == impl_->dot_count;
  }

 private:
  // 32 bits of the key's hash: the key index stores them beside each position, so growing
  // the index never reaches into the entry vector or hashes a key again.
  static std::uint32_t short_hash(const K& k) { return static_cast<std::uint32_t>(Hash{}(k)); }

  struct Impl {
    SegmentedVector<Entry> entries;  // elements never move as the table grows
    KeyIndex keys;                   // valid iff indexed
    DotIndex dots;                   // valid iff indexed
    std::size_t dot_count = 0;
    bool indexed = false;
  };

  // Requires the indexes to be built; `hash` is short_hash(key).
  template <bool kPrefetchForUpdate>
  std::uint32_t find_hashed(const K& key, std::uint32_t hash) const {
    const auto& v = impl_->entries;
    return impl_->keys.find(hash, [&](std::uint32_t p) {
      const Entry& e = v[p];
      if constexpr (kPrefetchForUpdate) {
        e.for_each_dot([&](const Dot& d) { impl_->dots.prefetch(d); });
        if constexpr (requires { e.prefetch(); }) e.prefetch();
      }
      return KeyEqual{}(e.key, key);
    });
  }

  std::uint32_t scan(const K& key) const {
    const auto& v = impl_->entries;
    for (std::uint32_t i = 0; i < v.size(); ++i) {
      if (KeyEqual{}(v[i].key, key)) return i;
    }
    return kNone;
  }

  // append(), with `hash` = short_hash(e.key) when the indexes are built (else unused).
  std::uint32_t append_hashed(Entry e, std::uint32_t hash) {
    if (!impl_) impl_ = std::make_unique<Impl>();
    auto& v = impl_->entries;
    assert(v.size() <= KeyIndex::kMaxPosition);  // positions above it mark index slots
    const auto pos = static_cast<std::uint32_t>(v.size());
    v.push_back(std::move(e));
    std::size_t dots = 0;
    v.back().for_each_dot([&](const Dot&) { ++dots; });
    impl_->dot_count += dots;
    if (impl_->indexed) {
      impl_->keys.insert(hash, pos);
      v.back().for_each_dot([&](const Dot& d) { impl_->dots.insert_or_assign(d, pos); });
    } else if (v.size() > kIndexAbove) {
      build_indexes();
    }
    return pos;
  }

  void build_indexes() {
    Impl& m = *impl_;
    m.keys.clear();
    m.dots.clear();
    m.keys.reserve(m.entries.size());
    for (std::uint32_t i = 0; i < m.entries.size(); ++i) {
      m.keys.insert(short_hash(m.entries[i].key), i);
      m.entries[i].for_each_dot([&](const Dot& d) { m.dots.insert_or_assign(d, i); });
    }
    m.indexed = true;
  }

  std::unique_ptr<Impl> impl_;
};

}  // namespace deltacrdt::detail
