// ReplicaCore<T>: the sans-I/O delta anti-entropy protocol for one replica of any DeltaCrdt
// (docs/protocol.md). It takes (now, input) - a local mutation, a message, a tick - and
// queues outgoing messages; it never touches sockets, threads or a clock, so the same code
// runs under the deterministic simulator and behind real TCP.
//
// Durable: the state X and the delta sequence number c. Volatile: the delta buffer D
// (seq -> delta, origin) and, per neighbour j, the next sequence number j needs (A[j]).
// Not thread-safe: the runner confines each core to one strand (or the simulator's loop).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cluster/digest_catchup.hpp"
#include "cluster/protocol.hpp"
#include "cluster/storage.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/bucketed.hpp"
#include "crdt/codec.hpp"
#include "crdt/concept.hpp"
#include "crdt/pncounter.hpp"
#include "crdt/streaming_decoder.hpp"

namespace deltacrdt {

// The state and sequence number a store recovered (snapshot, then every logged delta).
template <DeltaCrdt T>
Result<std::pair<T, std::uint64_t>> recover_state(const Recovered& r) {
  T state;
  if (!r.snapshot.empty()) {
    Result<T> s = decode<T>(r.snapshot);
    if (!s) return s.error();
    state = std::move(*s);
  }
  // Decoded in batches and joined with join_each, so that a type able to do so overlaps the
  // memory accesses of consecutive deltas (a large map replaying one-key deltas). A batch is
  // bounded in count and in encoded bytes, so replay never holds much of the log decoded.
  constexpr std::size_t kBatchDeltas = 64;
  constexpr std::size_t kBatchBytes = std::size_t{1} << 20;
  std::vector<T> batch;
  std::size_t batch_bytes = 0;
  for (std::size_t i = 0; i < r.deltas.size(); ++i) {
    Result<T> x = decode<T>(r.deltas[i].bytes);
    if (!x) return x.error();
    batch.push_back(std::move(*x));
    batch_bytes += r.deltas[i].bytes.size();
    if (batch.size() == kBatchDeltas || batch_bytes >= kBatchBytes || i + 1 == r.deltas.size()) {
      join_each(state, batch);
      batch.clear();
      batch_bytes = 0;
    }
  }
  return std::pair<T, std::uint64_t>(std::move(state), r.next_seq());
}

template <DeltaCrdt T>
class ReplicaCore {
 public:
  struct Outgoing {
    PeerId to;
    SyncMessage msg;
  };

  static constexpr Time kNever = Time::max();

  // `incarnation` distinguishes restarts of one replica id (it names state transfers, so a
  // restarted sender's transfer is never mistaken for one from before the restart).
  explicit ReplicaCore(ReplicaId self, SyncOptions options = {}, T state = T{},
                       std::uint64_t seq = 0, std::uint64_t incarnation = 0)
      : self_(self),
        options_(options),
        state_(std::move(state)),
        seq_(seq),
        buffer_base_(seq),
        incarnation_(incarnation) {}

  // Called around every change of the state: before(state, delta) just before `delta` is
  // joined (remote deltas and state transfers) and after(state) once it is; for a local
  // mutation, which applies itself, only after_local(state, delta). Used to compute diffs
  // for on_diffs callbacks; must not call back into the core.
  struct Observer {
    std::function<void(const T& state, const T& delta)> before;
    std::function<void(const T& state)> after;
    std::function<void(const T& state, const T& delta)> after_local;
  };
  void set_observer(Observer o) { observer_ = std::move(o); }

  ReplicaId id() const { return self_; }
  const T& state() const { return state_; }
  std::uint64_t seq() const { return seq_; }
  const SyncOptions& options() const { return options_; }

  // Applies fn(T&) -> T, a mutator that updates the state and returns its delta, buffers the
  // delta and schedules a push after push_debounce. Returns the sequence number of the buffer
  // slot that holds the delta (a neighbour's ack beyond it covers the delta), or seq()
  // unchanged when the mutation was a no-op (bottom delta). Local deltas written between two
  // pushes share one slot (see record), so the slot may be seq() - 1 for several calls.
  // With storage attached, the delta is logged too; if that fails the mutation stays applied
  // in memory and is still replicated, but mutate throws std::system_error: it is not
  // durable here.
  template <class F>
  std::uint64_t mutate(Time now, F&& fn) {
    T delta = fn(state_);
    if (delta.is_bottom()) return seq_;
    if (observer_.after_local) observer_.after_local(state_, delta);
    std::string bytes = storage_ ? encode(delta) : std::string();
    record(std::move(delta), self_);
    const std::uint64_t assigned = seq_ - 1;
    push_at_ = std::min(push_at_, now + options_.push_debounce);
    if (storage_) {
      if (auto r = storage_->append(seq_, bytes); !r) {
        ++metrics_.storage_errors;
        throw std::system_error(r.error(), "replica: logging a local delta failed");
      }
    }
    return assigned;
  }

  // Logs every change of the state to `storage` (not owned; must outlive the core) before it
  // is acknowledged, and snapshots it when its log passes options().snapshot_log_bytes.
  // Attach right after construction, with the state and seq the storage recovered.
  void attach_storage(Storage* storage) { storage_ = storage; }

  // Sets the replicas this one sends to (one direction: they need not send back). New
  // neighbours are brought up to date by state transfer on the next tick.
  void set_neighbours(const std::vector<PeerId>& peers) {
    std::map<PeerId, Neighbour> next;
    bool added = false;
    for (PeerId p : peers) {
      if (p == self_) continue;
      auto it = neighbours_.find(p);
      added = added || it == neighbours_.end();
      next.emplace(p, it != neighbours_.end() ? std::move(it->second) : Neighbour{});
    }
    neighbours_ = std::move(next);
    // Greet new neighbours promptly; the same set again (a node repeats it at every gossip)
    // changes nothing and must not cost a sync round.
    if (added) next_sync_ = std::min(next_sync_, Time::zero());
  }

