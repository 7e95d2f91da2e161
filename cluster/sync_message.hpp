// The messages of the delta anti-entropy protocol (docs/protocol.md), one struct per kind.
// Plain values: ReplicaCore produces and consumes them, the simulator and the node's links
// carry them (cluster/wire.hpp writes them in a `sync` frame). Payloads are encode(T) bytes
// (crdt/codec.hpp) or the digest catch-up's own lists (cluster/digest_catchup.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "crdt/dot.hpp"

namespace deltacrdt {

// Deltas with the sender's sequence numbers [first, last), joined into one payload.
struct DeltaBatch {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::string payload;  // encode(T) of the joined deltas
  friend bool operator==(const DeltaBatch&, const DeltaBatch&) = default;
};

// The receiver of a DeltaBatch holds (durably, with storage) deltas [first, last).
struct DeltaAck {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  friend bool operator==(const DeltaAck&, const DeltaAck&) = default;
};

// Chunk `index` of `chunks` of whole-state transfer `transfer`, whose state is the sender's
// as of its sequence number `seq`.
struct StateChunk {
  std::uint64_t transfer = 0;
  std::uint64_t index = 0;
  std::uint64_t chunks = 0;
  std::uint64_t seq = 0;
  std::string bytes;  // this chunk's slice of encode(T) of the state
  friend bool operator==(const StateChunk&, const StateChunk&) = default;
};

// The receiver of transfer `transfer` holds chunks [0, have). `declined`: it is receiving
// another peer's whole state and declines this one for now; the sender drops the transfer
// and catches up later.
struct StateAck {
  std::uint64_t transfer = 0;
  std::uint64_t have = 0;
  bool declined = false;
  friend bool operator==(const StateAck&, const StateAck&) = default;
};

// Digest catch-up (docs/protocol.md). Each request of catch-up `transfer` carries a number
// `request`, which its DigestAnswer repeats.

// Bucket digests at depth `level` of the key-hash tree (no buckets: the probe).
struct DigestOffer {
  std::uint64_t transfer = 0;
  std::uint64_t request = 0;
  std::uint64_t level = 0;
  std::string payload;  // seed, parent level, parents, digests, context (first offer only)
  friend bool operator==(const DigestOffer&, const DigestOffer&) = default;
};

// The entries of some key-hash ranges of the sender's snapshot.
struct BucketChunk {
  std::uint64_t transfer = 0;
  std::uint64_t request = 0;
  std::string payload;  // the ranges, then encode(T) of their entries
  friend bool operator==(const BucketChunk&, const BucketChunk&) = default;
};

// Every differing range was sent: join the sender's context, or name keys changed since.
struct DigestDone {
  std::uint64_t transfer = 0;
  std::uint64_t request = 0;
  friend bool operator==(const DigestDone&, const DigestDone&) = default;
};

// The receiver's verdict on a digest request.
enum class DigestStatus : std::uint8_t {
  ok = 0,
  want_whole_state = 1,  // the receiver holds nothing: a whole-state transfer is cheaper
  unknown_transfer = 2,  // the receiver lost this catch-up (it restarted): start again
};
inline constexpr std::uint8_t kLastDigestStatus = 2;

// The answer to request `request` of catch-up `transfer`.
struct DigestAnswer {
  std::uint64_t transfer = 0;
  std::uint64_t request = 0;
  DigestStatus status = DigestStatus::ok;
  std::string payload;  // differing bucket indices (offer) or keys to resend (done)
  friend bool operator==(const DigestAnswer&, const DigestAnswer&) = default;
};

// Read concerns (docs/protocol.md): the sender asks the receiver to catch it up now, from a
// snapshot taken after this request arrived. With `retiring` (pruning, docs/protocol.md,
// "Pruning removed replicas"), the receiver agrees only if it knows every one of those
// replica ids removed, and takes the sender for the replica that retires them.
struct CatchUpRequest {
  std::uint64_t request = 0;
  std::vector<ReplicaId> retiring{};  // strictly increasing
  friend bool operator==(const CatchUpRequest&, const CatchUpRequest&) = default;
};

// The answer to CatchUpRequest `request`: the receiver started catch-up `transfer` (whole
// state or digests) towards the requester, which holds everything the receiver held at the
// request once that catch-up, or a later one from it, completes. 0: refused (the receiver
// does not push to the requester).
struct CatchUpStarted {
  std::uint64_t request = 0;
  std::uint64_t transfer = 0;
  friend bool operator==(const CatchUpStarted&, const CatchUpStarted&) = default;
};

// One protocol message. The alternatives' order is their kind number on the wire minus one
// (SyncKind); never reorder them.
using SyncMessage = std::variant<DeltaBatch, DeltaAck, StateChunk, StateAck, DigestOffer,
                                 BucketChunk, DigestDone, DigestAnswer, CatchUpRequest,
                                 CatchUpStarted>;

enum class SyncKind : std::uint8_t {
  delta = 1,
  delta_ack = 2,
  state_chunk = 3,
  state_ack = 4,
  digest_offer = 5,
  bucket_chunk = 6,
  digest_done = 7,
  digest_answer = 8,
  catch_up_request = 9,
  catch_up_started = 10,
};
inline constexpr std::uint8_t kLastSyncKind = 10;
static_assert(std::variant_size_v<SyncMessage> == kLastSyncKind);

inline SyncKind kind_of(const SyncMessage& m) { return static_cast<SyncKind>(m.index() + 1); }

// The variable-length part of a message (0 for acks): what byte counters count.
inline std::size_t payload_size(const SyncMessage& m) {
  return std::visit(
      [](const auto& x) -> std::size_t {
        using M = std::decay_t<decltype(x)>;
        if constexpr (requires { x.payload; }) {
          return x.payload.size();
        } else if constexpr (std::is_same_v<M, StateChunk>) {
          return x.bytes.size();
        } else {
          return 0;
        }
      },
      m);
}

// Bytes the message occupies in a sync frame, after the replica name and the two ids
// (cluster/wire.hpp): the kind byte, the fixed fields, and a length-prefixed payload.
inline std::size_t wire_size(const SyncMessage& m) {
  return std::visit(
      [](const auto& x) -> std::size_t {
        using M = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<M, DeltaBatch>) {
          return 1 + 16 + 8 + x.payload.size();
        } else if constexpr (std::is_same_v<M, StateChunk>) {
          return 1 + 32 + 8 + x.bytes.size();
        } else if constexpr (std::is_same_v<M, StateAck>) {
          return 1 + 16 + 1;
        } else if constexpr (std::is_same_v<M, DigestOffer>) {
          return 1 + 24 + 8 + x.payload.size();
        } else if constexpr (std::is_same_v<M, BucketChunk>) {
          return 1 + 16 + 8 + x.payload.size();
        } else if constexpr (std::is_same_v<M, DigestAnswer>) {
          return 1 + 16 + 1 + 8 + x.payload.size();
        } else if constexpr (std::is_same_v<M, CatchUpRequest>) {
          return 1 + 8 + 8 + 8 * x.retiring.size();
        } else {
          static_assert(std::is_same_v<M, DeltaAck> || std::is_same_v<M, DigestDone> ||
                        std::is_same_v<M, CatchUpStarted>);
          return 1 + 16;
        }
      },
      m);
}

}  // namespace deltacrdt
