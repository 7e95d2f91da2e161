// Replica<T>: a ReplicaCore run for an application - the DeltaCrdt-style process it holds.
// Every public method is thread-safe and completes once the change is applied: by default
// through a Future as cheap as the call itself (use_future, cluster/future.hpp), or by
// calling a callback(std::exception_ptr, result); with cluster/replica_asio.hpp included,
// through any Asio completion token (use_awaitable, deferred, bind_executor(...)). This
// header has no Asio: a replica runs on a ReplicaRuntime (cluster/replica_runtime.hpp).
//
// One turn at a time, one queue: operations, delivered messages, timer ticks and fsync
// rounds wait in a single queue in arrival order and run one at a time, on whichever thread
// holds the replica's turn. An operation that finds the replica idle (nothing running,
// nothing queued) runs at once on the caller's thread and, with a Future (or std::future, or
// a plain callback), completes there: a thread calling put(...).get() in a loop pays no thread hop,
// and the I/O threads hear of its deltas through the push timer, not a wake-up per write.
// Otherwise the operation queues and the runtime runs the queue. Completion handlers with
// an executor of their own (coroutines, bound handlers) always queue, and are dispatched to
// it.
//
// Lifetime: the state lives in a shared Impl that queued work keeps alive, so the Replica
// object may be destroyed at any time; destruction stops its timers. The transport passed
// in must outlive the Replica (detach the replica from it first).
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <set>
#include <cstdint>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cluster/diff_traits.hpp"
#include "cluster/future.hpp"
#include "cluster/log.hpp"
#include "cluster/read_concern.hpp"
#include "cluster/replica_core.hpp"
#include "cluster/replica_options.hpp"
#include "cluster/replica_runtime.hpp"
#include "cluster/storage.hpp"
#include "cluster/sync_transport.hpp"
#include "cluster/unique_function.hpp"
#include "cluster/write_concern.hpp"
#include "crdt/hlc.hpp"

namespace deltacrdt {

// What Replica::put_chosen wrote: the key (nullopt: the chooser declined, nothing was
// written) and the write's sequence number.
template <class K>
struct ChosenWrite {
  std::optional<K> key;
  std::uint64_t seq = 0;
};

// Completes a Replica operation through an Asio completion token: defined by
// cluster/replica_asio.hpp (the third argument is always AsioTokens). Declared only here.
struct AsioTokens;
template <class Token, class R, class Tag>
struct AsioCompletion;

// A completion token the replica can complete without Asio: use_future, or a callable
// taking (std::exception_ptr, R) that has no executor of its own (a handler bound to an
// executor names it as executor_type, as Asio's bind_executor does, and goes through Asio).
template <class Token, class R>
concept PlainCompletion =
    std::is_same_v<std::decay_t<Token>, UseFuture> ||
    (std::is_invocable_v<std::decay_t<Token>&, std::exception_ptr, R> &&
     !requires { typename std::decay_t<Token>::executor_type; });

template <DeltaCrdt T>
class Replica {
  using Traits = DiffTraits<T>;
  using Change = typename DiffTypes<T>::Change;

 public:
  using Options = ReplicaOptions<T>;

  // Runs on `runtime` (its post function runs the queue; its clock and notification poster
  // are the defaults for options that leave them unset).
  Replica(ReplicaRuntime runtime, ReplicaId id, SyncTransport& transport, Options options = {},
          T state = T{}, std::uint64_t seq = 0, std::uint64_t incarnation = 0)
      : impl_(std::make_shared<Impl>(std::move(runtime), id, transport, std::move(options),
                                     std::move(state), seq, incarnation)) {
    impl_->start(impl_);
  }
  // Runs on an executor, such as an io_context's (needs cluster/replica_asio.hpp).
  template <RuntimeExecutor Executor>
  Replica(const Executor& executor, ReplicaId id, SyncTransport& transport, Options options = {},
          T state = T{}, std::uint64_t seq = 0, std::uint64_t incarnation = 0)
      : Replica(ExecutorRuntime<Executor>::make(executor), id, transport, std::move(options),
                std::move(state), seq, incarnation) {}

  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;
  ~Replica() {
    impl_->enqueue(Work([](Impl& impl) { impl.stop(); }), true);
  }

  ReplicaId id() const { return impl_->core.id(); }

  // c: the sequence number this replica's next delta will take (it only grows, across
  // restarts too when the replica has storage).
  template <class Token = UseFuture>
  auto sequence(Token&& token = {}) {
    return read_impl<std::uint64_t>([](Impl& impl) { return impl.core.seq(); },
                                    std::forward<Token>(token));
  }

  // Hands a message from the transport to this replica (any thread; never blocks, never
  // runs the message on the caller's thread). It queues behind everything before it.
  void deliver(PeerId from, SyncMessage msg) {
    impl_->enqueue(Inbound{from, std::move(msg)}, false);
  }

