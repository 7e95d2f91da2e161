// CausalContext: the set of dots a replica has seen, as a compact version vector plus a
// "dot cloud" of dots past each replica's contiguous prefix. Value type; not thread-safe.
// Under causal delivery the cloud stays empty; it only fills while deltas arrive out of
// order, and insert/join compact it back into the vector as gaps close.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/small_vector.hpp"

namespace deltacrdt {

namespace detail {

// The dot cloud. Usually empty, or a delta's handful of non-contiguous dots: those live in
// a small sorted inline vector (no allocation). Past kSmall dots (deltas arriving far out of
// order) it switches to a hash set. Only one of the two holds dots at any time.
class DotCloud {
 public:
  static constexpr std::size_t kSmall = 8;

  bool empty() const { return small_.empty() && big_.empty(); }
  std::size_t size() const { return small_.size() + big_.size(); }
  bool contains(const Dot& d) const {
    if (!big_.empty()) return big_.contains(d);
    return std::binary_search(small_.begin(), small_.end(), d);
  }
  void insert(const Dot& d) {
    if (!big_.empty()) {
      big_.insert(d);
      return;
    }
    auto pos = std::lower_bound(small_.begin(), small_.end(), d);
    if (pos != small_.end() && *pos == d) return;
    if (small_.size() < kSmall) {
      small_.insert(pos, d);
      return;
    }
    big_.insert(small_.begin(), small_.end());
    big_.insert(d);
    small_.clear();
  }
  bool erase(const Dot& d) {
    if (!big_.empty()) return big_.erase(d) != 0;
    auto pos = std::lower_bound(small_.begin(), small_.end(), d);
    if (pos == small_.end() || *pos != d) return false;
    small_.erase(pos);
    return true;
  }
  void clear() {
    small_.clear();
    big_.clear();
  }
  template <class F>
  void for_each(F&& f) const {
    for (const Dot& d : small_) f(d);
    for (const Dot& d : big_) f(d);
  }
  std::vector<Dot> to_vector() const {
    std::vector<Dot> out(small_.begin(), small_.end());
    out.insert(out.end(), big_.begin(), big_.end());
    return out;
  }
  friend bool operator==(const DotCloud& a, const DotCloud& b) {
    if (a.size() != b.size()) return false;
    bool same = true;
    a.for_each([&](const Dot& d) { same = same && b.contains(d); });
    return same;
  }

 private:
  boost::container::small_vector<Dot, kSmall> small_;  // sorted
  boost::unordered_flat_set<Dot, DotHash> big_;
};

}  // namespace detail

class CausalContext {
 public:
  CausalContext() = default;

  bool contains(const Dot& d) const {
    if (d.counter == 0) return true;  // counter 0 is "no event": trivially seen
    if (auto it = vv_.find(d.replica); it != vv_.end() && d.counter <= it->second) return true;
    return !cloud_.empty() && cloud_.contains(d);
  }

  // Highest contiguous counter seen from `r` (0 when none).
  std::uint64_t max_contiguous(ReplicaId r) const {
    auto it = vv_.find(r);
    return it == vv_.end() ? 0 : it->second;
  }

  // The next dot replica `r` issues. A replica's own dots are always contiguous locally,
  // so the prefix is enough; a cloud dot of `r` past it would mean `r`'s id was reused.
  Dot next_dot(ReplicaId r) const { return Dot{r, max_contiguous(r) + 1}; }

  // Issues and records the next dot of `r`.
  Dot make_dot(ReplicaId r) {
    const Dot d = next_dot(r);
    vv_[r] = d.counter;
    compact_replica(r);
    return d;
  }

  void insert(const Dot& d) {
    if (d.counter == 0) return;
    auto it = vv_.find(d.replica);
    const std::uint64_t top = it == vv_.end() ? 0 : it->second;
    if (d.counter <= top) return;
    if (d.counter == top + 1) {
      if (it == vv_.end()) {
        vv_.emplace(d.replica, d.counter);
      } else {
        it->second = d.counter;
      }
      compact_replica(d.replica);
    } else {
      // Past a gap: wait in the cloud. (No vector entry is created for it, so a delta's
      // context of a few scattered dots allocates only the cloud.)
      cloud_.insert(d);
    }
  }

  // Cost: O(|other| + |this cloud|); the vector part of `this` is touched only where
  // `other` has entries.
  void join(const CausalContext& other) {
    if (this == &other) return;
    bool grew = false;
    for (const auto& [r, n] : other.vv_) {
      auto& top = vv_[r];
      if (n > top) {
        top = n;
        grew = true;
      }
    }
    other.cloud_.for_each([&](const Dot& d) { insert(d); });
    if (grew && !cloud_.empty()) compact_all();
  }

  // True iff every dot of `this` is in `other`.
  bool leq(const CausalContext& other) const {
    for (const auto& [r, n] : vv_) {
      const std::uint64_t theirs = other.max_contiguous(r);
      for (std::uint64_t c = theirs + 1; c <= n; ++c) {
        if (!other.cloud_.contains(Dot{r, c})) return false;
      }
    }
    bool ok = true;
    cloud_.for_each([&](const Dot& d) { ok = ok && other.contains(d); });
    return ok;
  }

