// Replica<T>: a ReplicaCore running on an Asio strand - the DeltaCrdt-style process an
// application holds. Every public method is thread-safe: it posts onto the replica's strand
// and completes through any Asio completion token (default: std::future), after the change
// is applied. A timer on the strand drives debounced pushes and the periodic sync.
//
// Lifetime: the state lives in a shared Impl that every queued handler keeps alive, so the
// Replica object may be destroyed at any time; destruction stops its timer. The transport
// passed in must outlive the Replica (detach the replica from it first).
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/unordered/unordered_flat_set.hpp>

#include "cluster/log.hpp"
#include "cluster/replica_core.hpp"
#include "cluster/storage.hpp"
#include "cluster/sync_transport.hpp"
#include "cluster/write_concern.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/hlc.hpp"
#include "transport/asio.hpp"

namespace deltacrdt {

// A change to one key, as seen by on_diffs: the new value, or nullopt when removed.
template <class K, class V>
struct KeyChange {
  using Key = K;
  K key;
  std::optional<V> value;
  friend bool operator==(const KeyChange&, const KeyChange&) = default;
};

// What Replica::put_chosen wrote: the key (nullopt: the chooser declined, nothing was
// written) and the write's sequence number.
template <class K>
struct ChosenWrite {
  std::optional<K> key;
  std::uint64_t seq = 0;
};

// How diffs are computed for a type; specialised for the keyed maps.
template <class T>
struct DiffTraits {
  static constexpr bool supported = false;
};

template <class K, class V, class H, class E>
struct DiffTraits<AWLWWMap<K, V, H, E>> {
  using Map = AWLWWMap<K, V, H, E>;
  using Change = KeyChange<K, V>;
  static constexpr bool supported = true;

  // Values of the keys a delta may change, captured before it is joined. Joined into a
  // state holding nothing (a catch-up of a new replica), every key of the delta is new:
  // its changes are read straight off the delta, in storage order, with no lookups.
  struct Pending {
    std::vector<std::pair<K, std::optional<V>>> before;
    std::vector<Change> all_new;
    bool from_bottom = false;
  };
  static std::optional<V> value(const Map& m, const K& k) {
    const V* v = m.find(k);
    return v ? std::optional<V>(*v) : std::nullopt;
  }
  static void capture(Pending& p, const Map& state, const Map& delta) {
    if (state.is_bottom()) {
      p.from_bottom = true;
      p.all_new.reserve(delta.size());
      delta.for_each([&](const K& k, const V& v) { p.all_new.push_back(Change{k, v}); });
      return;
    }
    state.for_each_key_affected_by(delta,
                                   [&](const K& k) { p.before.emplace_back(k, value(state, k)); });
  }
  // Reports keys whose visible value differs from what was captured.
  static void compare(Pending& p, const Map& state, std::vector<Change>& out) {
    if (p.from_bottom) {
      p.from_bottom = false;
      if (out.empty()) {
        out.swap(p.all_new);
      } else {
        out.insert(out.end(), std::make_move_iterator(p.all_new.begin()),
                   std::make_move_iterator(p.all_new.end()));
      }
      p.all_new.clear();
      return;
    }
    // Keys may repeat; report each once. The set holds indices into p.before, hashed and
    // compared by key, so a large delta (a whole state) costs O(keys), not O(keys^2).
    const auto hash = [&p](std::size_t i) { return H{}(p.before[i].first); };
    const auto eq = [&p](std::size_t a, std::size_t b) {
      return E{}(p.before[a].first, p.before[b].first);
    };
    boost::unordered_flat_set<std::size_t, decltype(hash), decltype(eq)> seen(0, hash, eq);
    seen.reserve(p.before.size());
    for (std::size_t i = 0; i < p.before.size(); ++i) {
      if (!seen.insert(i).second) continue;
      auto& [k, old] = p.before[i];
      std::optional<V> now = value(state, k);
      if (now != old) out.push_back(Change{k, std::move(now)});
    }
    p.before.clear();
  }
  // A local mutation has already applied itself: report the keys its delta holds. (Keys a
  // local delta only removes are not in it: see run_noting_removals.)
  static void local(const Map& state, const Map& delta, std::vector<Change>& out) {
    delta.for_each([&](const K& k, const V&) { out.push_back(Change{k, value(state, k)}); });
  }

