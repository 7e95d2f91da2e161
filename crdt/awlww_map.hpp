// AWLWWMap<K, V>: add-wins map whose concurrent values resolve last-writer-wins.
//
// A put concurrent with a remove of the same key survives (add-wins); concurrent puts are
// all kept as slots and the visible value is the one with the greatest (HLC timestamp,
// replica id, dot counter) - a total order, so equal timestamps never diverge. A put
// observes and removes every slot it replaces, so a causally later write always wins.
// Value type (copies share nothing); not thread-safe. Mutators and small-delta joins cost
// O(size of the change): a dot index finds the slot a context dot refers to without
// scanning the map.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_map.hpp>

#include "crdt/causal_context.hpp"
#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/dot_store.hpp"  // small_vector, with its GCC 12 diagnostic fix
#include "crdt/hlc.hpp"

namespace deltacrdt {

template <class K, class V, class Hash = boost::hash<K>, class KeyEqual = std::equal_to<K>>
class AWLWWMap {
 public:
  static constexpr TypeTag kTypeTag = TypeTag::aw_lww_map;
  static constexpr std::uint16_t kFormatVersion = 1;

  // One write of a value: its dot (identity), its timestamp and the value.
  struct Slot {
    Dot dot;
    HlcTimestamp ts;
    V value;

    // The LWW order. Two slots of one key with the same dot are the same write.
    bool beats(const Slot& other) const {
      return std::tie(ts, dot.replica, dot.counter) >
             std::tie(other.ts, other.dot.replica, other.dot.counter);
    }
    friend bool operator==(const Slot&, const Slot&) = default;
  };

  AWLWWMap() = default;
  AWLWWMap(const AWLWWMap& other) : entries_(other.entries_), ctx_(other.ctx_) { rebuild_index(); }
  AWLWWMap(AWLWWMap&&) noexcept = default;  // node addresses survive a move, so the index does
  AWLWWMap& operator=(const AWLWWMap& other) {
    if (this != &other) {
      AWLWWMap copy(other);
      *this = std::move(copy);
    }
    return *this;
  }
  AWLWWMap& operator=(AWLWWMap&&) noexcept = default;
  ~AWLWWMap() = default;

  // ---- mutators: apply to *this and return the minimal delta ----

  // Sets key to value with timestamp `ts` (take it from a HybridClock). The delta carries
  // the new slot and the dots of the slots it replaces.
  [[nodiscard]] AWLWWMap put(ReplicaId self, K key, V value, HlcTimestamp ts) {
    AWLWWMap delta;
    const Dot dot = ctx_.make_dot(self);
    delta.ctx_.insert(dot);
    auto [it, inserted] = entries_.try_emplace(std::move(key));
    Entry& e = it->second;
    if (!inserted) {
      e.for_each_slot([&](const Slot& s) {
        delta.ctx_.insert(s.dot);
        by_dot_.erase(s.dot);
      });
      e.rest.reset();
    }
    e.head = Slot{dot, ts, std::move(value)};
    by_dot_.emplace(dot, &*it);
    auto [dit, dinserted] = delta.entries_.try_emplace(it->first);
    dit->second.head = e.head;
    delta.by_dot_.emplace(dot, &*dit);
    return delta;
  }

  // Removes key. Only the slots this replica has observed are removed: a concurrent put
  // elsewhere survives (add-wins). Removing an absent key returns bottom.
  [[nodiscard]] AWLWWMap remove(const K& key) {
    AWLWWMap delta;
    auto it = entries_.find(key);
    if (it == entries_.end()) return delta;
    it->second.for_each_slot([&](const Slot& s) {
      delta.ctx_.insert(s.dot);
      by_dot_.erase(s.dot);
    });
    entries_.erase(it);
    return delta;
  }

  // Removes every key this replica has observed.
  [[nodiscard]] AWLWWMap clear() {
    AWLWWMap delta;
    for (const auto& [dot, node] : by_dot_) delta.ctx_.insert(dot);
    by_dot_.clear();
    entries_.clear();
    return delta;
  }

  // ---- reads: no copies of the state ----

  const V* find(const K& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second.head.value;
  }
  // The winning slot (value, timestamp, dot) of key, or nullptr.
  const Slot* find_slot(const K& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second.head;
  }
  bool contains(const K& key) const { return entries_.contains(key); }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const CausalContext& context() const { return ctx_; }

