// Digest catch-up (docs/protocol.md, "Digest catch-up"): brings a neighbour that mostly
// agrees with us up to date by sending only the key ranges that differ, found by descending
// a hash tree over key hashes, instead of the whole state.
//
// DigestSender runs on the replica being caught up from, one per neighbour; DigestReceiver on
// the replica being caught up, one per sender. Both are sans-I/O pieces of ReplicaCore: they
// turn messages into messages and deltas, and are confined to the core's strand.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cluster/protocol.hpp"
#include "crdt/bucketed.hpp"
#include "crdt/codec.hpp"
#include "base/byte_io.hpp"

namespace deltacrdt::detail {

// Shape of the hash tree, chosen by measuring the bytes of catching up a replica that missed
// 1% of the updates to 100k keys (docs/benchmarks.md): about 64 entries per first-level
// bucket, each differing bucket split into 2^2 children, buckets of at most 2 entries sent.
// Digests are 8 bytes: a collision would hide a difference, and the receiver then joins the
// sender's context over entries it never got, so 4 bytes (a miss in ~10^6 catch-ups) is
// not enough.
inline constexpr unsigned kDigestFanoutBits = 2;
inline constexpr std::size_t kDigestLeafEntries = 2;
// Rounds of "keys changed during the catch-up" before giving up for a whole-state transfer.
inline constexpr unsigned kMaxDirtyRounds = 8;
// Widest first level (2^16 digests of 8 bytes).
inline constexpr unsigned kMaxFirstLevel = 16;

// Entries of a state sorted by key hash, with prefix sums so the digest of any bucket costs
// two binary searches.
struct HashSummary {
  std::vector<HashedEntry> entries;
  std::vector<std::uint64_t> prefix;  // prefix[i]: wrapping sum of entry_hash over [0, i)

  HashSummary() = default;
  explicit HashSummary(std::vector<HashedEntry> sorted) : entries(std::move(sorted)) {
    prefix.resize(entries.size() + 1, 0);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      prefix[i + 1] = prefix[i] + entries[i].entry_hash;
    }
  }
  std::pair<std::size_t, std::size_t> span_of(KeyHashRange r) const {
    const auto lo =
        std::lower_bound(entries.begin(), entries.end(), r.lo,
                         [](const HashedEntry& e, std::uint64_t h) { return e.key_hash < h; });
    const auto hi =
        std::upper_bound(lo, entries.end(), r.hi,
                         [](std::uint64_t h, const HashedEntry& e) { return h < e.key_hash; });
    return {static_cast<std::size_t>(lo - entries.begin()),
            static_cast<std::size_t>(hi - entries.begin())};
  }
  std::uint64_t digest(KeyHashRange r) const {
    const auto [b, e] = span_of(r);
    return prefix[e] - prefix[b];
  }
  std::size_t count(KeyHashRange r) const {
    const auto [b, e] = span_of(r);
    return e - b;
  }
};

// The sender's snapshot: the state at sequence number `seq`, summarised with `seed`, and its
// encoded context. Immutable and shared by every neighbour caught up from that snapshot.
template <class T>
struct DigestSnapshot {
  T state;
  std::uint64_t seq = 0;
  std::uint64_t seed = 0;
  HashSummary summary;
  std::string context_bytes;
  std::size_t entry_bytes = 1;  // average encoded bytes per entry, to size chunks

  DigestSnapshot(const T& s, std::uint64_t at_seq, std::uint64_t hash_seed)
      : state(s),
        seq(at_seq),
        seed(hash_seed),
        summary(state.hashed_entries(hash_seed)),
        context_bytes(encode(state.context())) {
    if (state.size() > 0) {
      std::size_t total = 0;
      if constexpr (requires { state.encoded_size_hint(); }) {
        total = state.encoded_size_hint();
      } else {
        total = encode(state).size();
      }
      entry_bytes = std::max<std::size_t>(1, total / state.size());
    }
  }
};

// Children of `parents` (buckets at parent_level) at parent_level + child_bits, in order.
inline std::uint64_t child_bucket(const std::vector<std::uint64_t>& parents, unsigned child_bits,
                                  std::size_t i) {
  const std::uint64_t parent = parents[i >> child_bits];
  const std::uint64_t low = i & ((std::size_t{1} << child_bits) - 1);
  return child_bits >= 64 ? low : (parent << child_bits) | low;
}

