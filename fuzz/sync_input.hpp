// The sync target's input layout (fuzz/sync.cpp), with its writer for fuzz/make_seeds.cpp,
// and the replica it runs against. Pure; not thread-safe.
#pragma once

#include <cstdint>
#include <string>

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

inline SyncMessage read_message(FuzzReader& in) {
  SyncMessage m;
  m.kind = static_cast<SyncMessage::Kind>(1 + in.u8() % 8);
  m.first = in.u64();
  m.last = in.u64();
  m.transfer = in.u64();
  m.seq = in.u64();
  const std::uint8_t form = in.u8();
  const std::string_view payload = in.blob();
  if (form % 2 == kSealedMap) {
    m.payload =
        seal_value(static_cast<std::uint16_t>(SyncMap::kTypeTag), SyncMap::kFormatVersion, payload);
  } else {
    m.payload = std::string(payload);
  }
  return m;
}

// One message in the target's layout; a payload made by encode() is written in its sealed
// form (the target seals it again), any other as raw bytes.
inline void write_message(FuzzWriter& w, const SyncMessage& m, std::uint8_t sender_byte,
                          std::uint16_t advance_ms, bool sealed_map) {
  w.u8(static_cast<std::uint8_t>(static_cast<std::uint8_t>(m.kind) - 1));
  w.u64(m.first).u64(m.last).u64(m.transfer).u64(m.seq);
  w.u8(sealed_map ? kSealedMap : kRaw);
  w.blob(sealed_map ? payload_of(m.payload) : std::string_view(m.payload));
  w.u8(sender_byte);
  w.u16(advance_ms);
}

}  // namespace deltacrdt::fuzz
