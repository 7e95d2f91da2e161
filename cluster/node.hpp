// Node: one process's place in a cluster (docs/node.md). It owns the I/O threads, the
// listener, one authenticated link per peer node (transport/link.hpp), and the replicas it
// hosts, multiplexed over the links by name. Membership: the seed list is dialed at start;
// every link exchanges gossip (the sender, the replicas it hosts, the members it is linked
// to), so a node that knows one member learns and dials the rest. Failed or lost links are
// redialed forever with exponential backoff and jitter. The neighbours of a hosted replica
// are its namesakes on every node currently linked ("all live members").
//
// Thread-safe: the public API may be called from any thread. The machinery (Asio, TLS,
// links) lives in the compiled library (cluster/node_impl.hpp); this header has neither
// Asio nor OpenSSL, so a program that runs a node compiles quickly.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cluster/file_storage.hpp"
#include "cluster/neighbour_policy.hpp"
#include "cluster/node_options.hpp"
#include "cluster/replica.hpp"
#include "cluster/replica_runtime.hpp"
#include "crdt/type_signature.hpp"

namespace deltacrdt {

class NodeImpl;  // cluster/node_impl.hpp

namespace detail {

// What Node::add_replica<T> builds a replica from: the id, transport, storage and runtime
// the node reserved under the replica's name.
struct HostedSlot {
  ReplicaId id = 0;
  SyncTransport* port = nullptr;
  // Null without a data_dir; otherwise opened, holding what it recovered.
  std::shared_ptr<FileStorage> storage;
  std::string storage_dir;
  ReplicaRuntime runtime;
  std::shared_ptr<Logger> logger;
  std::chrono::milliseconds refusal_log_interval{};
  std::uint64_t incarnation = 0;
  // The node has no seeds, DNS seeds or membership strategies: no peer to wait for.
  bool founding = false;
};

// A built replica as the node holds it: type-erased, with how to reach it.
struct HostedReplica {
  std::shared_ptr<void> replica;
  std::function<void(PeerId, SyncMessage)> deliver;
  std::function<void(std::vector<PeerId>)> set_neighbours;
  std::function<void(std::size_t)> set_membership;
  std::function<void(std::vector<ReplicaId>)> set_removed;
};

}  // namespace detail

class Node {
 public:
  // Binds the listener and starts the I/O threads; throws std::invalid_argument for bad
  // options and std::system_error when the listen address cannot be bound.
  explicit Node(NodeOptions options);

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();

  // Hosts a replica named `name` (unique on this node, 1-255 bytes) with a fresh replica
  // id, or with the id and state its storage recovered when the node has a data_dir
  // (StorageError when that state does not decode as T). Its neighbours are its namesakes
  // of the same type on the linked nodes that options.neighbours chooses (default: every
  // one).
  template <DeltaCrdt T>
  Replica<T>& add_replica(const std::string& name, ReplicaOptions<T> options = {}) {
    detail::HostedSlot slot = reserve_replica(name, type_signature<T>(), options.neighbours);
    try {
      T state{};
      std::uint64_t seq = 0;
      if (slot.storage) {
        // Recovered before the replica is announced: it starts with its durable state.
        auto recovered = recover_state<T>(slot.storage->recovered());
        if (!recovered) {
          throw StorageError(slot.storage_dir +
                             ": stored state does not decode as this replica's type: " +
                             recovered.error().message());
        }
        state = std::move(recovered->first);
        seq = recovered->second;
        slot.storage->release_recovered();
        options.storage = slot.storage;
      }
      // A replica holding nothing on a node that looks for no peers is alone from the start
      // (ReadinessOptions): nobody is coming to catch it up.
      if (slot.founding) options.readiness.alone_after = std::chrono::milliseconds(0);
      if (!options.logger) {
        options.logger = slot.logger;
        options.log_name = name;
        options.refusal_log_interval = slot.refusal_log_interval;
      }
      auto replica = std::make_shared<Replica<T>>(std::move(slot.runtime), slot.id, *slot.port,
                                                  std::move(options), std::move(state), seq,
                                                  slot.incarnation);
      Replica<T>& ref = *replica;
      detail::HostedReplica hosted;
      hosted.deliver = [r = replica.get()](PeerId from, SyncMessage m) {
        r->deliver(from, std::move(m));
      };
      hosted.set_neighbours = [r = replica.get()](std::vector<PeerId> n) {
        r->set_neighbours(std::move(n));
      };
      hosted.set_membership = [r = replica.get()](std::size_t n) { r->set_membership(n); };
      hosted.set_removed = [r = replica.get()](std::vector<ReplicaId> ids) {
        r->set_removed(std::move(ids));
      };
      hosted.replica = std::move(replica);
      host_replica(name, std::move(hosted));
      return ref;
    } catch (...) {
      abandon_replica(name);
      throw;
    }
  }

