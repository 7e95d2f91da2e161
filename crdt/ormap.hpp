// ORMap<K, V>: observed-remove map whose values are causal CRDTs (ORSet, EWFlag,
// MVRegister, CausalCounter, or another ORMap), all sharing the map's causal context, so a
// nested update is one delta of the whole map. Removing a key removes the contributions
// observed so far; a concurrent update elsewhere survives (its dots were not observed).
// Value type; not thread-safe. Updates and small-delta joins cost O(size of the change).
//
//   ORMap<std::string, CausalCounter> hits;
//   auto d = hits.update("home", [&](CausalCounter::Ref& c) { return c.increment(self); });
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include <boost/container_hash/hash.hpp>

#include "crdt/causal.hpp"

namespace deltacrdt {

template <class K, class V, class Hash = boost::hash<K>, class KeyEqual = std::equal_to<K>>
class ORMap
    : public CausalCrdt<ORMap<K, V, Hash, KeyEqual>, DotMap<K, typename V::Store, Hash, KeyEqual>> {
  using Base = CausalCrdt<ORMap, DotMap<K, typename V::Store, Hash, KeyEqual>>;

 public:
  using Store = DotMap<K, typename V::Store, Hash, KeyEqual>;
  using Value = V;
  static constexpr TypeTag kTypeTag = TypeTag::or_map;
  // 2: the causal context's cloud is written as runs of dots; 1 (still read) dot by dot.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  class Ref {
   public:
    Ref(Store& store, CausalContext& ctx) : store_(store), ctx_(ctx) {}

    // fn(typename V::Ref&) applies mutators to the value at key (bottom if absent) and
    // returns the value-level delta; update lifts it to a map delta.
    template <class F>
    CausalDelta<Store> update(const K& key, F&& fn) {
      return store_.update(key, [&](typename V::Store& s) {
        typename V::Ref value(s, ctx_);
        return fn(value);
      });
    }
    CausalDelta<Store> remove(const K& key) { return store_.remove(key); }
    CausalDelta<Store> clear() { return remove_all(store_); }

   private:
    Store& store_;
    CausalContext& ctx_;
  };

  template <class F>
  [[nodiscard]] ORMap update(const K& key, F&& fn) {
    return Base::from_delta(Ref(this->store_, this->ctx_).update(key, std::forward<F>(fn)));
  }
  [[nodiscard]] ORMap remove(const K& key) {
    return Base::from_delta(Ref(this->store_, this->ctx_).remove(key));
  }
  [[nodiscard]] ORMap clear() { return Base::from_delta(Ref(this->store_, this->ctx_).clear()); }

  // The value's store at key (read it with V's static readers, e.g. CausalCounter::read),
  // or nullptr. No copy.
  const typename V::Store* find(const K& key) const { return this->store_.find(key); }
  bool contains(const K& key) const { return this->store_.contains(key); }
  std::size_t size() const { return this->store_.size(); }
  bool empty() const { return this->store_.empty(); }
  // Calls f(const K&, const typename V::Store&) for every key; order unspecified.
  template <class F>
  void for_each(F&& f) const {
    this->store_.for_each(f);
  }
};

}  // namespace deltacrdt
