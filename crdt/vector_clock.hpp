// VectorClock: a map ReplicaId -> event count under pointwise max, with the causal
// comparison (equal / before / after / concurrent). Also home of detail::ReplicaMaxMap, the
// lattice that VectorClock and GCounter share. Value types; not thread-safe.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/retired.hpp"

namespace deltacrdt {

namespace detail {

// ReplicaId -> uint64 under pointwise max. Zero entries are never stored, so "absent" and
// "zero" are the same value and bottom is the empty map; that keeps == and the digest
// canonical without a normalisation pass.
class ReplicaMaxMap {
 public:
  std::uint64_t get(ReplicaId r) const {
    auto it = entries_.find(r);
    return it == entries_.end() ? 0 : it->second;
  }

  // Raises r's entry to v; returns whether anything changed.
  bool raise(ReplicaId r, std::uint64_t v) {
    if (v == 0) return false;
    auto [it, inserted] = entries_.try_emplace(r, v);
    if (inserted) return true;
    if (it->second >= v) return false;
    it->second = v;
    return true;
  }

  // O(|other|): only the entries of `other` are looked up.
  void join(const ReplicaMaxMap& other) {
    if (this == &other) return;
    for (const auto& [r, v] : other.entries_) raise(r, v);
  }
  // The same, skipping the entries of ids `retired` holds (see RetiredIds).
  void join(const ReplicaMaxMap& other, const RetiredIds& retired) {
    if (this == &other) return;
    for (const auto& [r, v] : other.entries_)
      if (retired.empty() || !retired.contains(r)) raise(r, v);
  }

  // Removes r's entry (it was retired); returns its value.
  std::uint64_t erase(ReplicaId r) {
    auto it = entries_.find(r);
    if (it == entries_.end()) return 0;
    const std::uint64_t v = it->second;
    entries_.erase(it);
    return v;
  }

  bool leq(const ReplicaMaxMap& other) const {
    if (entries_.size() > other.entries_.size()) return false;  // no zero entries on either side
    return std::all_of(entries_.begin(), entries_.end(),
                       [&](const auto& e) { return e.second <= other.get(e.first); });
  }

  // Whether every entry here is at most other's, or retired by `other_retired`.
  bool leq(const ReplicaMaxMap& other, const RetiredIds& other_retired) const {
    if (other_retired.empty()) return leq(other);
    return std::all_of(entries_.begin(), entries_.end(), [&](const auto& e) {
      return e.second <= other.get(e.first) || other_retired.contains(e.first);
    });
  }

  // The entries of `delta` that exceed ours: joining them gives the same result as
  // joining all of `delta`, and each one kept is needed.
  ReplicaMaxMap novel_part(const ReplicaMaxMap& delta) const {
    ReplicaMaxMap out;
    for (const auto& [r, v] : delta.entries_) {
      if (v > get(r)) out.entries_.emplace(r, v);
    }
    return out;
  }

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }

  // Canonical order for serialization and digests (hash-map order is not stable).
  std::vector<std::pair<ReplicaId, std::uint64_t>> sorted() const {
    std::vector<std::pair<ReplicaId, std::uint64_t>> out(entries_.begin(), entries_.end());
    std::sort(out.begin(), out.end());
    return out;
  }

  template <class F>
  void for_each(F&& f) const {
    for (const auto& [r, v] : entries_) f(r, v);
  }

  std::uint64_t digest() const {
    std::string buf;
    for (const auto& [r, v] : sorted()) {
      append_canonical(buf, r);
      append_canonical(buf, v);
    }
    return hash_bytes(buf);
  }

  bool valid() const {
    return std::none_of(entries_.begin(), entries_.end(),
                        [](const auto& e) { return e.second == 0; });
  }

  friend bool operator==(const ReplicaMaxMap&, const ReplicaMaxMap&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    const auto entries = sorted();
    ar(static_cast<std::uint64_t>(entries.size()));
    for (const auto& [r, v] : entries) ar(r, v);
  }

  // Accepts only the canonical form that save() writes (ids strictly increasing, no zero
  // counts), so every value has exactly one encoding and a decoded value's digest matches
  // the sender's. Loads element by element: a hostile count fails on truncation.
  template <class Archive>
  void load(Archive& ar) {
    ReplicaMaxMap fresh;
    const std::uint64_t n = load_count(ar);
    ReplicaId prev = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      ReplicaId r = 0;
      std::uint64_t v = 0;
      ar(r, v);
      if (v == 0) throw std::invalid_argument("zero entry in replica map");
      if (i > 0 && r <= prev) throw std::invalid_argument("replica map not strictly sorted");
      fresh.entries_.emplace(r, v);
      prev = r;
    }
    *this = std::move(fresh);
  }

