// Node and NodeImpl (see node.hpp and node_impl.hpp, where each member is described):
// compiled once here instead of in every program that runs a node.
#include "cluster/node.hpp"

#include "cluster/node_impl.hpp"
#include "cluster/overlay.hpp"
#include "cluster/replica_asio.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace deltacrdt {

namespace {
// A type signature as 16 hex digits, for the log.
std::string hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

NodeImpl::NodeImpl(NodeOptions options)
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
  table_.set_self_address(advertise_);
  if (!options_.seeds.empty()) {
    strategies_.push_back({std::make_shared<StaticSeeds>(options_.seeds)});
  }
  if (!options_.dns_seeds.empty()) {
    strategies_.push_back({std::make_shared<DnsPoll>(options_.dns_seeds, options_.dns_interval)});
  }
  for (const auto& m : options_.membership) strategies_.push_back({m});
  load_removed();
  log_->log(LogLevel::info, "node_started",
            {{"node", options_.name}, {"address", advertise_}, {"cluster", options_.cluster}});
  // The acceptor and the maintenance timer are used by these two loops and by stop(), all
  // on one strand.
  asio::co_spawn(*control_, accept_loop(), report_failure("accept_loop_failed"));
  asio::co_spawn(*control_, maintain(), report_failure("maintenance_failed"));
}

std::vector<std::string> NodeImpl::live_members() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [n, m] : table_.members())
    if (alive(m, now)) out.push_back(n);
  return out;
}

std::vector<std::string> NodeImpl::known_members() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [n, m] : table_.members()) out.push_back(n);
  return out;
}

NodeMetrics NodeImpl::metrics() const {
  NodeMetrics m;
  {
    std::lock_guard lock(mu_);
    m.peers = table_.linked_count();
    m.reconnects = reconnects_;
    m.sync_dropped = sync_dropped_;
    m.connections_refused = connections_refused_;
    m.accept_errors = accept_errors_;
    m.gossip_rejected = gossip_rejected_;
    m.members_forgotten = members_forgotten_;
    m.members = table_.members().size();
    m.replica_type_mismatches = type_mismatches_.size();
    m.members_removed = removed_.records().size();
    m.removed_refused = removed_refused_;
  }
  m.bytes_in = counters_.bytes_in.load();
  m.bytes_out = counters_.bytes_out.load();
  m.frames_rejected = counters_.frames_rejected.load();
  m.frames_dropped = counters_.frames_dropped.load();
  m.handshakes_failed = counters_.handshakes_failed.load();
  return m;
}

void NodeImpl::on_member_event(std::function<void(const MemberEvent&)> callback) {
  std::lock_guard lock(mu_);
  listeners_.push_back(std::move(callback));
}

void NodeImpl::stop() {
  std::vector<transport::Link::Ptr> links;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    for (const auto& [n, m] : table_.members())
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
  // Dials in progress end now: their deadline fires at once (on the dial's strand).
  {
    std::lock_guard lock(mu_);
    for (const auto& deadline : dial_deadlines_) {
      asio::post(deadline->get_executor(), [deadline] { deadline->cancel(); });
    }
  }
  // Give goodbyes a moment to reach the wire (bounded; link_down signals each closed link),
  // then tear down in a safe order: replicas, then threads (they end once every socket and
  // timer is closed: no handler runs after), then the ports handlers sent through.
  {
    std::unique_lock lock(mu_);
    links_closed_.wait_for(lock, std::chrono::milliseconds(200), [&] {
      return std::all_of(links.begin(), links.end(), [](const auto& l) { return l->closed(); });
    });
  }
  std::map<std::string, std::unique_ptr<Hosted>> hosted;
  {
    std::lock_guard lock(mu_);
    hosted = std::move(hosted_);
    table_.clear();
    pending_.clear();
  }
  std::vector<std::unique_ptr<Port>> ports;
  for (auto& [n, h] : hosted) {
    h->replica = {};
    ports.push_back(std::move(h->port));
  }
  links.clear();
  io_->join();      // no handler runs after this
  notify_->join();  // nor any change notification
  acceptor_.reset();
  maintenance_.reset();
  accept_pause_.reset();
  ports.clear();
  control_.reset();
  io_.reset();
}