  std::vector<PeerId> neighbours() const {
    std::vector<PeerId> out;
    for (const auto& [p, n] : neighbours_) out.push_back(p);
    return out;
  }

  void receive(Time now, PeerId from, const SyncMessage& m) {
    std::visit(
        [&](const auto& x) {
          using M = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<M, DeltaBatch>) {
            on_delta(from, x);
          } else if constexpr (std::is_same_v<M, DeltaAck>) {
            on_delta_ack(now, from, x);
          } else if constexpr (std::is_same_v<M, StateChunk>) {
            on_state_chunk(now, from, x);
          } else if constexpr (std::is_same_v<M, StateAck>) {
            on_state_ack(now, from, x);
          } else if constexpr (std::is_same_v<M, CatchUpRequest>) {
            on_catch_up_request(now, from, x);
          } else if constexpr (std::is_same_v<M, CatchUpStarted>) {
            // The answer to this replica's own request: its runner keeps track of those
            // (Replica's read concerns), and a core alone has nothing to do with it.
          } else if constexpr (!BucketedCrdt<T>) {
            // Digest catch-up needs key buckets; a type without them never starts one, and
            // ignores a peer's.
          } else if constexpr (std::is_same_v<M, DigestAnswer>) {
            on_digest_answer(now, from, x);
          } else {
            on_digest_request(now, from, x);
          }
        },
        m);
  }

  // Sends what is due: pushes of recent local writes, and on every sync_interval the
  // periodic round that retransmits whatever neighbours have not acknowledged.
  void tick(Time now) {
    const bool sync = now >= next_sync_;
    const bool push = now >= push_at_;
    if (!sync && !push) return;
    if (sync) next_sync_ = now + options_.sync_interval;
    if (push) push_at_ = kNever;
    for (auto& [peer, n] : neighbours_) {
      const bool stalled = now - n.last_progress >= options_.retransmit_after;
      if (n.transfer) {
        if (sync && stalled) {
          n.transfer->sent = n.transfer->acked;  // resend the unacknowledged window
          n.last_progress = now;
          send_chunks(peer, n);
        }
      } else if (n.digest) {
        if (sync) {
          std::vector<SyncMessage> out;
          n.digest->on_tick(now, out);
          for (SyncMessage& m : out) send(peer, std::move(m));
        }
      } else if (sync || push) {
        flush(now, peer, n, sync && stalled);
      }
    }
    if (sync) {
      drop_idle_digest_receivers(now);
      drop_idle_transfers(now);
    }
    collect_buffer();
    if (sync && storage_ && !snapshot_running_ &&
        storage_->log_bytes() > options_.snapshot_log_bytes) {
      start_snapshot();
    }
  }

  // Runs a snapshot's slow parts elsewhere: the runner gets `encoded`, which produces the
  // encoded state when called (on the runner's thread), and the storage's writer; it must
  // call snapshot_finished on this core's strand when the writer returned. With
  // snapshot_off_strand `encoded` rebuilds the state from the storage's snapshot basis;
  // otherwise it returns an encoding made here, on the strand (encoding is cheaper than
  // copying the state). Without a runner, snapshots are written synchronously in tick().
  using EncodedState = std::function<Result<std::string>()>;
  using SnapshotRunner = std::function<void(EncodedState encoded, Storage::SnapshotWriter writer)>;
  void set_snapshot_runner(SnapshotRunner runner) { snapshot_runner_ = std::move(runner); }
  void snapshot_finished(bool written) {
    snapshot_running_ = false;
    // A rebuild that failed (a log it could not read back) is not tried again: later
    // snapshots encode the state here instead.
    if (!written && snapshot_rebuilding_) snapshot_rebuild_failed_ = true;
    if (!written) ++metrics_.storage_errors;
    if (storage_) storage_->finish_snapshot(written);
  }

  // When tick() next has work to do (absent new input).
  Time next_wakeup() const { return std::min(push_at_, next_sync_); }

  std::vector<Outgoing> take_outbox() { return std::exchange(outbox_, {}); }

  // A[j]: the next sequence number neighbour j needs (what it has acknowledged), or 0 if
  // j is unknown.
  std::uint64_t acked_by(PeerId j) const {
    auto it = neighbours_.find(j);
    return it == neighbours_.end() || !it->second.known ? 0 : it->second.acked;
  }

  // How many neighbours have acknowledged the delta with sequence number `seq`.
  std::size_t acknowledged_count(std::uint64_t seq) const {
    std::size_t n = 0;
    for (const auto& [p, nb] : neighbours_) n += nb.known && nb.acked > seq ? 1 : 0;
    return n;
  }
  std::size_t neighbour_count() const { return neighbours_.size(); }

  // ---- read concerns: catch-ups on request (docs/protocol.md) ----

  // Asks `peer` to catch this replica up from a snapshot taken on receipt; it answers
  // CatchUpStarted with the catch-up's number (or 0: it does not push here). `retiring`
  // (sorted): the removed replicas this replica means to retire once caught up by all
  // (pruning); the peer refuses unless it agrees (on_catch_up_request).
  void request_catch_up(PeerId peer, std::uint64_t request,
                        std::vector<ReplicaId> retiring = {}) {
    send(peer, CatchUpRequest{request, std::move(retiring)});
  }

  // ---- pruning (docs/protocol.md, "Pruning removed replicas") ----

