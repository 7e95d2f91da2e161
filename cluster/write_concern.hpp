// When a write to a replica completes (Replica::mutate, put, remove).
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace deltacrdt {

struct WriteConcern {
  enum class Level {
    local,     // applied to the replica's state in memory (and logged, if it has storage)
    durable,   // also fsynced to the replica's storage; writes queued together share one fsync
    acked,     // also acknowledged by `acks` neighbours, within timeout
    majority,  // also held by a majority of the replica's members, within timeout
    all,       // also held by every member of the replica, within timeout
  };
  Level level = Level::local;
  std::size_t acks = 0;
  std::chrono::milliseconds timeout{5000};

  static WriteConcern local() { return {Level::local}; }
  static WriteConcern durable() { return {Level::durable}; }
  // k neighbours acknowledged the write. With storage, it is also durable locally first (as
  // for majority and all).
  static WriteConcern acked(std::size_t k,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return {Level::acked, k == 0 ? 1 : k, timeout};
  }
  // floor(N/2) + 1 of the N replicas of this CRDT in the cluster hold the write, this one
  // included: N counts the members that are down (they cannot acknowledge, so a minority
  // side of a partition never meets it) and not those removed (Replica::set_membership; a
  // replica outside a Node counts itself and its neighbours). Acknowledgements come from
  // the replicas it pushes to: with a neighbour policy other than all, a majority must be
  // among those.
  static WriteConcern majority(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return {Level::majority, 0, timeout};
  }
  // All N replicas hold the write (N as for majority).
  static WriteConcern all(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return {Level::all, 0, timeout};
  }
  bool waits_for_peers() const {
    return level == Level::acked || level == Level::majority || level == Level::all;
  }
};

// A write that was applied locally but not held by enough replicas in time. The write is
// not undone: it stays in the replica and keeps replicating. For majority and all, both
// counts include the replica written to; for acked(k), they count its neighbours.
class WriteConcernTimeout : public std::runtime_error {
 public:
  WriteConcernTimeout(std::size_t acknowledged, std::size_t required)
      : std::runtime_error("write concern not met in time: " + std::to_string(acknowledged) +
                           " of " + std::to_string(required) + " required replicas hold it"),
        acknowledged_(acknowledged),
        required_(required) {}
  std::size_t acknowledged() const { return acknowledged_; }
  std::size_t required() const { return required_; }

 private:
  std::size_t acknowledged_;
  std::size_t required_;
};

}  // namespace deltacrdt
