// Payloads of the node frames that carry replication and membership (docs/wire-format.md):
// a `sync` frame holds one SyncMessage addressed to a named replica; a `gossip` frame holds
// what a node knows of itself and of the cluster. Little-endian fixed-width fields, every
// count checked against the bytes present before anything is allocated. Pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "base/byte_io.hpp"
#include "cluster/protocol.hpp"
#include "cluster/removed_members.hpp"

namespace deltacrdt::wire {

inline constexpr std::size_t kMaxName = 255;

// One SyncMessage from replica `from` to replica `to`, both named `replica` on their nodes.
struct SyncEnvelope {
  std::string replica;
  PeerId from = 0;
  PeerId to = 0;
  SyncMessage msg;
};

// Layout (docs/wire-format.md): the replica name, the two ids, a kind byte (SyncKind), then
// that kind's fields in declaration order; strings are length-prefixed and bools one byte.
inline std::string encode_sync(std::string_view replica, PeerId from, PeerId to,
                               const SyncMessage& m) {
  detail::ByteWriter w;
  w.bytes(replica);
  w.u64(from);
  w.u64(to);
  w.u8(static_cast<std::uint8_t>(kind_of(m)));
  std::visit(
      [&w](const auto& x) {
        using M = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<M, DeltaBatch>) {
          w.u64(x.first);
          w.u64(x.last);
          w.bytes(x.payload);
        } else if constexpr (std::is_same_v<M, DeltaAck>) {
          w.u64(x.first);
          w.u64(x.last);
        } else if constexpr (std::is_same_v<M, StateChunk>) {
          w.u64(x.transfer);
          w.u64(x.index);
          w.u64(x.chunks);
          w.u64(x.seq);
          w.bytes(x.bytes);
        } else if constexpr (std::is_same_v<M, StateAck>) {
          w.u64(x.transfer);
          w.u64(x.have);
          w.u8(x.declined ? 1 : 0);
        } else if constexpr (std::is_same_v<M, DigestOffer>) {
          w.u64(x.transfer);
          w.u64(x.request);
          w.u64(x.level);
          w.bytes(x.payload);
        } else if constexpr (std::is_same_v<M, BucketChunk>) {
          w.u64(x.transfer);
          w.u64(x.request);
          w.bytes(x.payload);
        } else if constexpr (std::is_same_v<M, DigestDone>) {
          w.u64(x.transfer);
          w.u64(x.request);
        } else if constexpr (std::is_same_v<M, DigestAnswer>) {
          w.u64(x.transfer);
          w.u64(x.request);
          w.u8(static_cast<std::uint8_t>(x.status));
          w.bytes(x.payload);
        } else if constexpr (std::is_same_v<M, CatchUpRequest>) {
          w.u64(x.request);
          detail::write_list(w, x.retiring);
        } else {
          static_assert(std::is_same_v<M, CatchUpStarted>);
          w.u64(x.request);
          w.u64(x.transfer);
        }
      },
      m);
  return w.take();
}

inline bool read_string(detail::ByteReader& r, std::string& out) {
  std::string_view v;
  if (!r.bytes(v)) return false;
  out = std::string(v);
  return true;
}

// The fields of one kind; false when they are short, out of range or followed by more.
inline bool read_sync_fields(detail::ByteReader& r, std::uint8_t kind, SyncMessage& out) {
  switch (static_cast<SyncKind>(kind)) {
    case SyncKind::delta: {
      DeltaBatch m;
      if (!r.u64(m.first) || !r.u64(m.last) || !read_string(r, m.payload)) return false;
      out = std::move(m);
      return true;
    }
    case SyncKind::delta_ack: {
      DeltaAck m;
      if (!r.u64(m.first) || !r.u64(m.last)) return false;
      out = m;
      return true;
    }
    case SyncKind::state_chunk: {
      StateChunk m;
      if (!r.u64(m.transfer) || !r.u64(m.index) || !r.u64(m.chunks) || !r.u64(m.seq) ||
          !read_string(r, m.bytes)) {
        return false;
      }
      out = std::move(m);
      return true;
    }
    case SyncKind::state_ack: {
      StateAck m;
      std::uint8_t declined = 0;
      if (!r.u64(m.transfer) || !r.u64(m.have) || !r.u8(declined) || declined > 1) return false;
      m.declined = declined == 1;
      out = m;
      return true;
    }
    case SyncKind::digest_offer: {
      DigestOffer m;
      if (!r.u64(m.transfer) || !r.u64(m.request) || !r.u64(m.level) ||
          !read_string(r, m.payload)) {
        return false;
      }
      out = std::move(m);
      return true;
    }
    case SyncKind::bucket_chunk: {
      BucketChunk m;
      if (!r.u64(m.transfer) || !r.u64(m.request) || !read_string(r, m.payload)) return false;
      out = std::move(m);
      return true;
    }
    case SyncKind::digest_done: {
      DigestDone m;
      if (!r.u64(m.transfer) || !r.u64(m.request)) return false;
      out = m;
      return true;
    }
    case SyncKind::digest_answer: {
      DigestAnswer m;
      std::uint8_t status = 0;
      if (!r.u64(m.transfer) || !r.u64(m.request) || !r.u8(status) ||
          status > kLastDigestStatus || !read_string(r, m.payload)) {
        return false;
      }
      m.status = static_cast<DigestStatus>(status);
      out = std::move(m);
      return true;
    }
    case SyncKind::catch_up_request: {
      CatchUpRequest m;
      if (!r.u64(m.request) || !r.list(m.retiring) ||
          std::adjacent_find(m.retiring.begin(), m.retiring.end(),
                             [](ReplicaId a, ReplicaId b) { return a >= b; }) != m.retiring.end()) {
        return false;
      }
      out = m;
      return true;
    }
    case SyncKind::catch_up_started: {
      CatchUpStarted m;
      if (!r.u64(m.request) || !r.u64(m.transfer)) return false;
      out = m;
      return true;
    }
  }
  return false;  // an unknown kind
}

