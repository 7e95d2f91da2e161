// Random-operation models of the causal types, shared by the property tests.
#pragma once

#include <string>

#include "crdt/awlww_map.hpp"
#include "crdt/causal_counter.hpp"
#include "crdt/compact_string.hpp"
#include "crdt/ew_flag.hpp"
#include "crdt/hlc.hpp"
#include "crdt/mv_register.hpp"
#include "crdt/ormap.hpp"
#include "crdt/orset.hpp"
#include "tests/property.hpp"

namespace deltacrdt::testing {

struct AWLWWMapModel {
  using Type = AWLWWMap<std::string, std::string>;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    const auto roll = rng.below(100);
    if (roll < 65) {
      // Few distinct timestamps, so equal (ts) between replicas is common.
      const HlcTimestamp ts = HlcTimestamp::from_parts(rng.physical_ms(), rng.below(2));
      return x.put(self, rng.key(), rng.value(), ts);
    }
    if (roll < 95) return x.remove(rng.key());
    return x.clear();
  }
};

// Many keys, mostly puts: histories grow past EntryTable's scan threshold, so the laws
// also run against the indexed storage (AWLWWMapModel's small maps stay unindexed).
struct AWLWWMapWideModel {
  using Type = AWLWWMap<std::string, std::string>;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    const auto roll = rng.below(100);
    const std::string key = "w" + std::to_string(rng.below(24));
    if (roll < 85) {
      const HlcTimestamp ts = HlcTimestamp::from_parts(rng.physical_ms(), rng.below(2));
      return x.put(self, key, rng.value(), ts);
    }
    if (roll < 99) return x.remove(key);
    return x.clear();
  }
};

// CompactString keys and values, some inline and some on the heap (values cross the
// 23-byte inline limit), over indexed storage.
struct AWLWWMapCompactModel {
  using Type = AWLWWMap<CompactString, CompactString>;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    const auto roll = rng.below(100);
    const CompactString key("w" + std::to_string(rng.below(24)));
    if (roll < 85) {
      const HlcTimestamp ts = HlcTimestamp::from_parts(rng.physical_ms(), rng.below(2));
      const std::string value = rng.value() + std::string(rng.below(2) == 0 ? 0 : 30, 'x');
      return x.put(self, key, value, ts);
    }
    if (roll < 99) return x.remove(key);
    return x.clear();
  }
};

struct ORSetModel {
  using Type = ORSet<std::string>;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    const auto roll = rng.below(100);
    if (roll < 60) return x.add(self, rng.key());
    if (roll < 95) return x.remove(rng.key());
    return x.clear();
  }
};

struct EWFlagModel {
  using Type = EWFlag;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    return rng.chance(0.6) ? x.enable(self) : x.disable();
  }
};

struct MVRegisterModel {
  using Type = MVRegister<std::string>;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    return rng.chance(0.85) ? x.assign(self, rng.value()) : x.reset();
  }
};

struct CausalCounterModel {
  using Type = CausalCounter;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    const auto roll = rng.below(100);
    if (roll < 60) return x.increment(self, static_cast<std::int64_t>(1 + rng.below(5)));
    if (roll < 92) return x.decrement(self, static_cast<std::int64_t>(1 + rng.below(5)));
    return x.reset();
  }
};

struct CounterMapModel {
  using Type = ORMap<std::string, CausalCounter>;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    const auto roll = rng.below(100);
    if (roll < 75) {
      const auto by = static_cast<std::int64_t>(rng.below(7)) - 2;
      return x.update(rng.key(), [&](CausalCounter::Ref& c) { return c.increment(self, by); });
    }
    if (roll < 97) return x.remove(rng.key());
    return x.clear();
  }
};

// Two levels of nesting: key -> (key -> set of strings).
struct NestedMapModel {
  using Inner = ORMap<std::string, ORSet<std::string>>;
  using Type = ORMap<std::string, Inner>;
  static Type mutate(Type& x, ReplicaId self, PropertyRng& rng) {
    const auto roll = rng.below(100);
    const std::string outer = rng.key(), inner = rng.key(), elem = rng.value().substr(0, 2);
    if (roll < 55) {
      return x.update(outer, [&](Inner::Ref& m) {
        return m.update(inner, [&](ORSet<std::string>::Ref& s) { return s.add(self, elem); });
      });
    }
    if (roll < 75) {
      return x.update(outer, [&](Inner::Ref& m) {
        return m.update(inner, [&](ORSet<std::string>::Ref& s) { return s.remove(elem); });
      });
    }
    if (roll < 90) return x.update(outer, [&](Inner::Ref& m) { return m.remove(inner); });
    return x.remove(outer);
  }
};

}  // namespace deltacrdt::testing