// One catch-up from this replica towards one neighbour.
template <class T>
class DigestSender {
 public:
  enum class Outcome { running, complete, whole_state, restart };
  using SnapshotFn = std::function<std::shared_ptr<const DigestSnapshot<T>>()>;

  DigestSender(std::uint64_t transfer, const SyncOptions& options, Time now)
      : id_(transfer), options_(options), last_progress_(now) {}

  std::uint64_t id() const { return id_; }
  // Null until the neighbour answered the probe.
  const DigestSnapshot<T>* snapshot() const { return snap_.get(); }
  Time last_progress() const { return last_progress_; }

  // The probe: an offer with no buckets. The answer says whether the neighbour holds
  // anything; only then is the snapshot taken (a fresh replica gets the whole state).
  void start(std::vector<SyncMessage>& out) {
    ByteWriter w;
    w.u64(0);
    w.u64(0);
    write_list(w, std::vector<std::uint64_t>{});
    write_list(w, std::vector<std::uint64_t>{});
    w.bytes({});
    enqueue(Kind::probe, w.take(), 0, {}, 0);
    pump(out);
  }

  // Resends what is unanswered after retransmit_after without progress.
  void on_tick(Time now, std::vector<SyncMessage>& out) {
    if (now - last_progress_ < options_.retransmit_after) return;
    last_progress_ = now;
    for (const auto& [rid, r] : outstanding_) out.push_back(r.msg);
  }

  Outcome on_reply(Time now, const DigestAnswer& m, const SnapshotFn& take_snapshot,
                   std::vector<SyncMessage>& out, SyncMetrics& metrics) {
    auto it = outstanding_.find(m.request);
    if (it == outstanding_.end()) return Outcome::running;  // a duplicate answer
    const DigestStatus status = m.status;
    if (status == DigestStatus::unknown_transfer) return Outcome::restart;
    if (status == DigestStatus::want_whole_state) return Outcome::whole_state;
    Request req = std::move(it->second);
    outstanding_.erase(it);
    last_progress_ = now;
    ByteReader r(m.payload);
    switch (req.kind) {
      case Kind::probe:
        snap_ = take_snapshot();
        if (!first_offer()) return Outcome::whole_state;
        break;
      case Kind::offer: {
        std::vector<std::uint32_t> differing;
        if (!r.list(differing) || !r.done()) {
          ++metrics.payloads_rejected;
          return Outcome::restart;
        }
        if (!descend(req, differing)) return Outcome::whole_state;
        break;
      }
      case Kind::chunk:
        break;
      case Kind::done: {
        std::vector<std::uint64_t> dirty;
        if (!r.list(dirty) || !r.done()) {
          ++metrics.payloads_rejected;
          return Outcome::restart;
        }
        if (dirty.empty()) return Outcome::complete;
        if (++dirty_rounds_ > kMaxDirtyRounds) return Outcome::whole_state;
        for (std::uint64_t h : dirty) to_ship_.push_back(KeyHashRange{h, h});
        break;
      }
    }
    if (!to_ship_.empty() && !ship()) return Outcome::whole_state;
    if (outstanding_.empty() && queue_.empty()) {
      enqueue(Kind::done, {}, 0, {}, 0);
    }
    const std::size_t before = out.size();
    pump(out);
    for (std::size_t i = before; i < out.size(); ++i) {
      ++metrics.catchup_chunks_sent;
      metrics.catchup_bytes_sent += payload_size(out[i]);
    }
    return Outcome::running;
  }

 private:
  enum class Kind : std::uint8_t { probe, offer, chunk, done };
  struct Request {
    Kind kind = Kind::probe;
    std::uint64_t id = 0;  // the request number its answer repeats
    SyncMessage msg;
    unsigned level = 0;  // of the offered buckets
    std::vector<std::uint64_t> parents;
    unsigned child_bits = 0;
  };

  // Builds request number next_request_ of this catch-up and queues it.
  void enqueue(Kind kind, std::string payload, unsigned level, std::vector<std::uint64_t> parents,
               unsigned child_bits) {
    const std::uint64_t rid = next_request_++;
    SyncMessage m;
    switch (kind) {
      case Kind::probe:
      case Kind::offer:
        m = DigestOffer{id_, rid, level, std::move(payload)};
        break;
      case Kind::chunk:
        m = BucketChunk{id_, rid, std::move(payload)};
        break;
      case Kind::done:
        m = DigestDone{id_, rid};
        break;
    }
    queue_.push_back(Request{kind, rid, std::move(m), level, std::move(parents), child_bits});
  }

