// Fuzz target: replication messages, decoded and *applied* - every message kind a peer can
// send, delivered to a ReplicaCore (cluster/replica_core.hpp) that holds some state, has a
// neighbour in catch-up, and logs to a MemoryStorage; with ticks between them, so buffers,
// retransmissions, transfers and digest catch-ups run. The core must never crash, hang or
// grow without bound, and its state must keep its invariants. Layout (fuzz/sync_input.hpp):
//
//   u8 options | then messages: u8 kind | u8 sender | u64 first | u64 last | u64 transfer
//   | u64 seq | u8 payload form | blob payload | u16 milliseconds to advance (then a tick)
//
// Payload form 0: the bytes as they are; 1: an AWLWWMap payload the target seals (so that a
// delta or state chunk reaches the decoder's parser and then the join).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cluster/replica_core.hpp"
#include "fuzz/fuzz_input.hpp"
#include "fuzz/sync_input.hpp"

namespace {

using namespace deltacrdt;
using namespace deltacrdt::fuzz;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzReader in(data, size);
  const std::uint8_t opts = in.u8();
  SyncOptions o;
  o.max_sync_bytes = (opts & 1) != 0 ? 2048 : 64 * 1024;
  o.digest_min_entries = (opts & 2) != 0 ? 0 : 1024;
  o.max_incoming_transfer_bytes = 1 << 20;
  o.max_buffer_bytes = 1 << 20;
  ReplicaCore<SyncMap> core(kSelf, o, seed_state(), 5);
  MemoryStorage storage(kSelf);
  core.attach_storage(&storage);
  core.set_neighbours({kNeighbour, kOther});
  Time now{};
  core.tick(now);
  int steps = 0;
  while (!in.empty() && steps++ < 256) {
    const SyncMessage m = read_message(in);
    const PeerId from = sender(in.u8());
    core.receive(now, from, m);
    now += std::chrono::milliseconds(in.u16());
    core.tick(now);
    (void)core.take_outbox();
  }
  require(core.state().valid(), "the state keeps its invariants");
  const SyncMetrics metrics = core.metrics();
  require(metrics.buffer_bytes <= o.max_buffer_bytes + o.max_sync_bytes + (1 << 16),
          "the delta buffer stays within its bound");
  return 0;
}