detail::HostedSlot NodeImpl::reserve_replica(const std::string& name, std::uint64_t type,
                                             const NeighbourPolicy& neighbours) {
  neighbours.validate();
  if (name.empty() || name.size() > wire::kMaxName) {
    throw std::invalid_argument("replica name must have 1-255 bytes");
  }
  if (!options_.data_dir.empty() &&
      (name == "." || name == ".." || name == kRemovedFile || name.find('/') != std::string::npos)) {
    throw std::invalid_argument("replica name '" + name + "' cannot name a directory");
  }
  std::lock_guard lock(mu_);
  if (hosted_.contains(name)) throw std::invalid_argument("replica '" + name + "' exists");
  auto h = std::make_unique<Hosted>();
  h->id = random_id();
  h->type = type;
  h->policy = neighbours;
  h->port = std::make_unique<Port>(*this, name);
  detail::HostedSlot slot;
  if (!options_.data_dir.empty()) {
    // Opened (and its files read) before anything is linked: the replica starts with its
    // durable state and id.
    const std::filesystem::path dir = std::filesystem::path(options_.data_dir) / name;
    std::error_code ec;
    std::filesystem::create_directory(dir, ec);
    slot.storage = std::make_shared<FileStorage>(dir, options_.fsync, h->id);
    slot.storage_dir = dir.string();
    h->id = slot.storage->id();
  }
  slot.id = h->id;
  slot.port = h->port.get();
  slot.runtime = replica_runtime();
  slot.logger = log_;
  slot.refusal_log_interval = options_.refusal_log_interval;
  slot.incarnation = incarnation_;
  slot.founding = !looks_for_peers();
  hosted_.emplace(name, std::move(h));
  return slot;
}

void NodeImpl::host_replica(const std::string& name, detail::HostedReplica replica) {
  std::unique_lock lock(mu_);
  auto it = hosted_.find(name);
  if (stopped_ || it == hosted_.end()) {
    throw std::logic_error("node stopped while replica '" + name + "' was being added");
  }
  it->second->replica = std::move(replica);
  it->second->ready = true;
  std::vector<MemberEvent> events;
  for (const RemovedMember& r : removed_.records()) {
    if (!self_removed_ && names_self(r)) become_removed(r, events);
  }
  if (!removed_.empty()) tell_replicas_removed(it->second.get());
  update_neighbours();
  broadcast_gossip();
  lock.unlock();
  notify(events);
}

void NodeImpl::set_neighbours(const std::string& replica, NeighbourPolicy policy) {
  std::lock_guard lock(mu_);
  auto it = hosted_.find(replica);
  if (it == hosted_.end() || !it->second->ready) {
    throw std::invalid_argument("no replica '" + replica + "' is hosted on this node");
  }
  policy.validate();
  it->second->policy = std::move(policy);
  it->second->drawn.clear();  // a random(k) policy draws afresh
  update_neighbours();
}

const NodeImpl::Hosted& NodeImpl::hosted(const std::string& name) const {
  auto it = hosted_.find(name);
  if (it == hosted_.end() || !it->second->ready) {
    throw std::invalid_argument("no replica '" + name + "' is hosted on this node");
  }
  return *it->second;
}

NeighbourPolicy NodeImpl::neighbours(const std::string& replica) const {
  std::lock_guard lock(mu_);
  return hosted(replica).policy;
}

std::vector<std::string> NodeImpl::pushing_to(const std::string& replica) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out = hosted(replica).pushing_to;
  std::sort(out.begin(), out.end());
  return out;
}

void NodeImpl::abandon_replica(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = hosted_.find(name);
  if (it != hosted_.end() && !it->second->ready) hosted_.erase(it);
}

ReplicaRuntime NodeImpl::replica_runtime() {
  // Work and timers on the I/O threads; notifications on the node's own thread, so that a
  // slow on_diffs never holds up replication.
  ReplicaRuntime runtime = io_->runtime();
  runtime.notify = post_to(notify_->executor());
  return runtime;
}

