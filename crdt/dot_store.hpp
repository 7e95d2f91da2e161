// Dot stores (Almeida et al. 2018, section 6): DotSet, DotFun<V> and DotMap<K, S>, the
// building blocks of the causal CRDTs (ORSet, EWFlag, MVRegister, CausalCounter, ORMap).
//
// Every store offers the same small interface, which is all the causal join needs:
//   empty(), dot_count(), contains_dot(d), for_each_dot(f), remove_dot(d),
//   add_unseen(other, seen, on_added) - adopt other's dots that `seen` lacks,
//   append_canonical(buf) for digests, save/load, ==.
// DotMap keeps an index dot -> entry over every dot nested below it, so removing a dot or
// applying a small delta touches only the affected keys. Value types; not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_map.hpp>

#include "crdt/causal_context.hpp"
#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/small_vector.hpp"

namespace deltacrdt {

// A delta of a causal store: the dots it adds (with payloads) and the dots it has seen.
template <class Store>
struct CausalDelta {
  Store store;
  CausalContext ctx;
};

// Empties `store` and returns the delta that retires every dot it held: the common
// "remove what this replica has observed" mutator (disable, reset, clear). Concurrent
// additions elsewhere are not in the delta's context, so they survive.
template <class Store>
CausalDelta<Store> remove_all(Store& store) {
  CausalDelta<Store> d;
  store.for_each_dot([&](const Dot& x) { d.ctx.insert(x); });
  store.clear();
  return d;
}

// A set of dots, kept sorted; one dot inline (the common case needs no allocation).
class DotSet {
 public:
  bool empty() const { return dots_.empty(); }
  std::size_t dot_count() const { return dots_.size(); }
  bool contains_dot(const Dot& d) const {
    return std::binary_search(dots_.begin(), dots_.end(), d);
  }
  template <class F>
  void for_each_dot(F&& f) const {
    for (const Dot& d : dots_) f(d);
  }
  void insert(const Dot& d) {
    auto pos = std::lower_bound(dots_.begin(), dots_.end(), d);
    if (pos == dots_.end() || *pos != d) dots_.insert(pos, d);
  }
  void remove_dot(const Dot& d) {
    auto pos = std::lower_bound(dots_.begin(), dots_.end(), d);
    if (pos != dots_.end() && *pos == d) dots_.erase(pos);
  }
  void clear() { dots_.clear(); }
  template <class F>
  void add_unseen(const DotSet& other, const CausalContext& seen, F&& on_added) {
    for (const Dot& d : other.dots_) {
      if (!seen.contains(d)) {
        insert(d);
        on_added(d);
      }
    }
  }
  void append_canonical(std::string& buf) const {
    detail::append_canonical(buf, dots_.size());
    for (const Dot& d : dots_) {
      detail::append_canonical(buf, d.replica);
      detail::append_canonical(buf, d.counter);
    }
  }
  friend bool operator==(const DotSet&, const DotSet&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    ar(static_cast<std::uint64_t>(dots_.size()));
    for (const Dot& d : dots_) ar(d.replica, d.counter);
  }
  template <class Archive>
  void load(Archive& ar) {
    dots_.clear();
    const std::uint64_t n = detail::load_count(ar);
    for (std::uint64_t i = 0; i < n; ++i) {
      Dot d;
      ar(d.replica, d.counter);
      if (!dots_.empty() && !(dots_.back() < d)) throw std::runtime_error("dot set not sorted");
      dots_.push_back(d);
    }
  }

 private:
  boost::container::small_vector<Dot, 1> dots_;
};

// A map dot -> V, kept sorted by dot. Payloads of one dot never change (a dot names one
// write), so joining two copies of a dot keeps either.
template <class V>
class DotFun {
 public:
  using Item = std::pair<Dot, V>;

