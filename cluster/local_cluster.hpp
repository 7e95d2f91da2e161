// LocalCluster<T>: replicas 1..n of one CRDT inside one process, fully meshed over a
// LocalTransport and run by an IoThreads pool - for tests, benchmarks and embedded use.
// Owns its parts in a safe destruction order: replicas first, then the threads are joined
// (no handler can run any more), then the transport that handlers were sending through.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cluster/io_threads.hpp"
#include "cluster/replica.hpp"
#include "cluster/sync_transport.hpp"

namespace deltacrdt {

template <DeltaCrdt T>
class LocalCluster {
 public:
  explicit LocalCluster(std::size_t replicas, std::size_t threads = 2,
                        const ReplicaOptions<T>& options = {})
      : io_(threads) {
    for (std::size_t i = 1; i <= replicas; ++i) add(static_cast<ReplicaId>(i), options);
    for (auto& r : replicas_) {
      std::vector<PeerId> others;
      for (auto& o : replicas_)
        if (o->id() != r->id()) others.push_back(o->id());
      r->set_neighbours(others);
    }
  }
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;
  ~LocalCluster() {
    for (auto& r : replicas_) transport_.detach(r->id());
    replicas_.clear();
  }

  // Adds a replica (not yet anyone's neighbour) and returns it.
  Replica<T>& add(ReplicaId id, ReplicaOptions<T> options = {}) {
    replicas_.push_back(
        std::make_unique<Replica<T>>(io_.runtime(), id, transport_, std::move(options)));
    transport_.attach(*replicas_.back());
    return *replicas_.back();
  }

  // Replica with id `id` (ids 1..n for the ones created by the constructor).
  Replica<T>& operator[](ReplicaId id) {
    for (auto& r : replicas_)
      if (r->id() == id) return *r;
    throw std::out_of_range("no replica with this id");
  }

  LocalTransport& transport() { return transport_; }
  IoThreads& threads() { return io_; }

 private:
  LocalTransport transport_;  // destroyed last
  IoThreads io_;              // joined before the transport goes
  std::vector<std::unique_ptr<Replica<T>>> replicas_;
};

}  // namespace deltacrdt
