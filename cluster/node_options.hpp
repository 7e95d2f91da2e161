// Options, metrics and events of a Node (cluster/node.hpp), and host:port parsing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/host_port.hpp"
#include "cluster/log.hpp"
#include "cluster/storage.hpp"
#include "transport/link_options.hpp"
#include "transport/tls_options.hpp"

namespace deltacrdt {

class MembershipStrategy;  // cluster/membership.hpp

struct NodeOptions {
  std::string name;                    // unique in the cluster; required
  std::string listen = "127.0.0.1:0";  // IP:port of the cluster port (port 0: any free port)
  // host:port that other nodes dial; empty: the bound listen address. Set it when the node
  // is reached through NAT, a container network or a proxy.
  std::string advertise;
  std::string cluster = "deltacrdt";  // nodes of different clusters refuse each other
  std::string secret;                 // shared cluster secret; required (never sent)
  std::vector<std::string> seeds;     // host:port of members to dial at start
  // host:port names resolved every dns_interval; every address they resolve to is dialed
  // (one name for many nodes: a Kubernetes headless service, a DNS round-robin record).
  std::vector<std::string> dns_seeds;
  std::chrono::milliseconds dns_interval{5000};
  // Further ways to find members (cluster/membership.hpp), beside the two above, which the
  // node turns into a StaticSeeds and a DnsPoll strategy.
  std::vector<std::shared_ptr<MembershipStrategy>> membership;
  std::size_t threads = 2;      // I/O threads (links and hosted replicas)
  transport::LinkOptions link;  // frame bound, queue bound, heartbeats, timeouts
  // TLS on every link (transport/tls.hpp): set all three files, or none for plain TCP.
  // Every node of a cluster must agree: a TLS node and a plain one refuse each other.
  transport::TlsOptions tls;
  // Redialing a lost or unreachable member: reconnect_min * 2^failures, capped at
  // reconnect_max, with jitter (x 0.5-1.0); forever.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds gossip_interval{1000};
  // Replicas whose neighbour policy is random(k) draw their random neighbours afresh this
  // often (a drawn node going down is replaced at once), so that nodes that joined since
  // get their share of pushes (cluster/overlay.hpp).
  std::chrono::milliseconds neighbour_redraw_interval{30000};
  // Accepted connections still in their handshake, in all and from one source address.
  // Beyond either, a new connection is closed at once (counted, logged once per interval):
  // unauthenticated peers cannot exhaust descriptors or memory, and one address cannot take
  // every slot. Peers that are refused redial with backoff. Raise the per-address bound when
  // many nodes reach this one through one NAT address.
  std::size_t max_handshakes = 256;
  std::size_t max_handshakes_per_address = 16;
  // Members this node keeps track of (linked or learned by gossip); gossip naming more is
  // ignored beyond it. A member learned by gossip that this node never linked to, and that
  // no gossip has named for forget_unreached_after, is forgotten (no longer listed or
  // dialed): invented or long-gone members do not accumulate.
  std::size_t max_members = 1024;
  std::chrono::milliseconds forget_unreached_after{60000};
  // Member lifecycle (docs/node.md): a member is up, down, or removed for good. Removal is
  // an operator's act (Node::remove_member), or this node's own once a member it linked to
  // has been down here, and vouched for by no gossip, for remove_after_down. 0 (the
  // default): only operators remove members. Automatic removal cannot tell a dead node from
  // one behind a partition: if both sides of a partition remove each other, they stay apart
  // until their nodes are wiped and rejoin. Set it only where nodes are replaced rather than
  // repaired, and far above any partition you expect to heal.
  std::chrono::milliseconds remove_after_down{0};
  // Removal records are kept (and a removed member's data refused) for this long after the
  // removal, and at most max_removed_members of them (the oldest go first). A node that
  // comes back with its old data after that joins again as if it had never been removed.
  std::chrono::milliseconds forget_removed_after{std::chrono::hours(24 * 30)};
  std::size_t max_removed_members = 4096;
  // Dials in progress at once; further due dials wait for the next maintenance round.
  std::size_t max_concurrent_dials = 32;
  // Refusals and failures anyone can cause (rejected links, refused connections, failed
  // accepts, malformed gossip) are logged at most once per this interval per kind, with a
  // count of those held back: a flood costs one line, not one per attempt. 0: every one.
  std::chrono::milliseconds refusal_log_interval{10000};
  // Durability: each hosted replica logs to data_dir/<replica name>/ (docs/storage-format.md)
  // and recovers from it on start, keeping its replica id. data_dir must exist. Empty: state
  // in memory only (a restarted node's replicas start empty under new ids).
  std::string data_dir;
  FsyncPolicy fsync = FsyncPolicy::batched;
  // Structured log lines (cluster/log.hpp); null: info and above to stderr.
  std::shared_ptr<Logger> logger;
};

struct NodeMetrics {
  std::size_t peers = 0;  // linked nodes (current)
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t frames_rejected = 0;    // malformed frames received (each closed a link)
  std::uint64_t frames_dropped = 0;     // outbound frames dropped on a full link queue
  std::uint64_t handshakes_failed = 0;  // refused or timed out
  std::uint64_t reconnects = 0;         // links re-established to a node seen before
  // Sync frames dropped: malformed, for no hosted replica, or from a replica id the peer on
  // that link did not announce.
  std::uint64_t sync_dropped = 0;
  std::uint64_t connections_refused = 0;  // accepted, then closed at once: handshake limits
  std::uint64_t accept_errors = 0;        // failed accepts (e.g. out of descriptors)
  std::uint64_t gossip_rejected = 0;      // malformed gossip frames or member records
  std::uint64_t members_forgotten = 0;    // learned members dropped, never reached
  std::size_t members = 0;                // members known now (linked or not)
  std::size_t members_removed = 0;        // removal records held (docs/node.md)
  // Links closed because the peer is a removed member (its process or its data).
  std::uint64_t removed_refused = 0;
  // Namesakes on linked nodes whose CRDT type differs from the hosted replica's, each
  // counted once (they never become neighbours; logged as replica_type_mismatch).
  std::uint64_t replica_type_mismatches = 0;
};

struct MemberEvent {
  std::string node;
  bool up = false;
  // The member was removed from the cluster (up is then false); also reported once about
  // this node itself when it learns that it was removed (Node::removed()).
  bool removed = false;
};

// A member as Node::members() reports it.
struct MemberInfo {
  enum class Status { up, down, removed };
  std::string name;
  std::string address;  // host:port it advertises (may be empty)
  Status status = Status::down;
  std::uint64_t removed_at_ms = 0;  // removed: when (wall clock, ms since the Unix epoch)
};

constexpr const char* to_string(MemberInfo::Status s) {
  switch (s) {
    case MemberInfo::Status::up: return "up";
    case MemberInfo::Status::down: return "down";
    case MemberInfo::Status::removed: return "removed";
  }
  return "unknown";
}

}  // namespace deltacrdt
