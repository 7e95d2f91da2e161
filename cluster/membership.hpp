// Membership strategies: how a Node finds the addresses to dial, pluggable like libcluster's
// strategies (docs/node.md). A strategy only discovers addresses; the node dials them,
// redials lost or unreachable ones forever with backoff, and learns the rest of the cluster
// by gossip over its links (always on: it is part of the link protocol).
//
// Built in: StaticSeeds (a fixed list, NodeOptions::seeds) and DnsPoll (names resolved
// periodically, NodeOptions::dns_seeds). Write your own for any other source (a service
// registry, a cloud API, a file): implement discover() and interval() and add it to
// NodeOptions::membership. Threading: the node calls discover() on one of its I/O threads,
// never concurrently with itself; a strategy must outlive the node (shared ownership).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "cluster/node_options.hpp"
#include "transport/asio.hpp"

namespace deltacrdt {

class MembershipStrategy {
 public:
  virtual ~MembershipStrategy() = default;
  // Short name for logs and errors, e.g. "dns".
  virtual std::string name() const = 0;
  // How often discover() runs; the first run is at start.
  virtual std::chrono::milliseconds interval() const = 0;
  // The host:port addresses to dial now. Returning an address again is harmless; an address
  // no longer returned is still redialed (a node that moved away is just unreachable there).
  // Throwing (e.g. a failed lookup) is logged as `discovery_failed`; the next run retries.
  virtual asio::awaitable<std::vector<std::string>> discover(asio::any_io_executor executor) = 0;
};

// A fixed list of addresses, reported once.
class StaticSeeds final : public MembershipStrategy {
 public:
  explicit StaticSeeds(std::vector<std::string> addresses) : addresses_(std::move(addresses)) {
    for (const auto& a : addresses_) parse_host_port(a, "seed");
  }
  std::string name() const override { return "static"; }
  std::chrono::milliseconds interval() const override { return std::chrono::hours(24 * 365); }
  asio::awaitable<std::vector<std::string>> discover(asio::any_io_executor) override {
    co_return addresses_;
  }

 private:
  std::vector<std::string> addresses_;
};

// host:port names resolved every `interval`; every address a name resolves to is reported
// (one name for many nodes: a Kubernetes headless service, a DNS round-robin record).
class DnsPoll final : public MembershipStrategy {
 public:
  DnsPoll(std::vector<std::string> names, std::chrono::milliseconds interval)
      : names_(std::move(names)), interval_(interval) {
    for (const auto& n : names_) parse_host_port(n, "dns seed");
  }
  std::string name() const override { return "dns"; }
  std::chrono::milliseconds interval() const override { return interval_; }
  asio::awaitable<std::vector<std::string>> discover(asio::any_io_executor executor) override {
    std::vector<std::string> out;
    std::string failures;
    asio::ip::tcp::resolver resolver(executor);
    for (const auto& name : names_) {
      const HostPort hp = parse_host_port(name, "dns seed");
      const std::string port = std::to_string(hp.port);
      // Started in its own statement: g++ 12 may destroy temporaries of a co_await
      // full-expression twice.
      auto resolving = resolver.async_resolve(hp.host, port, asio::as_tuple(asio::use_awaitable));
      auto [ec, results] = co_await std::move(resolving);
      if (ec) {
        failures += (failures.empty() ? "" : "; ") + name + ": " + ec.message();
        continue;
      }
      for (const auto& entry : results) {
        const auto& ep = entry.endpoint();
        const std::string ip = ep.address().to_string();
        out.push_back((ep.address().is_v6() ? "[" + ip + "]" : ip) + ":" +
                      std::to_string(ep.port()));
      }
    }
    // Names that resolved are dialed even when others failed; the failures are reported.
    if (!failures.empty() && out.empty()) throw std::runtime_error(failures);
    co_return out;
  }

 private:
  std::vector<std::string> names_;
  std::chrono::milliseconds interval_;
};

}  // namespace deltacrdt
