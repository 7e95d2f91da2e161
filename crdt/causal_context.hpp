// CausalContext: the set of dots a replica has seen, as a compact version vector plus a
// "dot cloud" of runs of dots past each replica's contiguous prefix. Value type; not
// thread-safe. Under causal delivery the cloud stays empty; it only fills while deltas
// arrive out of order, and insert/join compact it back into the vector as gaps close.
//
// Contexts are handled as ranges, never enumerated dot by dot where a range may be long:
// a context from elsewhere can claim any counter up to kMaxDotCounter, and every operation
// here costs O(replicas + runs), whatever the counters (for_each_dot, which enumerates, is
// only for contexts known to be small).
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/dot_ranges.hpp"

namespace deltacrdt {

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

  // Highest counter seen from `r`, contiguous or not (0 when none).
  std::uint64_t max_counter(ReplicaId r) const {
    const std::uint64_t top = max_contiguous(r);
    return cloud_.empty() ? top : std::max(top, cloud_.max_of(r));
  }

  // The next dot replica `r` issues: past every dot of `r` this context holds. (Normally
  // the prefix; a run of `r` beyond a gap means other replicas hold dots `r` issued and
  // then lost in a crash. Those counters are skipped, never issued twice.)
  Dot next_dot(ReplicaId r) const { return Dot{r, max_counter(r) + 1}; }

  // Issues and records the next dot of `r`. Throws std::overflow_error, changing nothing,
  // once `r` has issued kMaxDotCounter (the replica must take a new id).
  Dot make_dot(ReplicaId r) {
    const Dot d = next_dot(r);
    if (d.counter > kMaxDotCounter) {
      throw std::overflow_error("replica " + std::to_string(r) +
                                " has issued the largest dot counter; it needs a new id");
    }
    insert(d);
    return d;
  }

  void insert(const Dot& d) {
    if (d.counter != 0) insert_range(d.replica, d.counter, d.counter);
  }

  // Adds dots first..last of `r` (1 <= first <= last <= kMaxDotCounter). O(log runs).
  void insert_range(ReplicaId r, std::uint64_t first, std::uint64_t last) {
    assert(first >= 1 && first <= last && last <= kMaxDotCounter);
    auto it = vv_.find(r);
    const std::uint64_t top = it == vv_.end() ? 0 : it->second;
    if (last <= top) return;
    if (first <= top + 1) {
      if (it == vv_.end()) {
        it = vv_.emplace(r, last).first;
      } else {
        it->second = last;
      }
      if (!cloud_.empty()) it->second = cloud_.absorb_into_prefix(r, it->second);
    } else {
      // Past a gap: wait in the cloud. (No vector entry is created for it, so a delta's
      // context of a few scattered dots allocates nothing.)
      cloud_.add(r, first, last);
    }
  }