NodeOptions NodeImpl::validated(NodeOptions o) {
  if (o.name.empty() || o.name.size() > wire::kMaxName) {
    throw std::invalid_argument("node name must have 1-255 bytes");
  }
  if (o.secret.empty()) throw std::invalid_argument("a cluster secret is required");
  if (o.cluster.empty()) throw std::invalid_argument("cluster name must not be empty");
  if (o.neighbour_redraw_interval.count() <= 0) {
    throw std::invalid_argument("neighbour_redraw_interval must be positive");
  }
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

ReplicaId NodeImpl::random_id() {
  ReplicaId id = 0;
  while (id == 0) id = rng_();
  return id;
}

transport::HandshakeConfig NodeImpl::handshake_config() const {
  return {options_.cluster, options_.name, incarnation_, options_.secret};
}

transport::Link::Handlers NodeImpl::handlers(std::optional<std::string> dialed) {
  transport::Link::Handlers h;
  h.on_up = [this, dialed](const transport::Link::Ptr& l) { link_up(l, dialed); };
  h.on_frame = [this](const transport::Link::Ptr& l, transport::Frame f) {
    link_frame(l, std::move(f));
  };
  h.on_down = [this, dialed](const transport::Link::Ptr& l, transport::LinkError code,
                             const std::string& reason,
                             bool was_up) { link_down(l, code, reason, was_up, dialed); };
  return h;
}

asio::awaitable<void> NodeImpl::accept_loop() {
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

std::function<void(std::exception_ptr)> NodeImpl::report_failure(std::string_view event) {
  return [this, event](std::exception_ptr e) {
    if (!e) return;
    log_->log(LogLevel::error, event,
              {{"node", options_.name}, {"reason", transport::exception_message(e)}});
  };
}

void NodeImpl::leave_pending(const transport::Link* link) {
  auto it = pending_.find(link);
  if (it == pending_.end()) return;
  if (!it->second.source.empty()) {
    --accepted_handshaking_;
    auto at = handshaking_from_.find(it->second.source);
    if (at != handshaking_from_.end() && --at->second == 0) handshaking_from_.erase(at);
  }
  pending_.erase(it);
}

void NodeImpl::log_throttled(LogLevel level, std::string_view event,
                         std::initializer_list<Logger::Field> fields) {
  std::uint64_t suppressed = 0;
  if (!log_->enabled(level) || !throttle_.allow(event, suppressed)) return;
  std::vector<Logger::Field> all(fields.begin(), fields.end());
  const std::string held = std::to_string(suppressed);
  if (suppressed != 0) all.emplace_back("suppressed", held);
  log_->log(level, event, std::span<const Logger::Field>(all));
}

asio::awaitable<void> NodeImpl::maintain() {
  auto last_gossip = std::chrono::steady_clock::now();
  auto last_redraw = last_gossip;
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
    if (self_removed_) continue;  // a removed node dials nobody
    std::size_t dialing = 0;
    for (const auto& [address, d] : table_.dials()) dialing += d.in_progress ? 1 : 0;
    const std::set<std::string_view> wanted_addresses = wanted_member_addresses();
    for (auto& entry : table_.dials()) {
      // Named, not a structured binding: the lambda below captures it (clang 14 cannot).
      const std::string& address = entry.first;
      Dial& d = entry.second;
      if (dialing >= options_.max_concurrent_dials) break;
      if (d.is_self || d.in_progress || now < d.next || table_.linked_at(address)) continue;
      if (!dial_wanted(address, d, wanted_addresses)) continue;
      if (!d.peer.empty()) {
        const auto peer = table_.members().find(d.peer);
        if (peer != table_.members().end() && peer->second.link) continue;
      }
      d.in_progress = true;
      ++dialing;
      asio::co_spawn(asio::make_strand(io_->context()), dial(address),
                     [this, address](std::exception_ptr e) {
                       if (e) dial_crashed(address, e);
                     });
    }
    if (now - last_redraw >= options_.neighbour_redraw_interval) {
      last_redraw = now;
      for (auto& [name, h] : hosted_) h->drawn.clear();
      update_neighbours();
    }
    if (now - last_gossip >= options_.gossip_interval) {
      last_gossip = now;
      // Heartbeats age without any event: who is alive, and so who is wanted, is looked at
      // again every round.
      std::vector<MemberEvent> events;
      lifecycle_round(now, events);
      update_neighbours();
      close_unneeded_links(now);
      choose_probe(now);
      broadcast_gossip();
      if (!events.empty()) {
        // Listeners are called without mu_, and maintain() holds it in this scope.
        asio::post(*control_, [this, events = std::move(events)] { notify(events); });
      }
    }
  }
}

void NodeImpl::dial_crashed(const std::string& address, std::exception_ptr e) {
  const std::string why = transport::exception_message(e);
  std::lock_guard lock(mu_);
  if (stopped_) return;
  log_throttled(LogLevel::warn, "dial_failed",
                {{"node", options_.name}, {"address", address}, {"reason", why}});
  dial_failed(address);
}

void NodeImpl::forget_unreached(std::chrono::steady_clock::time_point now) {
  const std::size_t forgotten = table_.forget_unreached(now);
  if (forgotten != 0) {
    members_forgotten_ += forgotten;
    log_->log(LogLevel::info, "members_forgotten",
              {{"node", options_.name}, {"count", std::to_string(forgotten)}});
  }
}

asio::awaitable<void> NodeImpl::discover(std::size_t i) {
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
    if (address == advertise_) continue;
    if (Dial* known = table_.find_dial(address)) {  // (gossip named it first)
      known->from_gossip = false;
      known->discovered = true;
      continue;
    }
    try {
      parse_host_port(address, "discovered");
    } catch (const std::invalid_argument& e) {
      log_->log(LogLevel::warn, "discovery_failed",
                {{"node", options_.name}, {"strategy", strategy->name()}, {"reason", e.what()}});
      continue;
    }
    Dial& found_dial = table_.dial(address);
    found_dial.from_gossip = false;
    found_dial.discovered = true;
    log_->log(LogLevel::info, "discovered",
              {{"node", options_.name}, {"strategy", strategy->name()}, {"address", address}});
  }
}

