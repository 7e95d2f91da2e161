// RetiredIds: the replica ids a per-replica map (GCounter, VectorClock) has retired, each with
// the replica that took over its entry (docs/protocol.md, "Pruning removed replicas"). A
// retired id's entry is dropped and stays dropped: a join strips it from whatever arrives,
// so a stale copy of the entry (a retransmitted delta, a replica that was away) can never
// bring it back. Join is the union of (retired, owner) pairs; the marks are kept until
// forget() (once no copy of the entry can arrive any more) and are few: one per replica
// removed from the cluster within that time. Value type; not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "crdt/codec.hpp"
#include "crdt/dot.hpp"

namespace deltacrdt::detail {

class RetiredIds {
 public:
  struct Mark {
    ReplicaId retired = 0;
    ReplicaId owner = 0;  // the replica whose entry took over the retired one's
    friend auto operator<=>(const Mark&, const Mark&) = default;
  };

  bool contains(ReplicaId r) const {
    auto it = std::lower_bound(marks_.begin(), marks_.end(), Mark{r, 0});
    return it != marks_.end() && it->retired == r;
  }

  // Adds a mark; returns whether it was new.
  bool add(ReplicaId retired, ReplicaId owner) {
    const Mark m{retired, owner};
    auto it = std::lower_bound(marks_.begin(), marks_.end(), m);
    if (it != marks_.end() && *it == m) return false;
    marks_.insert(it, m);
    return true;
  }

  // Adds other's marks; returns the ids retired by them that were not retired here before
  // (whose entries the caller must now drop).
  std::vector<ReplicaId> join(const RetiredIds& other) {
    std::vector<ReplicaId> newly;
    if (this == &other || other.marks_.empty()) return newly;
    for (const Mark& m : other.marks_) {
      if (!contains(m.retired)) newly.push_back(m.retired);
    }
    std::vector<Mark> merged;
    merged.reserve(marks_.size() + other.marks_.size());
    std::set_union(marks_.begin(), marks_.end(), other.marks_.begin(), other.marks_.end(),
                   std::back_inserter(merged));
    marks_ = std::move(merged);
    return newly;
  }

  bool leq(const RetiredIds& other) const {
    return std::includes(other.marks_.begin(), other.marks_.end(), marks_.begin(), marks_.end());
  }

  // The marks of `delta` that are not here.
  RetiredIds novel_part(const RetiredIds& delta) const {
    RetiredIds out;
    std::set_difference(delta.marks_.begin(), delta.marks_.end(), marks_.begin(), marks_.end(),
                        std::back_inserter(out.marks_));
    return out;
  }

  // The marks whose entries `owner` took over: they travel with its entry in every delta
  // that carries it, so that no replica holds the raised entry without dropping the ones
  // it absorbed.
  RetiredIds owned_by(ReplicaId owner) const {
    RetiredIds out;
    for (const Mark& m : marks_)
      if (m.owner == owner) out.marks_.push_back(m);
    return out;
  }

  // Drops every mark of `r` (local: see the class comment).
  bool forget(ReplicaId r) {
    return std::erase_if(marks_, [&](const Mark& m) { return m.retired == r; }) != 0;
  }

  bool empty() const { return marks_.empty(); }
  std::size_t size() const { return marks_.size(); }
  const std::vector<Mark>& marks() const { return marks_; }

  // The digest of a per-replica map whose own digest is `entries_digest`, with these marks:
  // that digest alone when there are none (values without marks keep their digests).
  std::uint64_t digest_with(std::uint64_t entries_digest) const {
    if (marks_.empty()) return entries_digest;
    std::string buf;
    append_canonical(buf, entries_digest);
    for (const Mark& m : marks_) {
      append_canonical(buf, m.retired);
      append_canonical(buf, m.owner);
    }
    return hash_bytes(buf);
  }

  // Whether the marks are canonical and `entries` (anything with get(ReplicaId)) holds no
  // entry of a retired id.
  template <class Entries>
  bool valid_with(const Entries& entries) const {
    return valid() && std::none_of(marks_.begin(), marks_.end(),
                                   [&](const Mark& m) { return entries.get(m.retired) != 0; });
  }

  bool valid() const {
    return std::is_sorted(marks_.begin(), marks_.end()) &&
           std::adjacent_find(marks_.begin(), marks_.end()) == marks_.end() &&
           std::none_of(marks_.begin(), marks_.end(), [](const Mark& m) {
             return m.retired == 0 || m.owner == 0 || m.retired == m.owner;
           });
  }

  friend bool operator==(const RetiredIds&, const RetiredIds&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    ar(static_cast<std::uint64_t>(marks_.size()));
    for (const Mark& m : marks_) ar(m.retired, m.owner);
  }

  // Accepts only the canonical form save() writes: marks strictly increasing, no zero ids,
  // no id that owns itself. Element by element: a hostile count fails on truncation.
  template <class Archive>
  void load(Archive& ar) {
    RetiredIds fresh;
    const std::uint64_t n = load_count(ar);
    for (std::uint64_t i = 0; i < n; ++i) {
      Mark m;
      ar(m.retired, m.owner);
      if (m.retired == 0 || m.owner == 0 || m.retired == m.owner) {
        throw std::invalid_argument("malformed retired-id mark");
      }
      if (!fresh.marks_.empty() && !(fresh.marks_.back() < m)) {
        throw std::invalid_argument("retired-id marks not strictly sorted");
      }
      fresh.marks_.push_back(m);
    }
    *this = std::move(fresh);
  }

 private:
  std::vector<Mark> marks_;  // sorted, unique
};

}  // namespace deltacrdt::detail