  // Cost: O(|other| + runs moved out of the cloud); the vector part of `this` is touched
  // only where `other` has entries.
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
    other.cloud_.for_each([&](const DotRange& x) { insert_range(x.replica, x.first, x.last); });
    if (grew && !cloud_.empty()) compact_all();
  }

  // True iff every dot of `this` is in `other`. O(replicas + runs x log runs).
  bool leq(const CausalContext& other) const {
    // other's cloud never holds the dot right after its prefix, so a longer prefix here
    // is a dot other lacks.
    for (const auto& [r, n] : vv_) {
      if (n > other.max_contiguous(r)) return false;
    }
    bool ok = true;
    cloud_.for_each([&](const DotRange& x) { ok = ok && other.covers(x); });
    return ok;
  }

  // Whether every dot of x is in this context.
  bool covers(const DotRange& x) const {
    const std::uint64_t top = max_contiguous(x.replica);
    if (x.last <= top) return true;
    bool covered = false;
    cloud_.for_each_of(x.replica, std::max(x.first, top + 1), [&](std::uint64_t a, std::uint64_t b) {
      covered = a <= std::max(x.first, top + 1) && b >= x.last;
      return false;  // runs are maximal: only the first can cover it
    });
    return covered;
  }

  // Number of dots represented (the vector plus the cloud), saturating: callers compare it
  // with store sizes to pick the cheaper side to enumerate, and a wrapped sum would make a
  // huge context look small.
  std::uint64_t dot_count() const {
    std::uint64_t n = 0;
    const auto add = [&](std::uint64_t c) { n = c > UINT64_MAX - n ? UINT64_MAX : n + c; };
    for (const auto& [r, c] : vv_) add(c);
    cloud_.for_each([&](const DotRange& x) { add(x.last - x.first + 1); });
    return n;
  }

  bool empty() const { return vv_.empty() && cloud_.empty(); }

  // Calls f(Dot) for every dot; order unspecified. O(dot_count()): only for contexts known
  // to be small (compare dot_count() with the other side first), never for one that came
  // from elsewhere as a whole; use for_each_range there.
  template <class F>
  void for_each_dot(F&& f) const {
    for_each_range([&](const DotRange& x) {
      for (std::uint64_t c = x.first; c <= x.last; ++c) f(Dot{x.replica, c});
    });
  }

  // Calls f(const DotRange&) for each maximal run of dots: first every replica's prefix
  // (1..max_contiguous), then the cloud. O(replicas + runs).
  template <class F>
  void for_each_range(F&& f) const {
    for (const auto& [r, n] : vv_) f(DotRange{r, 1, n});
    cloud_.for_each(f);
  }

  // Calls f(const DotRange&) for the runs of dots of `this` that `base` lacks, whatever
  // their length. O(replicas + runs of both involved).
  template <class F>
  void for_each_range_missing_from(const CausalContext& base, F&& f) const {
    for_each_range([&](const DotRange& x) { base.for_each_gap(x, f); });
  }

  // The dots of `this` that `base` lacks, as a context (a delta's context made of them).
  CausalContext missing_from(const CausalContext& base) const {
    CausalContext out;
    for_each_range_missing_from(
        base, [&](const DotRange& x) { out.insert_range(x.replica, x.first, x.last); });
    return out;
  }

  // Canonical (sorted) views, used for serialization and digests.
  std::vector<std::pair<ReplicaId, std::uint64_t>> sorted_vector() const {
    std::vector<std::pair<ReplicaId, std::uint64_t>> out(vv_.begin(), vv_.end());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<DotRange> sorted_cloud() const {
    std::vector<DotRange> out;
    out.reserve(cloud_.size());
    cloud_.for_each([&](const DotRange& x) { out.push_back(x); });  // already sorted
    return out;
  }

  // Canonical bytes for digests: sorted vector, a separator, the cloud's single dots
  // sorted, then (only if there are any) a marker and the longer runs. A context whose
  // cloud holds single dots only has the same bytes as in format version 1.
  void append_canonical(std::string& buf) const {
    const auto put = [&](std::uint64_t v) {
      for (int i = 0; i < 8; ++i) buf.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    for (const auto& [r, n] : sorted_vector()) {
      put(r);
      put(n);
    }
    put(0);
    bool runs = false;
    cloud_.for_each([&](const DotRange& x) {
      if (x.first == x.last) {
        put(x.replica);
        put(x.first);
      } else {
        runs = true;
      }
    });
    if (!runs) return;
    put(UINT64_MAX);
    cloud_.for_each([&](const DotRange& x) {
      if (x.first == x.last) return;
      put(x.replica);
      put(x.first);
      put(x.last);
    });
  }

  // A context can be encoded on its own (encode/decode in crdt/codec.hpp).
  static constexpr TypeTag kTypeTag = TypeTag::causal_context;
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;
  // Every loaded context is well formed: load() normalises what it reads.
  bool valid() const { return true; }

  // Bytes of this context in an encoding (exact: fixed-width fields).
  std::size_t encoded_size() const { return 16 + 16 * vv_.size() + 24 * cloud_.size(); }

  // Dots in the cloud (past some replica's contiguous prefix), and the runs they form.
  std::uint64_t cloud_size() const {
    std::uint64_t n = 0;
    cloud_.for_each([&](const DotRange& x) { n += x.last - x.first + 1; });
    return n;
  }
  std::size_t cloud_runs() const { return cloud_.size(); }

  friend bool operator==(const CausalContext&, const CausalContext&) = default;

  // Format 2: the vector, then the cloud as runs (replica, first, last). Format 1 (read
  // only) wrote the cloud dot by dot.
  template <class Archive>
  void save(Archive& ar) const {
    const auto vec = sorted_vector();
    ar(static_cast<std::uint64_t>(vec.size()));
    for (const auto& [r, n] : vec) ar(r, n);
    ar(static_cast<std::uint64_t>(cloud_.size()));
    cloud_.for_each([&](const DotRange& x) { ar(x.replica, x.first, x.last); });
  }

  // Loads element by element (never reserving a declared count), so a hostile size field
  // fails on truncation instead of allocating; the loops run once per element actually
  // read. Counters above kMaxDotCounter are corrupt (std::domain_error). The result is
  // re-normalised, whatever order the elements came in.
  template <class Archive>
  void load(Archive& ar) {
    std::uint16_t version = kFormatVersion;
    if constexpr (requires { ar.format_version(); }) version = ar.format_version();
    CausalContext fresh;
    std::uint64_t n = 0;
    ar(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      ReplicaId r = 0;
      std::uint64_t c = 0;
      ar(r, c);
      check_counter(c);
      if (c > 0) fresh.insert_range(r, 1, c);
    }
    ar(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      DotRange x;
      ar(x.replica, x.first);
      x.last = x.first;
      if (version >= 2) ar(x.last);
      check_counter(x.last);
      if (x.first == 0 || x.first > x.last) throw std::domain_error("malformed dot run");
      fresh.insert_range(x.replica, x.first, x.last);
    }
    *this = std::move(fresh);
  }

 private:
  static void check_counter(std::uint64_t c) {
    if (c > kMaxDotCounter) throw std::domain_error("dot counter beyond the sanity bound");
  }

  // Calls f for the parts of x that this context lacks.
  template <class F>
  void for_each_gap(const DotRange& x, F& f) const {
    std::uint64_t from = std::max(x.first, max_contiguous(x.replica) + 1);
    if (from > x.last) return;
    if (!cloud_.empty()) {
      cloud_.for_each_of(x.replica, from, [&](std::uint64_t a, std::uint64_t b) {
        if (a > x.last) return false;
        if (a > from) f(DotRange{x.replica, from, a - 1});
        from = std::max(from, b + 1);
        return from <= x.last;
      });
    }
    if (from <= x.last) f(DotRange{x.replica, from, x.last});
  }

  // Moves cloud runs that now touch a replica's prefix into the vector.
  void compact_all() {
    std::vector<ReplicaId> replicas;
    ReplicaId prev = 0;
    cloud_.for_each([&](const DotRange& x) {
      if (replicas.empty() || x.replica != prev) replicas.push_back(x.replica);
      prev = x.replica;
    });
    for (ReplicaId r : replicas) {
      auto it = vv_.find(r);
      if (it != vv_.end()) it->second = cloud_.absorb_into_prefix(r, it->second);
    }
  }

  boost::unordered_flat_map<ReplicaId, std::uint64_t> vv_;  // no zero entries
  detail::DotRanges cloud_;  // each run starts past its replica's prefix + 1
};

}  // namespace deltacrdt
