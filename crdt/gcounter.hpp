// GCounter: a grow-only counter. Each replica owns one entry holding the total it has added;
// join takes the pointwise max, so re-delivered or reordered deltas never double count.
// Value type; not thread-safe.
//
// Overflow: entries and value() saturate at UINT64_MAX instead of wrapping, so a counter
// can stop growing but never appears to go backwards (a wrapped total would be a smaller
// lattice value and be discarded by every join).
#pragma once

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/vector_clock.hpp"

namespace deltacrdt {

class GCounter {
 public:
  static constexpr TypeTag kTypeTag = TypeTag::g_counter;
  static constexpr std::uint16_t kFormatVersion = 1;

  // Adds `by` to self's entry. The delta is that one entry carrying its new total (not
  // the increment), which is what makes joining it idempotent. A no-op (by == 0, or an
  // entry already saturated) returns bottom.
  [[nodiscard]] GCounter increment(ReplicaId self, std::uint64_t by = 1) {
    GCounter delta;
    const std::uint64_t total = saturating_add(entries_.get(self), by);
    if (entries_.raise(self, total)) delta.entries_.raise(self, total);
    return delta;
  }

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

  void join(const GCounter& other) { entries_.join(other.entries_); }
  bool leq(const GCounter& other) const { return entries_.leq(other.entries_); }

  GCounter novel_part(const GCounter& delta) const {
    GCounter out;
    out.entries_ = entries_.novel_part(delta.entries_);
    return out;
  }

  bool is_bottom() const { return entries_.empty(); }
  std::uint64_t digest() const { return entries_.digest(); }
  bool valid() const { return entries_.valid(); }

  friend bool operator==(const GCounter&, const GCounter&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    entries_.save(ar);
  }
  template <class Archive>
  void load(Archive& ar) {
    entries_.load(ar);
  }

 private:
  static std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    const std::uint64_t sum = a + b;
    return sum < a ? std::numeric_limits<std::uint64_t>::max() : sum;
  }

  detail::ReplicaMaxMap entries_;
};

}  // namespace deltacrdt