asio::awaitable<void> NodeImpl::dial(std::string address) {
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
    // The connect races its deadline; whichever ends first cancels the other. stop() ends
    // the deadline early (see dial_deadlines_), so no dial outlives the node's stop.
    auto deadline = std::make_shared<asio::steady_timer>(strand);
    deadline->expires_after(options_.connect_timeout);
    {
      std::lock_guard lock(mu_);
      if (stopped_) co_return;
      dial_deadlines_.insert(deadline);
    }
    using namespace asio::experimental::awaitable_operators;
    auto connecting = asio::async_connect(socket, results, asio::as_tuple(asio::use_awaitable));
    auto waiting = deadline->async_wait(asio::as_tuple(asio::use_awaitable));
    auto race = std::move(connecting) || std::move(waiting);
    const auto outcome = co_await std::move(race);
    {
      std::lock_guard lock(mu_);
      dial_deadlines_.erase(deadline);
    }
    if (outcome.index() == 0) connected = !std::get<0>(std::get<0>(outcome)) && socket.is_open();
  }
  std::lock_guard lock(mu_);
  if (stopped_) co_return;
  if (!connected) {
    log_->log(LogLevel::debug, "dial_failed", {{"node", options_.name}, {"address", address}});
    if (Dial* d = table_.find_dial(address)) {
      d->unreachable_until = std::chrono::steady_clock::now() + member_timeout();
    }
    dial_failed(address);
    co_return;
  }
  auto link = transport::Link::create(std::move(socket), transport::Handshake::Role::client,
                                      handshake_config(), options_.link, handlers(address),
                                      counters_, tls_);
  pending_.emplace(link.get(), Pending{link, {}});
  link->start();
}

void NodeImpl::dial_failed(const std::string& address) {
  Dial* found = table_.find_dial(address);
  if (found == nullptr) return;
  Dial& d = *found;
  d.in_progress = false;
  ++d.failures;
  const auto cap = options_.reconnect_max.count();
  const auto base =
      std::min<std::int64_t>(cap, options_.reconnect_min.count() << std::min(d.failures, 16u));
  std::uniform_int_distribution<std::int64_t> jitter(base / 2,
                                                     std::max<std::int64_t>(base / 2, base));
  d.next = std::chrono::steady_clock::now() + std::chrono::milliseconds(jitter(rng_));
}

void NodeImpl::link_up(const transport::Link::Ptr& link, const std::optional<std::string>& dialed) {
  std::vector<std::function<void(const MemberEvent&)>> notify;
  const std::string peer = link->peer().node;
  {
    std::lock_guard lock(mu_);
    leave_pending(link.get());
    if (stopped_) return;
    if (dialed) {
      Dial& d = table_.dial(*dialed);
      d.in_progress = false;
      d.failures = 0;
      d.peer = peer;
      d.unreachable_until = {};
    }
    if (self_removed_) {
      // Says who it is, with the records that removed it, before it goes: the peer refuses
      // it knowingly, and learns the removal if it had not yet.
      link->send(transport::FrameType::gossip,
                 wire::encode_gossip(own_gossip(removed_.records())));
      link->close("this node was removed from the cluster");
      return;
    }
    // The very process that was removed (its handshake named it): refused before anything,
    // told why first.
    if (const RemovedMember* record = removed_.find(peer, link->peer().incarnation)) {
      tell_removed(link, *record);
      ++removed_refused_;
      log_throttled(LogLevel::warn, "removed_member_refused",
                    {{"node", options_.name},
                     {"peer", peer},
                     {"removed_as", peer},
                     {"reason", "the process that was removed"}});
      link->close("removed from the cluster");
      return;
    }
    Member& m = table_.member(peer);
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
      table_.forget_routes(m);
    }
    const bool was_down = !m.link;
    if (was_down && m.ever_linked) ++reconnects_;
    m.ever_linked = true;
    m.last_heard = std::chrono::steady_clock::now();
    m.linked_since = m.last_heard;
    m.wants_us = false;  // until its gossip on this link says so
    m.link = link;
    m.incarnation = link->peer().incarnation;
    if (dialed && m.address.empty()) m.address = *dialed;
    // The first gossip on a link carries every removal record this node holds.
    link->send(transport::FrameType::gossip,
               wire::encode_gossip(own_gossip(removed_.records())));
    if (was_down) notify = listeners_;
    log_->log(LogLevel::info, "link_up",
              {{"node", options_.name},
               {"peer", peer},
               {"remote", link->remote()},
               {"dialed", dialed ? "yes" : "no"}});
  }
  for (auto& cb : notify) cb(MemberEvent{peer, true});
}