  const std::string& name() const;
  // host:port other nodes dial (the advertised address).
  const std::string& address() const;
  std::uint16_t port() const;
  std::uint64_t incarnation() const;

  // Names of the nodes with an established link, sorted.
  std::vector<std::string> live_members() const;
  // Every node this one knows of, linked or not.
  std::vector<std::string> known_members() const;

  // Every member this node knows of (itself excluded) with its status - up, down, or
  // removed from the cluster (the removal records it holds) - sorted by name. A name
  // removed and then rejoined by a wiped node shows as that new member.
  std::vector<MemberInfo> members() const;

  // Removes member `name` from the cluster for good (docs/node.md, "Member lifecycle"): its
  // link is closed, it no longer counts in majorities, and the removal spreads by gossip to
  // every member, which refuse it from then on. A node that comes back with the removed
  // member's data (its replica ids) is refused with a clear error and learns it was
  // removed; wiped, it joins as a new member. Returns false when that member was already
  // removed (idempotent); std::invalid_argument for this node's own name, or a name no
  // member or removal record here has. Persisted in data_dir when there is one.
  bool remove_member(const std::string& name);

  // Whether this node learned that it was removed from the cluster (an operator removed it,
  // or it came back with the data of a removed member). It then closes its links, dials
  // nobody and refuses everyone; its replicas keep serving locally. Logged as
  // `node_removed` at error level. Wipe its data directory and restart it to rejoin.
  bool removed() const;

  NodeMetrics metrics() const;

  // Changes which linked nodes the hosted replica `replica` pushes to (see
  // ReplicaOptions::neighbours); takes effect at once, and nodes it now names are brought up
  // to date. std::invalid_argument when no replica of that name is hosted here.
  void set_neighbours(const std::string& replica, NeighbourPolicy policy);
  NeighbourPolicy neighbours(const std::string& replica) const;
  // The nodes whose namesakes the hosted replica pushes to now (sorted): what its policy
  // chose among the linked nodes. std::invalid_argument as above.
  std::vector<std::string> pushing_to(const std::string& replica) const;

  // Called (on an I/O thread, in order per peer) when a node's link comes up or goes down,
  // or a member is removed (MemberEvent::removed).
  void on_member_event(std::function<void(const MemberEvent&)> callback);

  // Says goodbye on every link, stops accepting and dialing, destroys the replicas and joins
  // the threads. Idempotent; the destructor calls it.
  void stop();

 private:
  // Takes the name (std::invalid_argument if taken or malformed) and opens its storage.
  detail::HostedSlot reserve_replica(const std::string& name, std::uint64_t type,
                                     const NeighbourPolicy& neighbours);
  // Announces the built replica and gives it neighbours (std::logic_error after stop()).
  void host_replica(const std::string& name, detail::HostedReplica replica);
  // Frees a name whose replica could not be built.
  void abandon_replica(const std::string& name);

  std::unique_ptr<NodeImpl> impl_;
};

}  // namespace deltacrdt
