// ReplicaOptions<T>: how a Replica<T> is run - protocol timing, storage, logging, change
// notifications and clock. Plain values, no Asio (notifications are handed to a Poster).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cluster/diff_traits.hpp"
#include "cluster/log.hpp"
#include "cluster/neighbour_policy.hpp"
#include "cluster/protocol.hpp"
#include "cluster/replica_clock.hpp"
#include "cluster/storage.hpp"
#include "cluster/unique_function.hpp"

namespace deltacrdt {

// Runs a function later, elsewhere, in the order of the calls, one at a time (a strand):
// where change notifications run. replica.hpp's post_to(executor) makes one from an Asio
// executor.
using Poster = std::function<void(UniqueFunction<void()>)>;

// Where a replica stands on readiness (Replica::readiness, Replica::when_ready): waiting,
// or ready and why.
enum class ReadyState : std::uint8_t {
  waiting,     // started holding nothing; no catch-up yet
  recovered,   // started with a state (recovered from storage, or given)
  caught_up,   // a first catch-up from a peer completed
  alone,       // no peer was heard of within alone_after: the first or only one
  waited_out,  // peers were heard of, but none caught it up within give_up_after
  immediate,   // ReadinessOptions::await_catch_up was false
};
inline const char* to_string(ReadyState s) {
  switch (s) {
    case ReadyState::waiting: return "waiting";
    case ReadyState::recovered: return "recovered";
    case ReadyState::caught_up: return "caught_up";
    case ReadyState::alone: return "alone";
    case ReadyState::waited_out: return "waited_out";
    case ReadyState::immediate: return "immediate";
  }
  return "unknown";
}

// When a replica counts as ready. One that starts holding nothing (a new node, or one
// restarted with an empty data directory) would answer "not found" for what its peers hold
// until it has caught up, so it is not ready until then; one that starts with a state (what
// its storage recovered) is ready at once, and catches up on what it missed as every replica
// does. Holding nothing, it becomes ready at the first of:
//   - a first catch-up from a peer completes (a whole state or a digest catch-up; a peer that
//     holds nothing completes one too, with its empty state);
//   - no peer is heard of (no neighbour set, no message received) within `alone_after` of
//     the start: it is the first or only replica;
//   - `give_up_after` from the start, peers heard of but none caught it up (as when no peer's
//     neighbour policy pushes to it): ready without, logged as readiness_waited_out.
// A replica hosted by a Node with no seeds, DNS seeds or membership strategies is ready
// (alone) at once: that node looks for no peer, so none is coming to catch it up.
// Readiness only reports: reads and writes are served all along.
struct ReadinessOptions {
  bool await_catch_up = true;  // false: ready at once (ReadyState::immediate)
  std::chrono::milliseconds alone_after{3000};
  std::chrono::milliseconds give_up_after{60000};
};

// Pruning (docs/protocol.md, "Pruning removed replicas"): a replica whose type can retire a
// removed replica's entries (GCounter, PNCounter, VectorClock: crdt/retired.hpp) and that is
// the retiring replica (the smallest id among itself and its neighbours, which must be all
// the other members) asks every other member to catch it up once each knows the removal,
// and then retires what its state holds of the removed replicas. A round that is refused
// (another replica should retire, a member does not know the removal yet, a member is down)
// or not finished within `round_timeout` is tried again after `retry_after`.
struct PruningOptions {
  bool enabled = true;
  std::chrono::milliseconds retry_after{5000};
  std::chrono::milliseconds round_timeout{10000};
};

template <class T>
struct ReplicaOptions {
  SyncOptions sync;  // protocol timing and bounds; see cluster/protocol.hpp for defaults

  // Where the replica logs every change before acknowledging it (cluster/storage.hpp); null
  // keeps the state in memory only. Construct the replica with what the storage recovered
  // (recover_state) and its id.
  std::shared_ptr<Storage> storage;

  // Where received payloads that were rejected (malformed, or state transfers too large or
  // abandoned) are logged, at most once per `refusal_log_interval`, as `payload_rejected`
  // with `replica=log_name`; they are always counted in metrics(). Null: not logged. A Node
  // sets both to its own logger and the replica's name.
  std::shared_ptr<Logger> logger;
  std::string log_name;
  std::chrono::milliseconds refusal_log_interval{10000};

  // Change notifications (keyed types: AWLWWMap): on_diffs(changes) is called with every
  // change of a visible value, local or received, in order, batch after batch. It is
  // installed before the replica runs anything, so no change can happen unreported. It runs
  // through `diffs_poster`, never on the replica's own turn, so a slow subscriber does not
  // delay replication (batches queue until it returns). Empty poster: a strand on the
  // replica's executor (a Node gives its replicas a notification thread of its own).
  typename DiffTypes<T>::Callback on_diffs{};
  Poster diffs_poster;
  // Also report the state the replica starts with (what its storage recovered), every key
  // as added, as the first batch: an index kept from on_diffs then starts complete.
  bool report_initial_state = false;

  // Which linked nodes' namesakes a replica hosted by a Node pushes to
  // (cluster/neighbour_policy.hpp; default all; Node::set_neighbours changes it later).
  // Replicas outside a Node are given their neighbours by Replica::set_neighbours instead.
  NeighbourPolicy neighbours;

  ReadinessOptions readiness;
  PruningOptions pruning;

  // Where the replica reads time and sets its timers; null: the real clocks and Asio timers
  // on the replica's executor. Tests pass a ManualClock to run in virtual time.
  std::shared_ptr<ReplicaClock> clock;
};

}  // namespace deltacrdt