bool NodeImpl::preferred(const transport::Link& l, const std::string& peer) const {
  const bool we_dialed = l.role() == transport::Handshake::Role::client;
  const std::string& client = we_dialed ? options_.name : peer;
  const std::string& server = we_dialed ? peer : options_.name;
  return client < server;
}

void NodeImpl::link_down(const transport::Link::Ptr& link, transport::LinkError code,
                     const std::string& reason, bool was_up,
                     const std::optional<std::string>& dialed) {
  std::vector<std::function<void(const MemberEvent&)>> notify;
  std::string peer;
  {
    std::lock_guard lock(mu_);
    leave_pending(link.get());
    if (stopped_) {
      links_closed_.notify_all();  // stop() waits for the links it closed
      return;
    }
    const bool rejected = transport::is_rejection(code);
    const std::string_view peer_name =
        was_up ? std::string_view(link->peer().node) : std::string_view("?");
    if (rejected) {
      // Anyone can connect and fail: once per interval, however many do.
      log_throttled(LogLevel::warn, "link_rejected",
                    {{"node", options_.name},
                     {"peer", peer_name},
                     {"remote", link->remote()},
                     {"code", transport::to_string(code)},
                     {"reason", reason}});
    } else if (was_up) {
      log_->log(LogLevel::info, "link_down",
                {{"node", options_.name},
                 {"peer", peer_name},
                 {"remote", link->remote()},
                 {"code", transport::to_string(code)},
                 {"reason", reason}});
    }
    if (dialed) {
      if (transport::is_self(code)) table_.dial(*dialed).is_self = true;  // a seed list names us
      if (!was_up) {
        table_.dial(*dialed).unreachable_until = std::chrono::steady_clock::now() + member_timeout();
      }
      dial_failed(*dialed);
    }
    for (const auto& [name, m] : table_.members()) {
      if (m.link != link) continue;
      peer = name;
      Member& down = table_.member(name);
      down.link.reset();
      table_.forget_routes(down);
      update_neighbours();
      notify = listeners_;
      break;
    }
  }
  for (auto& cb : notify) cb(MemberEvent{peer, false});
}

