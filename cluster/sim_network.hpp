// SimNetwork<T>: a deterministic network of ReplicaCores in virtual time, for protocol
// tests. Seeded; drops, duplicates, delays (and so reorders) messages; partitions and heals;
// crashes replicas and restarts them with their durable state (X, c) or without it (as a
// new replica id). Every message crosses as encoded bytes, exactly as over TCP.
// Single-threaded; the network owns its replicas.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cluster/replica_core.hpp"
#include "cluster/storage.hpp"

namespace deltacrdt {

struct SimFaults {
  double drop = 0.0;       // probability a message is lost
  double duplicate = 0.0;  // probability a message is delivered twice
  Time min_delay = std::chrono::milliseconds(1);
  Time max_delay = std::chrono::milliseconds(5);  // delays differ, so messages reorder
};

template <DeltaCrdt T>
class SimNetwork {
 public:
  SimNetwork(std::uint64_t seed, SyncOptions options, SimFaults faults = {})
      : rng_(seed), options_(options), faults_(faults) {}

  Time now() const { return now_; }
  void set_faults(const SimFaults& f) { faults_ = f; }

  void add_replica(ReplicaId id, std::vector<ReplicaId> neighbours = {}) {
    if (nodes_.contains(id)) throw std::logic_error("replica id already in the network");
    Node& n = nodes_[id];
    n.neighbours = std::move(neighbours);
    n.core = std::make_unique<ReplicaCore<T>>(id, options_);
    n.storage = std::make_unique<MemoryStorage>(id);
    n.core->attach_storage(n.storage.get());
    n.core->set_neighbours(n.neighbours);
    wake(id);
  }

  void set_neighbours(ReplicaId id, std::vector<ReplicaId> neighbours) {
    Node& n = nodes_.at(id);
    n.neighbours = std::move(neighbours);
    if (n.core) {
      n.core->set_neighbours(n.neighbours);
      wake(id);
    }
  }

  bool alive(ReplicaId id) const { return nodes_.at(id).core != nullptr; }
  ReplicaCore<T>& replica(ReplicaId id) { return *nodes_.at(id).core; }
  std::vector<ReplicaId> ids() const {
    std::vector<ReplicaId> out;
    for (const auto& [id, n] : nodes_) out.push_back(id);
    return out;
  }

  // Applies a mutator at replica `id` now; its delta also joins the oracle of everything
  // ever written.
  template <class F>
  void mutate(ReplicaId id, F&& fn) {
    ReplicaCore<T>& core = replica(id);
    core.mutate(now_, [&](T& x) {
      T d = fn(x);
      written_.join(d);
      return d;
    });
    pump(id);
  }

  // Delivers `msg` to replica `to` as if `from` (any id, in the network or not) had sent it,
  // after the usual delay: what a faulty or hostile peer can put on the wire.
  void inject(ReplicaId from, ReplicaId to, SyncMessage msg) {
    events_.push(Event{now_ + delay(), order_++, false, to, from, std::move(msg)});
  }

  // The join of every delta any replica produced: what a converged cluster must hold.
  const T& everything_written() const { return written_; }

  // Messages between different groups are lost until heal().
  void partition(const std::vector<std::set<ReplicaId>>& groups) {
    group_of_.clear();
    for (std::size_t g = 0; g < groups.size(); ++g) {
      for (ReplicaId id : groups[g]) group_of_[id] = g;
    }
  }
  void heal() { group_of_.clear(); }
  // Whether a message from a can reach b now: both up, on the same side of any partition.
  bool reachable(ReplicaId a, ReplicaId b) const {
    return alive(a) && alive(b) && !partitioned(a, b);
  }

  // Stops a replica. With `keep_durable`, what its storage logged survives (every replica
  // logs to a MemoryStorage); its buffer, acks and in-flight messages do not. Without, the
  // storage is lost too.
  void crash(ReplicaId id, bool keep_durable) {
    Node& n = nodes_.at(id);
    if (!n.core) return;
    if (!keep_durable) n.storage.reset();
    n.core.reset();
    n.wake_at = ReplicaCore<T>::kNever;  // its pending wake-up dies with it
  }

  // Restarts a crashed replica from what its storage recovers, with the same id.
  void restart(ReplicaId id) {
    Node& n = nodes_.at(id);
    if (n.core) return;
    if (!n.storage) throw std::logic_error("no durable state: restart it as a new replica");
    ++n.incarnation;
    auto recovered = recover_state<T>(n.storage->recover());
    if (!recovered)
      throw std::logic_error("storage did not recover: " + recovered.error().message());
    n.core = std::make_unique<ReplicaCore<T>>(id, options_, std::move(recovered->first),
                                              recovered->second, n.incarnation);
    n.core->attach_storage(n.storage.get());
    n.core->set_neighbours(n.neighbours);
    wake(id);
  }

