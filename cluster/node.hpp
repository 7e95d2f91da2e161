// Node: one process's place in a cluster (docs/node.md). It owns the I/O threads, the
// listener, one authenticated link per peer node (transport/link.hpp), and the replicas it
// hosts, multiplexed over the links by name. Membership: the seed list is dialed at start;
// every link exchanges gossip (the sender, the replicas it hosts, the members it is linked
// to), so a node that knows one member learns and dials the rest. Failed or lost links are
// redialed forever with exponential backoff and jitter. The neighbours of a hosted replica
// are its namesakes on every node currently linked ("all live members").
//
// Thread-safe: the public API may be called from any thread. Internally one mutex guards
// the membership tables; handlers never block while holding it (sends and replica calls
// only post work).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cluster/file_storage.hpp"
#include "cluster/io_threads.hpp"
#include "cluster/membership.hpp"
#include "cluster/node_options.hpp"
#include "cluster/replica.hpp"
#include "cluster/wire.hpp"
#include "transport/link.hpp"

namespace deltacrdt {

class Node {
 public:
  explicit Node(NodeOptions options)
      : options_(validated(std::move(options))),
        log_(options_.logger ? options_.logger : std::make_shared<Logger>()),
        incarnation_(std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32)),
        rng_(std::random_device{}()),
        io_(std::make_unique<IoThreads>(std::max<std::size_t>(1, options_.threads))),
        acceptor_(std::make_unique<asio::ip::tcp::acceptor>(io_->context())),
        maintenance_(std::make_unique<asio::steady_timer>(io_->context())) {
    if (options_.tls.enabled()) tls_ = transport::make_tls_context(options_.tls);
    const HostPort listen = parse_host_port(options_.listen, "listen");
    const asio::ip::tcp::endpoint ep(asio::ip::make_address(listen.host), listen.port);
    acceptor_->open(ep.protocol());
    acceptor_->set_option(asio::ip::tcp::acceptor::reuse_address(true));
    acceptor_->bind(ep);
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
    advertise_ =
        options_.advertise.empty() ? listen.host + ":" + std::to_string(port_) : options_.advertise;
    if (!options_.seeds.empty()) {
      strategies_.push_back({std::make_shared<StaticSeeds>(options_.seeds)});
    }
    if (!options_.dns_seeds.empty()) {
      strategies_.push_back({std::make_shared<DnsPoll>(options_.dns_seeds, options_.dns_interval)});
    }
    for (const auto& m : options_.membership) strategies_.push_back({m});
    log_->log(LogLevel::info, "node_started",
              {{"node", options_.name}, {"address", advertise_}, {"cluster", options_.cluster}});
    // The acceptor and the maintenance timer are used by these two loops and by stop(), all
    // on one strand.
    asio::co_spawn(*control_, accept_loop(), report_failure("accept_loop_failed"));
    asio::co_spawn(*control_, maintain(), report_failure("maintenance_failed"));
  }

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() { stop(); }

  // Hosts a replica named `name` (unique on this node) with a fresh replica id.
  template <DeltaCrdt T>
  Replica<T>& add_replica(const std::string& name, ReplicaOptions options = {}) {
    if (name.empty() || name.size() > wire::kMaxName) {
      throw std::invalid_argument("replica name must have 1-255 bytes");
    }
    std::unique_lock lock(mu_);
    if (hosted_.contains(name)) throw std::invalid_argument("replica '" + name + "' exists");
    auto h = std::make_unique<Hosted>();
    h->id = random_id();
    h->port = std::make_unique<Port>(*this, name);
    T state{};
    std::uint64_t seq = 0;
    if (!options_.data_dir.empty()) {
      // Recovered before anything is linked: the replica starts with its durable state.
      if (name == "." || name == ".." || name.find('/') != std::string::npos) {
        throw std::invalid_argument("replica name '" + name + "' cannot name a directory");
      }
      const std::filesystem::path dir = std::filesystem::path(options_.data_dir) / name;
      std::error_code ec;
      std::filesystem::create_directory(dir, ec);
      auto storage = std::make_shared<FileStorage>(dir, options_.fsync, h->id);
      auto recovered = recover_state<T>(storage->recovered());
      if (!recovered) {
        throw StorageError(dir.string() +
                           ": stored state does not decode as this replica's type: " +
                           recovered.error().message());
      }
      h->id = storage->id();
      state = std::move(recovered->first);
      seq = recovered->second;
      storage->release_recovered();
      options.storage = std::move(storage);
    }
    auto replica = std::make_shared<Replica<T>>(io_->executor(), h->id, *h->port, options,
                                                std::move(state), seq, incarnation_);
    Replica<T>& ref = *replica;
    h->deliver = [r = replica.get()](PeerId from, SyncMessage m) {
      r->deliver(from, std::move(m));
    };
    h->set_neighbours = [r = replica.get()](std::vector<PeerId> n) { r->set_neighbours(n); };
    h->replica = std::move(replica);
    hosted_.emplace(name, std::move(h));
    update_neighbours();
    broadcast_gossip();
    return ref;
  }