  // Sets the replicas this one sends to (unidirectional), at any time. Always queued, never
  // run on the caller's thread: a transport calls it holding its own locks (a Node does),
  // and the first sync round it starts sends through that transport.
  void set_neighbours(std::vector<PeerId> peers) {
    impl_->enqueue(Work([peers = std::move(peers)](Impl& impl) {
                     impl.core.set_neighbours(peers);
                     impl.pump();
                     impl.check_ready();
                     impl.try_prune();
                   }),
                   false);
  }

  // The ids of replicas removed from the cluster (docs/node.md, "Member lifecycle"), all of
  // them, any order; a Node sets it whenever it learns a removal, after it stopped taking
  // anything from them. A type that can retire removed replicas' entries has them retired
  // (PruningOptions; docs/protocol.md, "Pruning removed replicas").
  void set_removed(std::vector<ReplicaId> ids) {
    impl_->enqueue(Work([ids = std::move(ids)](Impl& impl) mutable {
                     impl.set_removed(std::move(ids));
                   }),
                   false);
  }

  // How many replicas of this CRDT the cluster has, this one included: members that are
  // down count, removed ones do not. What WriteConcern::majority and all count; 0 (the
  // default) counts this replica and its neighbours. A Node sets it from its membership.
  // Writes already waiting keep the count they started with.
  void set_membership(std::size_t replicas) {
    impl_->enqueue(Work([replicas](Impl& impl) {
                     impl.membership = replicas;
                     impl.try_prune();
                   }),
                   false);
  }

  // Applies fn(T&) -> T (a mutator returning its delta). Completes with the delta's
  // sequence number once applied and as durable or acknowledged as `concern` asks; an
  // exception from fn completes with that error.
  template <class F, class Token = UseFuture>
  auto mutate(F fn, WriteConcern concern = {}, Token&& token = {}) {
    return write_impl<std::uint64_t>(
        concern,
        [fn = std::move(fn)](Impl& impl) mutable -> Outcome<std::uint64_t> {
          if constexpr (Traits::supported) {
            if (impl.on_diffs) {
              // on_diffs must hear of the keys fn removes, which its delta does not name.
              std::vector<typename Change::Key> erased;
              const std::uint64_t seq = impl.core.mutate(
                  impl.now(), [&](T& x) { return Traits::run_noting_removals(x, fn, erased); });
              Traits::report_removals(impl.core.state(), erased, impl.diffs);
              return {seq, seq};
            }
          }
          const std::uint64_t seq = impl.core.mutate(impl.now(), [&](T& x) { return fn(x); });
          return {seq, seq};
        },
        std::forward<Token>(token));
  }

  // Runs fn(const T&) and completes with its result: reads of single keys without copying
  // the state.
  template <class F, class Token = UseFuture>
  requires(!std::is_same_v<std::decay_t<Token>, ReadConcern>)
  auto read(F fn, Token&& token = {}) {
    using R = std::invoke_result_t<F&, const T&>;
    return read_impl<R>([fn = std::move(fn)](Impl& impl) mutable { return fn(impl.core.state()); },
                        std::forward<Token>(token));
  }

  // The same, once `concern` is met: the replica first asks its neighbours to catch it up
  // from their current states and waits until enough of them have (ReadConcern); only
  // neighbours that push to this replica can. Completes with ReadConcernTimeout, having run
  // nothing, when too few did within the concern's timeout. ReadConcern::local reads at once.
  template <class F, class Token = UseFuture>
  auto read(F fn, ReadConcern concern, Token&& token = {}) {
    using R = std::invoke_result_t<F&, const T&>;
    if (concern.level == ReadConcern::Level::local) return read(std::move(fn), std::forward<Token>(token));
    auto start = [impl = impl_, concern, fn = std::move(fn)](auto handler,
                                                              bool may_run_here) mutable {
      impl->enqueue(Work([concern, fn = std::move(fn),
                          handler = std::move(handler)](Impl& self) mutable {
                      self.read_after_catch_up(
                          concern, [&self, fn = std::move(fn), handler = std::move(handler)](
                                       std::exception_ptr e) mutable {
                            if (e) return std::move(handler)(e, R{});
                            R value = fn(self.core.state());
                            std::move(handler)(nullptr, std::move(value));
                          });
                    }),
                    may_run_here);
    };
    return complete_through<R>(std::move(start), std::forward<Token>(token));
  }

  // A consistent copy of the whole state.
  template <class Token = UseFuture>
  auto snapshot(Token&& token = {}) {
    return read_impl<T>([](Impl& impl) { return impl.core.state(); }, std::forward<Token>(token));
  }

  template <class Token = UseFuture>
  auto metrics(Token&& token = {}) {
    return read_impl<SyncMetrics>([](Impl& impl) { return impl.core.metrics(); },
                                  std::forward<Token>(token));
  }