void NodeImpl::link_frame(const transport::Link::Ptr& link, transport::Frame f) {
  if (f.type == transport::FrameType::sync) {
    std::optional<wire::SyncEnvelope> e = wire::decode_sync(f.payload);
    std::lock_guard lock(mu_);
    auto it = e ? hosted_.find(e->replica) : hosted_.end();
    if (it == hosted_.end() || !it->second->ready || it->second->id != e->to ||
        !table_.announced(link, link->peer().node, e->replica, e->from, it->second->type) ||
        removed_.removed_replica(e->from)) {
      // Malformed, for a replica this node does not (now) host, or from a replica id the
      // node at the other end did not announce under that name: a sender cannot speak
      // for replicas of other nodes, or invent ids to hold state transfers open.
      ++sync_dropped_;
      log_throttled(LogLevel::warn, "sync_dropped",
                    {{"node", options_.name},
                     {"peer", link->peer().node},
                     {"reason", !e                        ? "malformed"
                                : it == hosted_.end() || !it->second->ready
                                    ? "no such replica here"
                                : it->second->id != e->to ? "addressed to another replica id"
                                : removed_.removed_replica(e->from)
                                    ? "sender removed from the cluster"
                                    : "sender not announced by the peer"}});
      return;
    }
    it->second->replica.deliver(e->from, std::move(e->msg));
  } else if (f.type == transport::FrameType::gossip) {
    std::optional<wire::Gossip> g = wire::decode_gossip(f.payload);
    std::vector<MemberEvent> events;
    std::unique_lock lock(mu_);
    if (stopped_) return;
    // Removals first: they may be about the sender, or about this node.
    if (g && !g->removed.empty()) learn_removals(std::move(g->removed), events);
    if (self_removed_ || (g && refuse_removed(link, *g, events))) {
      lock.unlock();
      notify(events);
      return;
    }
    auto r =
        g ? table_.apply_gossip(link, link->peer().node, *g, std::chrono::steady_clock::now())
          : Table::GossipResult{Table::GossipStatus::misnamed, 0, {}};
    // Listeners of the removals learned above are called whichever way this ends.
    const auto finish = [&] {
      lock.unlock();
      notify(events);
    };
    if (r.status == Table::GossipStatus::stale_link) return finish();  // a link being replaced
    if (r.status == Table::GossipStatus::misnamed || r.rejected_records != 0) {
      ++gossip_rejected_;
      log_throttled(LogLevel::warn, "gossip_rejected",
                    {{"node", options_.name},
                     {"peer", link->peer().node},
                     {"reason", !g ? "malformed"
                                : r.status == Table::GossipStatus::misnamed
                                    ? "the sender misnames itself"
                                    : "member records with a malformed address, or beyond "
                                      "max_members"}});
      if (r.status == Table::GossipStatus::misnamed) return finish();
    }
    // A member a peer still names although it was removed (the peer has not learned it
    // yet) is not learned again.
    std::erase_if(r.learned, [&](const wire::MemberRecord& m) {
      if (!removed_.match(m.name, m.incarnation, {})) return false;
      table_.erase(m.name);
      return true;
    });
    // One line per member learned; a frame naming many (a cluster's first gossip, or an
    // invented list) is summarised in one.
    if (r.learned.size() <= 16) {
      for (const wire::MemberRecord& m : r.learned) {
        log_->log(LogLevel::info, "member_learned",
                  {{"node", options_.name}, {"member", m.name}, {"address", m.address}});
      }
    } else {
      log_->log(LogLevel::info, "members_learned",
                {{"node", options_.name},
                 {"peer", link->peer().node},
                 {"count", std::to_string(r.learned.size())}});
    }
    update_neighbours();
    finish();
  }
}

