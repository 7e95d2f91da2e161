// NodeImpl: the Node's machinery (cluster/node.hpp has the public class and docs/node.md
// the behaviour): I/O threads, listener, links, membership tables, hosted replicas. An
// internal header of the compiled library, with Asio and OpenSSL: applications include
// cluster/node.hpp, which holds a NodeImpl by pointer.
//
// Thread-safe: the public API may be called from any thread. Internally one mutex guards
// the membership tables; handlers never block while holding it (sends and replica calls
// only post work).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "cluster/file_storage.hpp"
#include "cluster/io_threads.hpp"
#include "cluster/member_table.hpp"
#include "cluster/membership.hpp"
#include "cluster/node.hpp"
#include "cluster/node_options.hpp"
#include "cluster/removed_members.hpp"
#include "cluster/replica.hpp"
#include "cluster/wire.hpp"
#include "crdt/type_signature.hpp"
#include "transport/link.hpp"

namespace deltacrdt {

class NodeImpl {
 public:
  explicit NodeImpl(NodeOptions options);

  NodeImpl(const NodeImpl&) = delete;
  NodeImpl& operator=(const NodeImpl&) = delete;
  ~NodeImpl() { stop(); }

  // Node's public API and the steps of its add_replica<T> (node.hpp describes each); Node
  // forwards here.
  detail::HostedSlot reserve_replica(const std::string& name, std::uint64_t type,
                                     const NeighbourPolicy& neighbours);
  void set_neighbours(const std::string& replica, NeighbourPolicy policy);
  NeighbourPolicy neighbours(const std::string& replica) const;
  std::vector<std::string> pushing_to(const std::string& replica) const;
  void host_replica(const std::string& name, detail::HostedReplica replica);
  void abandon_replica(const std::string& name);
  const std::string& name() const { return options_.name; }
  const std::string& address() const { return advertise_; }
  std::uint16_t port() const { return port_; }
  std::uint64_t incarnation() const { return incarnation_; }
  std::vector<std::string> live_members() const;
  std::vector<std::string> known_members() const;
  NodeMetrics metrics() const;
  std::vector<MemberInfo> members() const;
  bool remove_member(const std::string& name);
  bool removed() const;
  void on_member_event(std::function<void(const MemberEvent&)> callback);
  void stop();

 private:
  // What a hosted replica sends goes through its port to the link of the node hosting the
  // addressee.
  struct Port final : SyncTransport {
    Port(NodeImpl& n, std::string r) : node(n), replica(std::move(r)) {}
    void send(PeerId from, PeerId to, SyncMessage msg) override {
      node.route(replica, from, to, msg);
    }
    NodeImpl& node;
    std::string replica;
  };

  // A replica under its name. Until `ready` (while add_replica builds it) the name is
  // taken but the replica is neither announced, nor given neighbours, nor sent messages.
  struct Hosted {
    ReplicaId id = 0;
    std::uint64_t type = 0;  // type_signature<T>()
    std::unique_ptr<Port> port;
    bool ready = false;
    detail::HostedReplica replica;
    NeighbourPolicy policy;  // which linked nodes' namesakes it pushes to
    // The nodes whose namesakes it pushes to now.
    std::vector<std::string> pushing_to;
    // random(k): the nodes drawn (linked or not yet); it pushes to those linked.
    std::vector<std::string> drawn;
    // The replica ids last given to the replica as its neighbours: set again only when
    // they change (update_neighbours runs at every gossip frame).
    std::vector<PeerId> neighbour_ids;
    // The replica's membership last given to it (Replica::set_membership).
    std::size_t membership = 0;
  };

  using Table = MemberTable<transport::Link::Ptr>;
  using Member = Table::Member;
  using Dial = Table::Dial;

  // A connection in its handshake; `source` is the remote IP of an accepted one (counted
  // against max_handshakes_per_address), empty for one this node dialed.
  struct Pending {
    transport::Link::Ptr link;
    std::string source;
  };

  // A membership strategy and when it runs next.
  struct Strategy {
    std::shared_ptr<MembershipStrategy> strategy;
    std::chrono::steady_clock::time_point next{};  // when it runs again
    bool running = false;
  };

  // The file in data_dir that keeps the removal records (docs/storage-format.md); no
  // replica may take its name.
  static constexpr const char* kRemovedFile = ".members";

  static NodeOptions validated(NodeOptions o);
  static std::uint64_t wall_clock_ms();

  // Where hosted replicas run: their queues and timers on the I/O threads; their change
  // notifications on the node's notification thread unless told otherwise, never on an I/O
  // thread, where a slow subscriber would hold up links and replicas.
  ReplicaRuntime replica_runtime();

  ReplicaId random_id();

  transport::HandshakeConfig handshake_config() const;

  transport::Link::Handlers handlers(std::optional<std::string> dialed);

  // Accepts connections until the acceptor closes. A failed accept (out of descriptors,
  // say) backs off, 10 ms doubling to 1 s, instead of spinning; a connection beyond the
  // handshake limits is closed at once. Both are counted and logged at most once per
  // interval. (An exception escaping it is logged by its completion: see report_failure.)
  asio::awaitable<void> accept_loop();

