// CausalCrdt<Derived, Store>: the lattice operations shared by every causal CRDT, i.e. a
// dot store paired with a causal context, joined by the dot-kernel rule
//   (s, c) ⊔ (s', c') = ((s ∩ s') ∪ (s \ c') ∪ (s' \ c), c ∪ c').
// Derived types add mutators through a `Ref` (a mutating view over a store and a context
// owned elsewhere, so the same code serves a standalone value and an ORMap entry).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xxhash.h>

#include "crdt/bucketed.hpp"
#include "crdt/causal_context.hpp"
#include "crdt/codec.hpp"
#include "crdt/dot_store.hpp"

namespace deltacrdt {

namespace detail {

// Dots held by `store` that `ctx` covers and `select` accepts. Enumerates whichever side
// is smaller - the context's dots or the store's - so applying a small delta to a large
// state, or a large state to a small one, costs O(smaller side).
template <class Store, class Pred>
std::vector<Dot> covered_dots(const Store& store, const CausalContext& ctx, Pred&& select) {
  std::vector<Dot> hits;
  if (ctx.dot_count() <= store.dot_count()) {
    ctx.for_each_dot([&](const Dot& d) {
      if (store.contains_dot(d) && select(d)) hits.push_back(d);
    });
  } else {
    store.for_each_dot([&](const Dot& d) {
      if (ctx.contains(d) && select(d)) hits.push_back(d);
    });
  }
  return hits;
}

template <class S>
struct is_dot_map : std::false_type {};
template <class K, class S, class H, class E>
struct is_dot_map<DotMap<K, S, H, E>> : std::true_type {};

}  // namespace detail

template <class Derived, class Store>
class CausalCrdt {
  // Types whose store is keyed (ORSet, ORMap) support catch-up by key-hash ranges.
  static constexpr bool kKeyed = detail::is_dot_map<Store>::value;

 public:
  using StoreType = Store;

  const Store& store() const { return store_; }
  const CausalContext& context() const { return ctx_; }

  void join(const Derived& o) {
    if (static_cast<const void*>(this) == static_cast<const void*>(&o)) return;
    // (s ∩ s') ∪ (s \ c'): drop our dots that o has seen but no longer holds.
    for (const Dot& d : detail::covered_dots(
             store_, o.ctx_, [&](const Dot& x) { return !o.store_.contains_dot(x); })) {
      store_.remove_dot(d);
    }
    // (s' \ c): adopt o's dots we have never seen.
    store_.add_unseen(o.store_, ctx_, [](const Dot&) {});
    ctx_.join(o.ctx_);
  }

  bool leq(const Derived& o) const {
    if (!ctx_.leq(o.ctx_)) return false;
    bool ok = true;
    o.store_.for_each_dot([&](const Dot& d) {
      if (ok && ctx_.contains(d) && !store_.contains_dot(d)) ok = false;
    });
    return ok;
  }

  // Δ(d, *this): d's dots we have not seen, d's context dots we lack, and the dots of our
  // store that d removes.
  Derived novel_part(const Derived& d) const {
    Derived out;
    out.store_.add_unseen(d.store_, ctx_, [](const Dot&) {});
    out.ctx_ = d.ctx_.missing_from(ctx_);
    for (const Dot& x : detail::covered_dots(
             store_, d.ctx_, [&](const Dot& y) { return !d.store_.contains_dot(y); })) {
      out.ctx_.insert(x);
    }
    return out;
  }

  bool is_bottom() const { return store_.empty() && ctx_.empty(); }

  std::uint64_t digest() const {
    std::string buf;
    detail::append_canonical(buf, static_cast<std::uint16_t>(Derived::kTypeTag));
    store_.append_canonical(buf);
    ctx_.append_canonical(buf);
    return detail::hash_bytes(buf);
  }

  // ---- catch-up by key-hash ranges (crdt/bucketed.hpp, docs/protocol.md), keyed stores ----
  // An entry is a key with its whole child store. Positions are the store's iteration
  // order, which holds while the value is unchanged (the sender extracts from a snapshot).

  // One HashedEntry per key, sorted by key hash. O(size log size).
  std::vector<HashedEntry> hashed_entries(std::uint64_t seed) const requires kKeyed {
    std::vector<HashedEntry> out;
    out.reserve(store_.size());
    std::string buf;
    std::uint32_t index = 0;
    store_.for_each([&](const auto& key, const auto& child) {
      buf.clear();
      detail::append_canonical(buf, key);
      const std::uint64_t kh = detail::hash_bytes(buf);
      child.append_canonical(buf);
      out.push_back(HashedEntry{kh, XXH3_64bits_withSeed(buf.data(), buf.size(), seed), index++});
    });
    std::sort(out.begin(), out.end(), [](const HashedEntry& a, const HashedEntry& b) {
      return a.key_hash != b.key_hash ? a.key_hash < b.key_hash : a.index < b.index;
    });
    return out;
  }

