// SyncTransport: how a Replica hands protocol messages to its neighbours. The TCP node
// implements it over sockets; LocalTransport connects replicas inside one process (tests,
// benchmarks, embedded clusters). send() is thread-safe and never blocks on the receiver.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
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
    std::lock_guard lock(mutex_);
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

  void detach(PeerId id) {
    std::lock_guard lock(mutex_);
    receivers_.erase(id);
  }

  void send(PeerId from, PeerId to, SyncMessage msg) override {
    Receiver r;
    {
      std::lock_guard lock(mutex_);
      auto it = receivers_.find(to);
      if (it == receivers_.end()) return;
      r = it->second;
    }
    bytes_ += wire_size(msg);
    r(from, std::move(msg));  // receivers post onto their own strand
  }

  std::uint64_t bytes_sent() const { return bytes_; }

 private:
  std::mutex mutex_;
  std::map<PeerId, Receiver> receivers_;
  std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace deltacrdt
