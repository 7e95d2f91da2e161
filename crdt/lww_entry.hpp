// The slots of one key in an AWLWWMap: LwwSlot<V> is one write (dot, HLC timestamp, value)
// and LwwEntry<K, V> all the concurrent writes of a key, winner first. Value types; not
// thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "crdt/dot.hpp"
#include "crdt/hlc.hpp"
#include "crdt/prefetch.hpp"

namespace deltacrdt {

// One write of a value: its dot (identity), its timestamp and the value.
template <class V>
struct LwwSlot {
  Dot dot;
  HlcTimestamp ts;
  V value;

  // The LWW order: (timestamp, replica, counter), a total order, so equal timestamps never
  // diverge. Two slots of one key with the same dot are the same write.
  bool beats(const LwwSlot& other) const {
    return std::tie(ts, dot.replica, dot.counter) >
           std::tie(other.ts, other.dot.replica, other.dot.counter);
  }
  friend bool operator==(const LwwSlot&, const LwwSlot&) = default;
};

namespace detail {

// All slots of one key. `head` is the visible winner; `rest` holds concurrent losers sorted
// by dot and is null in the common single-writer case (no allocation).
template <class K, class V>
struct LwwEntry {
  using Slot = LwwSlot<V>;

  K key{};
  Slot head{};
  std::unique_ptr<std::vector<Slot>> rest;

  LwwEntry() = default;
  LwwEntry(K k, Slot h, std::unique_ptr<std::vector<Slot>> r)
      : key(std::move(k)), head(std::move(h)), rest(std::move(r)) {}
  LwwEntry(const LwwEntry& o)
      : key(o.key),
        head(o.head),
        rest(o.rest ? std::make_unique<std::vector<Slot>>(*o.rest) : nullptr) {}
  LwwEntry(LwwEntry&&) noexcept = default;
  LwwEntry& operator=(const LwwEntry& o) {
    if (this != &o) *this = LwwEntry(o);
    return *this;
  }
  LwwEntry& operator=(LwwEntry&&) noexcept = default;

  std::size_t slot_count() const { return 1 + (rest ? rest->size() : 0); }

  // Starts loading the winning value's heap bytes, for values that keep them out of line.
  void prefetch() const {
    if constexpr (requires { head.value.data(); }) prefetch_for_read(head.value.data());
  }

  template <class F>
  void for_each_slot(F&& f) const {
    f(head);
    if (rest) {
      for (const Slot& s : *rest) f(s);
    }
  }
  template <class F>
  void for_each_dot(F&& f) const {
    f(head.dot);
    if (rest) {
      for (const Slot& s : *rest) f(s.dot);
    }
  }

  // Canonical form: head beats every loser, losers strictly sorted by dot.
  bool canonical() const {
    if (!rest) return true;
    if (rest->empty()) return false;
    for (std::size_t i = 0; i < rest->size(); ++i) {
      if (!head.beats((*rest)[i])) return false;
      if (i > 0 && !((*rest)[i - 1].dot < (*rest)[i].dot)) return false;
    }
    return true;
  }

  bool same_slots(const LwwEntry& o) const {
    if (!(head == o.head)) return false;
    const bool ar = rest != nullptr, br = o.rest != nullptr;
    return ar == br && (!ar || *rest == *o.rest);
  }

  // Rebuilds head/rest from a non-empty list of slots: the winner first, losers by dot.
  template <class Slots>
  void assign(Slots&& slots) {
    auto best = std::max_element(slots.begin(), slots.end(),
                                 [](const Slot& a, const Slot& b) { return b.beats(a); });
    head = std::move(*best);
    slots.erase(best);
    if (slots.empty()) {
      rest.reset();
      return;
    }
    std::sort(slots.begin(), slots.end(),
              [](const Slot& a, const Slot& b) { return a.dot < b.dot; });
    if (!rest) rest = std::make_unique<std::vector<Slot>>();
    rest->assign(std::make_move_iterator(slots.begin()), std::make_move_iterator(slots.end()));
  }
};

}  // namespace detail
}  // namespace deltacrdt
