// RawPeer: an authenticated cluster peer under a test's control, for sending what no honest
// node would (hostile deltas, invented gossip) to a real node over TCP. It completes the
// handshake as node `name` with the cluster's secret, then sends only what the test asks
// for; it records the gossip it receives, so a test can learn the replica ids to address.
// Owns an io_context and one thread; every wait is bounded. Not thread-safe beyond that.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cluster/node_options.hpp"
#include "cluster/wire.hpp"
#include "transport/link.hpp"

namespace deltacrdt::testing {

class RawPeer {
 public:
  RawPeer(const std::string& address, std::string cluster, std::string name, std::string secret,
          std::string source_ip = "127.0.0.1")
      : work_(asio::make_work_guard(io_)) {
    const HostPort hp = parse_host_port(address, "peer");
    asio::ip::tcp::socket socket(asio::make_strand(io_));
    socket.open(asio::ip::tcp::v4());
    socket.bind({asio::ip::make_address(source_ip), 0});
    socket.connect({asio::ip::make_address(hp.host), hp.port});
    transport::Link::Handlers h;
    h.on_up = [this](const transport::Link::Ptr&) {
      std::lock_guard lock(mu_);
      up_ = true;
      cv_.notify_all();
    };
    h.on_frame = [this](const transport::Link::Ptr&, transport::Frame f) {
      if (f.type != transport::FrameType::gossip) return;
      if (auto g = wire::decode_gossip(f.payload)) {
        std::lock_guard lock(mu_);
        gossip_ = *g;
        cv_.notify_all();
      }
    };
    h.on_down = [this](const transport::Link::Ptr&, transport::LinkError, const std::string& reason,
                       bool) {
      std::lock_guard lock(mu_);
      down_ = reason;
      cv_.notify_all();
    };
    link_ = transport::Link::create(std::move(socket), transport::Handshake::Role::client,
                                    {std::move(cluster), std::move(name), 1, std::move(secret)},
                                    transport::LinkOptions{}, std::move(h), counters_);
    link_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;
  ~RawPeer() {
    link_->close("test over");
    work_.reset();
    // The link's coroutines end once it is closed; bounded by its own timers otherwise.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!link_->closed() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    io_.stop();
    thread_.join();
  }

  // Waits for the handshake and the node's first gossip; false on timeout or refusal.
  bool wait_up(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return (up_ && gossip_) || down_; }) && up_ && gossip_;
  }
  // The id of the replica `name` the node announced.
  ReplicaId replica_id(const std::string& name) {
    std::lock_guard lock(mu_);
    if (gossip_) {
      for (const auto& r : gossip_->replicas)
        if (r.name == name) return r.id;
    }
    throw std::runtime_error("the node announced no replica " + name);
  }
  std::optional<std::string> down_reason() {
    std::lock_guard lock(mu_);
    return down_;
  }

  void send_gossip(const wire::Gossip& g) {
    link_->send(transport::FrameType::gossip, wire::encode_gossip(g));
  }
  void send_sync(const std::string& replica, PeerId from, PeerId to, const SyncMessage& m) {
    link_->send(transport::FrameType::sync, wire::encode_sync(replica, from, to, m));
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  transport::LinkCounters counters_;
  transport::Link::Ptr link_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool up_ = false;
  std::optional<wire::Gossip> gossip_;
  std::optional<std::string> down_;
};

}  // namespace deltacrdt::testing
