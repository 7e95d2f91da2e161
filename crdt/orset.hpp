// ORSet<E>: add-wins observed-remove set without tombstones. Each element holds the dots
// of the adds that created it; a remove deletes only the dots it observed, so an add
// concurrent with a remove survives. Removed elements leave nothing behind but dots in the
// causal context. Value type; not thread-safe. add/remove and small-delta joins cost
// O(size of the change) (DotMap's dot index).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include <boost/container_hash/hash.hpp>

#include "crdt/causal.hpp"
#include "crdt/ew_flag.hpp"

namespace deltacrdt {

template <class E, class Hash = boost::hash<E>, class KeyEqual = std::equal_to<E>>
class ORSet : public CausalCrdt<ORSet<E, Hash, KeyEqual>, DotMap<E, DotSet, Hash, KeyEqual>> {
  using Base = CausalCrdt<ORSet, DotMap<E, DotSet, Hash, KeyEqual>>;

 public:
  using Store = DotMap<E, DotSet, Hash, KeyEqual>;
  static constexpr TypeTag kTypeTag = TypeTag::or_set;
  // 2: the causal context's cloud is written as runs of dots; 1 (still read) dot by dot.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  class Ref {
   public:
    Ref(Store& store, CausalContext& ctx) : store_(store), ctx_(ctx) {}
    // An add is an enable of the element's flag: it also retires the dots it observed,
    // so re-adding never grows the element's dot set.
    CausalDelta<Store> add(ReplicaId self, const E& e) {
      return store_.update(e, [&](DotSet& s) { return EWFlag::Ref(s, ctx_).enable(self); });
    }
    CausalDelta<Store> remove(const E& e) { return store_.remove(e); }
    CausalDelta<Store> clear() { return remove_all(store_); }

   private:
    Store& store_;
    CausalContext& ctx_;
  };

  [[nodiscard]] ORSet add(ReplicaId self, const E& e) {
    return Base::from_delta(Ref(this->store_, this->ctx_).add(self, e));
  }
  [[nodiscard]] ORSet remove(const E& e) {
    return Base::from_delta(Ref(this->store_, this->ctx_).remove(e));
  }
  [[nodiscard]] ORSet clear() { return Base::from_delta(Ref(this->store_, this->ctx_).clear()); }

  bool contains(const E& e) const { return this->store_.contains(e); }
  std::size_t size() const { return this->store_.size(); }
  bool empty() const { return this->store_.empty(); }
  // Calls f(const E&) for every element; order unspecified.
  template <class F>
  void for_each(F&& f) const {
    this->store_.for_each([&](const E& e, const DotSet&) { f(e); });
  }
};

}  // namespace deltacrdt