  // The replica ids of members removed from the cluster (any order): this replica agrees
  // to a retiring catch-up request only for ids among them.
  void set_removed(std::vector<ReplicaId> ids) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    removed_ = std::move(ids);
  }
  bool removed(ReplicaId id) const { return std::binary_search(removed_.begin(), removed_.end(), id); }
  const std::vector<ReplicaId>& removed_ids() const { return removed_; }

  // The replica that retires removed replicas' entries, as this one sees it: the smallest
  // id among itself and its neighbours (a replica whose neighbours are every other member).
  ReplicaId retiring_replica() const {
    ReplicaId least = self_;
    for (const auto& [p, n] : neighbours_) least = std::min(least, p);
    return least;
  }

  // The number of the newest catch-up from `peer` that completed and was joined here (0:
  // none). Numbers grow with every catch-up a sender starts (and with its restarts), so a
  // value at least n means this replica holds what the peer held when catch-up n began.
  std::uint64_t caught_up_by(PeerId peer) const {
    auto it = caught_up_by_.find(peer);
    return it == caught_up_by_.end() ? 0 : it->second;
  }

  // A storage failure the runner met on the core's behalf (a group commit's fsync).
  void count_storage_error() { ++metrics_.storage_errors; }

  SyncMetrics metrics() const {
    SyncMetrics m = metrics_;
    m.buffer_entries = buffer_.size();
    m.buffer_bytes = buffer_bytes_;
    for (const auto& [p, n] : neighbours_) {
      const std::uint64_t lag = n.known ? seq_ - std::min(seq_, n.acked) : seq_;
      m.max_ack_lag = std::max(m.max_ack_lag, lag);
    }
    return m;
  }

 private:
  struct Buffered {
    T delta;
    PeerId origin;
    std::size_t bytes;
  };

  // A state transfer towards one neighbour: chunks of a snapshot taken at sequence `seq`.
  struct Transfer {
    std::uint64_t id = 0;
    std::uint64_t seq = 0;
    std::shared_ptr<const std::string> bytes;
    std::uint64_t chunks = 0;
    std::uint64_t acked = 0;  // chunks [0, acked) confirmed
    std::uint64_t sent = 0;   // chunks [0, sent) sent at least once
  };

  struct Neighbour {
    bool known = false;           // acked is meaningful (j has our deltas before it)
    std::uint64_t acked = 0;      // A[j]
    std::uint64_t sent_upto = 0;  // deltas [acked, sent_upto) are in flight
    Time last_progress{};
    Time retry_at{};  // a declined catch-up starts again from then
    std::unique_ptr<Transfer> transfer;
    std::unique_ptr<detail::DigestSender<T>> digest;  // a digest catch-up in progress
  };

  // A state transfer arriving from one peer, taken in order. Types that can be decoded in
  // pieces are decoded chunk by chunk as they arrive (the transfer and the decoding overlap);
  // the bytes themselves are kept only when they must be logged, or to decode at the end.
  static constexpr bool kDecodeAsArriving = StreamDecodable<T>;
  using IncomingDecoder =
      std::conditional_t<kDecodeAsArriving, std::optional<StreamingDecoder<T>>, std::monostate>;
  struct Incoming {
    std::uint64_t id = 0;
    std::uint64_t seq = 0;
    std::uint64_t chunks = 0;
    std::uint64_t have = 0;
    std::string bytes;
    std::size_t size = 0;  // bytes received in order
    IncomingDecoder decoder{};
    Time last_seen{};
    std::map<std::uint64_t, std::string> ahead{};  // chunks past `have`, by number
  };
  // How far past the next expected chunk arriving chunks are kept (reordered on the way);
  // later ones are dropped and sent again. Bounds memory to this many chunks.
  static constexpr std::uint64_t kChunksHeldAhead = 16;

  // Bytes an incoming transfer holds or has decoded: what max_incoming_transfer_bytes bounds.
  static std::size_t held_bytes(const Incoming& in) {
    std::size_t n = in.size;
    for (const auto& [k, chunk] : in.ahead) n += chunk.size();
    return n;
  }

  void take_chunk(Incoming& in, std::string_view chunk) {
    if constexpr (kDecodeAsArriving) {
      if (!in.decoder) in.decoder.emplace();
      (void)in.decoder->feed(chunk);  // an error is final; finish() reports it
    }
    if (!kDecodeAsArriving || storage_) in.bytes += chunk;
    in.size += chunk.size();
    ++in.have;
  }

  // Whether a whole-state transfer from a peer other than `from` is under way here (a chunk
  // arrived recently; one whose sender went silent stops counting).
  bool whole_state_arriving(Time now, PeerId from) const {
    const Time quiet = 2 * std::max(options_.retransmit_after, options_.sync_interval);
    return std::any_of(incoming_.begin(), incoming_.end(), [&](const auto& kv) {
      return kv.first != from && kv.second.have < kv.second.chunks &&
             now - kv.second.last_seen <= quiet;
    });
  }

  static std::size_t size_of(const T& delta) {
    if constexpr (requires { delta.encoded_size_hint(); }) {
      return delta.encoded_size_hint();
    } else {
      return encode(delta).size();
    }
  }

  // Buffers a delta joined into the state. A local delta joins the buffer's last slot while
  // that slot is open: it holds local deltas only and nothing has yet read the sequence
  // number past it (no neighbour was sent it, no snapshot or catch-up was taken at seq_; see
  // seal_tail). Then seq_ stays as it is. Joining costs O(size of the delta), and a burst of
  // writes becomes one slot instead of one slot each, which is what the per-slot costs
  // (allocation, destruction, the join into each message) were dominated by. A slot is kept
  // at most max_sync_bytes, so it still fits one message. Remote deltas always take their
  // own slot: they were logged with c = seq_ + 1 before being buffered.
  void record(T delta, PeerId origin) {
    const std::size_t bytes = size_of(delta);
    buffer_bytes_ += bytes;
    if (origin == self_ && tail_open_ && !buffer_.empty() &&
        buffer_.back().bytes + bytes <= options_.max_sync_bytes) {
      Buffered& tail = buffer_.back();
      tail.delta.join(std::move(delta));
      tail.bytes += bytes;
      return;
    }
    buffer_.push_back(Buffered{std::move(delta), origin, bytes});
    ++seq_;
    tail_open_ = origin == self_ && bytes < options_.max_sync_bytes;
  }

  // Called wherever seq_ is read as a boundary (what a neighbour was sent, a snapshot's or a
  // catch-up's sequence number): the last slot must not change after that.
  void seal_tail() { tail_open_ = false; }

  void send(PeerId to, SyncMessage m) { outbox_.push_back(Outgoing{to, std::move(m)}); }

  // BP: deltas that came from j are never sent back to j; skip them where they lead.
  void skip_own_deltas(PeerId j, Neighbour& n) {
    while (n.acked < seq_ && n.acked >= buffer_base_ &&
           buffer_[n.acked - buffer_base_].origin == j) {
      ++n.acked;
    }
    n.sent_upto = std::max(n.sent_upto, n.acked);
  }

  // Sends j the deltas it lacks, joined into batches of at most max_sync_bytes. With
  // `retransmit`, starts again from what j acknowledged; otherwise only what was never sent.
  void flush(Time now, PeerId j, Neighbour& n, bool retransmit) {
    seal_tail();
    if (!n.known || n.acked < buffer_base_) {
      if (now >= n.retry_at) start_transfer(now, j, n);
      return;
    }
    skip_own_deltas(j, n);
    if (n.acked == seq_) {
      n.last_progress = now;
      return;
    }
    if (retransmit || n.sent_upto == n.acked) n.last_progress = now;
    std::uint64_t l = retransmit ? n.acked : std::max(n.acked, n.sent_upto);
    while (l < seq_) {
      const std::uint64_t first = l;
      const T* single = nullptr;  // the group's only slot: encoded as is, not copied
      T group;
      std::size_t bytes = 0;
      std::size_t slots = 0;
      for (; l < seq_; ++l) {
        const Buffered& b = buffer_[l - buffer_base_];
        if (b.origin == j) continue;
        if (b.bytes > options_.max_sync_bytes) {
          if (slots != 0) break;
          // One delta too large for any message: a state transfer carries it in chunks.
          start_transfer(now, j, n);
          return;
        }
        if (slots != 0 && bytes + b.bytes > options_.max_sync_bytes) break;
        if (slots == 0) {
          single = &b.delta;
        } else {
          if (slots == 1) group.join(*single);
          group.join(b.delta);
        }
        bytes += b.bytes;
        ++slots;
      }
      if (slots == 0) break;  // only j's own deltas remain; its next ack skips them
      DeltaBatch m{first, l, slots == 1 ? encode(*single) : encode(group)};
      ++metrics_.deltas_sent;
      metrics_.delta_bytes_sent += m.payload.size();
      send(j, std::move(m));
    }
    n.sent_upto = seq_;
  }

  void on_delta(PeerId from, const DeltaBatch& m) {
    Result<T> d = decode<T>(m.payload);
    if (!d) {
      ++metrics_.payloads_rejected;  // unacknowledged: the sender retransmits
      return;
    }
    ++metrics_.deltas_received;
    metrics_.delta_bytes_received += m.payload.size();
    // Persisted before acknowledged: an ack never covers what a crash could take back.
    if (!absorb(std::move(*d), from, m.payload.size(), m.payload) || !sync_storage()) return;
    send(from, DeltaAck{m.first, m.last});
  }

  // RR: only the part of d that the state lacks enters the state and the buffer.
  // `raw`: d's encoding, when at hand (logged as is). `digest_part_of` names the digest
  // catch-up d belongs to, if any: every other catch-up arriving here is told about d first
  // (see DigestReceiver::note_join). `whole_state`: d is a neighbour's whole state (a
  // completed state transfer). Returns false when d could not be logged: then nothing was
  // joined, and the caller must not acknowledge it.
  bool absorb(T d, PeerId from, std::size_t received_bytes, std::string_view raw = {},
              const void* digest_part_of = nullptr, bool whole_state = false) {
    if constexpr (BucketedCrdt<T>) {
      for (auto& [peer, in] : digest_in_) {
        if (&in.rx != digest_part_of) in.rx.note_join(d);
      }
    }
    if (whole_state && received_bytes > options_.max_buffer_bytes) {
      // A whole state larger than the buffer may ever hold: join it directly. Its novel part
      // could not be buffered anyway, so every neighbour is moved past the buffer and
      // catches up - except the sender, if it had everything before: it has this too.
      if (!persist(d, raw, seq_ + 1)) return false;
      if (observer_.before) observer_.before(state_, d);
      state_.join(std::move(d));  // takes d over when this replica holds nothing yet
      if (observer_.after) observer_.after(state_);
      auto sender = neighbours_.find(from);
      const bool sender_current = sender != neighbours_.end() && sender->second.known &&
                                  !sender->second.transfer && !sender->second.digest &&
                                  sender->second.acked == seq_;
      ++seq_;
      buffer_.clear();
      buffer_bytes_ = 0;
      buffer_base_ = seq_;
      seal_tail();
      if (sender_current) {
        sender->second.acked = seq_;
        sender->second.sent_upto = seq_;
      }
      return true;
    }
    if (!forwards_to_others(from)) {
      // BP: no neighbour but `from` would ever be sent this delta, so its novel part need
      // not be computed or buffered (a neighbour added later gets a state transfer).
      if (!persist(d, raw, seq_)) return false;
      if (observer_.before) observer_.before(state_, d);
      state_.join(std::move(d));
      if (observer_.after) observer_.after(state_);
      // The state changed under the same sequence number: a snapshot kept for catch-ups
      // (valid while seq_ is unchanged) no longer holds all of it. Catch-ups in flight keep
      // theirs (they go to `from`, which has d); the next one takes a fresh snapshot.
      snapshot_.reset();
      digest_snapshot_.reset();
      return true;
    }
    // Nothing to join (an empty delta or state, as a replica that holds nothing sends):
    // nothing to keep or forward. Kept, an empty delta received by replicas that hold
    // nothing would travel round every cycle of neighbours for ever.
    if (d.is_bottom()) {
      metrics_.redundant_bytes_removed += received_bytes;
      return true;
    }
    // Δ(d, ⊥) = d: a replica holding nothing keeps the whole delta, without computing it.
    const bool was_bottom = state_.is_bottom();
    T novel = was_bottom ? T{} : state_.novel_part(d);
    if (!was_bottom && novel.is_bottom()) {
      metrics_.redundant_bytes_removed += received_bytes;
      return true;
    }
    if (!persist(was_bottom ? d : novel, raw, seq_ + 1)) return false;
    if (was_bottom) novel = std::move(d);
    if (observer_.before) observer_.before(state_, novel);
    state_.join(novel);
    if (observer_.after) observer_.after(state_);
    const std::size_t before = buffer_bytes_;
    record(std::move(novel), from);
    const std::size_t kept = buffer_bytes_ - before;
    if (received_bytes > kept) metrics_.redundant_bytes_removed += received_bytes - kept;
    return true;
  }

  // Logs a delta about to be joined, with c = `seq` after it. `raw` is its encoding if at
  // hand (a received delta's bytes: replaying it joins the same as its novel part).
  bool persist(const T& delta, std::string_view raw, std::uint64_t seq) {
    if (!storage_) return true;
    const auto r = raw.empty() ? storage_->append(seq, encode(delta)) : storage_->append(seq, raw);
    if (!r) ++metrics_.storage_errors;
    return static_cast<bool>(r);
  }

  // Makes what was logged durable before it is acknowledged (one fsync for a batch).
  bool sync_storage() {
    if (!storage_) return true;
    if (auto r = storage_->sync(); !r) {
      ++metrics_.storage_errors;
      return false;
    }
    return true;
  }

  bool forwards_to_others(PeerId from) const {
    return std::any_of(neighbours_.begin(), neighbours_.end(),
                       [&](const auto& n) { return n.first != from; });
  }

  // Acks advance A[j] only contiguously: an ack for a later batch whose predecessor was
  // lost must not let the sender skip the lost one.
  void on_delta_ack(Time now, PeerId from, const DeltaAck& m) {
    auto it = neighbours_.find(from);
    if (it == neighbours_.end()) return;
    Neighbour& n = it->second;
    if (!n.known || n.transfer || m.first > n.acked || m.last <= n.acked || m.last > seq_) return;
    n.acked = m.last;
    n.last_progress = now;
    skip_own_deltas(from, n);
  }

  void note_caught_up(PeerId from, std::uint64_t transfer) {
    std::uint64_t& newest = caught_up_by_[from];
    newest = std::max(newest, transfer);
  }

  // A neighbour asks to be caught up now (it reads with a read concern). A catch-up towards
  // it that has not taken its snapshot yet (a digest probe in flight) will take it after
  // this request and serves as is; otherwise one starts afresh. Non-neighbours are refused:
  // this replica never pushes to them.
  //
  // A retiring request (pruning) is refused unless this replica knows every id in it removed
  // (so its snapshot, taken after that, holds all it will ever hold of them) and takes the
  // sender for the retiring replica: two replicas never both retire one id.
  void on_catch_up_request(Time now, PeerId from, const CatchUpRequest& m) {
    auto it = neighbours_.find(from);
    const bool agreed =
        m.retiring.empty() ||
        (retiring_replica() == from &&
         std::all_of(m.retiring.begin(), m.retiring.end(), [&](ReplicaId r) { return removed(r); }));
    if (it == neighbours_.end() || !agreed) {
      send(from, CatchUpStarted{m.request, 0});
      return;
    }
    Neighbour& n = it->second;
    const bool pending_snapshot = n.digest && n.digest->snapshot() == nullptr;
    if (!pending_snapshot) start_transfer(now, from, n);
    const std::uint64_t id = n.transfer ? n.transfer->id : n.digest ? n.digest->id() : 0;
    send(from, CatchUpStarted{m.request, id});
  }

  // Catch-up of neighbour j: by digests when the type supports it and the state is large
  // enough to benefit, otherwise (and for a neighbour that turns out to hold nothing) by
  // sending the whole state.
  void start_transfer(Time now, PeerId j, Neighbour& n) {
    n.transfer.reset();
    n.digest.reset();
    if constexpr (BucketedCrdt<T>) {
      // (Below 1 KiB per message the digest rounds cannot fit a useful fan-out.)
      if (options_.digest_catchup && state_.size() >= options_.digest_min_entries &&
          options_.max_sync_bytes >= 1024) {
        n.digest = std::make_unique<detail::DigestSender<T>>(next_transfer_id(), options_, now);
        n.last_progress = now;
        ++metrics_.catchup_rounds;
        ++metrics_.digest_catchups;
        std::vector<SyncMessage> out;
        n.digest->start(out);
        for (SyncMessage& m : out) send(j, std::move(m));
        return;
      }
    }
    start_state_transfer(now, j, n);
  }

  std::uint64_t next_transfer_id() {
    return (incarnation_ << 32) | (++transfers_started_ & 0xffffffffu);
  }

  void start_state_transfer(Time now, PeerId j, Neighbour& n) {
    n.digest.reset();
    seal_tail();
    if (!snapshot_ || snapshot_seq_ != seq_) {
      snapshot_ = std::make_shared<const std::string>(encode(state_));
      snapshot_seq_ = seq_;
    }
    auto t = std::make_unique<Transfer>();
    t->id = next_transfer_id();
    t->seq = snapshot_seq_;
    t->bytes = snapshot_;
    const std::size_t chunk = std::max<std::size_t>(1, options_.max_sync_bytes);
    t->chunks = std::max<std::uint64_t>(1, (t->bytes->size() + chunk - 1) / chunk);
    n.transfer = std::move(t);
    n.last_progress = now;
    ++metrics_.catchup_rounds;
    send_chunks(j, n);
  }

  void send_chunks(PeerId j, Neighbour& n) {
    Transfer& t = *n.transfer;
    const std::size_t chunk = std::max<std::size_t>(1, options_.max_sync_bytes);
    while (t.sent < t.chunks && t.sent < t.acked + options_.transfer_window) {
      const std::size_t at = static_cast<std::size_t>(t.sent) * chunk;
      StateChunk m{t.id, t.sent, t.chunks, t.seq,
                   t.bytes->substr(at, std::min(chunk, t.bytes->size() - at))};
      ++metrics_.catchup_chunks_sent;
      metrics_.catchup_bytes_sent += m.bytes.size();
      send(j, std::move(m));
      ++t.sent;
    }
  }

  void on_state_ack(Time now, PeerId from, const StateAck& m) {
    auto it = neighbours_.find(from);
    if (it == neighbours_.end() || !it->second.transfer) return;
    Neighbour& n = it->second;
    Transfer& t = *n.transfer;
    if (m.declined) {
      // j is receiving another whole state: try again later, by digests where possible.
      if (m.transfer == t.id) {
        n.transfer.reset();
        n.last_progress = now;
        n.retry_at = now + options_.retransmit_after;
      }
      return;
    }
    if (m.transfer != t.id || m.have == t.acked) return;
    // An ack of no chunk at all, below what j confirmed before, means j lost its partial
    // copy (it restarted): rewind. Any other lower ack is a late one, reordered behind a
    // later ack, and is ignored: rewinding on those fed on itself, as the resent window's
    // duplicate acks arrived out of order in turn (a storm of retransmissions).
    if (m.have < t.acked && m.have != 0) return;
    const bool lost = m.have < t.acked;
    t.acked = std::min(m.have, t.chunks);
    t.sent = lost ? t.acked : std::max(t.sent, t.acked);
    n.last_progress = now;
    if (t.acked < t.chunks) {
      send_chunks(from, n);
      return;
    }
    // j now holds our state as of t.seq: ordinary deltas carry on from there.
    n.known = true;
    n.acked = t.seq;
    n.sent_upto = t.seq;
    n.transfer.reset();
    flush(now, from, n, false);
  }

  // Chunks are taken in order only (a gap waits for the sender's retransmission). The
  // state is joined only once complete: a partial state must never be joined with the
  // sender's whole causal context.
  void on_state_chunk(Time now, PeerId from, const StateChunk& m) {
    auto found = incoming_.find(from);
    if (found == incoming_.end() || found->second.id != m.transfer) {
      if (completed_.contains(from) && completed_[from] == m.transfer) {
        send_state_ack(from, m.transfer, m.chunks);  // a late duplicate of a finished transfer
        incoming_.erase(from);
        return;
      }
      // Every chunk holds at least one byte: a count beyond the byte bound is a lie.
      if (m.chunks == 0 || m.chunks > options_.max_incoming_transfer_bytes) {
        ++metrics_.payloads_rejected;
        return;
      }
      if (whole_state_arriving(now, from)) {
        // One whole state at a time: a second would cost as much again to receive and
        // decode, and add nothing once the first is in. The sender catches up later (by
        // digests, which find little to send by then).
        ++metrics_.catchups_declined;
        send(from, StateAck{m.transfer, 0, /*declined=*/true});
        return;
      }
      Incoming fresh;
      fresh.id = m.transfer;
      fresh.seq = m.seq;
      fresh.chunks = m.chunks;
      found = incoming_.insert_or_assign(from, std::move(fresh)).first;
    }
    Incoming& in = found->second;
    in.last_seen = now;
    if (held_bytes(in) + m.bytes.size() > options_.max_incoming_transfer_bytes) {
      // Larger than this replica accepts: forget it (the sender's retransmissions start a
      // new one, which ends the same way; raise the bound if the state is legitimately that
      // large).
      ++metrics_.transfers_dropped;
      incoming_.erase(found);
      return;
    }
    if (m.chunks == in.chunks && m.index >= in.have) {
      if (m.index == in.have) {
        take_chunk(in, m.bytes);
        // Chunks that overtook this one on the way are taken now, in order.
        for (auto it = in.ahead.find(in.have); it != in.ahead.end(); it = in.ahead.find(in.have)) {
          take_chunk(in, it->second);
          in.ahead.erase(it);
        }
      } else if (m.index - in.have < kChunksHeldAhead) {
        in.ahead.try_emplace(m.index, m.bytes);
      }
    }
    if (in.have < in.chunks) {
      send_state_ack(from, in.id, in.have);
      return;
    }
    // The last chunk is acknowledged only once the state is joined and durable.
    Result<T> state = Errc::truncated;
    if constexpr (kDecodeAsArriving) {
      if (in.decoder) state = in.decoder->finish();
    } else {
      state = decode<T>(in.bytes);
    }
    const std::uint64_t id = in.id;
    const std::uint64_t chunks = in.chunks;
    Incoming done = std::move(in);
    incoming_.erase(from);
    if (!state) {
      ++metrics_.payloads_rejected;
    } else if (!absorb(std::move(*state), from, done.size, done.bytes, nullptr,
                       /*whole_state=*/true) ||
               !sync_storage()) {
      return;  // not durable: unacknowledged, the sender starts the transfer over
    } else {
      ++metrics_.catchups_completed;
      note_caught_up(from, id);
    }
    completed_[from] = id;
    send_state_ack(from, id, chunks);
  }

  void send_state_ack(PeerId to, std::uint64_t transfer, std::uint64_t have) {
    send(to, StateAck{transfer, have, /*declined=*/false});
  }

  // The log replays slowly and grows without bound: fold it into a snapshot. (A failure
  // leaves the log as it was; a later tick tries again.)
  void start_snapshot() {
    seal_tail();
    auto writer = storage_->begin_snapshot(seq_);
    if (!writer) {
      ++metrics_.storage_errors;
      return;
    }
    if (snapshot_runner_) {
      snapshot_running_ = true;
      Storage::SnapshotBasis basis;
      if (options_.snapshot_off_strand && !snapshot_rebuild_failed_) {
        basis = storage_->snapshot_basis();
      }
      if (basis) {
        snapshot_rebuilding_ = true;
        snapshot_runner_(
            [basis = std::move(basis)]() -> Result<std::string> {
              Result<Recovered> r = basis();
              if (!r) return r.error();
              auto rebuilt = recover_state<T>(*r);
              if (!rebuilt) return rebuilt.error();
              return encode(rebuilt->first);
            },
            std::move(*writer));
      } else {
        snapshot_rebuilding_ = false;
        snapshot_runner_([bytes = encode(state_)]() -> Result<std::string> { return bytes; },
                         std::move(*writer));
      }
      return;
    }
    snapshot_finished(static_cast<bool>((*writer)(encode(state_))));
  }

  // ---- digest catch-up (cluster/digest_catchup.hpp) ----

  std::shared_ptr<const detail::DigestSnapshot<T>> digest_snapshot() requires BucketedCrdt<T> {
    seal_tail();
    if (!digest_snapshot_ || digest_snapshot_->seq != seq_) {
      // A fresh seed per snapshot: a digest collision (which would hide a difference) does
      // not repeat in the next catch-up.
      const std::uint64_t seed = (self_ * 0x9E3779B97F4A7C15ull) ^ (incarnation_ << 40) ^ seq_;
      digest_snapshot_ = std::make_shared<const detail::DigestSnapshot<T>>(state_, seq_, seed);
    }
    return digest_snapshot_;
  }

  void on_digest_answer(Time now, PeerId from, const DigestAnswer& m) requires BucketedCrdt<T> {
    auto it = neighbours_.find(from);
    if (it == neighbours_.end() || !it->second.digest || it->second.digest->id() != m.transfer) {
      return;
    }
    Neighbour& n = it->second;
    std::vector<SyncMessage> out;
    using Outcome = typename detail::DigestSender<T>::Outcome;
    const Outcome outcome = n.digest->on_reply(
        now, m, [this] { return digest_snapshot(); }, out, metrics_);
    for (SyncMessage& x : out) send(from, std::move(x));
    n.last_progress = now;
    switch (outcome) {
      case Outcome::running:
        return;
      case Outcome::complete: {
        // j now holds our state as of the snapshot: ordinary deltas carry on from there.
        const std::uint64_t at = n.digest->snapshot()->seq;
        n.digest.reset();
        n.known = true;
        n.acked = at;
        n.sent_upto = at;
        flush(now, from, n, false);
        return;
      }
      case Outcome::whole_state:
        start_state_transfer(now, from, n);
        return;
      case Outcome::restart:
        start_transfer(now, from, n);
        return;
    }
  }

  // A DigestOffer, BucketChunk or DigestDone of catch-up m.transfer.
  template <class M>
  void on_digest_request(Time now, PeerId from, const M& m) requires BucketedCrdt<T> {
    auto it = digest_in_.find(from);
    if (it == digest_in_.end() || it->second.rx.id() != m.transfer) {
      if constexpr (!std::is_same_v<M, DigestOffer>) {
        // Not a catch-up in progress here: one already completed (a late duplicate), or one
        // lost when this replica restarted (the sender starts again).
        const bool finished =
            digest_completed_.contains(from) && digest_completed_[from] == m.transfer;
        DigestAnswer reply{m.transfer, m.request,
                           finished ? DigestStatus::ok : DigestStatus::unknown_transfer, {}};
        if (finished) {
          detail::ByteWriter w;
          detail::write_list(w, std::vector<std::uint64_t>{});
          reply.payload = w.take();
        }
        send(from, std::move(reply));
        return;
      } else {
        if (state_.is_bottom() && whole_state_arriving(now, from)) {
          // Holding nothing, the answer would ask for a second whole state: stay silent
          // until the one arriving is in (the sender asks again).
          return;
        }
        it = digest_in_
                 .insert_or_assign(from,
                                   DigestIncoming{detail::DigestReceiver<T>(m.transfer), now})
                 .first;
      }
    }
    detail::DigestReceiver<T>& rx = it->second.rx;
    it->second.last_seen = now;
    DigestAnswer reply;
    if constexpr (std::is_same_v<M, DigestOffer>) {
      if (!rx.on_offer(state_, m, reply)) {
        ++metrics_.payloads_rejected;
        return;
      }
    } else if constexpr (std::is_same_v<M, BucketChunk>) {
      bool malformed = false;
      std::optional<T> delta = rx.on_chunk(state_, m, reply, malformed);
      if (malformed) {
        ++metrics_.payloads_rejected;  // unanswered: the sender retransmits
        return;
      }
      if (delta &&
          (!absorb(std::move(*delta), from, m.payload.size(), {}, &rx) || !sync_storage())) {
        return;  // not durable: unanswered, the sender retransmits
      }
    } else {
      static_assert(std::is_same_v<M, DigestDone>);
      std::optional<T> last = rx.on_done(state_, m, reply, options_.max_sync_bytes);
      if (last) {
        if (!absorb(std::move(*last), from, 0, {}, &rx) || !sync_storage()) return;
        digest_in_.erase(from);
        digest_completed_[from] = m.transfer;
        ++metrics_.catchups_completed;
        note_caught_up(from, m.transfer);
      }
    }
    send(from, std::move(reply));
  }

  // A catch-up whose sender went silent (it crashed, or dropped us as a neighbour) holds a
  // summary of our state; forget it. Safe at any point: the sender starts again if needed.
  void drop_idle_digest_receivers(Time now) {
    const Time idle = 10 * std::max(options_.retransmit_after, options_.sync_interval);
    std::erase_if(digest_in_, [&](const auto& kv) { return now - kv.second.last_seen > idle; });
  }

  // An incoming state transfer whose sender went silent (it crashed, lost its link, or
  // never meant to finish) holds up to max_incoming_transfer_bytes; forget it. The sender,
  // if it comes back, is told by its next chunk's ack to start over.
  void drop_idle_transfers(Time now) {
    const Time idle = 10 * std::max(options_.retransmit_after, options_.sync_interval);
    metrics_.transfers_dropped += std::erase_if(incoming_, [&](const auto& kv) {
      return kv.second.have < kv.second.chunks && now - kv.second.last_seen > idle;
    });
  }

  // GC: drop deltas every neighbour has acknowledged (a neighbour in state transfer needs
  // them from its snapshot on), then enforce the byte cap. Neighbours left behind by the cap
  // take the state-transfer path at their next flush.
  void collect_buffer() {
    std::uint64_t needed = seq_;
    for (const auto& [p, n] : neighbours_) {
      if (n.transfer) {
        needed = std::min(needed, n.transfer->seq);
      } else if (n.digest) {
        if (const auto* snap = n.digest->snapshot()) needed = std::min(needed, snap->seq);
      } else if (n.known) {
        needed = std::min(needed, n.acked);
      }
    }
    while (!buffer_.empty() &&
           (buffer_base_ < needed || buffer_bytes_ > options_.max_buffer_bytes)) {
      buffer_bytes_ -= buffer_.front().bytes;
      buffer_.pop_front();
      ++buffer_base_;
    }
    if (buffer_.empty()) seal_tail();
    if (snapshot_ && snapshot_.use_count() == 1) snapshot_.reset();
    if (digest_snapshot_ && digest_snapshot_.use_count() == 1) digest_snapshot_.reset();
  }

  ReplicaId self_;
  SyncOptions options_;
  T state_;
  std::uint64_t seq_;  // c: sequence number of the next delta
  std::deque<Buffered> buffer_;
  std::uint64_t buffer_base_;  // sequence number of buffer_.front()
  std::size_t buffer_bytes_ = 0;
  bool tail_open_ = false;  // local deltas may still join buffer_.back() (see record)
  std::map<PeerId, Neighbour> neighbours_;  // ordered: deterministic output order
  std::map<PeerId, Incoming> incoming_;
  std::map<PeerId, std::uint64_t> completed_;  // last transfer joined, per sender
  std::shared_ptr<const std::string> snapshot_;
  std::uint64_t snapshot_seq_ = 0;
  std::shared_ptr<const detail::DigestSnapshot<T>> digest_snapshot_;  // shared by neighbours
  struct DigestIncoming {
    detail::DigestReceiver<T> rx;
    Time last_seen;
  };
  std::map<PeerId, DigestIncoming> digest_in_;        // catch-ups arriving, by sender
  std::map<PeerId, std::uint64_t> digest_completed_;  // last one joined
  std::map<PeerId, std::uint64_t> caught_up_by_;      // newest catch-up joined, either kind
  std::vector<ReplicaId> removed_;                    // set_removed (sorted)
  std::uint64_t incarnation_;
  std::uint64_t transfers_started_ = 0;
  Time push_at_ = kNever;
  Time next_sync_ = Time::zero();
  std::vector<Outgoing> outbox_;
  SyncMetrics metrics_;
  Observer observer_;
  Storage* storage_ = nullptr;
  SnapshotRunner snapshot_runner_;
  bool snapshot_rebuilding_ = false;      // the running snapshot rebuilds off the strand
  bool snapshot_rebuild_failed_ = false;  // a rebuild failed once: encode on the strand
  bool snapshot_running_ = false;
};

// The replicas most programs start with are compiled once, into libdeltacrdt
// (cluster/prebuilt_instances.cpp), rather than into every translation unit that uses them:
// these declarations tell the compiler they exist elsewhere. Programs that use the templates
// without linking libdeltacrdt define DELTACRDT_HEADER_ONLY.
#ifndef DELTACRDT_HEADER_ONLY
extern template class AWLWWMap<std::string, std::string>;
extern template class ReplicaCore<AWLWWMap<std::string, std::string>>;
extern template class ReplicaCore<PNCounter>;
#endif

}  // namespace deltacrdt
