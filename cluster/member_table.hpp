// MemberTable: what a node knows of its cluster - the members (linked, or learned by
// gossip), the addresses it dials, and through which link each peer replica is reached -
// and how gossip and time change that. Sans-I/O: Node holds one under its mutex and turns
// its answers into dials, sends and log lines; the fuzzer applies gossip to one exactly as a
// node does. Everything gossip can add is bounded (Limits), and what gossip alone named and
// no link ever confirmed is forgotten once gossip stops naming it.
//
// LinkRef is the node's handle of a link: copyable, comparable with ==, and false when null
// (a member not linked now). Not thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/host_port.hpp"
#include "cluster/wire.hpp"

namespace deltacrdt {

template <class LinkRef>
class MemberTable {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    std::size_t max_members = 1024;  // NodeOptions::max_members
    std::chrono::milliseconds forget_unreached_after{60000};
  };

  struct Member {
    std::string address;
    std::uint64_t incarnation = 0;
    LinkRef link{};  // null while not linked
    std::vector<wire::HostedReplica> replicas;
    bool ever_linked = false;
    // Last time a link or any gossip vouched for this member (forget_unreached).
    Clock::time_point last_heard{};
    // The highest heartbeat seen from or about it, and when it last rose: while it keeps
    // rising the member is alive somewhere, linked to this node or not (alive()).
    std::uint64_t heartbeat = 0;
    Clock::time_point heartbeat_rose{};
    Clock::time_point linked_since{};  // when the current link came up
    bool wants_us = false;             // its last gossip asked for a link to this node
    // Since when the node has counted it down (unset while up): for remove_after_down.
    Clock::time_point down_since{};
  };

  // Dialing state of one address.
  struct Dial {
    std::string peer;  // the node found there (once a handshake succeeded)
    bool in_progress = false;
    bool is_self = false;
    bool from_gossip = true;  // only gossip named it (not a seed or a strategy)
    bool discovered = false;  // a seed or a membership strategy gave it
    // Until when the member found here counts as unreachable from this node although its
    // heartbeat is fresh: set when connecting or the handshake failed, cleared by a link.
    Clock::time_point unreachable_until{};
    unsigned failures = 0;
    Clock::time_point next{};
    Clock::time_point last_heard{};  // last named by gossip
  };

  enum class GossipStatus {
    applied,
    stale_link,  // from a link that is being replaced: ignored
    misnamed,    // the sender names itself other than its authenticated name, or gives a
                 // malformed address of its own: rejected
  };
  struct GossipResult {
    GossipStatus status = GossipStatus::applied;
    std::size_t rejected_records = 0;         // malformed addresses, or beyond the bounds
    std::vector<wire::MemberRecord> learned;  // members new to this node
  };

  MemberTable(std::string self_name, Limits limits)
      : self_(std::move(self_name)), limits_(limits) {}

  // This node's advertised address: gossip naming it is not about another member.
  void set_self_address(std::string address) { self_address_ = std::move(address); }

  const std::map<std::string, Member>& members() const { return members_; }
  Member& member(const std::string& name) { return members_[name]; }  // created if new
  std::map<std::string, Dial>& dials() { return dials_; }
  Dial& dial(const std::string& address) { return dials_[address]; }  // created if new
  Dial* find_dial(const std::string& address) {
    auto it = dials_.find(address);
    return it == dials_.end() ? nullptr : &it->second;
  }
  const Dial* find_dial(const std::string& address) const {
    auto it = dials_.find(address);
    return it == dials_.end() ? nullptr : &it->second;
  }

  bool linked_at(const std::string& address) const {
    return std::any_of(members_.begin(), members_.end(),
                       [&](const auto& m) { return m.second.link && m.second.address == address; });
  }
  std::size_t linked_count() const {
    return static_cast<std::size_t>(
        std::count_if(members_.begin(), members_.end(),
                      [](const auto& m) { return static_cast<bool>(m.second.link); }));
  }

  // The link that reaches replica `id`, if any.
  std::optional<LinkRef> route(ReplicaId id) const {
    auto it = routes_.find(id);
    if (it == routes_.end()) return std::nullopt;
    return it->second;
  }
  // Drops the routes to a member's replicas (its link is going).
  void forget_routes(const Member& m) {
    for (const auto& r : m.replicas) routes_.erase(r.id);
  }

  // Forgets a member altogether (it was removed from the cluster): its routes, its record
  // and its address, unless a seed or a strategy gave that address: a new node may come up
  // there.
  void erase(const std::string& name) {
    auto it = members_.find(name);
    if (it == members_.end()) return;
    forget_routes(it->second);
    auto dial = dials_.find(it->second.address);
    if (dial != dials_.end() && !dial->second.discovered && !dial->second.in_progress) {
      dials_.erase(dial);
    }
    members_.erase(it);
  }