  bool empty() const { return items_.empty(); }
  std::size_t dot_count() const { return items_.size(); }
  bool contains_dot(const Dot& d) const { return find(d) != nullptr; }
  const V* find(const Dot& d) const {
    auto pos = lower(d);
    return pos != items_.end() && pos->first == d ? &pos->second : nullptr;
  }
  template <class F>
  void for_each_dot(F&& f) const {
    for (const Item& it : items_) f(it.first);
  }
  template <class F>
  void for_each(F&& f) const {
    for (const Item& it : items_) f(it.first, it.second);
  }
  void insert(const Dot& d, V v) {
    auto pos = lower(d);
    if (pos == items_.end() || pos->first != d) items_.insert(pos, Item{d, std::move(v)});
  }
  void remove_dot(const Dot& d) {
    auto pos = lower(d);
    if (pos != items_.end() && pos->first == d) items_.erase(pos);
  }
  void clear() { items_.clear(); }
  template <class F>
  void add_unseen(const DotFun& other, const CausalContext& seen, F&& on_added) {
    for (const Item& it : other.items_) {
      if (!seen.contains(it.first)) {
        insert(it.first, it.second);
        on_added(it.first);
      }
    }
  }
  void append_canonical(std::string& buf) const {
    detail::append_canonical(buf, items_.size());
    for (const Item& it : items_) {
      detail::append_canonical(buf, it.first.replica);
      detail::append_canonical(buf, it.first.counter);
      detail::append_canonical(buf, it.second);
    }
  }
  friend bool operator==(const DotFun&, const DotFun&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    ar(static_cast<std::uint64_t>(items_.size()));
    for (const Item& it : items_) {
      ar(it.first.replica, it.first.counter);
      detail::save_value(ar, it.second);
    }
  }
  template <class Archive>
  void load(Archive& ar) {
    items_.clear();
    const std::uint64_t n = detail::load_count(ar);
    for (std::uint64_t i = 0; i < n; ++i) {
      Item it;
      ar(it.first.replica, it.first.counter);
      detail::load_value(ar, it.second);
      if (!items_.empty() && !(items_.back().first < it.first)) {
        throw std::runtime_error("dot function not sorted");
      }
      items_.push_back(std::move(it));
    }
  }

 private:
  auto lower(const Dot& d) const {
    return std::lower_bound(items_.begin(), items_.end(), d,
                            [](const Item& a, const Dot& b) { return a.first < b; });
  }
  auto lower(const Dot& d) {
    return std::lower_bound(items_.begin(), items_.end(), d,
                            [](const Item& a, const Dot& b) { return a.first < b; });
  }
  boost::container::small_vector<Item, 1> items_;
};

// A map K -> dot store. Keys whose store is empty are absent (no tombstones).
template <class K, class S, class Hash = boost::hash<K>, class KeyEqual = std::equal_to<K>>
class DotMap {
  using Map = boost::unordered_map<K, S, Hash, KeyEqual>;
  using Node = typename Map::value_type;

 public:
  using key_type = K;
  using child_type = S;

  DotMap() = default;
  DotMap(const DotMap& o) : map_(o.map_) { rebuild_index(); }
  DotMap(DotMap&&) noexcept = default;  // node addresses survive a move, so the index does
  DotMap& operator=(const DotMap& o) {
    if (this != &o) {
      DotMap copy(o);
      *this = std::move(copy);
    }
    return *this;
  }
  DotMap& operator=(DotMap&&) noexcept = default;
  ~DotMap() = default;

