// CausalCounter: an increment/decrement counter built on dots, so it can live inside an
// ORMap (a per-key counter) and be reset. Each replica holds one dot carrying its running
// total, and an increment replaces it, so the state stays one entry per replica. A reset
// removes the contributions it observed; a replica that increments concurrently with the
// reset re-issues its whole running total, which therefore survives the reset (the same
// observed-reset semantics as the causal counter of Almeida et al.). Value type; not
// thread-safe.
#pragma once

#include <cstdint>

#include "crdt/causal.hpp"

namespace deltacrdt {

class CausalCounter : public CausalCrdt<CausalCounter, DotFun<std::int64_t>> {
 public:
  using Store = DotFun<std::int64_t>;
  static constexpr TypeTag kTypeTag = TypeTag::causal_counter;
  // 2: the causal context's cloud is written as runs of dots; 1 (still read) dot by dot.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  class Ref {
   public:
    Ref(Store& store, CausalContext& ctx) : store_(store), ctx_(ctx) {}
    // Adds `by` (negative to decrement). Totals wrap modulo 2^64 like unsigned arithmetic
    // rather than invoking signed overflow.
    CausalDelta<Store> increment(ReplicaId self, std::int64_t by = 1) {
      const Dot dot = ctx_.make_dot(self);  // first: it may throw, and must change nothing
      CausalDelta<Store> d;
      std::uint64_t total = static_cast<std::uint64_t>(by);
      // Normally at most one dot of `self` is live; folding all of them keeps the total
      // right even if that ever stops being true.
      boost::container::small_vector<Dot, 1> own;
      store_.for_each([&](const Dot& x, const std::int64_t& v) {
        if (x.replica == self) {
          own.push_back(x);
          total += static_cast<std::uint64_t>(v);
        }
      });
      for (const Dot& x : own) {
        store_.remove_dot(x);
        d.ctx.insert(x);
      }
      store_.insert(dot, static_cast<std::int64_t>(total));
      d.store.insert(dot, static_cast<std::int64_t>(total));
      d.ctx.insert(dot);
      return d;
    }
    CausalDelta<Store> reset() { return remove_all(store_); }

   private:
    Store& store_;
    CausalContext& ctx_;
  };

  static std::int64_t read(const Store& store) {
    std::uint64_t sum = 0;
    store.for_each(
        [&](const Dot&, const std::int64_t& v) { sum += static_cast<std::uint64_t>(v); });
    return static_cast<std::int64_t>(sum);
  }

  [[nodiscard]] CausalCounter increment(ReplicaId self, std::int64_t by = 1) {
    return from_delta(Ref(store_, ctx_).increment(self, by));
  }
  [[nodiscard]] CausalCounter decrement(ReplicaId self, std::int64_t by = 1) {
    return increment(self, static_cast<std::int64_t>(0 - static_cast<std::uint64_t>(by)));
  }
  [[nodiscard]] CausalCounter reset() { return from_delta(Ref(store_, ctx_).reset()); }
  std::int64_t value() const { return read(store_); }
};

}  // namespace deltacrdt