  void pump(std::vector<SyncMessage>& out) {
    const std::size_t window = std::max<std::size_t>(1, options_.transfer_window);
    while (!queue_.empty() && outstanding_.size() < window) {
      Request req = std::move(queue_.front());
      queue_.pop_front();
      out.push_back(req.msg);
      const std::uint64_t rid = req.id;
      outstanding_.emplace(rid, std::move(req));
    }
  }

  std::string offer_payload(unsigned parent_level, const std::vector<std::uint64_t>& parents,
                            unsigned child_bits, bool with_context) const {
    ByteWriter w;
    w.u64(snap_->seed);
    w.u64(parent_level);
    write_list(w, parents);
    const unsigned level = parent_level + child_bits;
    const std::size_t n = parents.size() << child_bits;
    w.u64(n);
    for (std::size_t i = 0; i < n; ++i) {
      w.u64(snap_->summary.digest(bucket_range(child_bucket(parents, child_bits, i), level)));
    }
    w.bytes(with_context ? std::string_view(snap_->context_bytes) : std::string_view{});
    return w.take();
  }

  // Level 0 -> L0: about 64 entries per bucket, as wide as one message allows.
  bool first_offer() {
    const std::size_t fixed = 64 + snap_->context_bytes.size();
    if (fixed * 2 > options_.max_sync_bytes) return false;  // a huge context: go whole
    unsigned level = 1;  // (level 0 would be one bucket: the root digest alone)
    while (level < kMaxFirstLevel &&
           (std::size_t{1} << (level + 1)) * 64 <= snap_->summary.entries.size() &&
           fixed + 8 * (std::size_t{1} << (level + 1)) <= options_.max_sync_bytes) {
      ++level;
    }
    std::vector<std::uint64_t> parents{0};
    // (The payload is built before `parents` is moved into the request.)
    std::string payload = offer_payload(0, parents, level, true);
    enqueue(Kind::offer, std::move(payload), level, std::move(parents), level);
    return true;
  }

  // The neighbour's digests differ for these children of an offer: send small buckets,
  // expand the others into 2^kDigestFanoutBits children each.
  bool descend(const Request& req, const std::vector<std::uint32_t>& differing) {
    const std::size_t children = req.parents.size() << req.child_bits;
    std::vector<std::uint64_t> expand;
    for (std::uint32_t i : differing) {
      if (i >= children) continue;  // not a child of this offer: ignore
      const std::uint64_t b = child_bucket(req.parents, req.child_bits, i);
      const KeyHashRange range = bucket_range(b, req.level);
      const std::size_t count = snap_->summary.count(range);
      if (count <= kDigestLeafEntries || req.level + kDigestFanoutBits > kMaxBucketLevel) {
        to_ship_.push_back(range);
        shipped_entries_ += count;
      } else {
        expand.push_back(b);
      }
    }
    // Sending most of the state bucket by bucket costs more than sending it whole.
    if (shipped_entries_ * 2 > snap_->summary.entries.size() + 64) return false;
    const std::size_t per_parent = 8 + 8 * (std::size_t{1} << kDigestFanoutBits);
    const std::size_t max_parents =
        std::max<std::size_t>(1, (options_.max_sync_bytes - 64) / per_parent);
    for (std::size_t at = 0; at < expand.size(); at += max_parents) {
      std::vector<std::uint64_t> parents(
          expand.begin() + static_cast<std::ptrdiff_t>(at),
          expand.begin() + static_cast<std::ptrdiff_t>(std::min(expand.size(), at + max_parents)));
      const unsigned level = req.level + kDigestFanoutBits;
      std::string payload = offer_payload(req.level, parents, kDigestFanoutBits, false);
      enqueue(Kind::offer, std::move(payload), level, std::move(parents), kDigestFanoutBits);
    }
    return true;
  }

  // Turns the ranges to send into chunks of at most max_sync_bytes. False when one key alone
  // is too large for a message (the whole-state transfer chunks any size).
  bool ship() {
    std::vector<KeyHashRange> ranges = std::exchange(to_ship_, {});
    normalize_ranges(ranges);
    const std::size_t target = std::max<std::size_t>(1, options_.max_sync_bytes / 2);
    std::vector<KeyHashRange> group;
    std::size_t estimate = 0;
    for (const KeyHashRange& r : ranges) {
      group.push_back(r);
      estimate += snap_->summary.count(r) * snap_->entry_bytes + 16;
      if (estimate >= target) {
        if (!emit_chunk(group)) return false;
        group.clear();
        estimate = 0;
      }
    }
    return group.empty() || emit_chunk(group);
  }

