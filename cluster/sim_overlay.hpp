// SimOverlay<T>: the random(k) neighbour policy (cluster/overlay.hpp) applied to the replicas
// of a SimNetwork, drawn as a node draws them: a replica's candidates are the replicas it can
// reach now (up, and on its side of any partition - what a node learns from its links going
// down and up), draws are kept while they stay candidates, and redraw(fresh) drops them (the
// node's periodic redraw). Deterministic given its seed. Single-threaded, like the network.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "cluster/overlay.hpp"
#include "cluster/sim_network.hpp"

namespace deltacrdt {

template <DeltaCrdt T>
class SimOverlay {
 public:
  SimOverlay(std::size_t k, std::uint64_t seed) : k_(k), rng_(seed) {}

  // Gives every live replica of `net` its neighbours for the network as it is now. Call it
  // after every crash, restart, partition or heal (a node reacts to the link changes), and
  // with fresh = true now and then.
  void redraw(SimNetwork<T>& net, bool fresh = false) {
    const std::vector<ReplicaId> ids = net.ids();
    for (ReplicaId self : ids) {
      if (!net.alive(self)) continue;
      std::vector<ReplicaId> candidates;
      for (ReplicaId other : ids)
        if (other != self && net.reachable(self, other)) candidates.push_back(other);
      std::vector<ReplicaId>& mine = edges_[self];
      const std::vector<ReplicaId> keep = fresh ? std::vector<ReplicaId>{} : mine;
      mine = overlay::draw(self, std::move(candidates), keep, k_, rng_);
      net.set_neighbours(self, mine);
    }
  }

  // The neighbours last drawn for each replica.
  const std::map<ReplicaId, std::vector<ReplicaId>>& edges() const { return edges_; }

  // Whether, among the live replicas, every one reaches along the drawn edges every other
  // it can reach on the network: the overlay leaves no one out of any write.
  bool connected(const SimNetwork<T>& net) const {
    const std::vector<ReplicaId> ids = net.ids();
    for (ReplicaId from : ids) {
      if (!net.alive(from)) continue;
      std::set<ReplicaId> seen{from};
      std::deque<ReplicaId> frontier{from};
      while (!frontier.empty()) {
        const ReplicaId at = frontier.front();
        frontier.pop_front();
        auto e = edges_.find(at);
        if (e == edges_.end()) continue;
        for (ReplicaId next : e->second)
          if (net.reachable(at, next) && seen.insert(next).second) frontier.push_back(next);
      }
      for (ReplicaId to : ids)
        if (to != from && net.reachable(from, to) && !seen.contains(to)) return false;
    }
    return true;
  }

 private:
  std::size_t k_;
  std::mt19937_64 rng_;
  std::map<ReplicaId, std::vector<ReplicaId>> edges_;
};

}  // namespace deltacrdt
