// The CRDT types the decoder target covers, by the selector byte of its input, and the
// input layout it reads (shared with fuzz/make_seeds.cpp):
//
//   u8 type (kTypeCount of them) | u8 flags (bit 0: the oldest readable format version)
//   | blob payload a | blob payload b | rest: u16 piece sizes for the streaming decoder
//
// Payloads are what encode() puts between its header and checksum; the target seals them.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

#include "crdt/awlww_map.hpp"
#include "crdt/causal_context.hpp"
#include "crdt/causal_counter.hpp"
#include "crdt/compact_string.hpp"
#include "crdt/ew_flag.hpp"
#include "crdt/gcounter.hpp"
#include "crdt/lww_register.hpp"
#include "crdt/mv_register.hpp"
#include "crdt/ormap.hpp"
#include "crdt/orset.hpp"
#include "crdt/pncounter.hpp"
#include "crdt/vector_clock.hpp"

namespace deltacrdt::fuzz {

using StringMap = AWLWWMap<std::string, std::string>;
using CompactMap = AWLWWMap<CompactString, CompactString>;
using StringSet = ORSet<std::string>;
using CounterMap = ORMap<std::string, CausalCounter>;
using NestedMap = ORMap<std::string, ORMap<std::string, ORSet<std::string>>>;
using StringMV = MVRegister<std::string>;
using StringLWW = LWWRegister<std::string>;

using CrdtTypes =
    std::tuple<StringMap, CompactMap, StringSet, CounterMap, NestedMap, EWFlag, StringMV,
               CausalCounter, GCounter, PNCounter, VectorClock, StringLWW, CausalContext>;
inline constexpr std::size_t kTypeCount = std::tuple_size_v<CrdtTypes>;

enum : std::uint8_t { kOldestVersion = 1 };

}  // namespace deltacrdt::fuzz