 private:
  boost::unordered_flat_map<ReplicaId, std::uint64_t> entries_;  // no zero values
};

}  // namespace detail

class VectorClock {
 public:
  enum class Ordering { equal, before, after, concurrent };

  static constexpr TypeTag kTypeTag = TypeTag::vector_clock;
  // 2: the retired-id marks follow the entries; 1 (still read) has none.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  // Counts one more event of `self`; the delta is that single entry. An entry at 2^64 - 1
  // (only a clock received from elsewhere can claim that) stays there: wrapping to 0 would
  // make the new event look older than the last. The increment then returns bottom.
  // std::logic_error when self was retired (see retire).
  [[nodiscard]] VectorClock increment(ReplicaId self) {
    if (retired_.contains(self)) throw std::logic_error("VectorClock: this replica was retired");
    const std::uint64_t now = entries_.get(self);
    VectorClock delta;
    if (now == std::numeric_limits<std::uint64_t>::max()) return delta;
    entries_.raise(self, now + 1);
    delta.entries_.raise(self, now + 1);
    return delta;
  }

  // Drops the entry of replica `removed` (removed from the cluster, its count final and the
  // same on every replica: the caller's protocol ensures it) for good: joins drop it
  // wherever it comes from. The delta is the mark alone (nothing moves into another entry,
  // so unlike GCounter's marks it need not travel with one).
  // std::invalid_argument when removed is self, zero, or already retired.
  [[nodiscard]] VectorClock retire(ReplicaId removed, ReplicaId self) {
    if (removed == self || removed == 0 || self == 0 || retired_.contains(removed)) {
      throw std::invalid_argument("VectorClock::retire: not a replica this clock can retire");
    }
    entries_.erase(removed);
    retired_.add(removed, self);
    VectorClock delta;
    delta.retired_.add(removed, self);
    return delta;
  }
  // Whether r has an entry here (what retire would drop).
  bool mentions(ReplicaId r) const { return entries_.get(r) != 0; }
  bool retired(ReplicaId r) const { return retired_.contains(r); }
  std::size_t retired_count() const { return retired_.size(); }
  // Forgets that r was retired, once no copy of its entry can arrive any more. Local.
  void forget_retired(ReplicaId r) { retired_.forget(r); }

  std::uint64_t get(ReplicaId r) const { return entries_.get(r); }
  std::size_t size() const { return entries_.size(); }

  void join(const VectorClock& other) {
    if (this == &other) return;
    for (ReplicaId r : retired_.join(other.retired_)) entries_.erase(r);
    entries_.join(other.entries_, retired_);
  }
  void merge(const VectorClock& other) { join(other); }
  // The lattice order (retired marks included); compare() looks at the entries alone.
  bool leq(const VectorClock& other) const {
    return retired_.leq(other.retired_) && entries_.leq(other.entries_, other.retired_);
  }

  // O(|this| + |other|). Entries alone: a retired replica counts as never seen.
  Ordering compare(const VectorClock& other) const {
    const bool le = entries_.leq(other.entries_);
    const bool ge = other.entries_.leq(entries_);
    if (le && ge) return Ordering::equal;
    if (le) return Ordering::before;
    if (ge) return Ordering::after;
    return Ordering::concurrent;
  }

  // True when every event `other` has seen, this clock has seen too (this >= other).
  bool dominates(const VectorClock& other) const { return other.entries_.leq(entries_); }

  VectorClock novel_part(const VectorClock& delta) const {
    VectorClock out;
    out.entries_ = entries_.novel_part(delta.entries_);
    out.retired_ = retired_.novel_part(delta.retired_);
    for (const auto& m : retired_.marks()) out.entries_.erase(m.retired);
    return out;
  }

  bool is_bottom() const { return entries_.empty() && retired_.empty(); }
  std::uint64_t digest() const { return retired_.digest_with(entries_.digest()); }
  bool valid() const { return entries_.valid() && retired_.valid_with(entries_); }

  // (replica, count) pairs sorted by replica.
  std::vector<std::pair<ReplicaId, std::uint64_t>> entries() const { return entries_.sorted(); }

  friend bool operator==(const VectorClock&, const VectorClock&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    entries_.save(ar);
    retired_.save(ar);
  }
  template <class Archive>
  void load(Archive& ar) {
    std::uint16_t version = kFormatVersion;
    if constexpr (requires { ar.format_version(); }) version = ar.format_version();
    VectorClock fresh;
    fresh.entries_.load(ar);
    if (version >= 2) fresh.retired_.load(ar);
    if (!fresh.valid()) throw std::invalid_argument("VectorClock: an entry of a retired replica");
    *this = std::move(fresh);
  }

 private:
  detail::ReplicaMaxMap entries_;
  detail::RetiredIds retired_;
};

}  // namespace deltacrdt
