// GCounter: a grow-only counter. Each replica owns one entry holding the total it has added;
// join takes the pointwise max, so re-delivered or reordered deltas never double count.
// Value type; not thread-safe.
//
// Overflow: entries and value() saturate at UINT64_MAX instead of wrapping, so a counter
// can stop growing but never appears to go backwards (a wrapped total would be a smaller
// lattice value and be discarded by every join).
//
// Pruning (docs/protocol.md, "Pruning removed replicas"): retire(r, self) moves the entry of
// a replica removed from the cluster into self's own entry and marks r retired; joins then
// drop r's entry wherever it comes from. Only self writes self's entry, so every other copy
// of it is older, and the raised entry wins every join. The marks self owns travel with its
// entry in every delta, so no replica ever holds the raised entry beside the retired one.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/retired.hpp"
#include "crdt/vector_clock.hpp"

namespace deltacrdt {

class GCounter {
 public:
  static constexpr TypeTag kTypeTag = TypeTag::g_counter;
  // 2: the retired-id marks follow the entries; 1 (still read) has none.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  // Adds `by` to self's entry. The delta is that one entry carrying its new total (not
  // the increment), which is what makes joining it idempotent, and the retired marks self
  // owns (see retire). A no-op (by == 0, or an entry already saturated) returns bottom.
  // std::logic_error when self was retired: its replica was removed from the cluster.
  [[nodiscard]] GCounter increment(ReplicaId self, std::uint64_t by = 1) {
    if (retired_.contains(self)) throw std::logic_error("GCounter: this replica was retired");
    GCounter delta;
    const std::uint64_t total = saturating_add(entries_.get(self), by);
    if (entries_.raise(self, total)) {
      delta.entries_.raise(self, total);
      delta.retired_ = retired_.owned_by(self);
    }
    return delta;
  }

  // Retires replica `removed` (one removed from the cluster, whose total is final and held
  // here: the caller's protocol ensures both, and that only one replica retires it): its
  // total moves into self's entry and its entry is dropped, here and, through the delta
  // (self's new entry and the marks self owns), everywhere. std::invalid_argument when
  // removed is self, zero, or already retired. O(marks self owns).
  [[nodiscard]] GCounter retire(ReplicaId removed, ReplicaId self) {
    if (removed == self || removed == 0 || self == 0 || retired_.contains(removed)) {
      throw std::invalid_argument("GCounter::retire: not a replica this counter can retire");
    }
    const std::uint64_t moved = entries_.erase(removed);
    retired_.add(removed, self);
    const std::uint64_t total = saturating_add(entries_.get(self), moved);
    GCounter delta;
    if (entries_.raise(self, total)) {
      delta.entries_.raise(self, total);
      delta.retired_ = retired_.owned_by(self);
    } else {
      delta.retired_.add(removed, self);  // nothing moved: the new mark alone
    }
    return delta;
  }

  // Whether replica r's entry was retired (its total moved into another entry).
  // Whether r has an entry here (what retire would move).
  bool mentions(ReplicaId r) const { return entries_.get(r) != 0; }
  bool retired(ReplicaId r) const { return retired_.contains(r); }
  // How many retired marks this counter holds.
  std::size_t retired_count() const { return retired_.size(); }
  // Forgets that r was retired, once no copy of r's entry can arrive any more (the removal
  // record expired). Local: not a delta, and not a lattice operation.
  void forget_retired(ReplicaId r) { retired_.forget(r); }

  // Sum of all entries, saturating at UINT64_MAX. O(replicas).
  std::uint64_t value() const {
    std::uint64_t sum = 0;
    entries_.for_each([&](ReplicaId, std::uint64_t v) { sum = saturating_add(sum, v); });
    return sum;
  }

  // Total added by replica `r`.
  std::uint64_t value_of(ReplicaId r) const { return entries_.get(r); }

  // (replica, total) pairs sorted by replica.
  std::vector<std::pair<ReplicaId, std::uint64_t>> entries() const { return entries_.sorted(); }
  std::size_t size() const { return entries_.size(); }

  void join(const GCounter& other) {
    if (this == &other) return;
    for (ReplicaId r : retired_.join(other.retired_)) entries_.erase(r);
    entries_.join(other.entries_, retired_);
  }
  bool leq(const GCounter& other) const {
    return retired_.leq(other.retired_) && entries_.leq(other.entries_, other.retired_);
  }

  GCounter novel_part(const GCounter& delta) const {
    GCounter out;
    out.entries_ = entries_.novel_part(delta.entries_);
    out.retired_ = retired_.novel_part(delta.retired_);
    // An entry this counter retired is no news.
    for (const auto& m : retired_.marks()) out.entries_.erase(m.retired);
    // Marks travel with their owner's entry, news or not: a relayed part must not carry
    // the raised entry without them.
    for (const auto& m : delta.retired_.marks())
      if (out.entries_.get(m.owner) != 0) out.retired_.add(m.retired, m.owner);
    return out;
  }

  bool is_bottom() const { return entries_.empty() && retired_.empty(); }
  std::uint64_t digest() const { return retired_.digest_with(entries_.digest()); }
  bool valid() const { return entries_.valid() && retired_.valid_with(entries_); }

  friend bool operator==(const GCounter&, const GCounter&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    entries_.save(ar);
    retired_.save(ar);
  }
  // (The format version is the envelope's: GCounter's, or PNCounter's, which moved to 2
  // with it.)
  template <class Archive>
  void load(Archive& ar) {
    std::uint16_t version = kFormatVersion;
    if constexpr (requires { ar.format_version(); }) version = ar.format_version();
    GCounter fresh;
    fresh.entries_.load(ar);
    if (version >= 2) fresh.retired_.load(ar);
    if (!fresh.valid()) throw std::invalid_argument("GCounter: an entry of a retired replica");
    *this = std::move(fresh);
  }

 private:
  static std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    const std::uint64_t sum = a + b;
    return sum < a ? std::numeric_limits<std::uint64_t>::max() : sum;
  }

  detail::ReplicaMaxMap entries_;
  detail::RetiredIds retired_;
};

}  // namespace deltacrdt