inline std::optional<SyncEnvelope> decode_sync(std::string_view bytes) {
  detail::ByteReader r(bytes);
  SyncEnvelope e;
  std::string_view name;
  std::uint8_t kind = 0;
  if (!r.bytes(name) || name.size() > kMaxName || !r.u64(e.from) || !r.u64(e.to) ||
      !r.u8(kind) || !read_sync_fields(r, kind, e.msg) || !r.done()) {
    return std::nullopt;
  }
  e.replica = std::string(name);
  return e;
}

// A node as gossip describes it.
struct MemberRecord {
  std::string name;
  std::string address;  // host:port others dial
  std::uint64_t incarnation = 0;
  // The member's own counter, raised by it at every gossip round (never lowered, across
  // restarts too): a record whose heartbeat moved on says the member was alive since.
  std::uint64_t heartbeat = 0;
  // In the list of other members: whether the sender is linked to it now, and whether the
  // sender wants a link to it (the link is kept while either end wants it).
  bool linked = false;
  bool wanted = false;
  friend bool operator==(const MemberRecord&, const MemberRecord&) = default;
};

struct HostedReplica {
  std::string name;
  ReplicaId id = 0;
  // type_signature<T>() of the replica's CRDT type (crdt/type_signature.hpp): namesakes of
  // different types are not neighbours.
  std::uint64_t type = 0;
  friend bool operator==(const HostedReplica&, const HostedReplica&) = default;
};

// The sender itself (with the replicas it hosts) and the other members it knows; and the
// members removed from the cluster (cluster/removed_members.hpp), which a node sends whole
// in the first gossip on a link and then only as it learns new ones.
struct Gossip {
  MemberRecord self;
  std::vector<HostedReplica> replicas;
  std::vector<MemberRecord> members;
  std::vector<RemovedMember> removed{};
  friend bool operator==(const Gossip&, const Gossip&) = default;
};

inline constexpr std::uint8_t kMemberLinked = 1;
inline constexpr std::uint8_t kMemberWanted = 2;

inline void write_member(detail::ByteWriter& w, const MemberRecord& m) {
  w.bytes(m.name);
  w.bytes(m.address);
  w.u64(m.incarnation);
  w.u64(m.heartbeat);
  w.u8(static_cast<std::uint8_t>((m.linked ? kMemberLinked : 0) | (m.wanted ? kMemberWanted : 0)));
}

inline bool read_member(detail::ByteReader& r, MemberRecord& m) {
  std::string_view name, address;
  std::uint8_t flags = 0;
  if (!r.bytes(name) || !r.bytes(address) || !r.u64(m.incarnation) || !r.u64(m.heartbeat) ||
      !r.u8(flags) || name.empty() || name.size() > kMaxName || address.size() > kMaxName ||
      (flags & ~(kMemberLinked | kMemberWanted)) != 0) {
    return false;
  }
  m.name = std::string(name);
  m.address = std::string(address);
  m.linked = (flags & kMemberLinked) != 0;
  m.wanted = (flags & kMemberWanted) != 0;
  return true;
}

inline std::string encode_gossip(const Gossip& g) {
  detail::ByteWriter w;
  write_member(w, g.self);
  w.u64(g.replicas.size());
  for (const HostedReplica& h : g.replicas) {
    w.bytes(h.name);
    w.u64(h.id);
    w.u64(h.type);
  }
  w.u64(g.members.size());
  for (const MemberRecord& m : g.members) write_member(w, m);
  w.u64(g.removed.size());
  for (const RemovedMember& m : g.removed) write_removed(w, m);
  return w.take();
}

inline std::optional<Gossip> decode_gossip(std::string_view bytes) {
  detail::ByteReader r(bytes);
  Gossip g;
  std::uint64_t n = 0;
  if (!read_member(r, g.self) || !r.count(n, 24)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    HostedReplica h;
    std::string_view name;
    if (!r.bytes(name) || name.size() > kMaxName || !r.u64(h.id) || !r.u64(h.type)) {
      return std::nullopt;
    }
    h.name = std::string(name);
    g.replicas.push_back(std::move(h));
  }
  if (!r.count(n, 24)) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    MemberRecord m;
    if (!read_member(r, m)) return std::nullopt;
    g.members.push_back(std::move(m));
  }
  if (!r.count(n, 8 + 1 + 8 + 8 + 8)) return std::nullopt;  // the smallest removal record
  for (std::uint64_t i = 0; i < n; ++i) {
    RemovedMember m;
    if (!read_removed(r, m)) return std::nullopt;
    g.removed.push_back(std::move(m));
  }
  if (!r.done()) return std::nullopt;
  return g;
}

}  // namespace deltacrdt::wire