  // The entries at the given positions with a context of exactly their dots. O(size): the
  // store has no random access. Throws std::out_of_range for a position past the end.
  Derived extract_entries(std::span<const std::uint32_t> indices) const requires kKeyed {
    std::vector<std::uint32_t> wanted(indices.begin(), indices.end());
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    if (!wanted.empty() && wanted.back() >= store_.size()) {
      throw std::out_of_range("extract_entries: position past the end");
    }
    Derived out;
    std::size_t next = 0;
    std::uint32_t index = 0;
    store_.for_each([&](const auto& key, const auto& child) {
      if (next < wanted.size() && wanted[next] == index) {
        out.store_.add_child(key, child);
        child.for_each_dot([&](const Dot& d) { out.ctx_.insert(d); });
        ++next;
      }
      ++index;
    });
    return out;
  }

  // The delta that brings our keys hashing into `ranges` up to `part` (an extract of those
  // ranges from a replica whose whole context is their_ctx): part's entries in the ranges,
  // and as context only, the dots of ours there that their_ctx covers and part lacks
  // (removed there). Joining it touches nothing outside the ranges. O(size + |part|).
  Derived range_delta(const Derived& part, const CausalContext& their_ctx,
                      std::span<const KeyHashRange> ranges) const requires kKeyed {
    Derived out;
    std::string buf;
    const auto removed_there = [&](const Dot& d) {
      return their_ctx.contains(d) && !part.store_.contains_dot(d);
    };
    store_.for_each([&](const auto& key, const auto& child) {
      bool suspect = false;  // cheap test first: only then hash the key
      child.for_each_dot([&](const Dot& d) { suspect = suspect || removed_there(d); });
      if (!suspect || !in_ranges(ranges, key_hash(key, buf))) return;
      child.for_each_dot([&](const Dot& d) {
        if (removed_there(d)) out.ctx_.insert(d);
      });
    });
    part.store_.for_each([&](const auto& key, const auto& child) {
      if (!in_ranges(ranges, key_hash(key, buf))) return;  // not what was asked for
      out.store_.add_child(key, child);
      child.for_each_dot([&](const Dot& d) { out.ctx_.insert(d); });
    });
    return out;
  }

  // Without random access, positions cannot be checked cheaply: always range_delta.
  std::optional<Derived> range_delta_at(const Derived&, const CausalContext&,
                                        std::span<const KeyHashRange>,
                                        std::span<const HashedEntry>) const requires kKeyed {
    return std::nullopt;
  }

  // The dots of `c` we have not seen, as a delta with no entries (the last step of a
  // catch-up, once every differing range is in).
  Derived context_delta(const CausalContext& c) const requires kKeyed {
    Derived out;
    out.ctx_ = c.missing_from(ctx_);
    return out;
  }

  // f(key_hash, dot) for every dot of every entry. O(size).
  template <class F>
  void for_each_keyed_dot(F&& f) const requires kKeyed {
    std::string buf;
    store_.for_each([&](const auto& key, const auto& child) {
      const std::uint64_t kh = key_hash(key, buf);
      child.for_each_dot([&](const Dot& d) { f(kh, d); });
    });
  }

  // A decoded value must not hold dots its context has not seen (it would break the join).
  bool valid() const {
    bool ok = true;
    store_.for_each_dot([&](const Dot& d) { ok = ok && d.counter != 0 && ctx_.contains(d); });
    return ok;
  }

  friend bool operator==(const CausalCrdt& a, const CausalCrdt& b) {
    return a.ctx_ == b.ctx_ && a.store_ == b.store_;
  }

  template <class Archive>
  void save(Archive& ar) const {
    ar(store_, ctx_);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(store_, ctx_);
  }

 protected:
  // Where a key sits on the hash line (the same function as AWLWWMap's).
  template <class K>
  static std::uint64_t key_hash(const K& key, std::string& buf) {
    buf.clear();
    detail::append_canonical(buf, key);
    return detail::hash_bytes(buf);
  }

  static Derived from_delta(CausalDelta<Store>&& d) {
    Derived out;
    out.store_ = std::move(d.store);
    out.ctx_ = std::move(d.ctx);
    return out;
  }

  Store store_;
  CausalContext ctx_;
};

}  // namespace deltacrdt