  // Whether the replica is ready to serve reads as complete (ReadinessOptions): waiting,
  // or the reason it is ready.
  template <class Token = UseFuture>
  auto readiness(Token&& token = {}) {
    return read_impl<ReadyState>([](Impl& impl) { return impl.ready_state; },
                                 std::forward<Token>(token));
  }

  // Completes with the ReadyState once the replica is ready, at once if it is already.
  // A wait still pending when the replica is destroyed completes with ReadyState::waiting.
  template <class Token = UseFuture>
  auto when_ready(Token&& token = {}) {
    auto start = [impl = impl_](auto handler, bool may_run_here) mutable {
      impl->enqueue(Work([handler = std::move(handler)](Impl& self) mutable {
                      self.await_ready([handler = std::move(handler)](ReadyState s) mutable {
                        std::move(handler)(nullptr, s);
                      });
                    }),
                    may_run_here);
    };
    return complete_through<ReadyState>(std::move(start), std::forward<Token>(token));
  }

  // ---- typed helpers for AWLWWMap ----

  // Writes key = value with a timestamp from this replica's hybrid clock, after any value
  // this replica has seen for the key, so a causally later write always wins.
  template <class K, class V, class Token = UseFuture>
  requires Traits::supported auto put(K key, V value, WriteConcern concern = {},
                                      Token&& token = {}) {
    return write_impl<std::uint64_t>(
        concern,
        [key = std::move(key), value = std::move(value)](Impl& impl) mutable {
          const std::uint64_t seq = impl.put_stamped(std::move(key), std::move(value));
          return Outcome<std::uint64_t>{seq, seq};
        },
        std::forward<Token>(token));
  }

  // Decides what to write with the state in view, then writes it like put, in one turn (no
  // other write can come between): choose(const T&) returns std::optional<std::pair<K, V>>,
  // nullopt to write nothing. For writes that depend on what is there, such as taking a key
  // only while it is free. Completes with a ChosenWrite.
  template <class Choose, class Token = UseFuture>
  requires Traits::supported auto put_chosen(Choose choose, WriteConcern concern = {},
                                             Token&& token = {}) {
    using Pair = typename std::invoke_result_t<Choose&, const T&>::value_type;
    using K = std::decay_t<typename Pair::first_type>;
    return write_impl<ChosenWrite<K>>(
        concern,
        [choose = std::move(choose)](Impl& impl) mutable {
          Outcome<ChosenWrite<K>> out;
          auto chosen = choose(std::as_const(impl.core.state()));
          if (!chosen) return out;  // nothing written: completes at once, whatever the concern
          out.value.key = chosen->first;
          out.value.seq = impl.put_stamped(std::move(chosen->first), std::move(chosen->second));
          out.written = out.value.seq;
          return out;
        },
        std::forward<Token>(token));
  }

  template <class K, class Token = UseFuture>
  requires Traits::supported auto remove(K key, WriteConcern concern = {}, Token&& token = {}) {
    return write_impl<std::uint64_t>(
        concern,
        [key = std::move(key)](Impl& impl) {
          const bool existed = impl.core.state().contains(key);
          const std::uint64_t seq =
              impl.core.mutate(impl.now(), [&](T& m) { return m.remove(key); });
          if (existed && impl.on_diffs) impl.diffs.push_back(Change{key, std::nullopt});
          return Outcome<std::uint64_t>{seq, seq};
        },
        std::forward<Token>(token));
  }

  template <class K, class Token = UseFuture>
  requires(Traits::supported && !std::is_same_v<std::decay_t<Token>, ReadConcern>)
  auto get(K key, Token&& token = {}) {
    return read([key = std::move(key)](const T& m) { return Traits::value(m, key); },
                std::forward<Token>(token));
  }
  template <class K, class Token = UseFuture>
  requires Traits::supported auto get(K key, ReadConcern concern, Token&& token = {}) {
    return read([key = std::move(key)](const T& m) { return Traits::value(m, key); }, concern,
                std::forward<Token>(token));
  }

 private:
  struct Impl;
  // The one handler type of the queue: anything that runs in the replica's turn.
  using Work = UniqueFunction<void(Impl&)>;
  struct Inbound {
    PeerId from;
    SyncMessage msg;
  };
  using Item = std::variant<Work, Inbound>;

  // What an operation's body produced: its result and, for a write that made a delta, the
  // delta's sequence number (what a write concern waits for).
  template <class R>
  struct Outcome {
    R value{};
    std::optional<std::uint64_t> written;
  };