  // Runs an arbitrary local mutator fn(Map&) -> Map on `state`, then reports the keys it
  // removed and that are still absent (a key removed and written again is reported by
  // local()). The map names them as they go (AWLWWMap::observe_erasures).
  template <class Mutator>
  static Map run_noting_removals(Map& state, Mutator& fn, std::vector<K>& erased) {
    const typename Map::EraseObserver note = [&erased](const K& k) { erased.push_back(k); };
    state.observe_erasures(&note);
    struct StopObserving {
      Map& m;
      ~StopObserving() { m.observe_erasures(nullptr); }
    } stop{state};
    return fn(state);
  }
  static void report_removals(const Map& state, std::vector<K>& erased, std::vector<Change>& out) {
    boost::unordered_flat_set<K, H, E> reported;
    for (K& k : erased) {
      if (!state.contains(k) && reported.insert(k).second) {
        out.push_back(Change{std::move(k), std::nullopt});
      }
    }
    erased.clear();
  }
};

// The diff types a Replica stores: real ones for keyed types, placeholders otherwise.
template <class T>
struct DiffTypes {
  using Change = int;
  struct Pending {};
};
template <class T>
requires DiffTraits<T>::supported struct DiffTypes<T> {
  using Change = typename DiffTraits<T>::Change;
  using Pending = typename DiffTraits<T>::Pending;
};

struct ReplicaOptions {
  SyncOptions sync;  // protocol timing and bounds; see cluster/protocol.hpp for defaults
  // Where the replica logs every change before acknowledging it (cluster/storage.hpp); null
  // keeps the state in memory only. Construct the replica with what the storage recovered
  // (recover_state) and its id.
  std::shared_ptr<Storage> storage;
  // Where received payloads that were rejected (malformed, or state transfers too large or
  // abandoned) are logged, at most once per `refusal_log_interval`, as `payload_rejected`
  // with `replica=log_name`; they are always counted in metrics(). Null: not logged. A Node
  // sets both to its own logger and the replica's name.
  std::shared_ptr<Logger> logger;
  std::string log_name;
  std::chrono::milliseconds refusal_log_interval{10000};
};

template <DeltaCrdt T>
class Replica {
  using Traits = DiffTraits<T>;

 public:
  Replica(asio::any_io_executor executor, ReplicaId id, SyncTransport& transport,
          ReplicaOptions options = {}, T state = T{}, std::uint64_t seq = 0,
          std::uint64_t incarnation = 0)
      : impl_(std::make_shared<Impl>(std::move(executor), id, transport, options, std::move(state),
                                     seq, incarnation)) {
    impl_->self_ref = impl_;
  }

  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;
  ~Replica() {
    asio::post(impl_->strand, [impl = impl_] {
      impl->stopped = true;
      impl->timer.cancel();
      if (impl->ack_timer) impl->ack_timer->cancel();
    });
  }

  ReplicaId id() const { return impl_->core.id(); }

  // c: the sequence number this replica's next delta will take (it only grows, across
  // restarts too when the replica has storage).
  template <class Token = asio::use_future_t<>>
  auto sequence(Token&& token = {}) {
    return run<std::uint64_t>([](Impl& impl) { return impl.core.seq(); },
                              std::forward<Token>(token));
  }

  // Hands a message from the transport to this replica (any thread). Messages wait in an
  // inbox that the strand empties from a posted handler and also after every local write:
  // acknowledgements then do not queue behind a long run of writes already posted to the
  // strand (which would hold the delta buffer until the writes were all applied).
  void deliver(PeerId from, SyncMessage msg) {
    bool was_empty = false;
    {
      std::lock_guard lock(impl_->inbox_mutex);
      was_empty = impl_->inbox.empty();
      impl_->inbox.push_back(Inbound{from, std::move(msg)});
      impl_->inbox_waiting.store(true, std::memory_order_release);
    }
    if (was_empty) {
      asio::post(impl_->strand, [impl = impl_] {
        if (impl->stopped) return;
        impl->pump();
      });
    }
  }