  // Runs events up to and including time t.
  void run_until(Time t) {
    while (!events_.empty() && events_.top().at <= t) {
      Event e = events_.top();
      events_.pop();
      now_ = e.at;
      auto it = nodes_.find(e.to);
      if (it == nodes_.end() || !it->second.core) continue;
      Node& n = it->second;
      if (e.wake) {
        if (n.wake_at != e.at) continue;  // superseded by an earlier wake-up
        n.wake_at = ReplicaCore<T>::kNever;
        n.core->tick(now_);
      } else {
        if (partitioned(e.from, e.to)) continue;
        n.core->receive(now_, e.from, e.msg);
      }
      pump(e.to);
    }
    now_ = std::max(now_, t);
  }
  void run_for(Time d) { run_until(now_ + d); }

  // True when every live replica holds the same state.
  bool converged() const {
    const T* first = nullptr;
    for (const auto& [id, n] : nodes_) {
      if (!n.core) continue;
      if (first == nullptr) {
        first = &n.core->state();
      } else if (!(n.core->state() == *first)) {
        return false;
      }
    }
    return true;
  }

  std::uint64_t messages_sent() const { return messages_sent_; }
  std::uint64_t bytes_sent() const { return bytes_sent_; }
  // Bytes sent in messages of one kind (all replicas, both directions).
  std::uint64_t bytes_sent(SyncKind kind) const {
    auto it = bytes_by_kind_.find(kind);
    return it == bytes_by_kind_.end() ? 0 : it->second;
  }
  std::size_t largest_message() const { return largest_message_; }

 private:
  struct Node {
    std::unique_ptr<ReplicaCore<T>> core;
    std::vector<ReplicaId> neighbours;
    std::unique_ptr<MemoryStorage> storage;  // survives crash(keep_durable)
    std::uint64_t incarnation = 0;
    Time wake_at = ReplicaCore<T>::kNever;
  };
  struct Event {
    Time at;
    std::uint64_t order;  // FIFO among equal times: deterministic
    bool wake;
    ReplicaId to;
    ReplicaId from;
    SyncMessage msg;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : order > o.order; }
  };

  bool partitioned(ReplicaId a, ReplicaId b) const {
    if (group_of_.empty()) return false;
    auto ga = group_of_.find(a), gb = group_of_.find(b);
    const auto g = [&](auto it) { return it == group_of_.end() ? SIZE_MAX : it->second; };
    return g(ga) != g(gb);
  }

  Time delay() {
    const auto lo = faults_.min_delay.count(),
               hi = std::max(faults_.min_delay, faults_.max_delay).count();
    return Time(std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_));
  }
  bool chance(double p) { return p > 0 && std::bernoulli_distribution(p)(rng_); }

  // Moves a replica's outgoing messages onto the wire and schedules its next wake-up.
  void pump(ReplicaId id) {
    Node& n = nodes_.at(id);
    for (auto& out : n.core->take_outbox()) {
      ++messages_sent_;
      bytes_sent_ += wire_size(out.msg);
      bytes_by_kind_[kind_of(out.msg)] += wire_size(out.msg);
      largest_message_ = std::max(largest_message_, wire_size(out.msg));
      if (partitioned(id, out.to) || chance(faults_.drop)) continue;
      const int copies = chance(faults_.duplicate) ? 2 : 1;
      for (int c = 0; c < copies; ++c) {
        events_.push(Event{now_ + delay(), order_++, false, out.to, id, out.msg});
      }
    }
    wake(id);
  }

  void wake(ReplicaId id) {
    Node& n = nodes_.at(id);
    if (!n.core) return;
    const Time at = std::max(now_, n.core->next_wakeup());
    if (at == ReplicaCore<T>::kNever || at >= n.wake_at) return;
    n.wake_at = at;
    events_.push(Event{at, order_++, true, id, id, {}});
  }

  std::mt19937_64 rng_;
  SyncOptions options_;
  SimFaults faults_;
  Time now_{};
  std::map<ReplicaId, Node> nodes_;
  std::map<ReplicaId, std::size_t> group_of_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t order_ = 0;
  T written_;
  std::uint64_t messages_sent_ = 0;
  std::uint64_t bytes_sent_ = 0;
  std::map<SyncKind, std::uint64_t> bytes_by_kind_;
  std::size_t largest_message_ = 0;
};

}  // namespace deltacrdt