  struct Impl {
    Impl(ReplicaRuntime rt, ReplicaId id, SyncTransport& t, Options o, T state,
         std::uint64_t seq, std::uint64_t incarnation)
        : post(std::move(rt.post)),
          clock(o.clock ? std::move(o.clock) : std::move(rt.clock)),
          transport(t),
          core(id, o.sync, std::move(state), seq, incarnation),
          storage(std::move(o.storage)),
          logger(std::move(o.logger)),
          log_name(std::move(o.log_name)),
          throttle(o.refusal_log_interval),
          on_diffs(std::move(o.on_diffs)),
          diffs_poster(o.diffs_poster ? std::move(o.diffs_poster) : std::move(rt.notify)),
          report_initial_state(o.report_initial_state),
          readiness(o.readiness) {
      pruning = o.pruning;
      if (!post) throw std::invalid_argument("replica: the runtime has no post function");
      if (!clock) throw std::invalid_argument("replica: neither the options nor the runtime give a clock");
      if (on_diffs && !diffs_poster) {
        throw std::invalid_argument("replica: on_diffs needs a diffs_poster or a runtime's notify");
      }
    }
    ~Impl() {
      if (snapshot_thread.joinable()) snapshot_thread.join();
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    // Second half of construction, once the Impl is owned by a shared_ptr: nothing can run
    // before it ends, so the subscriber sees every change.
    void start(const std::shared_ptr<Impl>& self) {
      self_ref = self;
      std::weak_ptr<Impl> weak = self;
      alarm = clock->make_alarm([weak] {
        if (auto s = weak.lock()) s->enqueue(Work([](Impl& i) { i.on_alarm(); }), false);
      });
      ack_alarm = clock->make_alarm([weak] {
        if (auto s = weak.lock()) s->enqueue(Work([](Impl& i) { i.check_acks(); }), false);
      });
      prune_alarm = clock->make_alarm([weak] {
        if (auto s = weak.lock()) s->enqueue(Work([](Impl& i) { i.try_prune(); }), false);
      });
      if constexpr (Traits::supported) {
        if (on_diffs) {
          install_observer();
          if (report_initial_state) {
            Traits::initial(core.state(), diffs);
            post_diffs();
          }
        }
      }
      start_readiness(weak);
      if (storage) {
        core.attach_storage(storage.get());
        // Snapshots are encoded (rebuilt from the storage, by default), written and fsynced
        // on their own thread (ReplicaCore::SnapshotRunner).
        core.set_snapshot_runner([this, weak](typename ReplicaCore<T>::EncodedState encoded,
                                              Storage::SnapshotWriter writer) {
          if (snapshot_thread.joinable()) snapshot_thread.join();
          snapshot_thread = std::thread(
              [encoded = std::move(encoded), writer = std::move(writer), weak]() mutable {
                Result<std::string> bytes = encoded();
                const bool written = bytes && static_cast<bool>(writer(*bytes));
                if (auto s = weak.lock()) {
                  s->enqueue(Work([written](Impl& i) { i.core.snapshot_finished(written); }),
                             false);
                }
              });
        });
      }
    }

    void stop() {
      stopped = true;
      alarm->cancel();
      ack_alarm->cancel();
      prune_alarm->cancel();
      if (ready_alarm) ready_alarm->cancel();
      for (auto& done : std::exchange(ready_waits, {})) done(ready_state);
    }

    // ---- the turn and the queue ----

    // Runs `item` in the replica's turn: at once on this thread when `may_run_here` and the
    // replica is idle, else after everything queued before it, on the replica's executor.
    void enqueue(Item item, bool may_run_here) {
      {
        std::unique_lock lock(queue_mutex);
        if (may_run_here && !running && queue.empty()) {
          running = true;
          lock.unlock();
          TurnGuard turn{*this};
          run_item(item);
          finish_turn();
          return;
        }
        queue.push_back(std::move(item));
        if (running || drain_posted) return;
        drain_posted = true;
      }
      post([self = shared()] { self->drain(); });
    }

    // Runs what is queued, as one batch, on the runtime.
    void drain() {
      {
        std::lock_guard lock(queue_mutex);
        drain_posted = false;
        // The turn's holder posts a drain when it ends if anything is left.
        if (running || queue.empty()) return;
        running = true;
      }
      TurnGuard turn{*this};
      run_queued_batch();
      finish_turn();
    }

    // Runs everything queued now, in order (in the turn).
    void run_queued_batch() {
      std::vector<Item> batch;
      {
        std::lock_guard lock(queue_mutex);
        batch.swap(queue);
      }
      std::size_t done = 0;
      try {
        while (done < batch.size()) run_item(batch[done++]);
      } catch (...) {
        // A completion handler threw (out of io_context::run, as from its own handler): the
        // rest of the batch goes back in front of the queue, to run next.
        std::lock_guard lock(queue_mutex);
        queue.insert(queue.begin(), std::make_move_iterator(batch.begin() + done),
                     std::make_move_iterator(batch.end()));
        throw;
      }
    }

    // Ends the turn (also when an exception leaves it), posting a drain if work is waiting.
    struct TurnGuard {
      Impl& impl;
      ~TurnGuard() {
        bool post = false;
        {
          std::lock_guard lock(impl.queue_mutex);
          impl.running = false;
          post = !impl.queue.empty() && !impl.drain_posted;
          if (post) impl.drain_posted = true;
        }
        if (post) impl.post([self = impl.shared()] { self->drain(); });
      }
    };

    void run_item(Item& item) {
      if (auto* in = std::get_if<Inbound>(&item)) {
        if (const auto* started = std::get_if<CatchUpStarted>(&in->msg)) {
          on_catch_up_started(in->from, *started);
        } else if (!stopped) {
          core.receive(now(), in->from, in->msg);
        }
        received = true;
        peer_heard = true;
        return;
      }
      if (received) after_receiving();
      std::get<Work>(item)(*this);
    }
    void finish_turn() {
      if (received) after_receiving();
    }
    // After a run of received messages: acknowledgements may complete writes, refusals are
    // logged, and the output goes out.
    void after_receiving() {
      received = false;
      if (!ack_waits.empty() || !read_waits.empty()) check_acks();
      if (logger) log_refusals();
      pump();
      if (ready_state == ReadyState::waiting) check_ready();
    }

    // ---- readiness (see ReadinessOptions) ----

    void start_readiness(const std::weak_ptr<Impl>& weak) {
      started = now();
      if (!readiness.await_catch_up) {
        ready_state = ReadyState::immediate;
      } else if (!core.state().is_bottom()) {
        ready_state = ReadyState::recovered;
      } else {
        ready_alarm = clock->make_alarm([weak] {
          if (auto s = weak.lock()) s->enqueue(Work([](Impl& i) { i.check_ready(); }), false);
        });
        check_ready();
      }
    }

    void check_ready() {
      if (ready_state != ReadyState::waiting || stopped) return;
      peer_heard = peer_heard || core.neighbour_count() != 0;
      if (core.metrics().catchups_completed != 0) return become_ready(ReadyState::caught_up);
      const Time t = now();
      const Time alone_at = started + Time(readiness.alone_after);
      const Time give_up_at = started + Time(readiness.give_up_after);
      if (!peer_heard && t >= alone_at) return become_ready(ReadyState::alone);
      if (t >= give_up_at) return become_ready(ReadyState::waited_out);
      ready_alarm->set(peer_heard ? give_up_at : std::min(alone_at, give_up_at));
    }

    void become_ready(ReadyState why) {
      ready_state = why;
      ready_alarm->cancel();
      if (logger) {
        const LogLevel level = why == ReadyState::waited_out ? LogLevel::warn : LogLevel::info;
        logger->log(level,
                    why == ReadyState::waited_out ? "readiness_waited_out" : "replica_ready",
                    {{"replica", log_name}, {"reason", to_string(why)}});
      }
      for (auto& done : std::exchange(ready_waits, {})) done(why);
    }

    void await_ready(UniqueFunction<void(ReadyState)> done) {
      if (ready_state != ReadyState::waiting || stopped) return done(ready_state);
      ready_waits.push_back(std::move(done));
    }

    // ---- in the turn ----

    Time now() const { return clock->now(); }

    // Writes key = value stamped by the hybrid clock after any value seen for the key.
    template <class K, class V>
    std::uint64_t put_stamped(K key, V value) {
      const std::uint64_t wall = clock->wall_ms();
      const auto* slot = core.state().find_slot(key);
      const HlcTimestamp ts = slot ? hlc.observe(slot->ts, wall) : hlc.now(wall);
      const ReplicaId self = core.id();
      return core.mutate(now(),
                         [&](T& m) { return m.put(self, std::move(key), std::move(value), ts); });
    }

    // After anything that may have produced output: runs a push or sync round that is due,
    // sends the output, hands diffs to the subscriber and re-arms the alarm.
    void pump() {
      if (const Time t = now(); !stopped && core.next_wakeup() <= t) core.tick(t);
      for (auto& out : core.take_outbox()) transport.send(core.id(), out.to, std::move(out.msg));
      if (!diffs.empty() && on_diffs) post_diffs();
      arm_alarm();
    }

    void post_diffs() {
      diffs_poster([cb = on_diffs, d = std::exchange(diffs, {})]() mutable { cb(d); });
    }

    void arm_alarm() {
      if (stopped) return;
      const Time at = core.next_wakeup();
      if (at == ReplicaCore<T>::kNever || at >= armed_for) return;
      armed_for = at;
      alarm->set(at);
    }
    void on_alarm() {
      armed_for = ReplicaCore<T>::kNever;  // (a replaced alarm's late call re-arms harmlessly)
      if (stopped) return;
      core.tick(now());
      pump();
    }

    // Logs payloads refused since the last call (throttled; see ReplicaOptions::logger).
    void log_refusals() {
      const SyncMetrics m = core.metrics();
      const std::uint64_t refused = m.payloads_rejected + m.transfers_dropped;
      if (refused == refusals_logged) return;
      std::uint64_t held = 0;
      if (!logger->enabled(LogLevel::warn) || !throttle.allow("payload_rejected", held)) return;
      const std::string rejected = std::to_string(m.payloads_rejected);
      const std::string dropped = std::to_string(m.transfers_dropped);
      logger->log(LogLevel::warn, "payload_rejected",
                  {{"replica", log_name},
                   {"payloads_rejected_total", rejected},
                   {"transfers_dropped_total", dropped}});
      refusals_logged = refused;
    }

    void install_observer() {
      if constexpr (Traits::supported) {
        typename ReplicaCore<T>::Observer o;
        o.before = [this](const T& s, const T& d) { Traits::capture(pending, s, d); };
        o.after = [this](const T& s) { Traits::compare(pending, s, diffs); };
        o.after_local = [this](const T& s, const T& d) { Traits::local(s, d, diffs); };
        core.set_observer(std::move(o));
      }
    }

    std::shared_ptr<Impl> shared() { return self_ref.lock(); }

    // ---- write concerns ----

    using Completion = UniqueFunction<void(std::exception_ptr)>;

    // Group commit: completions of durable writes wait here for one fsync, run by a queued
    // item behind every write already queued.
    void after_sync(Completion done) {
      awaiting_sync.push_back(std::move(done));
      if (sync_queued) return;
      sync_queued = true;
      enqueue(Work([](Impl& i) { i.sync_storage(); }), false);
    }
    void sync_storage() {
      sync_queued = false;
      std::exception_ptr error;
      if (auto r = storage->sync(); !r) {
        core.count_storage_error();
        error = std::make_exception_ptr(std::system_error(r.error(), "replica: fsync failed"));
      }
      for (auto& done : std::exchange(awaiting_sync, {})) done(error);
    }

    // With storage, a write waiting for acknowledgements is first durable here: an acked,
    // majority or all write is never weaker than a durable one, even when no other replica
    // is needed, and a failed fsync fails it (whatever the neighbours say).
    void after_acks(std::uint64_t seq, WriteConcern concern, Completion done) {
      if (seq >= core.seq()) return done(nullptr);  // a no-op write: nothing to replicate
      Completion wait = [this, seq, concern, done = std::move(done)](std::exception_ptr e) mutable {
        if (e) return done(e);
        // How many others must acknowledge; for majority and all this replica counts too.
        const std::size_t n = members();
        const bool counts_self = concern.level != WriteConcern::Level::acked;
        const std::size_t others = concern.level == WriteConcern::Level::majority ? n / 2
                                   : concern.level == WriteConcern::Level::all    ? n - 1
                                                                                  : concern.acks;
        if (others == 0) return done(nullptr);
        ack_waits.push_back(AckWait{seq, others, counts_self ? 1u : 0u,
                                    clock->now() + Time(concern.timeout), std::move(done)});
        check_acks();
      };
      if (!storage) return wait(nullptr);
      after_sync(std::move(wait));
    }

    // N of WriteConcern::majority and all: as the host set it, else this replica and its
    // neighbours.
    std::size_t members() const {
      return membership != 0 ? std::max<std::size_t>(membership, 1) : 1 + core.neighbour_count();
    }

    // Completes waits whose acks arrived or whose deadline passed; re-arms the ack alarm.
    void check_acks() {
      const Time t = now();
      Time next = Time::max();
      for (std::size_t i = 0; i < ack_waits.size();) {
        AckWait& w = ack_waits[i];
        const std::size_t acked = core.acknowledged_count(w.seq);
        if (acked >= w.required || t >= w.deadline) {
          Completion done = std::move(w.done);
          const std::size_t required = w.required, self = w.self;
          ack_waits.erase(ack_waits.begin() + static_cast<std::ptrdiff_t>(i));
          done(acked >= required ? nullptr
                                 : std::make_exception_ptr(
                                       WriteConcernTimeout(acked + self, required + self)));
          continue;
        }
        next = std::min(next, w.deadline);
        ++i;
      }
      for (std::size_t i = 0; i < read_waits.size();) {
        ReadWait& w = read_waits[i];
        std::size_t caught_up = 0;
        for (const auto& [peer, transfer] : w.started) {
          caught_up += transfer != 0 && core.caught_up_by(peer) >= transfer ? 1 : 0;
        }
        if (caught_up >= w.required || t >= w.deadline) {
          Completion done = std::move(w.done);
          const std::size_t required = w.required;
          read_waits.erase(read_waits.begin() + static_cast<std::ptrdiff_t>(i));
          done(caught_up >= required
                   ? nullptr
                   : std::make_exception_ptr(ReadConcernTimeout(caught_up + 1, required + 1)));
          continue;
        }
        next = std::min(next, w.deadline);
        ++i;
      }
      if ((ack_waits.empty() && read_waits.empty()) || stopped) return;
      ack_alarm->set(next);
    }

    // ---- read concerns ----

    // Runs done(nullptr) once enough neighbours caught this replica up after now, or
    // done(ReadConcernTimeout) at the concern's deadline. `retiring`: see
    // ReplicaCore::request_catch_up.
    void read_after_catch_up(ReadConcern concern, Completion done,
                             const std::vector<ReplicaId>& retiring = {}) {
      const std::size_t n = members();
      const std::size_t required = concern.level == ReadConcern::Level::majority ? n / 2 : n - 1;
      if (required == 0) return done(nullptr);
      ReadWait w{++read_requests, required, clock->now() + Time(concern.timeout), {},
                 std::move(done)};
      for (PeerId peer : core.neighbours()) {
        w.started.emplace(peer, 0);
        core.request_catch_up(peer, w.request, retiring);
      }
      read_waits.push_back(std::move(w));
      pump();
      check_acks();
    }

    void on_catch_up_started(PeerId from, const CatchUpStarted& m) {
      for (ReadWait& w : read_waits) {
        if (w.request != m.request) continue;
        auto it = w.started.find(from);
        if (it != w.started.end()) it->second = m.transfer;
      }
    }

    // ---- pruning (PruningOptions; docs/protocol.md, "Pruning removed replicas") ----

    void set_removed(std::vector<ReplicaId> ids) {
      core.set_removed(ids);
      if constexpr (kRetirable) {
        // Ids no longer removed (their records expired) are no longer tracked.
        const auto gone = [&](ReplicaId r) { return !core.removed(r); };
        std::erase_if(prune_pending, gone);
        std::erase_if(pruned, gone);
        for (ReplicaId r : core.removed_ids()) {
          if (!core.state().retired(r) && !pruned.contains(r)) prune_pending.insert(r);
        }
        try_prune();
      }
    }

    // Starts a round when this replica retires and removed ids wait: caught up by every
    // other member (each agreeing, and knowing the ids removed), it holds all that any
    // replica will ever hold of them, and retires what it holds in one delta.
    void try_prune() {
      if constexpr (kRetirable) {
        std::erase_if(prune_pending, [&](ReplicaId r) { return core.state().retired(r); });
        if (stopped || prune_round || prune_pending.empty() || !pruning.enabled) return;
        const Time retry = now() + Time(pruning.retry_after);
        // Another replica retires (tried again when the neighbours change), or a member is
        // not linked now (tried again later).
        if (core.retiring_replica() != core.id()) return;
        if (core.neighbour_count() + 1 != members()) {
          prune_alarm->set(retry);
          return;
        }
        prune_round = true;
        std::vector<ReplicaId> ids(prune_pending.begin(), prune_pending.end());
        read_after_catch_up(
            ReadConcern::all(pruning.round_timeout),
            [this, ids, retry](std::exception_ptr e) {
              prune_round = false;
              if (e) {
                prune_alarm->set(std::max(retry, now()));
                return;
              }
              std::vector<ReplicaId> held;
              for (ReplicaId r : ids) {
                prune_pending.erase(r);
                pruned.insert(r);
                if (core.state().mentions(r) && !core.state().retired(r)) held.push_back(r);
              }
              if (held.empty()) return;
              core.mutate(now(), [&](T& x) {
                T delta;
                for (ReplicaId r : held) delta.join(x.retire(r, core.id()));
                return delta;
              });
              pump();
            },
            ids);
      }
    }

    // Runs an operation's body in the turn, then completes its handler: at once, or after
    // the fsync or the acknowledgements its write concern asks for.
    template <class R, class Body, class Handler>
    void execute(const std::optional<WriteConcern>& write, Body& body, Handler handler) {
      std::exception_ptr error;
      Outcome<R> out;
      try {
        out = body(*this);
      } catch (...) {
        error = std::current_exception();
      }
      pump();
      // Handlers are called right here, in the turn: one with an executor of its own was
      // wrapped to dispatch itself there (AsioCompletion).
      Completion complete = [handler = std::move(handler),
                             value = std::move(out.value)](std::exception_ptr e) mutable {
        std::move(handler)(e, std::move(value));
      };
      if (!error && write && out.written) {
        if (write->level == WriteConcern::Level::durable) {
          if (!storage) {
            return complete(std::make_exception_ptr(
                std::logic_error("durable write concern on a replica without storage")));
          }
          return after_sync(std::move(complete));
        }
        if (write->waits_for_peers()) {
          return after_acks(*out.written, *write, std::move(complete));
        }
      }
      complete(error);
    }

    Poster post;
    std::shared_ptr<ReplicaClock> clock;
    SyncTransport& transport;
    ReplicaCore<T> core;
    HybridClock hlc;
    std::weak_ptr<Impl> self_ref;

    // The queue (any thread) and the turn: `running` while a thread runs items.
    std::mutex queue_mutex;
    std::vector<Item> queue;
    bool running = false;
    bool drain_posted = false;

    // In the turn only, from here on.
    bool stopped = false;
    bool received = false;  // messages were received since the last after_receiving()
    std::unique_ptr<ReplicaClock::Alarm> alarm;  // next push or sync round
    Time armed_for = ReplicaCore<T>::kNever;
    std::unique_ptr<ReplicaClock::Alarm> ack_alarm;  // next write-concern deadline
    // Writes waiting for neighbours' acknowledgements (WriteConcern::acked).
    struct AckWait {
      std::uint64_t seq;
      std::size_t required;  // acknowledgements from others
      std::size_t self;      // 1 when this replica counts towards the concern (reported)
      Time deadline;
      Completion done;
    };
    std::vector<AckWait> ack_waits;
    std::size_t membership = 0;  // set_membership (0: unset)
    // Reads waiting for catch-ups (ReadConcern): the neighbours asked, each with the number
    // of the catch-up it started (0: not answered yet, or refused).
    struct ReadWait {
      std::uint64_t request;
      std::size_t required;  // catch-ups from others
      Time deadline;
      std::map<PeerId, std::uint64_t> started;
      Completion done;
    };
    std::vector<ReadWait> read_waits;
    std::uint64_t read_requests = 0;
    // Pruning: whether T can retire removed replicas' entries, the removed ids not handled
    // yet, those handled (retired here, or found held by nobody), a round in progress.
    static constexpr bool kRetirable = requires(T& t, const T& c, ReplicaId r) {
      t.retire(r, r);
      { c.retired(r) } -> std::same_as<bool>;
      { c.mentions(r) } -> std::same_as<bool>;
    };
    PruningOptions pruning;
    std::set<ReplicaId> prune_pending;
    std::set<ReplicaId> pruned;
    bool prune_round = false;
    std::unique_ptr<ReplicaClock::Alarm> prune_alarm;
    std::vector<Completion> awaiting_sync;
    bool sync_queued = false;

    std::shared_ptr<Storage> storage;
    std::shared_ptr<Logger> logger;
    std::string log_name;
    LogThrottle throttle;
    std::uint64_t refusals_logged = 0;  // payloads_rejected + transfers_dropped last logged
    std::thread snapshot_thread;

    typename DiffTypes<T>::Callback on_diffs;
    Poster diffs_poster;
    bool report_initial_state = false;
    std::vector<Change> diffs;

    ReadinessOptions readiness;
    ReadyState ready_state = ReadyState::waiting;
    Time started{};
    bool peer_heard = false;  // a neighbour was set or a message received
    std::unique_ptr<ReplicaClock::Alarm> ready_alarm;  // only while waiting
    std::vector<UniqueFunction<void(ReadyState)>> ready_waits;
    typename DiffTypes<T>::Pending pending{};
  };

