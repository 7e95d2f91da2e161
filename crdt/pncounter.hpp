// PNCounter: a counter that goes up and down, as two grow-only counters (increments P and
// decrements N, value P - N). Join is the join of each half, so it inherits GCounter's
// idempotence under duplicated or reordered deltas. Value type; not thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/gcounter.hpp"

namespace deltacrdt {

class PNCounter {
 public:
  static constexpr TypeTag kTypeTag = TypeTag::pn_counter;
  // 2: each half carries its retired-id marks (GCounter 2); 1 (still read) has none.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  // Each mutator's delta is one entry of one half (see GCounter::increment).
  [[nodiscard]] PNCounter increment(ReplicaId self, std::uint64_t by = 1) {
    PNCounter delta;
    delta.p_ = p_.increment(self, by);
    return delta;
  }
  [[nodiscard]] PNCounter decrement(ReplicaId self, std::uint64_t by = 1) {
    PNCounter delta;
    delta.n_ = n_.increment(self, by);
    return delta;
  }

  // P - N, clamped to the int64 range rather than wrapping (each half saturates at
  // UINT64_MAX too, see GCounter). O(replicas).
  std::int64_t value() const {
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    const std::uint64_t p = p_.value();
    const std::uint64_t n = n_.value();
    if (p >= n) {
      const std::uint64_t diff = p - n;
      return diff > kMax ? std::numeric_limits<std::int64_t>::max()
                         : static_cast<std::int64_t>(diff);
    }
    const std::uint64_t diff = n - p;
    // -(kMax + 1) is the one magnitude beyond kMax that int64 still holds.
    if (diff > kMax) return std::numeric_limits<std::int64_t>::min();
    return -static_cast<std::int64_t>(diff);
  }

  // Retires replica `removed` in both halves (GCounter::retire: its increments and
  // decrements move into self's entries). std::invalid_argument as there.
  [[nodiscard]] PNCounter retire(ReplicaId removed, ReplicaId self) {
    if (retired(removed)) throw std::invalid_argument("PNCounter::retire: already retired");
    PNCounter delta;
    delta.p_ = p_.retire(removed, self);
    delta.n_ = n_.retire(removed, self);
    return delta;
  }
  // Whether r has an entry in either half.
  bool mentions(ReplicaId r) const { return p_.mentions(r) || n_.mentions(r); }
  // (Either half: a relayed part may carry one half's marks before the other's.)
  bool retired(ReplicaId r) const { return p_.retired(r) || n_.retired(r); }
  std::size_t retired_count() const { return p_.retired_count(); }
  // See GCounter::forget_retired.
  void forget_retired(ReplicaId r) {
    p_.forget_retired(r);
    n_.forget_retired(r);
  }

  const GCounter& increments() const { return p_; }
  const GCounter& decrements() const { return n_; }

  void join(const PNCounter& other) {
    p_.join(other.p_);
    n_.join(other.n_);
  }
  bool leq(const PNCounter& other) const { return p_.leq(other.p_) && n_.leq(other.n_); }

  PNCounter novel_part(const PNCounter& delta) const {
    PNCounter out;
    out.p_ = p_.novel_part(delta.p_);
    out.n_ = n_.novel_part(delta.n_);
    return out;
  }

  bool is_bottom() const { return p_.is_bottom() && n_.is_bottom(); }

  std::uint64_t digest() const {
    std::string buf;
    detail::append_canonical(buf, p_.digest());
    detail::append_canonical(buf, n_.digest());
    return detail::hash_bytes(buf);
  }

  bool valid() const { return p_.valid() && n_.valid(); }

  friend bool operator==(const PNCounter&, const PNCounter&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    p_.save(ar);
    n_.save(ar);
  }
  template <class Archive>
  void load(Archive& ar) {
    PNCounter fresh;
    fresh.p_.load(ar);
    fresh.n_.load(ar);
    *this = std::move(fresh);
  }

 private:
  GCounter p_;
  GCounter n_;
};

}  // namespace deltacrdt
