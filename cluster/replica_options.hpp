// ReplicaOptions<T>: how a Replica<T> is run - protocol timing, storage, logging, change
// notifications and clock. Plain values, no Asio (notifications are handed to a Poster).
#pragma once

#include <chrono>
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

  // Where the replica reads time and sets its timers; null: the real clocks and Asio timers
  // on the replica's executor. Tests pass a ManualClock to run in virtual time.
  std::shared_ptr<ReplicaClock> clock;
};

}  // namespace deltacrdt