  bool empty() const { return map_.empty(); }
  std::size_t size() const { return map_.size(); }
  std::size_t dot_count() const { return index_.size(); }
  bool contains_dot(const Dot& d) const { return index_.contains(d); }
  const S* find(const K& k) const {
    auto it = map_.find(k);
    return it == map_.end() ? nullptr : &it->second;
  }
  bool contains(const K& k) const { return map_.contains(k); }
  template <class F>
  void for_each_dot(F&& f) const {
    for (const auto& [d, node] : index_) f(d);
  }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [k, s] : map_) f(k, s);
  }

  void clear() {
    map_.clear();
    index_.clear();
  }

  void remove_dot(const Dot& d) {
    auto it = index_.find(d);
    if (it == index_.end()) return;
    Node* node = it->second;
    index_.erase(it);
    node->second.remove_dot(d);
    if (node->second.empty()) map_.erase(node->first);
  }

  template <class F>
  void add_unseen(const DotMap& other, const CausalContext& seen, F&& on_added) {
    for (const Node& theirs : other.map_) {
      auto [it, inserted] = map_.try_emplace(theirs.first);
      Node* node = &*it;
      it->second.add_unseen(theirs.second, seen, [&](const Dot& d) {
        index_.emplace(d, node);
        on_added(d);
      });
      if (inserted && it->second.empty()) map_.erase(it);
    }
  }

  // Applies fn(S& child, ...) to key's store (created empty if absent) and lifts the
  // child-level delta fn returns to a map-level delta, keeping the index in step. The
  // delta must name every dot fn removed (in ctx, not store) and every dot it added.
  template <class F>
  CausalDelta<DotMap> update(const K& key, F&& fn) {
    auto [it, inserted] = map_.try_emplace(key);
    Node* node = &*it;
    CausalDelta<S> child;
    try {
      child = fn(it->second);
    } catch (...) {
      // The child's mutators change nothing when they throw (a dot they cannot issue):
      // neither may the map, so an entry made for them goes again.
      if (inserted) map_.erase(it);
      throw;
    }
    child.ctx.for_each_dot([&](const Dot& d) {
      if (!child.store.contains_dot(d)) index_.erase(d);
    });
    child.store.for_each_dot([&](const Dot& d) { index_.insert_or_assign(d, node); });
    CausalDelta<DotMap> out;
    out.ctx = std::move(child.ctx);
    if (!child.store.empty()) out.store.emplace_child(key, std::move(child.store));
    if (it->second.empty()) map_.erase(it);
    return out;
  }

  // Adds an absent key with a copy of child `s`, indexing its dots (extracts of a state).
  // Throws std::runtime_error if the key or one of the dots is already present.
  void add_child(const K& key, const S& s) {
    if (map_.contains(key)) throw std::runtime_error("duplicate dot map key");
    emplace_child(key, s);
  }

  // Removes key; the delta's context holds the removed dots.
  CausalDelta<DotMap> remove(const K& key) {
    CausalDelta<DotMap> out;
    auto it = map_.find(key);
    if (it == map_.end()) return out;
    it->second.for_each_dot([&](const Dot& d) {
      out.ctx.insert(d);
      index_.erase(d);
    });
    map_.erase(it);
    return out;
  }

  void append_canonical(std::string& buf) const {
    std::uint64_t sum = 0;  // order-independent over keys
    std::string entry;
    for (const auto& [k, s] : map_) {
      entry.clear();
      detail::append_canonical(entry, k);
      s.append_canonical(entry);
      sum += detail::hash_bytes(entry);
    }
    detail::append_canonical(buf, map_.size());
    detail::append_canonical(buf, sum);
  }

  friend bool operator==(const DotMap& a, const DotMap& b) { return a.map_ == b.map_; }

  template <class Archive>
  void save(Archive& ar) const {
    ar(static_cast<std::uint64_t>(map_.size()));
    for (const auto& [k, s] : map_) {
      detail::save_value(ar, k);
      ar(s);
    }
  }
  template <class Archive>
  void load(Archive& ar) {
    DotMap fresh;
    const std::uint64_t n = detail::load_count(ar);
    for (std::uint64_t i = 0; i < n; ++i) {
      K k{};
      detail::load_value(ar, k);
      S s;
      ar(s);
      if (s.empty()) throw std::runtime_error("empty dot map entry");
      if (!fresh.map_.contains(k)) {
        fresh.emplace_child(std::move(k), std::move(s));
      } else {
        throw std::runtime_error("duplicate dot map key");
      }
    }
    *this = std::move(fresh);
  }

 private:
  void emplace_child(K key, S s) {
    auto [it, inserted] = map_.try_emplace(std::move(key), std::move(s));
    Node* node = &*it;
    it->second.for_each_dot([&](const Dot& d) {
      if (!index_.emplace(d, node).second) throw std::runtime_error("duplicate dot");
    });
  }

  void rebuild_index() {
    index_.clear();
    for (auto& node : map_) {
      Node* p = &node;
      node.second.for_each_dot([&](const Dot& d) { index_.emplace(d, p); });
    }
  }

  template <class, class, class, class>
  friend class DotMap;

  Map map_;
  boost::unordered_flat_map<Dot, Node*, DotHash> index_;  // derived: nested dot -> entry
};

}  // namespace deltacrdt
