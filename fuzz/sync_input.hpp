// The sync target's input layout (fuzz/sync.cpp), with its writer for fuzz/make_seeds.cpp,
// and the replica it runs against. Pure; not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

#include "cluster/protocol.hpp"
#include "crdt/awlww_map.hpp"
#include "fuzz/fuzz_input.hpp"

namespace deltacrdt::fuzz {

using SyncMap = AWLWWMap<std::string, std::string>;

inline constexpr ReplicaId kSelf = 1;
inline constexpr ReplicaId kNeighbour = 2;  // a neighbour of kSelf
inline constexpr ReplicaId kOther = 3;      // another neighbour

// The fuzzed replica's state before the messages: enough keys for digest catch-up to have
// buckets, some removed (so its context is more than its entries).
inline SyncMap seed_state() {
  SyncMap m;
  for (int i = 0; i < 40; ++i) {
    (void)m.put(kSelf, "k" + std::to_string(i), "v" + std::to_string(i), HlcTimestamp{100u + i});
  }
  for (int i = 0; i < 40; i += 7) (void)m.remove("k" + std::to_string(i));
  return m;
}

// Sender selector: mostly the neighbours, sometimes an id the replica never heard of.
inline PeerId sender(std::uint8_t b) {
  switch (b % 4) {
    case 0:
    case 1:
      return kNeighbour;
    case 2:
      return kOther;
    default:
      return 0xF00D;
  }
}

enum PayloadForm : std::uint8_t { kRaw = 0, kSealedMap = 1 };

// A message from the target's input: a kind, four numbers that fill that kind's fixed fields
// in declaration order (numbers a kind has no field for are ignored; a flag or status takes
// the number modulo its range) and a payload, if the kind has one.
struct MessageFields {
  std::uint8_t kind = 1;
  std::array<std::uint64_t, 4> n{};
  std::string payload;
};

inline SyncMessage message_from(MessageFields f) {
  const auto& n = f.n;
  switch (static_cast<SyncKind>(f.kind)) {
    case SyncKind::delta:
      return DeltaBatch{n[0], n[1], std::move(f.payload)};
    case SyncKind::delta_ack:
      return DeltaAck{n[0], n[1]};
    case SyncKind::state_chunk:
      return StateChunk{n[0], n[1], n[2], n[3], std::move(f.payload)};
    case SyncKind::state_ack:
      return StateAck{n[0], n[1], n[2] % 2 == 1};
    case SyncKind::digest_offer:
      return DigestOffer{n[0], n[1], n[2], std::move(f.payload)};
    case SyncKind::bucket_chunk:
      return BucketChunk{n[0], n[1], std::move(f.payload)};
    case SyncKind::digest_done:
      return DigestDone{n[0], n[1]};
    case SyncKind::digest_answer:
      return DigestAnswer{n[0], n[1], static_cast<DigestStatus>(n[2] % (kLastDigestStatus + 1)),
                          std::move(f.payload)};
    case SyncKind::catch_up_request: {
      // n[1], n[2]: up to two retiring ids (0: none), kept strictly increasing.
      CatchUpRequest m{n[0], {}};
      if (n[1] != 0) m.retiring.push_back(n[1]);
      if (n[1] != 0 && n[2] > n[1]) m.retiring.push_back(n[2]);
      return m;
    }
    case SyncKind::catch_up_started:
      return CatchUpStarted{n[0], n[1]};
  }
  return DeltaAck{};
}

inline MessageFields fields_of(const SyncMessage& m) {
  MessageFields f;
  f.kind = static_cast<std::uint8_t>(kind_of(m));
  std::visit(
      [&f](const auto& x) {
        using M = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<M, DeltaBatch>) {
          f.n = {x.first, x.last, 0, 0};
          f.payload = x.payload;
        } else if constexpr (std::is_same_v<M, DeltaAck>) {
          f.n = {x.first, x.last, 0, 0};
        } else if constexpr (std::is_same_v<M, StateChunk>) {
          f.n = {x.transfer, x.index, x.chunks, x.seq};
          f.payload = x.bytes;
        } else if constexpr (std::is_same_v<M, StateAck>) {
          f.n = {x.transfer, x.have, x.declined ? 1u : 0u, 0};
        } else if constexpr (std::is_same_v<M, DigestOffer>) {
          f.n = {x.transfer, x.request, x.level, 0};
          f.payload = x.payload;
        } else if constexpr (std::is_same_v<M, BucketChunk>) {
          f.n = {x.transfer, x.request, 0, 0};
          f.payload = x.payload;
        } else if constexpr (std::is_same_v<M, DigestDone>) {
          f.n = {x.transfer, x.request, 0, 0};
        } else if constexpr (std::is_same_v<M, DigestAnswer>) {
          f.n = {x.transfer, x.request, static_cast<std::uint64_t>(x.status), 0};
          f.payload = x.payload;
        } else if constexpr (std::is_same_v<M, CatchUpRequest>) {
          f.n = {x.request, x.retiring.size() > 0 ? x.retiring[0] : 0,
                 x.retiring.size() > 1 ? x.retiring[1] : 0, 0};
        } else {
          static_assert(std::is_same_v<M, CatchUpStarted>);
          f.n = {x.request, x.transfer, 0, 0};
        }
      },
      m);
  return f;
}

inline SyncMessage read_message(FuzzReader& in) {
  MessageFields f;
  f.kind = static_cast<std::uint8_t>(1 + in.u8() % kLastSyncKind);
  for (std::uint64_t& x : f.n) x = in.u64();
  const std::uint8_t form = in.u8();
  const std::string_view payload = in.blob();
  if (form % 2 == kSealedMap) {
    f.payload =
        seal_value(static_cast<std::uint16_t>(SyncMap::kTypeTag), SyncMap::kFormatVersion, payload);
  } else {
    f.payload = std::string(payload);
  }
  return message_from(std::move(f));
}

// One message in the target's layout; a payload made by encode() is written in its sealed
// form (the target seals it again), any other as raw bytes.
inline void write_message(FuzzWriter& w, const SyncMessage& m, std::uint8_t sender_byte,
                          std::uint16_t advance_ms, bool sealed_map) {
  const MessageFields f = fields_of(m);
  w.u8(static_cast<std::uint8_t>(f.kind - 1));
  w.u64(f.n[0]).u64(f.n[1]).u64(f.n[2]).u64(f.n[3]);
  w.u8(sealed_map ? kSealedMap : kRaw);
  w.blob(sealed_map ? payload_of(f.payload) : std::string_view(f.payload));
  w.u8(sender_byte);
  w.u16(advance_ms);
}

}  // namespace deltacrdt::fuzz
