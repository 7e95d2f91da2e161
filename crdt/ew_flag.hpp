// EWFlag: enable-wins flag. A concurrent enable and disable leave the flag enabled.
// Value type; not thread-safe.
#pragma once

#include <cstdint>

#include "crdt/causal.hpp"

namespace deltacrdt {

class EWFlag : public CausalCrdt<EWFlag, DotSet> {
 public:
  static constexpr TypeTag kTypeTag = TypeTag::ew_flag;
  static constexpr std::uint16_t kFormatVersion = 1;

  // Mutators over a DotSet and context owned elsewhere (a standalone flag or a map entry).
  class Ref {
   public:
    Ref(DotSet& store, CausalContext& ctx) : store_(store), ctx_(ctx) {}

    // Replaces every dot we have seen with a fresh one.
    CausalDelta<DotSet> enable(ReplicaId self) {
      CausalDelta<DotSet> d = disable();
      const Dot dot = ctx_.make_dot(self);
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

  static bool read(const DotSet& store) { return !store.empty(); }

  [[nodiscard]] EWFlag enable(ReplicaId self) { return from_delta(Ref(store_, ctx_).enable(self)); }
  [[nodiscard]] EWFlag disable() { return from_delta(Ref(store_, ctx_).disable()); }
  bool enabled() const { return read(store_); }
};

}  // namespace deltacrdt