  // Sets the replicas this one sends to (unidirectional), at any time.
  void set_neighbours(std::vector<PeerId> peers) {
    impl_->submit([peers = std::move(peers)](Impl& impl) {
      impl.core.set_neighbours(peers);
      impl.pump();
    });
  }

  // Applies fn(T&) -> T (a mutator returning its delta) on the strand. Completes with the
  // delta's sequence number once applied; an exception from fn completes with that error.
  template <class F, class Token = asio::use_future_t<>>
  requires(!std::same_as<std::decay_t<Token>, WriteConcern>) auto mutate(F fn, Token&& token = {}) {
    return mutate(std::move(fn), WriteConcern{}, std::forward<Token>(token));
  }
  template <class F, class Token = asio::use_future_t<>>
  auto mutate(F fn, WriteConcern concern, Token&& token = {}) {
    return run<std::uint64_t>(
        [fn = std::move(fn)](Impl& impl) mutable {
          if constexpr (Traits::supported) {
            if (impl.on_diffs) {
              // on_diffs must hear of the keys fn removes, which its delta does not name.
              std::vector<typename Traits::Change::Key> erased;
              const std::uint64_t seq = impl.core.mutate(
                  impl.now(), [&](T& x) { return Traits::run_noting_removals(x, fn, erased); });
              Traits::report_removals(impl.core.state(), erased, impl.diffs);
              return seq;
            }
          }
          return impl.core.mutate(impl.now(), [&](T& x) { return fn(x); });
        },
        std::forward<Token>(token), concern);
  }

  // Runs fn(const T&) on the strand and completes with its result: reads of single keys
  // without copying the state.
  template <class F, class Token = asio::use_future_t<>>
  auto read(F fn, Token&& token = {}) {
    using R = std::invoke_result_t<F&, const T&>;
    return run<R>([fn = std::move(fn)](Impl& impl) mutable { return fn(impl.core.state()); },
                  std::forward<Token>(token));
  }

  // A consistent copy of the whole state.
  template <class Token = asio::use_future_t<>>
  auto snapshot(Token&& token = {}) {
    return run<T>([](Impl& impl) { return impl.core.state(); }, std::forward<Token>(token));
  }

  template <class Token = asio::use_future_t<>>
  auto metrics(Token&& token = {}) {
    return run<SyncMetrics>([](Impl& impl) { return impl.core.metrics(); },
                            std::forward<Token>(token));
  }

  // Registers a callback for changes of visible values (keyed types). Called on `executor`
  // (not the replica's strand, so a slow callback never delays replication), in order.
  template <class Callback>
  requires Traits::supported void on_diffs(asio::any_io_executor executor, Callback callback) {
    impl_->submit([ex = std::move(executor), cb = std::move(callback)](Impl& impl) mutable {
      impl.diff_strand.emplace(asio::make_strand(ex));
      impl.on_diffs = std::move(cb);
      impl.install_observer();
    });
  }

  // ---- typed helpers for AWLWWMap ----

  // Writes key = value with a timestamp from this replica's hybrid clock, after any value
  // this replica has seen for the key, so a causally later write always wins.
  template <class K, class V, class Token = asio::use_future_t<>>
  requires(Traits::supported &&
           !std::same_as<std::decay_t<Token>, WriteConcern>) auto put(K key, V value,
                                                                      Token&& token = {}) {
    return put(std::move(key), std::move(value), WriteConcern{}, std::forward<Token>(token));
  }
  template <class K, class V, class Token = asio::use_future_t<>>
  requires Traits::supported auto put(K key, V value, WriteConcern concern, Token&& token = {}) {
    return run<std::uint64_t>(
        [key = std::move(key), value = std::move(value)](Impl& impl) mutable {
          const std::uint64_t wall = impl.wall_ms();
          const auto* slot = impl.core.state().find_slot(key);
          const HlcTimestamp ts = slot ? impl.clock.observe(slot->ts, wall) : impl.clock.now(wall);
          const ReplicaId self = impl.core.id();
          return impl.core.mutate(
              impl.now(), [&](T& m) { return m.put(self, std::move(key), std::move(value), ts); });
        },
        std::forward<Token>(token), concern);
  }