  // Calls f(const K&, const V&) for every key with its visible value; order unspecified.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [k, e] : entries_) f(k, e.head.value);
  }

  // ---- lattice ----

  void join(const AWLWWMap& o) {
    if (this == &o) return;
    if (o.entries_.size() > entries_.size()) {
      // A large argument (full-state sync): grow once instead of rehashing repeatedly.
      entries_.reserve(entries_.size() + o.entries_.size());
      by_dot_.reserve(by_dot_.size() + o.by_dot_.size());
    }
    // Keys o holds: merge slot lists in place (an overwrite reuses the entry).
    // (Plain node loops: clang before 16 cannot capture structured bindings in lambdas.)
    for (const Node& theirs : o.entries_) {
      auto it = entries_.find(theirs.first);
      if (it != entries_.end()) {
        merge_entry(it, theirs.second, o);
      } else {
        theirs.second.for_each_slot([&](const Slot& s) {
          if (!ctx_.contains(s.dot)) add_slot(theirs.first, s);
        });
      }
    }
    // (s ∩ s') ∪ (s \ c') for all other keys: drop our slots that o has seen but no longer
    // holds. Slots adopted above are not in c, hence never in o's removal set.
    for_each_own_dot_in(
        o.ctx_, [&](const Dot& d) { return !o.by_dot_.contains(d); },
        [&](const Dot& d) { remove_slot(d); });
    ctx_.join(o.ctx_);
  }

  bool leq(const AWLWWMap& o) const {
    if (!ctx_.leq(o.ctx_)) return false;
    // Every slot of o that we have seen must still be ours, or the join would drop it.
    for (const auto& [dot, node] : o.by_dot_) {
      if (ctx_.contains(dot) && !by_dot_.contains(dot)) return false;
    }
    return true;
  }

  // Δ(d, *this): the slots of d we have not seen, the dots of d's context we lack, and the
  // dots of our slots that d removes.
  AWLWWMap novel_part(const AWLWWMap& d) const {
    AWLWWMap out;
    for (const Node& node : d.entries_) {
      node.second.for_each_slot([&](const Slot& s) {
        if (!ctx_.contains(s.dot)) out.add_slot(node.first, s);
      });
    }
    d.ctx_.for_each_dot_missing_from(ctx_, [&](const Dot& dot) { out.ctx_.insert(dot); });
    d.for_each_own_dot_in_reverse(*this, [&](const Dot& dot) { out.ctx_.insert(dot); });
    return out;
  }

  bool is_bottom() const { return entries_.empty() && ctx_.empty(); }

  friend bool operator==(const AWLWWMap& a, const AWLWWMap& b) {
    return a.ctx_ == b.ctx_ && a.entries_ == b.entries_;
  }

  // Order-independent: a sum of per-key hashes, then the context's canonical form.
  std::uint64_t digest() const {
    std::uint64_t sum = 0;
    std::string buf;
    for (const auto& [k, e] : entries_) {
      buf.clear();
      detail::append_canonical(buf, k);
      e.for_each_slot([&](const Slot& s) {
        detail::append_canonical(buf, s.dot.replica);
        detail::append_canonical(buf, s.dot.counter);
        detail::append_canonical(buf, s.ts.value);
        detail::append_canonical(buf, s.value);
      });
      sum += detail::hash_bytes(buf);
    }
    buf.clear();
    detail::append_canonical(buf, static_cast<std::uint16_t>(kTypeTag));
    detail::append_canonical(buf, sum);
    detail::append_canonical(buf, entries_.size());
    append_context(buf, ctx_);
    return detail::hash_bytes(buf);
  }

  // Invariants of a well-formed value (checked on decode): every slot's dot is in the
  // context, each dot appears once, entries are non-empty and in canonical slot order.
  bool valid() const {
    std::size_t slots = 0;
    for (const Node& node : entries_) {
      const Entry& e = node.second;
      bool ok = true;
      e.for_each_slot([&](const Slot& s) {
        ++slots;
        ok = ok && s.dot.counter != 0 && ctx_.contains(s.dot);
        auto it = by_dot_.find(s.dot);
        ok = ok && it != by_dot_.end() && &it->second->second == &e;
      });
      if (!ok || !e.canonical()) return false;
    }
    return slots == by_dot_.size();
  }

