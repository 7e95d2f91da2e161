// Payloads of the node frames that carry replication and membership (docs/wire-format.md):
// a `sync` frame holds one SyncMessage addressed to a named replica; a `gossip` frame holds
// what a node knows of itself and of the cluster. Little-endian fixed-width fields, every
// count checked against the bytes present before anything is allocated. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/protocol.hpp"
#include "transport/byte_io.hpp"

namespace deltacrdt::wire {

inline constexpr std::size_t kMaxName = 255;

// One SyncMessage from replica `from` to replica `to`, both named `replica` on their nodes.
struct SyncEnvelope {
  std::string replica;
  PeerId from = 0;
  PeerId to = 0;
  SyncMessage msg;
};

inline std::string encode_sync(std::string_view replica, PeerId from, PeerId to,
                               const SyncMessage& m) {
  detail::ByteWriter w;
  w.bytes(replica);
  w.u64(from);
  w.u64(to);
  w.u64(static_cast<std::uint64_t>(m.kind));
  w.u64(m.first);
  w.u64(m.last);
  w.u64(m.transfer);
  w.u64(m.seq);
  w.bytes(m.payload);
  return w.take();
}

inline bool known_sync_kind(std::uint64_t k) { return k >= 1 && k <= 8; }

inline std::optional<SyncEnvelope> decode_sync(std::string_view bytes) {
  detail::ByteReader r(bytes);
  SyncEnvelope e;
  std::string_view name, payload;
  std::uint64_t kind = 0;
  if (!r.bytes(name) || name.size() > kMaxName || !r.u64(e.from) || !r.u64(e.to) || !r.u64(kind) ||
      !known_sync_kind(kind) || !r.u64(e.msg.first) || !r.u64(e.msg.last) ||
      !r.u64(e.msg.transfer) || !r.u64(e.msg.seq) || !r.bytes(payload) || !r.done()) {
    return std::nullopt;
  }
  e.replica = std::string(name);
  e.msg.kind = static_cast<SyncMessage::Kind>(kind);
  e.msg.payload = std::string(payload);
  return e;
}

// A node as gossip describes it.
struct MemberRecord {
  std::string name;
  std::string address;  // host:port others dial
  std::uint64_t incarnation = 0;
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

// The sender itself (with the replicas it hosts) and the other members it knows.
struct Gossip {
  MemberRecord self;
  std::vector<HostedReplica> replicas;
  std::vector<MemberRecord> members;
  friend bool operator==(const Gossip&, const Gossip&) = default;
};

inline void write_member(detail::ByteWriter& w, const MemberRecord& m) {
  w.bytes(m.name);
  w.bytes(m.address);
  w.u64(m.incarnation);
}

inline bool read_member(detail::ByteReader& r, MemberRecord& m) {
  std::string_view name, address;
  if (!r.bytes(name) || !r.bytes(address) || !r.u64(m.incarnation) || name.empty() ||
      name.size() > kMaxName || address.size() > kMaxName) {
    return false;
  }
  m.name = std::string(name);
  m.address = std::string(address);
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
  if (!r.done()) return std::nullopt;
  return g;
}

}  // namespace deltacrdt::wire