  bool emit_chunk(const std::vector<KeyHashRange>& ranges) {
    std::vector<std::uint32_t> indices;
    for (const KeyHashRange& r : ranges) {
      const auto [b, e] = snap_->summary.span_of(r);
      for (std::size_t i = b; i < e; ++i) indices.push_back(snap_->summary.entries[i].index);
    }
    ByteWriter w;
    w.u64(ranges.size());
    for (const KeyHashRange& r : ranges) {
      w.u64(r.lo);
      w.u64(r.hi);
    }
    std::string payload = w.take();
    payload += encode(snap_->state.extract_entries(indices));
    if (payload.size() <= options_.max_sync_bytes) {
      enqueue(Kind::chunk, std::move(payload), 0, {}, 0);
      return true;
    }
    if (ranges.size() > 1) {
      const auto mid = ranges.begin() + static_cast<std::ptrdiff_t>(ranges.size() / 2);
      return emit_chunk({ranges.begin(), mid}) && emit_chunk({mid, ranges.end()});
    }
    // One range: split it at the key hash of its middle entry, if it has two distinct ones.
    const auto [b, e] = snap_->summary.span_of(ranges[0]);
    const std::uint64_t split = snap_->summary.entries[b + (e - b) / 2].key_hash;
    if (e - b < 2 || split == ranges[0].lo) return false;
    return emit_chunk({KeyHashRange{ranges[0].lo, split - 1}}) &&
           emit_chunk({KeyHashRange{split, ranges[0].hi}});
  }

  std::uint64_t id_;
  SyncOptions options_;
  Time last_progress_;
  std::shared_ptr<const DigestSnapshot<T>> snap_;
  std::uint64_t next_request_ = 1;
  std::deque<Request> queue_;                     // built, not yet sent (window full)
  std::map<std::uint64_t, Request> outstanding_;  // sent, unanswered
  std::vector<KeyHashRange> to_ship_;
  std::size_t shipped_entries_ = 0;
  unsigned dirty_rounds_ = 0;
};

// One catch-up arriving from one sender.
template <class T>
class DigestReceiver {
 public:
  explicit DigestReceiver(std::uint64_t transfer) : id_(transfer) {}
  std::uint64_t id() const { return id_; }

  // Answers an offer (or the probe) into `reply`. False when the payload is malformed (it
  // is dropped unanswered and the sender retransmits).
  bool on_offer(const T& state, const DigestOffer& m, DigestAnswer& reply) {
    ByteReader r(m.payload);
    std::uint64_t seed = 0, parent_level = 0;
    std::vector<std::uint64_t> parents;
    std::vector<std::uint64_t> digests;
    std::string_view context;
    if (!r.u64(seed) || !r.u64(parent_level) || !r.list(parents) || !r.list(digests) ||
        !r.bytes(context) || !r.done()) {
      return false;
    }
    reply = answer(m.transfer, m.request);
    if (parents.empty()) {  // the probe
      if (state.is_bottom()) reply.status = DigestStatus::want_whole_state;
      return true;
    }
    const std::uint64_t level = m.level;
    if (level > kMaxBucketLevel || level <= parent_level || level - parent_level > kMaxFirstLevel ||
        digests.size() != parents.size() << (level - parent_level)) {
      return false;
    }
    const unsigned child_bits = static_cast<unsigned>(level - parent_level);
    for (std::uint64_t p : parents) {
      if (parent_level < 64 && (p >> parent_level) != 0) return false;
    }
    if (!context.empty() && !summary_) {
      Result<CausalContext> ctx = decode<CausalContext>(context);
      if (!ctx) return false;
      their_ctx_ = std::move(*ctx);
      summary_ = std::make_unique<HashSummary>(state.hashed_entries(seed));
      seed_ = seed;
    }
    if (!summary_ || seed != seed_) {
      reply.status = DigestStatus::unknown_transfer;
      return true;
    }
    std::vector<std::uint32_t> differing;
    for (std::size_t i = 0; i < digests.size(); ++i) {
      const KeyHashRange range =
          bucket_range(child_bucket(parents, child_bits, i), static_cast<unsigned>(level));
      if (summary_->digest(range) != digests[i]) differing.push_back(static_cast<std::uint32_t>(i));
    }
    ByteWriter w;
    write_list(w, differing);
    reply.payload = w.take();
    return true;
  }