void NodeImpl::update_neighbours() {
  const auto now = std::chrono::steady_clock::now();
  bool any_ready = false, any_all = false;
  for (const auto& [name, h] : hosted_) {
    if (!h->ready) continue;
    any_ready = true;
    any_all = any_all || h->policy.kind == NeighbourPolicy::Kind::all;
  }
  mesh_ = !any_ready || any_all;
  // Who is up (linked, or alive by heartbeat when links are kept only where needed).
  std::vector<std::string> up;
  for (const auto& [n, m] : table_.members())
    if (alive(m, now)) up.push_back(n);
  // What membership needs: the ring neighbours on either side, so that the links alone
  // join every member into one ring along which gossip reaches everyone.
  std::set<std::string> wanted;
  if (!mesh_ && !up.empty()) {
    wanted.insert(overlay::ring_successor(options_.name, up));
    wanted.insert(overlay::ring_predecessor(options_.name, up));
  }
  // Nodes drawn for the replicas already seen: the next replicas keep those first (then
  // their own earlier draws), so that a node's replicas with random(k) share their links.
  std::vector<std::string> drawn_here;
  for (auto& [name, h] : hosted_) {
    if (!h->ready) continue;
    // The replicas of this CRDT in the cluster, this one included: every member known to
    // host a namesake of the same type, up or down, and every member whose replicas are not
    // known here (never linked: assumed to host one, so that majority is never met by
    // undercounting).
    std::size_t membership = 1;
    for (const auto& [n, m] : table_.members()) {
      if (!m.ever_linked) {
        ++membership;
        continue;
      }
      membership += std::any_of(m.replicas.begin(), m.replicas.end(), [&](const auto& r) {
        return r.name == name && r.type == h->type;
      });
    }
    // A node that looks for peers and has found none yet (just started, its seeds not
    // answering) does not know how many there are, but knows it is not alone: it counts one
    // it has not found, so that majority is not met by this node by itself meanwhile.
    if (table_.members().empty() && looks_for_peers()) membership = 2;
    if (membership != h->membership) {
      h->membership = membership;
      h->replica.set_membership(membership);
    }
    // The linked nodes hosting a namesake of the same type, and its id on each.
    std::map<std::string, PeerId> namesakes;
    for (const auto& [n, m] : table_.members()) {
      if (!m.link) continue;
      for (const auto& r : m.replicas) {
        if (r.name != name) continue;
        if (r.type == h->type) {
          namesakes.emplace(n, r.id);
        } else if (type_mismatches_.insert({n, name, r.type}).second) {
          // Every delta between them would be refused as undecodable: say so once.
          log_->log(LogLevel::error, "replica_type_mismatch",
                    {{"node", options_.name},
                     {"peer", n},
                     {"replica", name},
                     {"type", hex(h->type)},
                     {"peer_type", hex(r.type)}});
        }
      }
    }
    std::vector<std::string> chosen;
    switch (h->policy.kind) {
      case NeighbourPolicy::Kind::random: {
        // Drawn among the members up, except linked ones whose gossip on the link showed
        // no namesake; those drawn but not linked yet are dialed (wanted) and pushed to
        // once linked.
        std::vector<std::string> candidates;
        for (const std::string& n : up) {
          const Member& m = table_.members().at(n);
          const bool announced = m.link && m.heartbeat_rose >= m.linked_since;
          if (!announced || namesakes.contains(n)) candidates.push_back(n);
        }
        std::vector<std::string> keep = drawn_here;
        keep.insert(keep.end(), h->drawn.begin(), h->drawn.end());
        h->drawn = overlay::draw(options_.name, std::move(candidates), keep, h->policy.k, rng_);
        drawn_here.insert(drawn_here.end(), h->drawn.begin(), h->drawn.end());
        for (const std::string& n : h->drawn) {
          wanted.insert(n);
          if (namesakes.contains(n)) chosen.push_back(n);
        }
        break;
      }
      case NeighbourPolicy::Kind::nodes:
        for (const std::string& n : h->policy.nodes)
          if (n != options_.name) wanted.insert(n);
        for (const auto& [n, id] : namesakes)
          if (h->policy.includes(n)) chosen.push_back(n);
        break;
      case NeighbourPolicy::Kind::all:
        for (const auto& [n, id] : namesakes) chosen.push_back(n);
        break;
    }
    std::vector<PeerId> ids;
    for (const std::string& n : chosen) ids.push_back(namesakes.at(n));
    h->pushing_to = std::move(chosen);
    if (ids != h->neighbour_ids) {
      h->neighbour_ids = ids;
      h->replica.set_neighbours(std::move(ids));
    }
  }
  wanted_ = std::move(wanted);
}

bool NodeImpl::looks_for_peers() const {
  return !options_.seeds.empty() || !options_.dns_seeds.empty() || !options_.membership.empty();
}

bool NodeImpl::alive(const Member& m, std::chrono::steady_clock::time_point now) const {
  if (m.link) return true;
  if (mesh_ || !Table::heartbeat_fresh(m, now, member_timeout())) return false;
  const Dial* d = m.address.empty() ? nullptr : table_.find_dial(m.address);
  return d == nullptr || now >= d->unreachable_until;
}

std::set<std::string_view> NodeImpl::wanted_member_addresses() const {
  std::set<std::string_view> out;
  if (mesh_) return out;
  for (const std::string& n : wanted_) {
    auto m = table_.members().find(n);
    if (m != table_.members().end() && !m->second.address.empty()) out.insert(m->second.address);
  }
  return out;
}

bool NodeImpl::dial_wanted(const std::string& address, const Dial& d,
                           const std::set<std::string_view>& wanted_addresses) const {
  if (mesh_) return true;
  if (table_.linked_count() == 0 && !d.from_gossip) return true;  // (re)joining via seeds
  if (address == probe_address_) return true;
  if (!d.peer.empty()) return wanted_.contains(d.peer);
  return wanted_addresses.contains(address);
}

void NodeImpl::choose_probe(std::chrono::steady_clock::time_point now) {
  probe_address_.clear();
  if (mesh_ || now < next_probe_) return;
  next_probe_ = now + member_timeout();
  std::set<std::string_view> down;  // addresses of members counted down here
  for (const auto& [n, m] : table_.members())
    if (!m.address.empty() && !alive(m, now)) down.insert(m.address);
  std::vector<const std::string*> candidates;
  for (const auto& [address, d] : table_.dials()) {
    if (d.is_self || d.in_progress || now < d.next || table_.linked_at(address)) continue;
    if (down.contains(address) || !d.from_gossip) candidates.push_back(&address);
  }
  if (candidates.empty()) return;
  std::uniform_int_distribution<std::size_t> pick(0, candidates.size() - 1);
  probe_address_ = *candidates[pick(rng_)];
}

