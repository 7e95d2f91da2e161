// Messages and options of the delta anti-entropy protocol (docs/protocol.md). Plain values:
// the sans-I/O core produces and consumes them, the simulator and the TCP transport carry
// them. Payloads are encode(T) bytes (crdt/codec.hpp), so every hop uses the real format.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cluster/sync_message.hpp"
#include "crdt/dot.hpp"

namespace deltacrdt {

// Virtual or real time as seen by the protocol core; it never reads a clock itself.
using Time = std::chrono::nanoseconds;

// Replicas name their neighbours by replica id.
using PeerId = ReplicaId;

struct SyncOptions {
  // Safety-net period: every tick resends whatever a neighbour has not acknowledged.
  // (DeltaCrdt's default; local writes do not wait for it, see push_debounce.)
  Time sync_interval = std::chrono::milliseconds(200);
  // A local write is pushed to neighbours this long after it happens, so a burst of writes
  // travels as one message instead of one message per write. Short: under load the writes
  // queued before the push are batched anyway, and visibility latency starts here.
  Time push_debounce = std::chrono::microseconds(500);
  // Upper bound on the payload of one message. Batches of deltas are cut by bytes, never by
  // element count; a state transfer is chunked to this size.
  std::size_t max_sync_bytes = 256 * 1024;
  // Upper bound on the bytes of buffered deltas. Past it the oldest deltas are dropped; a
  // neighbour that still needed them catches up by state transfer instead (never silently).
  std::size_t max_buffer_bytes = 64 * 1024 * 1024;
  // State-transfer chunks in flight per neighbour before an acknowledgement is required.
  std::size_t transfer_window = 8;
  // Upper bound on the bytes of one incoming state transfer (a neighbour's whole state),
  // chunks held out of order included. A transfer that passes it is dropped and counted
  // (transfers_dropped): what a sender can make this replica hold is bounded. It must
  // exceed the largest encoded state the replica will hold; 2 GiB is about 13 million keys
  // of the link shortener's kind.
  std::size_t max_incoming_transfer_bytes = std::size_t{2} << 30;
  // Unacknowledged data is sent again after this long without progress.
  Time retransmit_after = std::chrono::milliseconds(400);
  // Catch-up of key-based types (AWLWWMap) compares digests of key-hash buckets and sends
  // only the keys that differ; a neighbour holding nothing still gets the whole state.
  // States with fewer entries than digest_min_entries always go whole: there the digest
  // round trips cost more than they save.
  bool digest_catchup = true;
  std::size_t digest_min_entries = 1024;
  // With storage attached: once the log holds more than this, the state is snapshotted and
  // the log emptied (at the next sync_interval tick).
  std::uint64_t snapshot_log_bytes = 64 * 1024 * 1024;
  // How a snapshot gets the encoded state. true: rebuilt on the snapshot thread from the
  // previous snapshot and the log (Storage::snapshot_basis), so writers never wait for it,
  // at the price of a second copy of the state in memory while it runs. false (or a store
  // that cannot provide the basis): encoded on the replica's strand, which pauses writers
  // for the encoding (about 0.2 s per million keys) but needs no second copy.
  bool snapshot_off_strand = true;
};

// Counters a replica exposes (monotone unless noted).
struct SyncMetrics {
  std::uint64_t deltas_sent = 0;  // delta messages
  std::uint64_t delta_bytes_sent = 0;
  std::uint64_t deltas_received = 0;
  std::uint64_t delta_bytes_received = 0;
  std::uint64_t redundant_bytes_removed = 0;  // received delta bytes that Δ(d, X) dropped
  std::uint64_t catchup_rounds = 0;           // catch-ups started towards neighbours
  std::uint64_t digest_catchups = 0;          // of which by digest comparison
  std::uint64_t catchup_chunks_sent = 0;      // catch-up messages (chunks, digests) sent
  std::uint64_t catchup_bytes_sent = 0;
  std::uint64_t catchups_completed = 0;  // catch-ups received and joined
  std::uint64_t catchups_declined = 0;   // whole states declined while another arrived
  std::uint64_t payloads_rejected = 0;   // deltas or states that failed to decode (dropped)
  std::uint64_t transfers_dropped = 0;   // incoming state transfers too large or abandoned
  std::uint64_t storage_errors = 0;      // appends or syncs that failed (nothing acknowledged)
  std::uint64_t buffer_entries = 0;      // current (not monotone)
  std::uint64_t buffer_bytes = 0;        // current (not monotone)
  std::uint64_t max_ack_lag = 0;         // current: largest c - A[j] over neighbours
};

}  // namespace deltacrdt