  template <class R, class Body, class Token>
  auto read_impl(Body body, Token&& token) {
    return submit<R>(std::nullopt,
                     [body = std::move(body)](Impl& impl) mutable {
                       return Outcome<R>{body(impl), std::nullopt};
                     },
                     std::forward<Token>(token));
  }
  template <class R, class Body, class Token>
  auto write_impl(WriteConcern concern, Body body, Token&& token) {
    return submit<R>(concern, std::move(body), std::forward<Token>(token));
  }

  // Queues body(Impl&) -> Outcome<R> (or runs it at once: see the file comment) and
  // completes `token` with its result or exception.
  template <class R, class Body, class Token>
  auto submit(std::optional<WriteConcern> write, Body body, Token&& token) {
    auto start = [impl = impl_, write, body = std::move(body)](auto handler,
                                                                 bool may_run_here) mutable {
      impl->enqueue(Work([write, body = std::move(body),
                          handler = std::move(handler)](Impl& self) mutable {
                      self.template execute<R>(write, body, std::move(handler));
                    }),
                    may_run_here);
    };
    return complete_through<R>(std::move(start), std::forward<Token>(token));
  }

  // Turns `token` into a handler(std::exception_ptr, R) and calls start(handler,
  // may_run_here), which queues the operation; `may_run_here`: it may run, and the handler
  // be called, on the calling thread. Returns what the token returns (a Future, ...).
  template <class R, class Start, class Token>
  auto complete_through(Start start, Token&& token) {
    using Tok = std::decay_t<Token>;
    if constexpr (std::is_same_v<Tok, UseFuture>) {
      auto state = std::make_shared<detail::FutureState<R>>();
      start(detail::FutureHandler<R>(state), true);
      return Future<R>(std::move(state));
    } else if constexpr (PlainCompletion<Token, R>) {
      start(Tok(std::forward<Token>(token)), true);
    } else {
      static_assert(requires { sizeof(AsioCompletion<Tok, R, AsioTokens>); },
                    "not a callback(std::exception_ptr, R) nor use_future: an Asio completion "
                    "token needs cluster/replica_asio.hpp");
      return AsioCompletion<Tok, R, AsioTokens>::initiate(std::move(start),
                                                          std::forward<Token>(token));
    }
  }

  std::shared_ptr<Impl> impl_;
};

// Compiled once, into libdeltacrdt (see the end of cluster/replica_core.hpp).
#ifndef DELTACRDT_HEADER_ONLY
extern template class Replica<AWLWWMap<std::string, std::string>>;
extern template class Replica<PNCounter>;
#endif

}  // namespace deltacrdt