  // Completion of a detached coroutine: an exception that escaped it (a bug) is logged as
  // `event`, never lost. The node outlives its coroutines (stop() joins the threads).
  std::function<void(std::exception_ptr)> report_failure(std::string_view event);

  // Removes a link from those in their handshake (under mu_).
  void leave_pending(const transport::Link* link);

  // Logs `event` at most once per interval (see LogThrottle), adding how many lines were
  // held back since the last. Safe under mu_ (neither the throttle nor the sink takes it).
  void log_throttled(LogLevel level, std::string_view event,
                     std::initializer_list<Logger::Field> fields);

  // Every 100 ms: run the membership strategies that are due, dial addresses that are due;
  // every gossip_interval: gossip.
  asio::awaitable<void> maintain();

  // A dial that threw (a bug, or an address that slipped past validation) is logged and
  // retried with backoff like any failed dial, never left "in progress" for good.
  void dial_crashed(const std::string& address, std::exception_ptr e);

  // Forgets what gossip alone named and no link confirmed (MemberTable::forget_unreached).
  // (Under mu_.)
  void forget_unreached(std::chrono::steady_clock::time_point now);

  // Runs strategy i once and adds the addresses it found to those dialed (kept forever: a
  // node that moves away is simply unreachable there and retried with backoff).
  asio::awaitable<void> discover(std::size_t i);

  // Runs on a strand of its own (see maintain), which the socket, the resolver and the
  // connect deadline share, so the deadline's handler and this coroutine never overlap.
  asio::awaitable<void> dial(std::string address);

  // Exponential backoff with jitter: min * 2^failures, capped, times 0.5-1.0.
  void dial_failed(const std::string& address);

  void link_up(const transport::Link::Ptr& link, const std::optional<std::string>& dialed);

  // Whether `l` (a link to `peer`) was dialed by the node with the smaller name.
  bool preferred(const transport::Link& l, const std::string& peer) const;

  void link_down(const transport::Link::Ptr& link, transport::LinkError code,
                 const std::string& reason, bool was_up,
                 const std::optional<std::string>& dialed);

  void link_frame(const transport::Link::Ptr& link, transport::Frame f);

  // Neighbours of each hosted replica: its namesakes of the same type on the linked nodes
  // its policy chooses (random(k): draws kept while they stay alive; see overlay.hpp); and,
  // unless links form a full mesh, the members this node wants links to. Under mu_.
  void update_neighbours();

  // Whether a member counts as up here: linked; or, when links are kept only where needed,
  // its heartbeat rose within member_timeout() and this node did not just fail to reach
  // it. Under mu_.
  // Whether the node has seeds, DNS seeds or membership strategies (else it founds its
  // cluster and waits to be found).
  bool looks_for_peers() const;
  bool alive(const Member& m, std::chrono::steady_clock::time_point now) const;
  std::chrono::milliseconds member_timeout() const { return 10 * options_.gossip_interval; }

  // Whether maintain() dials `address` now (full mesh: every address; otherwise the
  // addresses of wanted members, the probe's, and seeds while this node has no link at
  // all). `wanted_addresses`: wanted_member_addresses(), made once per round. Under mu_.
  bool dial_wanted(const std::string& address, const Dial& d,
                   const std::set<std::string_view>& wanted_addresses) const;
  // The addresses of the members in wanted_ (empty in a full mesh). Under mu_.
  std::set<std::string_view> wanted_member_addresses() const;

  // Links as needed: picks one address to try although nobody wants it - a member seen
  // down, or a seed, not linked - so that the two sides of a healed partition, which
  // count each other down and so want no link across, find each other again. One probe
  // per member_timeout(). Under mu_.
  void choose_probe(std::chrono::steady_clock::time_point now);

  // Closes links neither end wants (links as needed only), once the peer's gossip on the
  // link has said what it wants. Under mu_.
  void close_unneeded_links(std::chrono::steady_clock::time_point now);

  // The hosted replica `name` (std::invalid_argument when none is, or not yet). Under mu_.
  const Hosted& hosted(const std::string& name) const;

  // This node's gossip; `removed`: the removal records to send with it (all of them in the
  // first gossip on a link, then those just learned).
  wire::Gossip own_gossip(std::vector<RemovedMember> removed = {}) const;

  void broadcast_gossip(std::vector<RemovedMember> removed = {});

  // ---- Member lifecycle (node_members.cpp; docs/node.md, "Member lifecycle") ----