  template <class Archive>
  void save(Archive& ar) const {
    ar(ctx_);
    ar(static_cast<std::uint64_t>(entries_.size()));
    for (const auto& [k, e] : entries_) {
      detail::save_value(ar, k);
      ar(static_cast<std::uint64_t>(e.slot_count()));
      e.for_each_slot([&](const Slot& s) {
        ar(s.dot.replica, s.dot.counter, s.ts.value);
        detail::save_value(ar, s.value);
      });
    }
  }

  template <class Archive>
  void load(Archive& ar) {
    AWLWWMap fresh;
    ar(fresh.ctx_);
    const std::uint64_t n = detail::load_count(ar);
    for (std::uint64_t i = 0; i < n; ++i) {
      K key{};
      detail::load_value(ar, key);
      const std::uint64_t slots = detail::load_count(ar);
      if (slots == 0) throw std::runtime_error("empty map entry");
      auto [it, inserted] = fresh.entries_.try_emplace(std::move(key));
      if (!inserted) throw std::runtime_error("duplicate map key");
      Entry& e = it->second;
      for (std::uint64_t j = 0; j < slots; ++j) {
        Slot s;
        ar(s.dot.replica, s.dot.counter, s.ts.value);
        detail::load_value(ar, s.value);
        if (!fresh.by_dot_.emplace(s.dot, &*it).second) throw std::runtime_error("duplicate dot");
        if (j == 0) {
          e.head = std::move(s);
        } else {
          if (!e.rest) e.rest = std::make_unique<std::vector<Slot>>();
          e.rest->push_back(std::move(s));
        }
      }
    }
    *this = std::move(fresh);
  }

 private:
  // All slots of one key. `head` is the visible winner; `rest` holds concurrent losers
  // sorted by dot and is null in the common single-writer case (no allocation).
  struct Entry {
    Slot head{};
    std::unique_ptr<std::vector<Slot>> rest;

    Entry() = default;
    Entry(const Entry& o)
        : head(o.head), rest(o.rest ? std::make_unique<std::vector<Slot>>(*o.rest) : nullptr) {}
    Entry(Entry&&) noexcept = default;
    Entry& operator=(const Entry& o) {
      if (this != &o) *this = Entry(o);
      return *this;
    }
    Entry& operator=(Entry&&) noexcept = default;

    std::size_t slot_count() const { return 1 + (rest ? rest->size() : 0); }

    template <class F>
    void for_each_slot(F&& f) const {
      f(head);
      if (rest) {
        for (const Slot& s : *rest) f(s);
      }
    }

    bool canonical() const {
      if (!rest) return true;
      if (rest->empty()) return false;
      for (std::size_t i = 0; i < rest->size(); ++i) {
        if (!head.beats((*rest)[i])) return false;
        if (i > 0 && !((*rest)[i - 1].dot < (*rest)[i].dot)) return false;
      }
      return true;
    }

    friend bool operator==(const Entry& a, const Entry& b) {
      if (!(a.head == b.head)) return false;
      const bool ar = a.rest != nullptr, br = b.rest != nullptr;
      return ar == br && (!ar || *a.rest == *b.rest);
    }
  };

  using EntryMap = boost::unordered_map<K, Entry, Hash, KeyEqual>;
  using Node = typename EntryMap::value_type;

  static void append_context(std::string& buf, const CausalContext& c) {
    for (const auto& [r, n] : c.sorted_vector()) {
      detail::append_canonical(buf, r);
      detail::append_canonical(buf, n);
    }
    detail::append_canonical(buf, std::uint64_t{0});  // separates vector from cloud
    for (const Dot& d : c.sorted_cloud()) {
      detail::append_canonical(buf, d.replica);
      detail::append_canonical(buf, d.counter);
    }
  }

  void rebuild_index() {
    by_dot_.clear();
    by_dot_.reserve(entries_.size());
    for (auto& node : entries_) {
      node.second.for_each_slot([&](const Slot& s) { by_dot_.emplace(s.dot, &node); });
    }
  }

  // Calls act(d) for each dot d of our store that `ctx` contains and keep(d) selects.
  // Enumerates whichever side is smaller: the context's dots or our slots. Collects first,
  // because act may erase from the index.
  template <class Pred, class Act>
  void for_each_own_dot_in(const CausalContext& ctx, Pred&& select, Act&& act) const {
    boost::container::small_vector<Dot, 4> hits;
    if (ctx.dot_count() <= by_dot_.size()) {
      ctx.for_each_dot([&](const Dot& d) {
        if (by_dot_.contains(d) && select(d)) hits.push_back(d);
      });
    } else {
      for (const auto& [d, node] : by_dot_) {
        if (ctx.contains(d) && select(d)) hits.push_back(d);
      }
    }
    for (const Dot& d : hits) act(d);
  }

