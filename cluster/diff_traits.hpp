// What Replica<T> reports to a change subscriber (ReplicaOptions::on_diffs), and how it
// computes it for each CRDT type: keyed maps report changed keys with their new visible
// values; other types report nothing (and take no subscriber). Pure: no I/O, no threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include <boost/unordered/unordered_flat_set.hpp>

#include "crdt/awlww_map.hpp"

namespace deltacrdt {

// A change to one key, as seen by on_diffs: the new value, or nullopt when removed.
template <class K, class V>
struct KeyChange {
  using Key = K;
  K key;
  std::optional<V> value;
  friend bool operator==(const KeyChange&, const KeyChange&) = default;
};

// How diffs are computed for a type; specialised for the keyed maps.
template <class T>
struct DiffTraits {
  static constexpr bool supported = false;
};

template <class K, class V, class H, class E>
struct DiffTraits<AWLWWMap<K, V, H, E>> {
  using Map = AWLWWMap<K, V, H, E>;
  using Change = KeyChange<K, V>;
  static constexpr bool supported = true;

  // Values of the keys a delta may change, captured before it is joined. Joined into a
  // state holding nothing (a catch-up of a new replica), every key of the delta is new:
  // its changes are read straight off the delta, in storage order, with no lookups.
  struct Pending {
    std::vector<std::pair<K, std::optional<V>>> before;
    std::vector<Change> all_new;
    bool from_bottom = false;
  };
  static std::optional<V> value(const Map& m, const K& k) {
    const V* v = m.find(k);
    return v ? std::optional<V>(*v) : std::nullopt;
  }
  static void capture(Pending& p, const Map& state, const Map& delta) {
    if (state.is_bottom()) {
      p.from_bottom = true;
      p.all_new.reserve(delta.size());
      delta.for_each([&](const K& k, const V& v) { p.all_new.push_back(Change{k, v}); });
      return;
    }
    state.for_each_key_affected_by(delta,
                                   [&](const K& k) { p.before.emplace_back(k, value(state, k)); });
  }
  // Reports keys whose visible value differs from what was captured.
  static void compare(Pending& p, const Map& state, std::vector<Change>& out) {
    if (p.from_bottom) {
      p.from_bottom = false;
      if (out.empty()) {
        out.swap(p.all_new);
      } else {
        out.insert(out.end(), std::make_move_iterator(p.all_new.begin()),
                   std::make_move_iterator(p.all_new.end()));
      }
      p.all_new.clear();
      return;
    }
    // Keys may repeat; report each once. The set holds indices into p.before, hashed and
    // compared by key, so a large delta (a whole state) costs O(keys), not O(keys^2).
    const auto hash = [&p](std::size_t i) { return H{}(p.before[i].first); };
    const auto eq = [&p](std::size_t a, std::size_t b) {
      return E{}(p.before[a].first, p.before[b].first);
    };
    boost::unordered_flat_set<std::size_t, decltype(hash), decltype(eq)> seen(0, hash, eq);
    seen.reserve(p.before.size());
    for (std::size_t i = 0; i < p.before.size(); ++i) {
      if (!seen.insert(i).second) continue;
      auto& [k, old] = p.before[i];
      std::optional<V> now = value(state, k);
      if (now != old) out.push_back(Change{k, std::move(now)});
    }
    p.before.clear();
  }
  // Every key of a whole state, as added: the first batch a subscriber that asked for the
  // initial state hears.
  static void initial(const Map& state, std::vector<Change>& out) {
    out.reserve(out.size() + state.size());
    state.for_each([&](const K& k, const V& v) { out.push_back(Change{k, v}); });
  }
  // A local mutation has already applied itself: report the keys its delta holds. (Keys a
  // local delta only removes are not in it: see run_noting_removals.)
  static void local(const Map& state, const Map& delta, std::vector<Change>& out) {
    delta.for_each([&](const K& k, const V&) { out.push_back(Change{k, value(state, k)}); });
  }

  // Runs an arbitrary local mutator fn(Map&) -> Map on `state`, then reports the keys it
  // removed and that are still absent (a key removed and written again is reported by
  // local()). The map names them as they go (AWLWWMap::observe_erasures).
  template <class Mutator>
  static Map run_noting_removals(Map& state, Mutator& fn, std::vector<K>& erased) {
    const typename Map::EraseObserver note = [&erased](const K& k) { erased.push_back(k); };
    state.observe_erasures(&note);
    struct StopObserving {
      Map& m;
      ~StopObserving() { m.observe_erasures(nullptr); }
    } stop{state};
    return fn(state);
  }
  static void report_removals(const Map& state, std::vector<K>& erased, std::vector<Change>& out) {
    boost::unordered_flat_set<K, H, E> reported;
    for (K& k : erased) {
      if (!state.contains(k) && reported.insert(k).second) {
        out.push_back(Change{std::move(k), std::nullopt});
      }
    }
    erased.clear();
  }
};

// The diff types a Replica stores: real ones for keyed types, placeholders otherwise.
template <class T>
struct DiffTypes {
  using Change = int;
  struct Pending {};
  // Types without diffs take no callback: setting one does not compile.
  struct Callback {
    explicit operator bool() const { return false; }
    void operator()(const std::vector<Change>&) const {}
  };
};
template <class T>
requires DiffTraits<T>::supported struct DiffTypes<T> {
  using Change = typename DiffTraits<T>::Change;
  using Pending = typename DiffTraits<T>::Pending;
  using Callback = std::function<void(const std::vector<Change>&)>;
};

}  // namespace deltacrdt