  // Decides what to write with the state in view, then writes it like put, in one step on
  // the strand (no other write can come between): choose(const T&) returns
  // std::optional<std::pair<K, V>>, nullopt to write nothing. For writes that depend on what
  // is there, such as taking a key only while it is free. Completes with a ChosenWrite.
  template <class Choose, class Token = asio::use_future_t<>>
  requires Traits::supported auto put_chosen(Choose choose, WriteConcern concern,
                                             Token&& token = {}) {
    using Pair = typename std::invoke_result_t<Choose&, const T&>::value_type;
    using K = std::decay_t<typename Pair::first_type>;
    return run<ChosenWrite<K>>(
        [choose = std::move(choose)](Impl& impl) mutable {
          auto chosen = choose(std::as_const(impl.core.state()));
          ChosenWrite<K> out;
          if (!chosen) return out;
          // Named parts, not a structured binding: clang 14 cannot capture one in a lambda.
          auto& key = chosen->first;
          auto& value = chosen->second;
          out.key = key;
          const std::uint64_t wall = impl.wall_ms();
          const auto* slot = impl.core.state().find_slot(key);
          const HlcTimestamp ts = slot ? impl.clock.observe(slot->ts, wall) : impl.clock.now(wall);
          const ReplicaId self = impl.core.id();
          out.seq = impl.core.mutate(
              impl.now(), [&](T& m) { return m.put(self, std::move(key), std::move(value), ts); });
          return out;
        },
        std::forward<Token>(token), concern);
  }

  template <class K, class Token = asio::use_future_t<>>
  requires(Traits::supported &&
           !std::same_as<std::decay_t<Token>, WriteConcern>) auto remove(K key,
                                                                         Token&& token = {}) {
    return remove(std::move(key), WriteConcern{}, std::forward<Token>(token));
  }
  template <class K, class Token = asio::use_future_t<>>
  requires Traits::supported auto remove(K key, WriteConcern concern, Token&& token = {}) {
    return run<std::uint64_t>(
        [key = std::move(key)](Impl& impl) {
          const bool existed = impl.core.state().contains(key);
          const std::uint64_t seq =
              impl.core.mutate(impl.now(), [&](T& m) { return m.remove(key); });
          if (existed && impl.on_diffs)
            impl.diffs.push_back(typename Traits::Change{key, std::nullopt});
          return seq;
        },
        std::forward<Token>(token), concern);
  }

  template <class K, class Token = asio::use_future_t<>>
  requires Traits::supported auto get(K key, Token&& token = {}) {
    return read([key = std::move(key)](const T& m) { return Traits::value(m, key); },
                std::forward<Token>(token));
  }

 private:
  struct Inbound {
    PeerId from;
    SyncMessage msg;
  };

  struct Impl;
  // An operation submitted to run on the strand (see Impl::submit).
  struct Op {
    virtual ~Op() = default;
    virtual void run(Impl& impl) = 0;
  };
  template <class F>
  struct OpFn final : Op {
    explicit OpFn(F&& fn) : f(std::move(fn)) {}
    void run(Impl& impl) override { f(impl); }
    F f;
  };
  // Stands for "no executor of its own" when asking a handler for its executor.
  struct NoExecutor : asio::system_executor {};

