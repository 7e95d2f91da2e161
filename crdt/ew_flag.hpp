// EWFlag: enable-wins flag. A concurrent enable and disable leave the flag enabled.
// Value type; not thread-safe.
#pragma once

#include <cstdint>

#include "crdt/causal.hpp"

namespace deltacrdt {

class EWFlag : public CausalCrdt<EWFlag, DotSet> {
 public:
  using Store = DotSet;  // what an ORMap<K, EWFlag> holds per key
  static constexpr TypeTag kTypeTag = TypeTag::ew_flag;
  // 2: the causal context's cloud is written as runs of dots; 1 (still read) dot by dot.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  // Mutators over a DotSet and context owned elsewhere (a standalone flag or a map entry).
  class Ref {
   public:
    Ref(DotSet& store, CausalContext& ctx) : store_(store), ctx_(ctx) {}

    // Replaces every dot we have seen with a fresh one.
    CausalDelta<DotSet> enable(ReplicaId self) {
      const Dot dot = ctx_.make_dot(self);  // first: it may throw, and must change nothing
      CausalDelta<DotSet> d = disable();
      store_.insert(dot);
      d.store.insert(dot);
      d.ctx.insert(dot);
      return d;
    }
    // Removes every dot we have seen (a concurrent enable elsewhere survives).
    CausalDelta<DotSet> disable() { return remove_all(store_); }

   private:
    DotSet& store_;
    CausalContext& ctx_;
  };

  static bool read(const Store& store) { return !store.empty(); }

  [[nodiscard]] EWFlag enable(ReplicaId self) { return from_delta(Ref(store_, ctx_).enable(self)); }
  [[nodiscard]] EWFlag disable() { return from_delta(Ref(store_, ctx_).disable()); }
  bool enabled() const { return read(store_); }
};

}  // namespace deltacrdt