  // Number of dots represented (sum of the vector plus the cloud), saturating: callers
  // compare it with store sizes to pick the cheaper side to enumerate, and a wrapped sum
  // would make a huge context look small.
  std::uint64_t dot_count() const {
    std::uint64_t n = cloud_.size();
    for (const auto& [r, c] : vv_) {
      n = c > UINT64_MAX - n ? UINT64_MAX : n + c;
    }
    return n;
  }

  bool empty() const { return vv_.empty() && cloud_.empty(); }

  // Calls f(Dot) for every dot; order unspecified.
  template <class F>
  void for_each_dot(F&& f) const {
    for (const auto& [r, n] : vv_) {
      for (std::uint64_t c = 1; c <= n; ++c) f(Dot{r, c});
    }
    cloud_.for_each(f);
  }

  // Calls f(Dot) for every dot of `this` that `base` lacks. Skips each replica's prefix
  // that `base` already covers, so the cost is O(replicas + novel dots + cloud).
  template <class F>
  void for_each_dot_missing_from(const CausalContext& base, F&& f) const {
    for (const auto& [r, n] : vv_) {
      for (std::uint64_t c = base.max_contiguous(r) + 1; c <= n; ++c) {
        const Dot d{r, c};
        if (!base.contains(d)) f(d);
      }
    }
    cloud_.for_each([&](const Dot& d) {
      if (!base.contains(d)) f(d);
    });
  }

  // Canonical (sorted) views, used for serialization and digests.
  std::vector<std::pair<ReplicaId, std::uint64_t>> sorted_vector() const {
    std::vector<std::pair<ReplicaId, std::uint64_t>> out(vv_.begin(), vv_.end());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<Dot> sorted_cloud() const {
    std::vector<Dot> out = cloud_.to_vector();
    std::sort(out.begin(), out.end());
    return out;
  }

  // Canonical bytes for digests: sorted vector, a separator, sorted cloud.
  void append_canonical(std::string& buf) const {
    const auto put = [&](std::uint64_t v) {
      for (int i = 0; i < 8; ++i) buf.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    for (const auto& [r, n] : sorted_vector()) {
      put(r);
      put(n);
    }
    put(0);
    for (const Dot& d : sorted_cloud()) {
      put(d.replica);
      put(d.counter);
    }
  }

  // A context can be encoded on its own (encode/decode in crdt/codec.hpp).
  static constexpr TypeTag kTypeTag = TypeTag::causal_context;
  static constexpr std::uint16_t kFormatVersion = 1;
  // Every loaded context is well formed: load() normalises what it reads.
  bool valid() const { return true; }

  // Bytes of this context in an encoding (exact: fixed-width fields).
  std::size_t encoded_size() const { return 16 + 16 * (vv_.size() + cloud_.size()); }

  std::size_t replica_count() const { return vv_.size(); }
  std::size_t cloud_size() const { return cloud_.size(); }

  friend bool operator==(const CausalContext&, const CausalContext&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    const auto vec = sorted_vector();
    const auto cloud = sorted_cloud();
    ar(static_cast<std::uint64_t>(vec.size()));
    for (const auto& [r, n] : vec) ar(r, n);
    ar(static_cast<std::uint64_t>(cloud.size()));
    for (const Dot& d : cloud) ar(d.replica, d.counter);
  }

  // Loads element by element (never reserving a declared count), so a hostile size field
  // fails on truncation instead of allocating. Result is re-normalised via insert().
  template <class Archive>
  void load(Archive& ar) {
    CausalContext fresh;
    std::uint64_t n = 0;
    ar(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      ReplicaId r = 0;
      std::uint64_t c = 0;
      ar(r, c);
      if (c > 0) {
        auto& top = fresh.vv_[r];
        top = std::max(top, c);
      }
    }
    ar(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      Dot d;
      ar(d.replica, d.counter);
      if (d.counter > 0) fresh.insert(d);
    }
    fresh.compact_all();
    *this = std::move(fresh);
  }

 private:
  // Moves cloud dots of `r` that now extend the prefix into the vector.
  void compact_replica(ReplicaId r) {
    if (cloud_.empty()) return;
    auto& top = vv_[r];  // r has a vector entry: callers just raised it
    while (cloud_.erase(Dot{r, top + 1})) ++top;
  }

  void compact_all() {
    if (cloud_.empty()) return;
    std::vector<Dot> dots = cloud_.to_vector();
    std::sort(dots.begin(), dots.end());
    cloud_.clear();
    for (const Dot& d : dots) {
      auto it = vv_.find(d.replica);
      const std::uint64_t top = it == vv_.end() ? 0 : it->second;
      if (d.counter <= top) continue;
      if (d.counter == top + 1) {
        vv_[d.replica] = d.counter;  // sorted order lets the prefix grow in one pass
      } else {
        cloud_.insert(d);
      }
    }
  }

  boost::unordered_flat_map<ReplicaId, std::uint64_t> vv_;  // no zero entries
  detail::DotCloud cloud_;                                  // each dot > its replica's prefix + 1
};

}  // namespace deltacrdt