  // Reads data_dir/.members, the removal records a previous run kept (StorageError when it
  // is damaged). In the constructor.
  void load_removed();
  // Writes the removal records to data_dir/.members (when there is a data_dir); a failure
  // is logged, the records stay in memory and are gossiped back by the other members.
  // Under mu_ (rare: a removal, or records expiring).
  void persist_removed();
  // Removes member `name` (under mu_): the record from what this node knows of it, then as
  // learned_removals does. `why`: "operator", or how long it was down, for the log.
  void remove_locked(const std::string& name, const std::string& why,
                     std::vector<MemberEvent>& events);
  // Merges removal records that gossip brought; acts on those new here: adds the replica
  // ids this node knows of the member, closes its link and forgets it (or finds that this
  // node is the one removed), passes them on to every link and persists them. Under mu_.
  void learn_removals(std::vector<RemovedMember> records, std::vector<MemberEvent>& events);
  // Acts on one record this node has just added: forgets the members it names, or finds
  // that this node is removed. Under mu_.
  void apply_removal(const RemovedMember& record, std::vector<MemberEvent>& events);
  // Whether the sender of gossip `g` on `link` is a removed member: then its link is
  // closed, and it is forgotten. Under mu_.
  bool refuse_removed(const transport::Link::Ptr& link, const wire::Gossip& g,
                      std::vector<MemberEvent>& events);
  // Sends the peer on `link` the record that removes it (so that it learns why), then
  // closes the link. Under mu_.
  void tell_removed(const transport::Link::Ptr& link, const RemovedMember& record);
  // This node was removed: says so in the log, closes every link and stops dialing. Under mu_.
  void become_removed(const RemovedMember& record, std::vector<MemberEvent>& events);
  // Whether `record` names this node: its process, or a replica id it hosts. Under mu_.
  bool names_self(const RemovedMember& record) const;
  // Removes members down here for remove_after_down that no gossip vouches for, and drops
  // removal records past forget_removed_after. Under mu_, at every gossip round.
  void lifecycle_round(std::chrono::steady_clock::time_point now,
                       std::vector<MemberEvent>& events);
  // Tells every hosted replica (or only `one`) the replica ids of all removal records, so
  // that those whose type can retire them prune them. Under mu_.
  void tell_replicas_removed(Hosted* one = nullptr);
  // Calls the member-event listeners (not under mu_).
  void notify(const std::vector<MemberEvent>& events);

  void route(const std::string& replica, PeerId from, PeerId to, const SyncMessage& msg);

  const NodeOptions options_;
  std::shared_ptr<Logger> log_;
  const std::uint64_t incarnation_;
  std::mt19937_64 rng_;
  std::shared_ptr<asio::ssl::context> tls_;  // null: plain TCP links
  std::unique_ptr<IoThreads> io_;
  // Runs replicas' change notifications (ReplicaOptions::on_diffs); joined after io_.
  std::unique_ptr<IoThreads> notify_ = std::make_unique<IoThreads>(1);
  // Reset in stop() before io_: a strand must not outlive its io_context.
  std::optional<asio::strand<asio::io_context::executor_type>> control_{
      asio::make_strand(io_->context())};
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> maintenance_;
  std::uint16_t port_ = 0;
  std::string advertise_;
  transport::LinkCounters counters_;

  mutable std::mutex mu_;
  bool stopped_ = false;
  std::map<std::string, std::unique_ptr<Hosted>> hosted_;
  Table table_{options_.name, {options_.max_members, options_.forget_unreached_after}};
  std::vector<Strategy> strategies_;
  std::map<const transport::Link*, Pending> pending_;    // handshaking
  std::size_t accepted_handshaking_ = 0;                 // accepted ones among them
  std::map<std::string, std::size_t> handshaking_from_;  // ... by source address
  std::optional<asio::steady_timer> accept_pause_;       // accept back-off (control strand)
  LogThrottle throttle_{options_.refusal_log_interval};
  std::uint64_t connections_refused_ = 0;
  std::uint64_t accept_errors_ = 0;
  std::uint64_t gossip_rejected_ = 0;
  std::uint64_t members_forgotten_ = 0;
  std::vector<std::function<void(const MemberEvent&)>> listeners_;
  // Deadlines of dials in progress, which stop() ends early; signalled when a link closes
  // after stop() (which waits for its goodbyes on it). Both under mu_.
  std::set<std::shared_ptr<asio::steady_timer>> dial_deadlines_;
  // (peer, replica name, peer's type) of namesakes of another type, reported once each.
  std::set<std::tuple<std::string, std::string, std::uint64_t>> type_mismatches_;
  std::condition_variable links_closed_;
  std::uint64_t reconnects_ = 0;
  // Raised at every gossip round, from the wall clock's milliseconds, so that it never goes
  // back across restarts either (wire::MemberRecord::heartbeat).
  std::uint64_t heartbeat_ = wall_clock_ms();
  // Full mesh: links to every member, as long as a hosted replica's policy is `all` or no
  // replica is hosted. Otherwise links only to wanted_ (and to whoever wants one to us).
  bool mesh_ = true;
  std::set<std::string> wanted_;
  std::string probe_address_;  // choose_probe()'s pick for this round, or empty
  std::chrono::steady_clock::time_point next_probe_{};
  std::uint64_t sync_dropped_ = 0;
  RemovedMembers removed_{{options_.max_removed_members, options_.forget_removed_after}};
  bool self_removed_ = false;  // this node learned that it was removed
  std::uint64_t removed_refused_ = 0;
};

}  // namespace deltacrdt