  // A chunk: the delta that applies it (to be joined by the caller) and the ack in `reply`.
  // Nullopt with `malformed` set for a payload that fails to decode; nullopt alone when this
  // transfer is unknown here (reply says so).
  std::optional<T> on_chunk(const T& state, const BucketChunk& m, DigestAnswer& reply,
                            bool& malformed) {
    malformed = false;
    reply = answer(m.transfer, m.request);
    if (!summary_) {
      reply.status = DigestStatus::unknown_transfer;
      return std::nullopt;
    }
    ByteReader r(m.payload);
    std::uint64_t n = 0;
    std::vector<KeyHashRange> ranges;
    bool ok = r.count(n, 16);
    for (std::uint64_t i = 0; ok && i < n; ++i) {
      KeyHashRange range;
      ok = r.u64(range.lo) && r.u64(range.hi) && range.lo <= range.hi;
      ranges.push_back(range);
    }
    Result<T> part = ok ? decode<T>(r.rest()) : Result<T>(Errc::corrupt);
    if (!part) {
      malformed = true;
      return std::nullopt;
    }
    normalize_ranges(ranges);
    // Our entries in the ranges that the sender's context can remove are those of our
    // summary (taken at the first offer) plus suspect keys changed since; without suspects,
    // the summary's positions spare hashing every key of the state.
    std::optional<T> delta;
    bool suspects = false;
    std::vector<HashedEntry> candidates;
    for (const KeyHashRange& range : ranges) {
      suspects = suspects || dirty_.lower_bound(range.lo) != dirty_.upper_bound(range.hi);
      const auto [b, e] = summary_->span_of(range);
      candidates.insert(candidates.end(),
                        summary_->entries.begin() + static_cast<std::ptrdiff_t>(b),
                        summary_->entries.begin() + static_cast<std::ptrdiff_t>(e));
    }
    if (!suspects) delta = state.range_delta_at(*part, their_ctx_, ranges, candidates);
    if (!delta) delta = state.range_delta(*part, their_ctx_, ranges);
    // What this chunk covers is now consistent with the sender's snapshot: earlier suspect
    // changes in these ranges are settled by the delta.
    for (const KeyHashRange& range : ranges) {
      dirty_.erase(dirty_.lower_bound(range.lo), dirty_.upper_bound(range.hi));
    }
    return delta;
  }

  // Everything that differed was sent. If no key changed meanwhile in a way the sender's
  // context could misjudge, returns the context delta to join (the catch-up is complete);
  // otherwise lists those keys in `reply` for another round.
  std::optional<T> on_done(const T& state, const DigestDone& m, DigestAnswer& reply,
                           std::size_t max_bytes) {
    reply = answer(m.transfer, m.request);
    if (!summary_) {
      reply.status = DigestStatus::unknown_transfer;
      return std::nullopt;
    }
    ByteWriter w;
    std::vector<std::uint64_t> keys;
    const std::size_t limit = std::max<std::size_t>(1, (max_bytes - 16) / 8);
    for (auto it = dirty_.begin(); it != dirty_.end() && keys.size() < limit; ++it) {
      keys.push_back(*it);
    }
    write_list(w, keys);
    reply.payload = w.take();
    if (!keys.empty()) return std::nullopt;
    return state.context_delta(their_ctx_);
  }

  // Called before any other delta joins the state during the catch-up. A slot it adds whose
  // dot the sender's context covers may be one the sender has since removed; joining that
  // context later would make the removal unreachable. Such keys are asked for again.
  void note_join(const T& delta) {
    if (!summary_) return;
    delta.for_each_keyed_dot([&](std::uint64_t key_hash, const Dot& d) {
      if (their_ctx_.contains(d)) dirty_.insert(key_hash);
    });
  }

 private:
  static DigestAnswer answer(std::uint64_t transfer, std::uint64_t request) {
    return DigestAnswer{transfer, request, DigestStatus::ok, {}};
  }

  std::uint64_t id_;
  std::uint64_t seed_ = 0;
  CausalContext their_ctx_;
  std::unique_ptr<HashSummary> summary_;  // our entries when the first offer arrived
  std::set<std::uint64_t> dirty_;         // key hashes to ask for again
};

}  // namespace deltacrdt::detail
