// DotRanges: a set of dots held as maximal runs of consecutive counters per replica, the
// "dot cloud" of a CausalContext. A run costs the same whatever its length, so a context
// that lacks a billion dots of one replica, or a delta that names them, stays one entry.
// Value type; not thread-safe.
//
// Few runs (the usual case: a delta's handful of dots, or none at all) live in a small
// sorted inline vector, so a delta's context allocates nothing; past kSmall runs (deltas
// arriving far out of order, a catch-up in progress) they move to a balanced tree, so that
// each insertion stays O(log runs). Only one of the two holds runs at any time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <utility>

#include "crdt/dot.hpp"
#include "crdt/small_vector.hpp"

namespace deltacrdt {

// Counters first..last (inclusive) of one replica.
struct DotRange {
  ReplicaId replica = 0;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  friend bool operator==(const DotRange&, const DotRange&) = default;
};

namespace detail {

class DotRanges {
 public:
  static constexpr std::size_t kSmall = 4;     // runs kept inline
  static constexpr std::size_t kFlatMax = 32;  // runs kept in a flat vector at most

  bool empty() const { return small_.empty() && big_.empty(); }
  // Number of runs.
  std::size_t size() const { return small_.size() + big_.size(); }

  bool contains(const Dot& d) const {
    if (!big_.empty()) return covering(big_, d) != big_.end();
    return covering(small_, d) != small_.end();
  }

  // Whether x is one of the runs (not merely covered by one).
  bool has_run(const DotRange& x) const {
    const Dot start{x.replica, x.first};
    if (!big_.empty()) {
      auto it = covering(big_, start);
      return it != big_.end() && it->first == start && it->second == x.last;
    }
    auto it = covering(small_, start);
    return it != small_.end() && it->first == start && it->second == x.last;
  }

  // Adds counters a..b of r (1 <= a <= b), merging with the runs they touch.
  void add(ReplicaId r, std::uint64_t a, std::uint64_t b) {
    if (!big_.empty()) {
      add_to(big_, r, a, b);
      return;
    }
    add_to(small_, r, a, b);
    if (small_.size() > kFlatMax) {
      big_.insert(small_.begin(), small_.end());
      small_.clear();
    }
  }

  // Removes r's runs that start at or below top + 1 (they touch or overlap a contiguous
  // prefix 1..top) and returns the prefix they extend it to.
  std::uint64_t absorb_into_prefix(ReplicaId r, std::uint64_t top) {
    if (!big_.empty()) return absorb(big_, r, top);
    return absorb(small_, r, top);
  }

  // Calls f(const DotRange&) for every run, sorted by (replica, first).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [k, last] : small_) f(DotRange{k.replica, k.counter, last});
    for (const auto& [k, last] : big_) f(DotRange{k.replica, k.counter, last});
  }

  // Calls f(first, last) for the runs of r that end at or after `from`, in order, while f
  // returns true.
  template <class F>
  void for_each_of(ReplicaId r, std::uint64_t from, F&& f) const {
    if (!big_.empty()) {
      walk(big_, r, from, f);
    } else {
      walk(small_, r, from, f);
    }
  }

  // The highest counter of r held, or 0.
  std::uint64_t max_of(ReplicaId r) const {
    if (!big_.empty()) return max_in(big_, r);
    return max_in(small_, r);
  }

  void clear() {
    small_.clear();
    big_.clear();
  }

  // Runs are maximal, so equal sets hold the same runs.
  friend bool operator==(const DotRanges& a, const DotRanges& b) {
    if (a.size() != b.size()) return false;
    bool same = true;
    a.for_each([&](const DotRange& x) { same = same && b.has_run(x); });
    return same;
  }

 private:
  // Keyed by (replica, first counter); the mapped value is the last counter of the run.
  using Flat = boost::container::small_vector<std::pair<Dot, std::uint64_t>, kSmall>;
  using Tree = std::map<Dot, std::uint64_t>;

  // Sorted-vector versions of the map operations the algorithms below need, so that one
  // implementation serves both containers.
  static Flat::iterator upper(Flat& v, const Dot& k) {
    return std::upper_bound(v.begin(), v.end(), k,
                            [](const Dot& x, const auto& kv) { return x < kv.first; });
  }
  static Flat::const_iterator upper(const Flat& v, const Dot& k) {
    return std::upper_bound(v.begin(), v.end(), k,
                            [](const Dot& x, const auto& kv) { return x < kv.first; });
  }
  static Tree::iterator upper(Tree& t, const Dot& k) { return t.upper_bound(k); }
  static Tree::const_iterator upper(const Tree& t, const Dot& k) { return t.upper_bound(k); }
  static Flat::iterator put(Flat& v, Flat::iterator at, const Dot& k, std::uint64_t last) {
    return v.insert(at, std::pair<Dot, std::uint64_t>(k, last));
  }
  static Tree::iterator put(Tree& t, Tree::iterator at, const Dot& k, std::uint64_t last) {
    return t.emplace_hint(at, k, last);
  }

  // The run holding d, or end().
  template <class C>
  static typename C::const_iterator covering(const C& c, const Dot& d) {
    auto it = upper(c, d);  // first run starting after d
    if (it == c.begin()) return c.end();
    --it;
    const bool hit = it->first.replica == d.replica && it->second >= d.counter;
    return hit ? it : c.end();
  }

  template <class C>
  static void add_to(C& c, ReplicaId r, std::uint64_t a, std::uint64_t b) {
    // Runs that overlap or touch a..b are merged into it: the one before a (if it reaches
    // a - 1) and every later one of r starting at or below b + 1.
    auto it = upper(c, Dot{r, a});
    if (it != c.begin()) {
      auto prev = std::prev(it);
      if (prev->first.replica == r && prev->second + 1 >= a) {
        if (prev->second >= b) return;  // already held
        a = prev->first.counter;
        it = c.erase(prev);
      }
    }
    while (it != c.end() && it->first.replica == r && it->first.counter <= b + 1) {
      b = std::max(b, it->second);
      it = c.erase(it);
    }
    put(c, it, Dot{r, a}, b);
  }

  template <class C>
  static std::uint64_t absorb(C& c, ReplicaId r, std::uint64_t top) {
    auto it = upper(c, Dot{r, 0});
    while (it != c.end() && it->first.replica == r && it->first.counter <= top + 1) {
      top = std::max(top, it->second);
      it = c.erase(it);
    }
    return top;
  }

  template <class C, class F>
  static void walk(const C& c, ReplicaId r, std::uint64_t from, F& f) {
    auto it = upper(c, Dot{r, from});
    if (it != c.begin()) {
      auto prev = std::prev(it);
      if (prev->first.replica == r && prev->second >= from) it = prev;
    }
    for (; it != c.end() && it->first.replica == r; ++it) {
      if (!f(it->first.counter, it->second)) return;
    }
  }

  template <class C>
  static std::uint64_t max_in(const C& c, ReplicaId r) {
    auto it = upper(c, Dot{r, UINT64_MAX});
    if (it == c.begin()) return 0;
    --it;
    return it->first.replica == r ? it->second : 0;
  }

  Flat small_;  // sorted by key
  Tree big_;
};

}  // namespace detail
}  // namespace deltacrdt
