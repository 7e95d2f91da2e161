// RemovedMembers: the members removed from the cluster for good, as every node keeps them
// (docs/node.md, "Member lifecycle"). A removal is an operator's act on one node
// (Node::remove_member) or a node's own after a member stayed down too long
// (NodeOptions::remove_after_down); its record spreads by gossip to every member, which
// closes its link to the removed one, stops counting it in majorities and refuses it from
// then on.
//
// What is refused is the removed member's data, not its name: a record holds the member's
// incarnation (the process that was running) and the ids of the replicas it hosted. A node
// that comes back with the same data announces the same replica ids and is refused; wiped,
// it comes back under new replica ids (and a new incarnation) and joins as a new member,
// whatever its name.
//
// Records merge as a set keyed by (name, incarnation): the union of the replica ids, the
// earliest removal time. They are kept for `retain` after their removal (default 30 days)
// and at most `max_records` of them (the oldest go first), so that churn does not grow them
// for ever. The on-disk form (encode_file) is versioned and checksummed
// (docs/storage-format.md); the wire form is part of the gossip frame (cluster/wire.hpp).
// Sans-I/O and pure; not thread-safe (the node holds one under its mutex).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_io.hpp"
#include "base/bytes.hpp"
#include "cluster/protocol.hpp"

namespace deltacrdt {

struct RemovedMember {
  std::string name;
  std::uint64_t incarnation = 0;
  std::uint64_t removed_at_ms = 0;  // wall clock, milliseconds since the Unix epoch
  std::vector<ReplicaId> replicas;  // sorted, unique
  friend bool operator==(const RemovedMember&, const RemovedMember&) = default;
};

namespace wire {

inline constexpr std::size_t kMaxRemovedName = 255;
// Replica ids one record may carry: a node hosts a handful of replicas; a record naming
// more is malformed (it would let one gossip frame grow the set without bound).
inline constexpr std::size_t kMaxRemovedReplicas = 1024;

inline void write_removed(detail::ByteWriter& w, const RemovedMember& m) {
  w.bytes(m.name);
  w.u64(m.incarnation);
  w.u64(m.removed_at_ms);
  detail::write_list(w, m.replicas);
}

// False for a short record, an empty or long name, too many ids, or ids out of order.
inline bool read_removed(detail::ByteReader& r, RemovedMember& m) {
  std::string_view name;
  if (!r.bytes(name) || name.empty() || name.size() > kMaxRemovedName || !r.u64(m.incarnation) ||
      !r.u64(m.removed_at_ms) || !r.list(m.replicas) ||
      m.replicas.size() > kMaxRemovedReplicas ||
      std::adjacent_find(m.replicas.begin(), m.replicas.end(),
                         [](ReplicaId a, ReplicaId b) { return a >= b; }) != m.replicas.end()) {
    return false;
  }
  m.name = std::string(name);
  return true;
}

}  // namespace wire

// How many removal records are kept, and how long (NodeOptions::max_removed_members and
// forget_removed_after).
struct RemovedMembersLimits {
  std::size_t max_records = 4096;
  std::chrono::milliseconds retain{std::chrono::hours(24 * 30)};
};

class RemovedMembers {
 public:
  using Limits = RemovedMembersLimits;

  explicit RemovedMembers(Limits limits = {}) : limits_(limits) {}

  const std::vector<RemovedMember>& records() const { return records_; }
  bool empty() const { return records_.empty(); }

  // Adds one record, or merges it into the record of the same (name, incarnation). Returns
  // whether anything changed: a new record, or ids this node did not have. A record older
  // than `retain` at `now_ms` is ignored (it would only be expired again).
  bool add(RemovedMember m, std::uint64_t now_ms) {
    if (expired(m, now_ms)) return false;
    std::sort(m.replicas.begin(), m.replicas.end());
    m.replicas.erase(std::unique(m.replicas.begin(), m.replicas.end()), m.replicas.end());
    auto it = std::find_if(records_.begin(), records_.end(), [&](const RemovedMember& r) {
      return r.name == m.name && r.incarnation == m.incarnation;
    });
    if (it == records_.end()) {
      records_.push_back(std::move(m));
      trim();
      index();
      return true;
    }
    bool changed = false;
    if (m.removed_at_ms < it->removed_at_ms) {
      it->removed_at_ms = m.removed_at_ms;
      changed = true;
    }
    std::vector<ReplicaId> ids;
    std::set_union(it->replicas.begin(), it->replicas.end(), m.replicas.begin(), m.replicas.end(),
                   std::back_inserter(ids));
    if (ids.size() != it->replicas.size()) {
      it->replicas = std::move(ids);
      changed = true;
      index();
    }
    return changed;
  }

