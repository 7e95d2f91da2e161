// MVRegister<V>: multi-value register. An assignment replaces every value it observed;
// concurrent assignments are all kept until a later assignment observes them.
// Value type; not thread-safe.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "crdt/causal.hpp"

namespace deltacrdt {

template <class V>
class MVRegister : public CausalCrdt<MVRegister<V>, DotFun<V>> {
  using Base = CausalCrdt<MVRegister<V>, DotFun<V>>;

 public:
  using Store = DotFun<V>;
  static constexpr TypeTag kTypeTag = TypeTag::mv_register;
  // 2: the causal context's cloud is written as runs of dots; 1 (still read) dot by dot.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  class Ref {
   public:
    Ref(Store& store, CausalContext& ctx) : store_(store), ctx_(ctx) {}
    CausalDelta<Store> assign(ReplicaId self, V value) {
      const Dot dot = ctx_.make_dot(self);  // first: it may throw, and must change nothing
      CausalDelta<Store> d = reset();
      store_.insert(dot, value);
      d.store.insert(dot, std::move(value));
      d.ctx.insert(dot);
      return d;
    }
    CausalDelta<Store> reset() { return remove_all(store_); }

   private:
    Store& store_;
    CausalContext& ctx_;
  };

  // The concurrent values, ordered by their dots (deterministic on every replica).
  static std::vector<V> read(const Store& store) {
    std::vector<V> out;
    store.for_each([&](const Dot&, const V& v) { out.push_back(v); });
    return out;
  }

  [[nodiscard]] MVRegister assign(ReplicaId self, V value) {
    return Base::from_delta(Ref(this->store_, this->ctx_).assign(self, std::move(value)));
  }
  [[nodiscard]] MVRegister reset() {
    return Base::from_delta(Ref(this->store_, this->ctx_).reset());
  }
  std::vector<V> values() const { return read(this->store_); }
  // Calls f(const V&) for each concurrent value without copying.
  template <class F>
  void for_each(F&& f) const {
    this->store_.for_each([&](const Dot&, const V& v) { f(v); });
  }
};

}  // namespace deltacrdt
