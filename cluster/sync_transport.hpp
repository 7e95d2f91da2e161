// SyncTransport: how a Replica hands protocol messages to its neighbours. The TCP node
// implements it over sockets; LocalTransport connects replicas inside one process (tests,
// benchmarks, embedded clusters). send() is thread-safe and never blocks on the receiver.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "cluster/protocol.hpp"

namespace deltacrdt {

class SyncTransport {
 public:
  virtual ~SyncTransport() = default;
  virtual void send(PeerId from, PeerId to, SyncMessage msg) = 0;
};

// Delivers to receivers registered in this process. A message to an unregistered peer is
// dropped, as the network would; the protocol retransmits once the peer is back.
class LocalTransport final : public SyncTransport {
 public:
  using Receiver = std::function<void(PeerId from, SyncMessage msg)>;

  void attach(PeerId id, Receiver receiver) {
    std::unique_lock lock(mutex_);
    receivers_[id] = std::move(receiver);
  }
  // Attaches anything with id() and deliver(from, msg), e.g. a Replica<T>, which must stay
  // alive until detached.
  template <class R>
  requires requires(R& r, SyncMessage m) { r.deliver(PeerId{}, std::move(m)); }
  void attach(R& replica) {
    attach(replica.id(),
           [&replica](PeerId from, SyncMessage m) { replica.deliver(from, std::move(m)); });
  }

  // Once it returns, no message is being or will be handed to that receiver: a replica may
  // be destroyed right after its detach.
  void detach(PeerId id) {
    std::unique_lock lock(mutex_);
    receivers_.erase(id);
  }

  // Drops every message for which `cut(from, to)` is true from now on, as a partition
  // would (tests); an empty function delivers everything again.
  void set_cut(std::function<bool(PeerId from, PeerId to)> cut) {
    std::unique_lock lock(mutex_);
    cut_ = std::move(cut);
  }

  void send(PeerId from, PeerId to, SyncMessage msg) override {
    // The receiver runs under the shared lock, so detach waits for deliveries in progress.
    // Receivers only queue the message (a Replica's deliver never runs it, nor sends).
    std::shared_lock lock(mutex_);
    auto it = receivers_.find(to);
    if (it == receivers_.end() || (cut_ && cut_(from, to))) return;
    bytes_ += wire_size(msg);
    it->second(from, std::move(msg));
  }

  std::uint64_t bytes_sent() const { return bytes_; }

 private:
  std::shared_mutex mutex_;
  std::map<PeerId, Receiver> receivers_;
  std::function<bool(PeerId, PeerId)> cut_;
  std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace deltacrdt