  // The record of (name, incarnation), or null.
  const RemovedMember* find(std::string_view name, std::uint64_t incarnation) const {
    for (const RemovedMember& r : records_)
      if (r.name == name && r.incarnation == incarnation) return &r;
    return nullptr;
  }

  // The record that says a node announcing itself as `name` with `incarnation`, hosting
  // `replicas`, was removed: the same process (name and incarnation), or the same data (any
  // replica id). Null when it is not removed.
  const RemovedMember* match(std::string_view name, std::uint64_t incarnation,
                             const std::vector<ReplicaId>& replicas) const {
    for (const RemovedMember& r : records_) {
      if (r.name == name && r.incarnation == incarnation) return &r;
      for (ReplicaId id : replicas) {
        if (std::binary_search(r.replicas.begin(), r.replicas.end(), id)) return &r;
      }
    }
    return nullptr;
  }

  // Whether replica `id` belonged to a removed member. O(log ids): a node asks it of every
  // sync frame.
  bool removed_replica(ReplicaId id) const {
    return std::binary_search(ids_.begin(), ids_.end(), id);
  }
  // Every removed replica id, sorted.
  const std::vector<ReplicaId>& replica_ids() const { return ids_; }

  // Drops the records removed more than `retain` before `now_ms`; returns how many.
  std::size_t expire(std::uint64_t now_ms) {
    const std::size_t n =
        std::erase_if(records_, [&](const RemovedMember& r) { return expired(r, now_ms); });
    if (n != 0) index();
    return n;
  }

  // The file form (docs/storage-format.md): magic "DCRM", u16 version, u16 0, u64 count, the
  // records as on the wire, u64 xxHash3 of everything before it.
  std::string encode_file() const {
    detail::ByteWriter w;
    w.u32(kFileMagic);
    w.u32(kFileVersion);  // u16 version, u16 reserved (0)
    w.u64(records_.size());
    for (const RemovedMember& r : records_) wire::write_removed(w, r);
    std::string out = w.take();
    detail::append_le64(out, detail::hash_bytes(out));
    return out;
  }

  // Why a file does not decode, or nothing when it does (then `out` holds its records).
  static std::optional<std::string> decode_file(std::string_view bytes, RemovedMembers& out) {
    if (bytes.size() < 24) return "too short";
    const std::string_view body = bytes.substr(0, bytes.size() - 8);
    if (detail::read_le64(bytes.data() + body.size()) != detail::hash_bytes(body)) {
      return "checksum mismatch (damaged)";
    }
    detail::ByteReader r(body);
    std::uint32_t magic = 0, version = 0;
    std::uint64_t n = 0;
    if (!r.u32(magic) || magic != kFileMagic) return "not a removed-members file";
    if (!r.u32(version) || version != kFileVersion) return "unknown format version";
    // The smallest record: an empty id list and a one-byte name.
    if (!r.count(n, 8 + 1 + 8 + 8 + 8)) return "record count beyond the file's bytes";
    std::vector<RemovedMember> records;
    for (std::uint64_t i = 0; i < n; ++i) {
      RemovedMember m;
      if (!wire::read_removed(r, m)) return "malformed record";
      records.push_back(std::move(m));
    }
    if (!r.done()) return "bytes after the last record";
    out.records_ = std::move(records);
    out.trim();
    out.index();
    return std::nullopt;
  }

 private:
  static constexpr std::uint32_t kFileMagic = 0x4d524344;  // "DCRM" little-endian
  static constexpr std::uint32_t kFileVersion = 1;

  bool expired(const RemovedMember& r, std::uint64_t now_ms) const {
    const auto retain = static_cast<std::uint64_t>(limits_.retain.count());
    return now_ms > r.removed_at_ms && now_ms - r.removed_at_ms > retain;
  }

  // Beyond max_records the oldest removals go.
  void trim() {
    if (records_.size() <= limits_.max_records) return;
    std::sort(records_.begin(), records_.end(), [](const RemovedMember& a, const RemovedMember& b) {
      return a.removed_at_ms > b.removed_at_ms;
    });
    records_.resize(limits_.max_records);
  }

  void index() {
    ids_.clear();
    for (const RemovedMember& r : records_) ids_.insert(ids_.end(), r.replicas.begin(), r.replicas.end());
    std::sort(ids_.begin(), ids_.end());
    ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
  }

  Limits limits_;
  std::vector<RemovedMember> records_;
  std::vector<ReplicaId> ids_;  // every record's replica ids, sorted (removed_replica)
};

}  // namespace deltacrdt