  const std::string& name() const { return options_.name; }
  // host:port other nodes dial (the advertised address).
  const std::string& address() const { return advertise_; }
  std::uint16_t port() const { return port_; }
  std::uint64_t incarnation() const { return incarnation_; }

  // Names of the nodes with an established link, sorted.
  std::vector<std::string> live_members() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [n, m] : members_)
      if (m.link) out.push_back(n);
    return out;
  }
  // Every node this one knows of, linked or not.
  std::vector<std::string> known_members() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [n, m] : members_) out.push_back(n);
    return out;
  }

  NodeMetrics metrics() const {
    NodeMetrics m;
    {
      std::lock_guard lock(mu_);
      for (const auto& [n, mem] : members_) m.peers += mem.link ? 1 : 0;
      m.reconnects = reconnects_;
      m.sync_dropped = sync_dropped_;
      m.connections_refused = connections_refused_;
      m.accept_errors = accept_errors_;
      m.gossip_rejected = gossip_rejected_;
      m.members_forgotten = members_forgotten_;
      m.members = members_.size();
    }
    m.bytes_in = counters_.bytes_in.load();
    m.bytes_out = counters_.bytes_out.load();
    m.frames_rejected = counters_.frames_rejected.load();
    m.frames_dropped = counters_.frames_dropped.load();
    m.handshakes_failed = counters_.handshakes_failed.load();
    return m;
  }

  // Called (on an I/O thread, in order per peer) when a node's link comes up or goes down.
  void on_member_event(std::function<void(const MemberEvent&)> callback) {
    std::lock_guard lock(mu_);
    listeners_.push_back(std::move(callback));
  }

  // Says goodbye on every link, stops accepting and dialing, destroys the replicas and joins
  // the threads. Idempotent; the destructor calls it.
  void stop() {
    std::vector<transport::Link::Ptr> links;
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      for (auto& [n, m] : members_)
        if (m.link) links.push_back(m.link);
      for (auto& [a, p] : pending_) links.push_back(p.link);
      listeners_.clear();
    }
    log_->log(LogLevel::info, "node_stopping", {{"node", options_.name}});
    for (auto& l : links) l->close("node stopping");
    asio::post(*control_, [this] {
      boost::system::error_code ec;
      acceptor_->close(ec);
      maintenance_->cancel();
      if (accept_pause_) accept_pause_->cancel();
    });
    // Give goodbyes a moment to reach the wire (bounded), then tear down in a safe order:
    // replicas, then threads (no handler runs after), then the ports handlers sent through.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (std::chrono::steady_clock::now() < until &&
           std::any_of(links.begin(), links.end(), [](const auto& l) { return !l->closed(); })) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::map<std::string, std::unique_ptr<Hosted>> hosted;
    {
      std::lock_guard lock(mu_);
      hosted = std::move(hosted_);
      members_.clear();
      pending_.clear();
      routes_.clear();
    }
    std::vector<std::unique_ptr<Port>> ports;
    for (auto& [n, h] : hosted) {
      h->replica.reset();
      ports.push_back(std::move(h->port));
    }
    links.clear();
    io_->join();  // no handler runs after this
    acceptor_.reset();
    maintenance_.reset();
    accept_pause_.reset();
    ports.clear();
    control_.reset();
    io_.reset();
  }

 private:
  // What a hosted replica sends goes through its port to the link of the node hosting the
  // addressee.
  struct Port final : SyncTransport {
    Port(Node& n, std::string r) : node(n), replica(std::move(r)) {}
    void send(PeerId from, PeerId to, SyncMessage msg) override {
      node.route(replica, from, to, msg);
    }
    Node& node;
    std::string replica;
  };

  struct Hosted {
    ReplicaId id = 0;
    std::unique_ptr<Port> port;
    std::shared_ptr<void> replica;
    std::function<void(PeerId, SyncMessage)> deliver;
    std::function<void(std::vector<PeerId>)> set_neighbours;
  };

  struct Member {
    std::string address;
    std::uint64_t incarnation = 0;
    transport::Link::Ptr link;  // null while not linked
    std::vector<wire::HostedReplica> replicas;
    bool ever_linked = false;
    // Last time a link or any gossip vouched for this member (forgetting, see maintain).
    std::chrono::steady_clock::time_point last_heard{};
  };

  // A connection in its handshake; `source` is the remote IP of an accepted one (counted
  // against max_handshakes_per_address), empty for one this node dialed.
  struct Pending {
    transport::Link::Ptr link;
    std::string source;
  };

  // Dialing state of one address.
  struct Strategy {
    std::shared_ptr<MembershipStrategy> strategy;
    std::chrono::steady_clock::time_point next{};  // when it runs again
    bool running = false;
  };

  struct Dial {
    std::string peer;  // the node found there (once a handshake succeeded)
    bool in_progress = false;
    bool is_self = false;
    bool from_gossip = true;  // only gossip named it (not a seed or a strategy)
    unsigned failures = 0;
    std::chrono::steady_clock::time_point next{};
    std::chrono::steady_clock::time_point last_heard{};  // last named by gossip
  };

  static NodeOptions validated(NodeOptions o) {
    if (o.name.empty() || o.name.size() > wire::kMaxName) {
      throw std::invalid_argument("node name must have 1-255 bytes");
    }
    if (o.secret.empty()) throw std::invalid_argument("a cluster secret is required");
    if (o.cluster.empty()) throw std::invalid_argument("cluster name must not be empty");
    parse_host_port(o.listen, "listen");
    if (!o.advertise.empty()) parse_host_port(o.advertise, "advertise");
    for (const std::string& s : o.seeds) parse_host_port(s, "seed");
    for (const std::string& s : o.dns_seeds) parse_host_port(s, "dns seed");
    for (const auto& m : o.membership) {
      if (!m) throw std::invalid_argument("a membership strategy is null");
    }
    if (!o.data_dir.empty()) {
      std::error_code ec;
      if (!std::filesystem::is_directory(o.data_dir, ec) ||
          ::access(o.data_dir.c_str(), R_OK | W_OK | X_OK) != 0) {
        throw StorageError("data directory '" + o.data_dir +
                           "' does not exist or is not readable and writable");
      }
    }
    return o;
  }

  ReplicaId random_id() {
    ReplicaId id = 0;
    while (id == 0) id = rng_();
    return id;
  }

  transport::HandshakeConfig handshake_config() const {
    return {options_.cluster, options_.name, incarnation_, options_.secret};
  }

  transport::Link::Handlers handlers(std::optional<std::string> dialed) {
    transport::Link::Handlers h;
    h.on_up = [this, dialed](const transport::Link::Ptr& l) { link_up(l, dialed); };
    h.on_frame = [this](const transport::Link::Ptr& l, transport::Frame f) {
      link_frame(l, std::move(f));
    };
    h.on_down = [this, dialed](const transport::Link::Ptr& l, const std::string& reason,
                               bool was_up) { link_down(l, reason, was_up, dialed); };
    return h;
  }

  // Accepts connections until the acceptor closes. A failed accept (out of descriptors,
  // say) backs off, 10 ms doubling to 1 s, instead of spinning; a connection beyond the
  // handshake limits is closed at once. Both are counted and logged at most once per
  // interval. (An exception escaping it is logged by its completion: see report_failure.)
  asio::awaitable<void> accept_loop() {
    std::chrono::milliseconds backoff{0};
    for (;;) {
      auto [ec, socket] = co_await acceptor_->async_accept(asio::make_strand(io_->context()),
                                                           asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      if (ec) {
        backoff =
            std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
        {
          std::lock_guard lock(mu_);
          ++accept_errors_;
        }
        log_throttled(LogLevel::warn, "accept_failed",
                      {{"node", options_.name}, {"reason", ec.message()}});
        accept_pause_.emplace(*control_, backoff);
        auto [wec] = co_await accept_pause_->async_wait(asio::as_tuple(asio::use_awaitable));
        if (wec || !acceptor_->is_open()) co_return;
        continue;
      }
      backoff = std::chrono::milliseconds(0);
      boost::system::error_code rec;
      const auto remote = socket.remote_endpoint(rec);
      const std::string source = rec ? std::string("?") : remote.address().to_string();
      std::lock_guard lock(mu_);
      if (stopped_) co_return;
      const std::size_t from_source = handshaking_from_[source];
      if (accepted_handshaking_ >= options_.max_handshakes ||
          from_source >= options_.max_handshakes_per_address) {
        if (from_source == 0) handshaking_from_.erase(source);
        ++connections_refused_;
        boost::system::error_code ignored;
        socket.close(ignored);
        log_throttled(
            LogLevel::warn, "connection_refused",
            {{"node", options_.name},
             {"remote", source},
             {"reason", accepted_handshaking_ >= options_.max_handshakes
                            ? "too many connections in their handshake"
                            : "too many connections in their handshake from this address"}});
        continue;
      }
      auto link = transport::Link::create(std::move(socket), transport::Handshake::Role::server,
                                          handshake_config(), options_.link, handlers(std::nullopt),
                                          counters_, tls_);
      ++accepted_handshaking_;
      ++handshaking_from_[source];
      pending_.emplace(link.get(), Pending{link, source});
      link->start();
    }
  }

  // Completion of a detached coroutine: an exception that escaped it (a bug) is logged as
  // `event`, never lost. The node outlives its coroutines (stop() joins the threads).
  std::function<void(std::exception_ptr)> report_failure(std::string_view event) {
    return [this, event](std::exception_ptr e) {
      if (!e) return;
      std::string why = "unknown error";
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        why = x.what();
      } catch (...) {
      }
      log_->log(LogLevel::error, event, {{"node", options_.name}, {"reason", why}});
    };
  }

  // Removes a link from those in their handshake (under mu_).
  void leave_pending(const transport::Link* link) {
    auto it = pending_.find(link);
    if (it == pending_.end()) return;
    if (!it->second.source.empty()) {
      --accepted_handshaking_;
      auto at = handshaking_from_.find(it->second.source);
      if (at != handshaking_from_.end() && --at->second == 0) handshaking_from_.erase(at);
    }
    pending_.erase(it);
  }

  // Logs `event` at most once per interval (see LogThrottle), adding how many lines were
  // held back since the last. Safe under mu_ (neither the throttle nor the sink takes it).
  void log_throttled(LogLevel level, std::string_view event,
                     std::initializer_list<Logger::Field> fields) {
    std::uint64_t suppressed = 0;
    if (!log_->enabled(level) || !throttle_.allow(event, suppressed)) return;
    std::vector<Logger::Field> all(fields.begin(), fields.end());
    const std::string held = std::to_string(suppressed);
    if (suppressed != 0) all.emplace_back("suppressed", held);
    log_->log(level, event, std::span<const Logger::Field>(all));
  }

  // Every 100 ms: run the membership strategies that are due, dial addresses that are due;
  // every gossip_interval: gossip.
  asio::awaitable<void> maintain() {
    auto last_gossip = std::chrono::steady_clock::now();
    for (bool first = true;; first = false) {
      if (!first) {
        maintenance_->expires_after(std::chrono::milliseconds(100));
        auto [ec] = co_await maintenance_->async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
      }
      std::lock_guard lock(mu_);
      if (stopped_) co_return;
      const auto now = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < strategies_.size(); ++i) {
        Strategy& st = strategies_[i];
        if (st.running || now < st.next) continue;
        st.running = true;
        // Posted: co_spawn may start running here, and discover() takes mu_, held now.
        asio::post(io_->context(), [this, i] {
          asio::co_spawn(io_->context(), discover(i), report_failure("discovery_loop_failed"));
        });
      }
      forget_unreached(now);
      std::size_t dialing = 0;
      for (const auto& [address, d] : dials_) dialing += d.in_progress ? 1 : 0;
      for (auto& [address, d] : dials_) {
        if (dialing >= options_.max_concurrent_dials) break;
        if (d.is_self || d.in_progress || now < d.next || linked_at(address)) continue;
        if (!d.peer.empty() && members_.contains(d.peer) && members_[d.peer].link) continue;
        d.in_progress = true;
        ++dialing;
        asio::co_spawn(asio::make_strand(io_->context()), dial(address),
                       [this, address](std::exception_ptr e) {
                         if (e) dial_crashed(address, e);
                       });
      }
      if (now - last_gossip >= options_.gossip_interval) {
        last_gossip = now;
        broadcast_gossip();
      }
    }
  }

  // A dial that threw (a bug, or an address that slipped past validation) is logged and
  // retried with backoff like any failed dial, never left "in progress" for good.
  void dial_crashed(const std::string& address, std::exception_ptr e) {
    std::string why = "unknown error";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      why = x.what();
    } catch (...) {
    }
    std::lock_guard lock(mu_);
    if (stopped_) return;
    log_throttled(LogLevel::warn, "dial_failed",
                  {{"node", options_.name}, {"address", address}, {"reason", why}});
    dial_failed(address);
  }

  // Forgets members that only gossip ever named, that this node never linked to, and that
  // no gossip has named for forget_unreached_after; and dial addresses learned the same way
  // that never answered. (Under mu_.)
  void forget_unreached(std::chrono::steady_clock::time_point now) {
    const auto stale = [&](std::chrono::steady_clock::time_point heard) {
      return now - heard > options_.forget_unreached_after;
    };
    const std::size_t forgotten = std::erase_if(members_, [&](const auto& kv) {
      const Member& m = kv.second;
      return !m.link && !m.ever_linked && stale(m.last_heard);
    });
    if (forgotten != 0) {
      members_forgotten_ += forgotten;
      log_->log(LogLevel::info, "members_forgotten",
                {{"node", options_.name}, {"count", std::to_string(forgotten)}});
    }
    std::erase_if(dials_, [&](const auto& kv) {
      const Dial& d = kv.second;
      return d.from_gossip && d.peer.empty() && !d.in_progress && stale(d.last_heard);
    });
  }

  // Runs strategy i once and adds the addresses it found to those dialed (kept forever: a
  // node that moves away is simply unreachable there and retried with backoff).
  asio::awaitable<void> discover(std::size_t i) {
    std::shared_ptr<MembershipStrategy> strategy;
    {
      std::lock_guard lock(mu_);
      strategy = strategies_[i].strategy;
    }
    std::vector<std::string> found;
    std::string failure;
    try {
      // Started in its own statement: g++ 12 may destroy temporaries of a co_await
      // full-expression (here the executor argument) twice.
      const asio::any_io_executor executor = io_->executor();
      auto discovering = strategy->discover(executor);
      found = co_await std::move(discovering);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    std::lock_guard lock(mu_);
    Strategy& st = strategies_[i];
    st.running = false;
    st.next = std::chrono::steady_clock::now() + strategy->interval();
    if (stopped_) co_return;
    if (!failure.empty()) {
      log_->log(LogLevel::warn, "discovery_failed",
                {{"node", options_.name}, {"strategy", strategy->name()}, {"reason", failure}});
    }
    for (const std::string& address : found) {
      if (address == advertise_ || dials_.contains(address)) continue;
      try {
        parse_host_port(address, "discovered");
      } catch (const std::invalid_argument& e) {
        log_->log(LogLevel::warn, "discovery_failed",
                  {{"node", options_.name}, {"strategy", strategy->name()}, {"reason", e.what()}});
        continue;
      }
      dials_[address].from_gossip = false;
      log_->log(LogLevel::info, "discovered",
                {{"node", options_.name}, {"strategy", strategy->name()}, {"address", address}});
    }
  }

  bool linked_at(const std::string& address) const {
    return std::any_of(members_.begin(), members_.end(),
                       [&](const auto& m) { return m.second.link && m.second.address == address; });
  }

  // Runs on a strand of its own (see maintain), which the socket, the resolver and the
  // connect deadline share, so the deadline's handler and this coroutine never overlap.
  asio::awaitable<void> dial(std::string address) {
    const HostPort hp = parse_host_port(address, "address");
    const asio::any_io_executor strand = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(strand);
    const std::string port = std::to_string(hp.port);
    // Each operation is started in its own statement: g++ 12 may destroy temporaries of a
    // co_await full-expression twice.
    auto resolving = resolver.async_resolve(hp.host, port, asio::as_tuple(asio::use_awaitable));
    auto [rec, results] = co_await std::move(resolving);
    asio::ip::tcp::socket socket(strand);
    bool connected = false;
    if (!rec) {
      asio::steady_timer deadline(strand);
      deadline.expires_after(options_.connect_timeout);
      // The handler may still be queued when the connect has completed (cancel() is then too
      // late): `finished` tells it to leave the socket, which may be gone, alone.
      auto finished = std::make_shared<bool>(false);
      deadline.async_wait([&socket, finished](boost::system::error_code ec) {
        if (!ec && !*finished) socket.close(ec);
      });
      auto connecting = asio::async_connect(socket, results, asio::as_tuple(asio::use_awaitable));
      auto [cec, ep] = co_await std::move(connecting);
      *finished = true;
      deadline.cancel();
      connected = !cec && socket.is_open();
    }
    std::lock_guard lock(mu_);
    if (stopped_) co_return;
    if (!connected) {
      log_->log(LogLevel::debug, "dial_failed", {{"node", options_.name}, {"address", address}});
      dial_failed(address);
      co_return;
    }
    auto link = transport::Link::create(std::move(socket), transport::Handshake::Role::client,
                                        handshake_config(), options_.link, handlers(address),
                                        counters_, tls_);
    pending_.emplace(link.get(), Pending{link, {}});
    link->start();
  }

  // Exponential backoff with jitter: min * 2^failures, capped, times 0.5-1.0.
  void dial_failed(const std::string& address) {
    auto it = dials_.find(address);
    if (it == dials_.end()) return;
    Dial& d = it->second;
    d.in_progress = false;
    ++d.failures;
    const auto cap = options_.reconnect_max.count();
    const auto base =
        std::min<std::int64_t>(cap, options_.reconnect_min.count() << std::min(d.failures, 16u));
    std::uniform_int_distribution<std::int64_t> jitter(base / 2,
                                                       std::max<std::int64_t>(base / 2, base));
    d.next = std::chrono::steady_clock::now() + std::chrono::milliseconds(jitter(rng_));
  }

  void link_up(const transport::Link::Ptr& link, const std::optional<std::string>& dialed) {
    std::vector<std::function<void(const MemberEvent&)>> notify;
    const std::string peer = link->peer().node;
    {
      std::lock_guard lock(mu_);
      leave_pending(link.get());
      if (stopped_) return;
      if (dialed) {
        Dial& d = dials_[*dialed];
        d.in_progress = false;
        d.failures = 0;
        d.peer = peer;
      }
      Member& m = members_[peer];
      if (m.link && m.link != link) {
        // One link per pair: both sides keep the link dialed by the node with the smaller
        // name, so simultaneous dials settle on the same one.
        const bool keep_new = preferred(*link, peer) || !preferred(*m.link, peer);
        if (!keep_new) {
          log_->log(LogLevel::debug, "duplicate_link_closed",
                    {{"node", options_.name}, {"peer", peer}});
          link->close("duplicate link");
          return;
        }
        m.link->close("replaced by a newer link");
        forget_routes(m);
      }
      const bool was_down = !m.link;
      if (was_down && m.ever_linked) ++reconnects_;
      m.ever_linked = true;
      m.last_heard = std::chrono::steady_clock::now();
      m.link = link;
      m.incarnation = link->peer().incarnation;
      if (dialed && m.address.empty()) m.address = *dialed;
      link->send(transport::FrameType::gossip, wire::encode_gossip(own_gossip()));
      if (was_down) notify = listeners_;
      log_->log(LogLevel::info, "link_up",
                {{"node", options_.name},
                 {"peer", peer},
                 {"remote", link->remote()},
                 {"dialed", dialed ? "yes" : "no"}});
    }
    for (auto& cb : notify) cb(MemberEvent{peer, true});
  }

  // Whether `l` (a link to `peer`) was dialed by the node with the smaller name.
  bool preferred(const transport::Link& l, const std::string& peer) const {
    const bool we_dialed = l.role() == transport::Handshake::Role::client;
    const std::string& client = we_dialed ? options_.name : peer;
    const std::string& server = we_dialed ? peer : options_.name;
    return client < server;
  }

  void link_down(const transport::Link::Ptr& link, const std::string& reason, bool was_up,
                 const std::optional<std::string>& dialed) {
    std::vector<std::function<void(const MemberEvent&)>> notify;
    std::string peer;
    {
      std::lock_guard lock(mu_);
      leave_pending(link.get());
      if (stopped_) return;
      const bool rejected = reason.rfind("malformed", 0) == 0 || reason.rfind("handshake", 0) == 0;
      const std::string_view peer_name =
          was_up ? std::string_view(link->peer().node) : std::string_view("?");
      if (rejected) {
        // Anyone can connect and fail: once per interval, however many do.
        log_throttled(LogLevel::warn, "link_rejected",
                      {{"node", options_.name},
                       {"peer", peer_name},
                       {"remote", link->remote()},
                       {"reason", reason}});
      } else if (was_up) {
        log_->log(LogLevel::info, "link_down",
                  {{"node", options_.name},
                   {"peer", peer_name},
                   {"remote", link->remote()},
                   {"reason", reason}});
      }
      if (dialed) {
        if (reason.find("itself") != std::string::npos ||
            reason.find("already in use by this node") != std::string::npos) {
          dials_[*dialed].is_self = true;  // a seed list that names this node
        }
        dial_failed(*dialed);
      }
      for (auto& [name, m] : members_) {
        if (m.link != link) continue;
        peer = name;
        m.link.reset();
        forget_routes(m);
        update_neighbours();
        notify = listeners_;
      }
    }
    for (auto& cb : notify) cb(MemberEvent{peer, false});
  }

  void link_frame(const transport::Link::Ptr& link, transport::Frame f) {
    if (f.type == transport::FrameType::sync) {
      std::optional<wire::SyncEnvelope> e = wire::decode_sync(f.payload);
      std::lock_guard lock(mu_);
      auto it = e ? hosted_.find(e->replica) : hosted_.end();
      if (it == hosted_.end() || it->second->id != e->to || !announced(link, e->replica, e->from)) {
        // Malformed, for a replica this node does not (now) host, or from a replica id the
        // node at the other end did not announce under that name: a sender cannot speak
        // for replicas of other nodes, or invent ids to hold state transfers open.
        ++sync_dropped_;
        return;
      }
      it->second->deliver(e->from, std::move(e->msg));
    } else if (f.type == transport::FrameType::gossip) {
      std::optional<wire::Gossip> g = wire::decode_gossip(f.payload);
      std::lock_guard lock(mu_);
      if (!g || g->self.name != link->peer().node || !valid_address(g->self.address)) {
        ++gossip_rejected_;
        log_throttled(LogLevel::warn, "gossip_rejected",
                      {{"node", options_.name},
                       {"peer", link->peer().node},
                       {"reason", !g ? "malformed" : "the sender misnames itself"}});
        return;
      }
      Member& m = members_[g->self.name];
      if (m.link != link) return;  // a link being replaced
      const auto now = std::chrono::steady_clock::now();
      forget_routes(m);
      m.address = g->self.address;
      m.incarnation = g->self.incarnation;
      m.replicas = g->replicas;
      m.last_heard = now;
      for (const auto& r : m.replicas) routes_[r.id] = link;
      if (!m.address.empty()) dials_[m.address].from_gossip = false;  // a member linked once
      std::size_t bad = 0;
      std::vector<const wire::MemberRecord*> learned;
      for (const wire::MemberRecord& other : g->members) {
        if (other.name == options_.name || other.address == advertise_) continue;
        if (!valid_address(other.address)) {
          ++bad;
          continue;
        }
        auto known = members_.find(other.name);
        if (known == members_.end()) {
          if (members_.size() >= options_.max_members) {
            ++bad;  // beyond the bound: ignored (a real member is named again later)
            continue;
          }
          known = members_.emplace(other.name, Member{}).first;
          known->second.address = other.address;
          learned.push_back(&other);
        }
        Member& mem = known->second;
        mem.last_heard = now;
        if (mem.link || other.address.empty()) continue;                // linked: nothing to dial
        if (mem.address != other.address && mem.ever_linked) continue;  // its own word wins
        mem.address = other.address;
        // Dial addresses learned by gossip are bounded like members (one per member, and
        // those of seeds and strategies).
        if (!dials_.contains(other.address) && dials_.size() >= 2 * options_.max_members) {
          ++bad;
          continue;
        }
        Dial& dial = dials_[other.address];
        if (dial.from_gossip) dial.last_heard = now;
      }
      // One line per member learned; a frame naming many (a cluster's first gossip, or an
      // invented list) is summarised in one.
      if (learned.size() <= 16) {
        for (const wire::MemberRecord* r : learned) {
          log_->log(LogLevel::info, "member_learned",
                    {{"node", options_.name}, {"member", r->name}, {"address", r->address}});
        }
      } else {
        log_->log(LogLevel::info, "members_learned",
                  {{"node", options_.name},
                   {"peer", link->peer().node},
                   {"count", std::to_string(learned.size())}});
      }
      if (bad != 0) {
        gossip_rejected_ += 1;
        log_throttled(LogLevel::warn, "gossip_rejected",
                      {{"node", options_.name},
                       {"peer", link->peer().node},
                       {"reason",
                        "member records with a malformed address, or beyond "
                        "max_members"}});
      }
      update_neighbours();
    }
  }

  // Whether the node at the other end of `link` announced replica `id` under `name`.
  bool announced(const transport::Link::Ptr& link, const std::string& name, ReplicaId id) const {
    auto m = members_.find(link->peer().node);
    if (m == members_.end() || m->second.link != link) return false;
    return std::any_of(m->second.replicas.begin(), m->second.replicas.end(),
                       [&](const wire::HostedReplica& r) { return r.id == id && r.name == name; });
  }

  static bool valid_address(const std::string& address) {
    if (address.empty()) return true;  // a member that advertises none is never dialed
    try {
      parse_host_port(address, "gossiped");
      return true;
    } catch (const std::invalid_argument&) {
      return false;
    }
  }

  void forget_routes(const Member& m) {
    for (const auto& r : m.replicas) routes_.erase(r.id);
  }

  // Neighbours of each hosted replica: its namesakes on every linked node.
  void update_neighbours() {
    for (auto& [name, h] : hosted_) {
      std::vector<PeerId> ids;
      for (const auto& [n, m] : members_) {
        if (!m.link) continue;
        for (const auto& r : m.replicas)
          if (r.name == name) ids.push_back(r.id);
      }
      h->set_neighbours(std::move(ids));
    }
  }

  wire::Gossip own_gossip() const {
    wire::Gossip g;
    g.self = {options_.name, advertise_, incarnation_};
    for (const auto& [name, h] : hosted_) g.replicas.push_back({name, h->id});
    for (const auto& [n, m] : members_)
      if (m.link && !m.address.empty()) g.members.push_back({n, m.address, m.incarnation});
    return g;
  }

  void broadcast_gossip() {
    const std::string payload = wire::encode_gossip(own_gossip());
    for (auto& [n, m] : members_)
      if (m.link) m.link->send(transport::FrameType::gossip, payload);
  }

  void route(const std::string& replica, PeerId from, PeerId to, const SyncMessage& msg) {
    transport::Link::Ptr link;
    {
      std::lock_guard lock(mu_);
      auto it = routes_.find(to);
      if (it == routes_.end()) return;  // not linked now: the protocol retransmits later
      link = it->second;
    }
    link->send(transport::FrameType::sync, wire::encode_sync(replica, from, to, msg));
  }

  const NodeOptions options_;
  std::shared_ptr<Logger> log_;
  const std::uint64_t incarnation_;
  std::mt19937_64 rng_;
  std::shared_ptr<asio::ssl::context> tls_;  // null: plain TCP links
  std::unique_ptr<IoThreads> io_;
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
  std::map<std::string, Member> members_;
  std::map<std::string, Dial> dials_;
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
  std::map<ReplicaId, transport::Link::Ptr> routes_;
  std::vector<std::function<void(const MemberEvent&)>> listeners_;
  std::uint64_t reconnects_ = 0;
  std::uint64_t sync_dropped_ = 0;
};

}  // namespace deltacrdt