  // Whether the node at the other end of `link` (authenticated as `peer`) announced
  // replica `id` under `name` with type signature `type`: only then may a sync frame on
  // that link claim to be from it.
  bool announced(const LinkRef& link, const std::string& peer, const std::string& name,
                 ReplicaId id, std::uint64_t type) const {
    auto m = members_.find(peer);
    if (m == members_.end() || !(m->second.link == link)) return false;
    return std::any_of(m->second.replicas.begin(), m->second.replicas.end(),
                       [&](const wire::HostedReplica& r) {
                         return r.id == id && r.name == name && r.type == type;
                       });
  }

  // Applies gossip that arrived on `link`, whose authenticated peer is `peer`: the sender's
  // own record and replicas, and the members it names. Records with a malformed address are
  // skipped, so are new members beyond max_members and dial addresses beyond twice that.
  GossipResult apply_gossip(const LinkRef& link, const std::string& peer, const wire::Gossip& g,
                            Clock::time_point now) {
    GossipResult out;
    if (g.self.name != peer || !valid_address(g.self.address)) {
      out.status = GossipStatus::misnamed;
      return out;
    }
    Member& m = members_[peer];
    if (!(m.link == link)) {
      out.status = GossipStatus::stale_link;
      return out;
    }
    forget_routes(m);
    m.address = g.self.address;
    m.incarnation = g.self.incarnation;
    m.replicas = g.replicas;
    m.last_heard = now;
    heard(m, g.self.heartbeat, now);
    m.wants_us = false;
    for (const auto& r : m.replicas) routes_[r.id] = link;
    if (!m.address.empty()) dials_[m.address].from_gossip = false;  // a member linked once
    for (const wire::MemberRecord& other : g.members) {
      if (other.name == self_) m.wants_us = other.wanted;
      if (other.name == self_ || other.address == self_address_) continue;
      if (!valid_address(other.address)) {
        ++out.rejected_records;
        continue;
      }
      auto known = members_.find(other.name);
      if (known == members_.end()) {
        if (members_.size() >= limits_.max_members) {
          ++out.rejected_records;  // beyond the bound: a real member is named again later
          continue;
        }
        known = members_.emplace(other.name, Member{}).first;
        known->second.address = other.address;
        known->second.incarnation = other.incarnation;
        out.learned.push_back(other);
      }
      Member& mem = known->second;
      mem.last_heard = now;
      heard(mem, other.heartbeat, now);
      // The newest word on a member not linked here names its current process.
      if (!mem.link && other.heartbeat == mem.heartbeat) mem.incarnation = other.incarnation;
      if (mem.link || other.address.empty()) continue;                // linked: nothing to dial
      if (mem.address != other.address && mem.ever_linked) continue;  // its own word wins
      mem.address = other.address;
      if (!dials_.contains(other.address) && dials_.size() >= 2 * limits_.max_members) {
        ++out.rejected_records;
        continue;
      }
      Dial& dial = dials_[other.address];
      if (dial.from_gossip) dial.last_heard = now;
    }
    return out;
  }

  // Forgets members that only gossip ever named, that this node never linked to, and that
  // no gossip has named for forget_unreached_after; and dial addresses learned the same
  // way that never answered. Returns how many members went.
  std::size_t forget_unreached(Clock::time_point now) {
    const auto stale = [&](Clock::time_point heard) {
      return now - heard > limits_.forget_unreached_after;
    };
    const std::size_t forgotten = std::erase_if(members_, [&](const auto& kv) {
      const Member& m = kv.second;
      return !m.link && !m.ever_linked && stale(m.last_heard);
    });
    std::erase_if(dials_, [&](const auto& kv) {
      const Dial& d = kv.second;
      return d.from_gossip && d.peer.empty() && !d.in_progress && stale(d.last_heard);
    });
    return forgotten;
  }

  // Whether `m` is alive by its heartbeat: it rose within `timeout` of `now`.
  static bool heartbeat_fresh(const Member& m, Clock::time_point now,
                              std::chrono::milliseconds timeout) {
    return m.heartbeat_rose != Clock::time_point{} && now - m.heartbeat_rose <= timeout;
  }

  void clear() {
    members_.clear();
    dials_.clear();
    routes_.clear();
  }

  // host:port as parse_host_port accepts it, or empty (a member that advertises none).
  static bool valid_address(const std::string& address) {
    if (address.empty()) return true;
    try {
      parse_host_port(address, "gossiped");
      return true;
    } catch (const std::invalid_argument&) {
      return false;
    }
  }

 private:
  static void heard(Member& m, std::uint64_t heartbeat, Clock::time_point now) {
    if (heartbeat <= m.heartbeat) return;
    m.heartbeat = heartbeat;
    m.heartbeat_rose = now;
  }

  std::string self_;
  std::string self_address_;
  Limits limits_;
  std::map<std::string, Member> members_;
  std::map<std::string, Dial> dials_;
  std::map<ReplicaId, LinkRef> routes_;
};

}  // namespace deltacrdt