  struct Impl {
    Impl(asio::any_io_executor ex, ReplicaId id, SyncTransport& t, ReplicaOptions o, T state,
         std::uint64_t seq, std::uint64_t incarnation)
        : strand(asio::make_strand(ex)),
          timer(strand),
          transport(t),
          core(id, o.sync, std::move(state), seq, incarnation),
          storage(std::move(o.storage)),
          logger(std::move(o.logger)),
          log_name(std::move(o.log_name)),
          throttle(o.refusal_log_interval) {
      if (storage) {
        core.attach_storage(storage.get());
        // Snapshots are encoded (rebuilt from the storage, by default), written and fsynced
        // on their own thread (ReplicaCore::SnapshotRunner).
        core.set_snapshot_runner([this](typename ReplicaCore<T>::EncodedState encoded,
                                        Storage::SnapshotWriter writer) {
          if (snapshot_thread.joinable()) snapshot_thread.join();
          snapshot_thread = std::thread([encoded = std::move(encoded), writer = std::move(writer),
                                         strand = this->strand, weak = self_ref]() mutable {
            Result<std::string> bytes = encoded();
            const bool written = bytes && static_cast<bool>(writer(*bytes));
            asio::post(strand, [weak, written] {
              if (auto self = weak.lock()) self->core.snapshot_finished(written);
            });
          });
        });
      }
    }
    ~Impl() {
      if (snapshot_thread.joinable()) snapshot_thread.join();
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    // Group commit: completions of durable writes wait here for one fsync, run by a handler
    // posted behind every write already queued on the strand.
    struct Waiting {
      virtual ~Waiting() = default;
      virtual void complete(std::exception_ptr error) = 0;
    };
    template <class F>
    struct WaitingFn final : Waiting {
      explicit WaitingFn(F fn) : f(std::move(fn)) {}
      void complete(std::exception_ptr error) override { f(error); }
      F f;
    };
    template <class F>
    void after_sync(F f) {
      awaiting_sync.push_back(std::make_unique<WaitingFn<F>>(std::move(f)));
      if (sync_posted) return;
      sync_posted = true;
      asio::post(strand, [self = shared()] {
        self->sync_posted = false;
        std::exception_ptr error;
        if (auto r = self->storage->sync(); !r) {
          self->core.count_storage_error();
          error = std::make_exception_ptr(std::system_error(r.error(), "replica: fsync failed"));
        }
        for (auto& w : std::exchange(self->awaiting_sync, {})) w->complete(error);
      });
    }

    Time now() const { return std::chrono::steady_clock::now().time_since_epoch(); }
    std::uint64_t wall_ms() const {
      return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
    }

    // Sends queued messages, hands diffs to the callback strand, and re-arms the timer.
    // After anything that may have produced output: takes in delivered messages, runs a
    // push or sync round that is due (the timer's handler may be queued behind many
    // writes), sends the output and re-arms the timer.
    void pump() {
      if (!in_batch && inbox_waiting.load(std::memory_order_acquire)) receive_inbox();
      if (const Time t = now(); !stopped && core.next_wakeup() <= t) core.tick(t);
      for (auto& out : core.take_outbox()) transport.send(core.id(), out.to, std::move(out.msg));
      if (!diffs.empty() && on_diffs) {
        asio::post(*diff_strand, [cb = on_diffs, d = std::exchange(diffs, {})] { cb(d); });
      }
      arm_timer();
    }

    void receive_inbox() {
      std::vector<Inbound> batch;
      {
        std::lock_guard lock(inbox_mutex);
        batch.swap(inbox);
        inbox_waiting.store(false, std::memory_order_relaxed);
      }
      if (stopped) return;
      const Time t = now();
      for (Inbound& in : batch) core.receive(t, in.from, in.msg);
      if (!ack_waits.empty()) check_acks();
      if (logger) log_refusals();
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

    void arm_timer() {
      if (stopped) return;
      const Time at = core.next_wakeup();
      if (at == ReplicaCore<T>::kNever || at >= armed_for) return;
      armed_for = at;
      timer.expires_at(std::chrono::steady_clock::time_point(
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(at)));
      timer.async_wait([self = shared(), at](boost::system::error_code ec) {
        if (self->armed_for == at) self->armed_for = ReplicaCore<T>::kNever;
        if (ec || self->stopped) return;
        self->core.tick(self->now());
        self->pump();
      });
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

    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer timer;
    // Operations submitted from any thread run on the strand in submission order, every
    // operation waiting at the time by one posted handler. Cheaper than a strand post each
    // (the strand's queue and lock, a copy of the shared state pointer) when writes come
    // in bursts; the order among submitted operations is the order of the submit calls.
    template <class F>
    void submit(F&& fn) {
      auto op = std::make_unique<OpFn<std::decay_t<F>>>(std::forward<F>(fn));
      bool was_empty = false;
      {
        std::lock_guard lock(submit_mutex);
        was_empty = submitted.empty();
        submitted.push_back(std::move(op));
      }
      if (was_empty) asio::post(strand, [self = shared()] { self->run_submitted(); });
    }
    // Delivered messages are taken in only after the whole batch ran (in_batch): an
    // operation submitted before a message arrived then always runs before the message is
    // joined. (Taking them in after the batch's first operation joined deltas that arrived
    // after a later on_diffs was submitted, before it was installed: those changes were
    // never reported.)
    void run_submitted() {
      std::vector<std::unique_ptr<Op>> batch;
      {
        std::lock_guard lock(submit_mutex);
        batch.swap(submitted);
      }
      std::size_t done = 0;
      in_batch = true;
      try {
        while (done < batch.size()) batch[done++]->run(*this);
      } catch (...) {
        in_batch = false;
        // A completion handler threw (out of io_context::run, as it would from its own
        // handler): the rest of the batch goes back in front of the queue, to run next.
        bool post = false;
        {
          std::lock_guard lock(submit_mutex);
          post = submitted.empty() && done < batch.size();
          submitted.insert(submitted.begin(), std::make_move_iterator(batch.begin() + done),
                           std::make_move_iterator(batch.end()));
        }
        if (post) asio::post(strand, [self = shared()] { self->run_submitted(); });
        throw;
      }
      in_batch = false;
      if (inbox_waiting.load(std::memory_order_acquire)) pump();
    }
    std::mutex submit_mutex;
    std::vector<std::unique_ptr<Op>> submitted;
    // Messages delivered and not yet received (any thread writes, the strand reads).
    std::mutex inbox_mutex;
    std::vector<Inbound> inbox;
    std::atomic<bool> inbox_waiting{false};
    SyncTransport& transport;
    ReplicaCore<T> core;
    HybridClock clock;
    Time armed_for = ReplicaCore<T>::kNever;
    bool stopped = false;
    bool in_batch = false;  // run_submitted is running operations (see there)
    std::weak_ptr<Impl> self_ref;
    std::optional<asio::strand<asio::any_io_executor>> diff_strand;
    // Writes waiting for neighbours' acknowledgements (WriteConcern::acked).
    struct AckWait {
      std::uint64_t seq;
      std::size_t required;
      std::chrono::steady_clock::time_point deadline;
      std::unique_ptr<Waiting> done;
    };
    std::vector<AckWait> ack_waits;
    std::optional<asio::steady_timer> ack_timer;

    // With storage, a write waiting for acknowledgements is first durable here: an acked or
    // majority write is never weaker than a durable one, even when no neighbour is needed,
    // and a failed fsync fails it (whatever the neighbours say).
    template <class F>
    void after_acks(std::uint64_t seq, WriteConcern concern, F f) {
      if (seq >= core.seq()) return f(nullptr);  // a no-op write: nothing to replicate
      auto wait = [this, seq, concern, f = std::move(f)](std::exception_ptr e) mutable {
        if (e) return f(e);
        const std::size_t required =
            concern.acks != 0 ? concern.acks : core.neighbour_count() / 2 + 1;
        if (core.neighbour_count() == 0 && concern.acks == 0) return f(nullptr);
        ack_waits.push_back(AckWait{seq, required,
                                    std::chrono::steady_clock::now() + concern.timeout,
                                    std::make_unique<WaitingFn<F>>(std::move(f))});
        check_acks();
      };
      if (!storage) return wait(nullptr);
      after_sync(std::move(wait));
    }

    // Completes waits whose acks arrived or whose deadline passed; re-arms the timer.
    void check_acks() {
      const auto now = std::chrono::steady_clock::now();
      auto next = std::chrono::steady_clock::time_point::max();
      for (std::size_t i = 0; i < ack_waits.size();) {
        AckWait& w = ack_waits[i];
        const std::size_t acked = core.acknowledged_count(w.seq);
        if (acked >= w.required || now >= w.deadline) {
          auto done = std::move(w.done);
          const std::size_t required = w.required;
          ack_waits.erase(ack_waits.begin() + static_cast<std::ptrdiff_t>(i));
          done->complete(acked >= required
                             ? nullptr
                             : std::make_exception_ptr(WriteConcernTimeout(acked, required)));
          continue;
        }
        next = std::min(next, w.deadline);
        ++i;
      }
      if (ack_waits.empty() || stopped) return;
      if (!ack_timer) ack_timer.emplace(strand);
      ack_timer->expires_at(next);
      ack_timer->async_wait([self = shared()](boost::system::error_code ec) {
        if (!ec && !self->stopped) self->check_acks();
      });
    }

    std::shared_ptr<Storage> storage;
    std::shared_ptr<Logger> logger;
    std::string log_name;
    LogThrottle throttle;
    std::uint64_t refusals_logged = 0;  // payloads_rejected + transfers_dropped last logged
    std::thread snapshot_thread;
    std::vector<std::unique_ptr<Waiting>> awaiting_sync;
    bool sync_posted = false;
    std::function<void(const std::vector<typename DiffTypes<T>::Change>&)> on_diffs;
    std::vector<typename DiffTypes<T>::Change> diffs;
    typename DiffTypes<T>::Pending pending{};
  };

  // Runs body(Impl&) on the strand, then completes `token` with its result (or exception);
  // under a durable write concern, only after the storage synced.
  template <class R, class Body, class Token>
  auto run(Body body, Token&& token, WriteConcern concern = {}) {
    return asio::async_initiate<Token, void(std::exception_ptr, R)>(
        [impl = impl_, body = std::move(body), concern](auto handler) mutable {
          impl->submit([body = std::move(body), concern,
                        handler = std::move(handler)](Impl& self) mutable {
            Impl* impl = &self;
            std::exception_ptr error;
            R result{};
            try {
              result = body(*impl);
            } catch (...) {
              error = std::current_exception();
            }
            impl->pump();
            // The sequence number of the write to wait for under `acked`, if one was made.
            std::optional<std::uint64_t> seq_of_write;
            if constexpr (std::is_same_v<R, std::uint64_t>) {
              seq_of_write = result;
            } else if constexpr (requires { result.key.has_value(); }) {
              if (result.key) seq_of_write = result.seq;
            }
            // A handler without an executor of its own (a callback, a future) completes right
            // here, not via another trip through the strand; others are dispatched to theirs.
            using Handler = decltype(handler);
            auto complete = [handler = std::move(handler), result = std::move(result),
                             impl](std::exception_ptr e) mutable {
              if constexpr (std::is_same_v<asio::associated_executor_t<Handler, NoExecutor>,
                                           NoExecutor>) {
                std::move(handler)(e, std::move(result));
              } else {
                auto ex = asio::get_associated_executor(handler, impl->strand);
                asio::dispatch(
                    ex, [handler = std::move(handler), e, result = std::move(result)]() mutable {
                      std::move(handler)(e, std::move(result));
                    });
              }
            };
            const bool wrote = !error && (seq_of_write || std::is_same_v<R, std::uint64_t>);
            if (concern.level == WriteConcern::Level::durable && wrote) {
              if (!impl->storage) {
                complete(std::make_exception_ptr(
                    std::logic_error("durable write concern on a replica without storage")));
              } else {
                impl->after_sync(std::move(complete));
              }
              return;
            }
            if (concern.level == WriteConcern::Level::acked && wrote && seq_of_write) {
              impl->after_acks(*seq_of_write, concern, std::move(complete));
              return;
            }
            complete(error);
          });
        },
        token);
  }

  std::shared_ptr<Impl> impl_;
};

}  // namespace deltacrdt
