// EntryTable<K, Entry>: the storage behind the keyed CRDTs. Entries live in one dense
// vector (removal swaps the last entry into the hole); a key index and a dot index hold
// positions into it. Both indexes are built only once the table outgrows kIndexAbove
// entries: below that, lookups scan, so a one-key delta costs one small allocation
// instead of three hash tables. An empty table allocates nothing.
//
// Entry must have a member `key` (of type K) and `for_each_dot(f)` listing its dots.
// Positions and references are invalidated by append/erase; callers re-find after them.
// Value type (a copy rebuilds its indexes; a move keeps them: they live behind one heap
// pointer, which is also what the indexes' hashers point to). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include "crdt/dot.hpp"
#include "crdt/dot_index.hpp"
#include "crdt/segmented_vector.hpp"

namespace deltacrdt::detail {

template <class K, class Entry, class Hash, class KeyEqual>
class EntryTable {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  // Below this many entries lookups scan the vector: cheaper than hashing for deltas.
  static constexpr std::size_t kIndexAbove = 8;

  EntryTable() = default;
  EntryTable(const EntryTable& o) {
    if (o.impl_ && !o.impl_->entries.empty()) {
      impl_ = std::make_unique<Impl>();
      impl_->entries = o.impl_->entries;
      impl_->dot_count = o.impl_->dot_count;
      if (o.impl_->indexed) build_indexes();
    }
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
    if (impl_->indexed) {
      auto it = impl_->keys.find(key);
      return it == impl_->keys.end() ? kNone : it->pos;
    }
    const auto& v = impl_->entries;
    for (std::uint32_t i = 0; i < v.size(); ++i) {
      if (KeyEqual{}(v[i].key, key)) return i;
    }
    return kNone;
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
    if (!impl_) impl_ = std::make_unique<Impl>();
    auto& v = impl_->entries;
    const auto pos = static_cast<std::uint32_t>(v.size());
    v.push_back(std::move(e));
    std::size_t dots = 0;
    v.back().for_each_dot([&](const Dot&) { ++dots; });
    impl_->dot_count += dots;
    if (impl_->indexed) {
      impl_->keys.insert(Pos{pos, short_hash(v.back().key)});
      v.back().for_each_dot([&](const Dot& d) { impl_->dots.insert_or_assign(d, pos); });
    } else if (v.size() > kIndexAbove) {
      build_indexes();
    }
    return pos;
  }

  // For decoding: appends e and reports whether its key and all its dots were new to the
  // table (the caller checks e's own dots against each other). On false
  // the table's indexes no longer describe it: the caller must discard the table. One index
  // probe per key and dot instead of a lookup before every insertion.
  bool append_if_unique(Entry e) {
    if (!impl_ || !impl_->indexed) {
      if (find(e.key) != kNone) return false;
      bool seen = false;
      e.for_each_dot([&](const Dot& d) { seen = seen || contains_dot(d); });
      if (seen) return false;
      append(std::move(e));
      return !impl_->indexed || impl_->dots.size() == impl_->dot_count;
    }
    const std::size_t keys = impl_->keys.size();
    append(std::move(e));
    return impl_->keys.size() == keys + 1 && impl_->dots.size() == impl_->dot_count;
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
      // Unindex before moving: the key index hashes positions through the vector.
      impl_->keys.erase(impl_->keys.find(v[pos].key));
      if (pos != last) impl_->keys.erase(impl_->keys.find(v[last].key));
    }
    if (pos != last) {
      v[pos] = std::move(v[last]);
      if (impl_->indexed) {
        impl_->keys.insert(Pos{pos, short_hash(v[pos].key)});
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
  struct Impl;
  // An index element: the entry's position and 32 bits of its key's hash, kept so that
  // inserting and rehashing never reach into the entry vector or hash a key again.
  struct Pos {
    std::uint32_t pos;
    std::uint32_t hash;
  };
  static std::uint32_t short_hash(const K& k) { return static_cast<std::uint32_t>(Hash{}(k)); }
  // Hash and equality over positions; equality resolves keys through the owning Impl
  // (which never moves). Transparent, so that lookups take a key.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(const Pos& p) const { return p.hash; }
    std::size_t operator()(const K& k) const { return short_hash(k); }
  };
  struct KeyEq {
    using is_transparent = void;
    const Impl* impl;
    bool operator()(const Pos& a, const Pos& b) const {
      return KeyEqual{}(impl->entries[a.pos].key, impl->entries[b.pos].key);
    }
    bool operator()(const K& a, const Pos& b) const {
      return KeyEqual{}(a, impl->entries[b.pos].key);
    }
    bool operator()(const Pos& a, const K& b) const {
      return KeyEqual{}(impl->entries[a.pos].key, b);
    }
  };

  struct Impl {
    Impl() : keys(0, KeyHash{}, KeyEq{this}) {}
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    SegmentedVector<Entry> entries;                       // elements never move as the table grows
    boost::unordered_flat_set<Pos, KeyHash, KeyEq> keys;  // valid iff indexed
    DotIndex dots;                                        // valid iff indexed
    std::size_t dot_count = 0;
    bool indexed = false;
  };

  void build_indexes() {
    Impl& m = *impl_;
    m.keys.clear();
    m.dots.clear();
    m.keys.reserve(m.entries.size());
    for (std::uint32_t i = 0; i < m.entries.size(); ++i) {
      m.keys.insert(Pos{i, short_hash(m.entries[i].key)});
      m.entries[i].for_each_dot([&](const Dot& d) { m.dots.insert_or_assign(d, i); });
    }
    m.indexed = true;
  }

  std::unique_ptr<Impl> impl_;
};

}  // namespace deltacrdt::detail