  // For novel_part: calls act(d) for dots that `state` holds in its store and our (the
  // delta's) context removes, i.e. covers without holding.
  template <class Act>
  void for_each_own_dot_in_reverse(const AWLWWMap& state, Act&& act) const {
    state.for_each_own_dot_in(
        ctx_, [&](const Dot& d) { return !by_dot_.contains(d); }, act);
  }

  void remove_slot(const Dot& d) {
    auto it = by_dot_.find(d);
    if (it == by_dot_.end()) return;
    Node* node = it->second;
    by_dot_.erase(it);
    Entry& e = node->second;
    if (e.head.dot == d) {
      if (!e.rest) {
        entries_.erase(node->first);
        return;
      }
      // Promote the best remaining slot.
      auto best = std::max_element(e.rest->begin(), e.rest->end(),
                                   [](const Slot& a, const Slot& b) { return b.beats(a); });
      e.head = std::move(*best);
      e.rest->erase(best);
    } else {
      auto pos =
          std::find_if(e.rest->begin(), e.rest->end(), [&](const Slot& s) { return s.dot == d; });
      e.rest->erase(pos);
    }
    if (e.rest->empty()) e.rest.reset();
  }

  // The dot-kernel join for one key both sides hold: keep our slots that o holds or has
  // not seen, adopt o's slots we have not seen, and rebuild the entry in place.
  void merge_entry(typename EntryMap::iterator it, const Entry& theirs, const AWLWWMap& o) {
    Node& node = *it;
    Entry& e = node.second;
    boost::container::small_vector<Slot, 2> slots;
    bool changed = false;
    const auto keep_or_drop = [&](Slot& s) {
      if (o.ctx_.contains(s.dot) && !o.by_dot_.contains(s.dot)) {
        by_dot_.erase(s.dot);
        changed = true;
      } else {
        slots.push_back(std::move(s));
      }
    };
    keep_or_drop(e.head);
    if (e.rest) {
      for (Slot& s : *e.rest) keep_or_drop(s);
    }
    theirs.for_each_slot([&](const Slot& s) {
      if (!ctx_.contains(s.dot)) {
        slots.push_back(s);
        by_dot_.emplace(s.dot, &node);
        changed = true;
      }
    });
    if (!changed) {
      // Nothing moved in or out: put the (moved-from) slots back as they were.
      e.head = std::move(slots.front());
      if (e.rest) {
        for (std::size_t i = 1; i < slots.size(); ++i) (*e.rest)[i - 1] = std::move(slots[i]);
      }
      return;
    }
    if (slots.empty()) {
      entries_.erase(it);
      return;
    }
    auto best = std::max_element(slots.begin(), slots.end(),
                                 [](const Slot& a, const Slot& b) { return b.beats(a); });
    e.head = std::move(*best);
    slots.erase(best);
    if (slots.empty()) {
      e.rest.reset();
      return;
    }
    std::sort(slots.begin(), slots.end(),
              [](const Slot& a, const Slot& b) { return a.dot < b.dot; });
    if (!e.rest) e.rest = std::make_unique<std::vector<Slot>>();
    e.rest->assign(std::make_move_iterator(slots.begin()), std::make_move_iterator(slots.end()));
  }

  void add_slot(const K& key, const Slot& s) {
    auto [it, inserted] = entries_.try_emplace(key);
    Entry& e = it->second;
    by_dot_.emplace(s.dot, &*it);
    if (inserted) {
      e.head = s;
      return;
    }
    if (!e.rest) e.rest = std::make_unique<std::vector<Slot>>();
    Slot loser = s;
    if (s.beats(e.head)) std::swap(loser, e.head);
    auto pos = std::lower_bound(e.rest->begin(), e.rest->end(), loser.dot,
                                [](const Slot& a, const Dot& dot) { return a.dot < dot; });
    e.rest->insert(pos, std::move(loser));
  }

  EntryMap entries_;
  boost::unordered_flat_map<Dot, Node*, DotHash> by_dot_;  // derived: every slot's dot -> node
  CausalContext ctx_;
};

}  // namespace deltacrdt