void NodeImpl::close_unneeded_links(std::chrono::steady_clock::time_point now) {
  if (mesh_) return;
  for (const auto& [n, m] : table_.members()) {
    if (!m.link || wanted_.contains(n) || m.wants_us) continue;
    // Not before the peer's gossip on this link said whether it wants the link.
    if (m.heartbeat_rose < m.linked_since || now - m.linked_since < 2 * options_.gossip_interval)
      continue;
    log_->log(LogLevel::debug, "link_not_needed", {{"node", options_.name}, {"peer", n}});
    m.link->close("not needed");
  }
}

wire::Gossip NodeImpl::own_gossip(std::vector<RemovedMember> removed) const {
  wire::Gossip g;
  g.removed = std::move(removed);
  g.self = {options_.name, advertise_, incarnation_, heartbeat_};
  for (const auto& [name, h] : hosted_)
    if (h->ready) g.replicas.push_back({name, h->id, h->type});
  // Every member alive here, so that membership reaches nodes this one has no link to.
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [n, m] : table_.members()) {
    if (m.address.empty() || !alive(m, now)) continue;
    g.members.push_back({n, m.address, m.incarnation, m.heartbeat, static_cast<bool>(m.link),
                         mesh_ || wanted_.contains(n)});
  }
  return g;
}

std::uint64_t NodeImpl::wall_clock_ms() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, ms.count()));
}

void NodeImpl::broadcast_gossip(std::vector<RemovedMember> removed) {
  if (self_removed_) return;
  heartbeat_ = std::max(heartbeat_ + 1, wall_clock_ms());
  const std::string payload = wire::encode_gossip(own_gossip(std::move(removed)));
  for (const auto& [n, m] : table_.members())
    if (m.link) m.link->send(transport::FrameType::gossip, payload);
}

void NodeImpl::route(const std::string& replica, PeerId from, PeerId to, const SyncMessage& msg) {
  transport::Link::Ptr link;
  {
    std::lock_guard lock(mu_);
    auto found = table_.route(to);
    if (!found) return;  // not linked now: the protocol retransmits later
    link = *found;
  }
  link->send(transport::FrameType::sync, wire::encode_sync(replica, from, to, msg));
}

// ---- Node: the public face ----

Node::Node(NodeOptions options) : impl_(std::make_unique<NodeImpl>(std::move(options))) {}
Node::~Node() = default;  // NodeImpl's destructor stops the node
const std::string& Node::name() const { return impl_->name(); }
const std::string& Node::address() const { return impl_->address(); }
std::uint16_t Node::port() const { return impl_->port(); }
std::uint64_t Node::incarnation() const { return impl_->incarnation(); }
std::vector<std::string> Node::live_members() const { return impl_->live_members(); }
std::vector<std::string> Node::known_members() const { return impl_->known_members(); }
NodeMetrics Node::metrics() const { return impl_->metrics(); }
std::vector<MemberInfo> Node::members() const { return impl_->members(); }
bool Node::remove_member(const std::string& name) { return impl_->remove_member(name); }
bool Node::removed() const { return impl_->removed(); }
void Node::on_member_event(std::function<void(const MemberEvent&)> callback) {
  impl_->on_member_event(std::move(callback));
}
void Node::stop() { impl_->stop(); }
detail::HostedSlot Node::reserve_replica(const std::string& name, std::uint64_t type,
                                         const NeighbourPolicy& neighbours) {
  return impl_->reserve_replica(name, type, neighbours);
}
void Node::set_neighbours(const std::string& replica, NeighbourPolicy policy) {
  impl_->set_neighbours(replica, std::move(policy));
}
NeighbourPolicy Node::neighbours(const std::string& replica) const {
  return impl_->neighbours(replica);
}
std::vector<std::string> Node::pushing_to(const std::string& replica) const {
  return impl_->pushing_to(replica);
}
void Node::host_replica(const std::string& name, detail::HostedReplica replica) {
  impl_->host_replica(name, std::move(replica));
}
void Node::abandon_replica(const std::string& name) { impl_->abandon_replica(name); }

}  // namespace deltacrdt
