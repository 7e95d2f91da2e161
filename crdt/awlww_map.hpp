// AWLWWMap<K, V>: add-wins map whose concurrent values resolve last-writer-wins.
//
// A put concurrent with a remove of the same key survives (add-wins); concurrent puts are
// all kept as slots and the visible value is the one with the greatest (HLC timestamp,
// replica id, dot counter) - a total order, so equal timestamps never diverge. A put
// observes and removes every slot it replaces, so a causally later write always wins.
// Value type (copies share nothing); not thread-safe. Mutators and small-delta joins cost
// O(size of the change): a dot index finds the slot a context dot refers to without
// scanning the map. Pointers returned by reads stay valid until the next mutation or join.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/container_hash/hash.hpp>

#include "crdt/bucketed.hpp"
#include "crdt/causal_context.hpp"
#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/dot_store.hpp"
#include "crdt/entry_table.hpp"
#include "crdt/hlc.hpp"
#include "crdt/lww_entry.hpp"

namespace deltacrdt {

template <class K, class V, class Hash = boost::hash<K>, class KeyEqual = std::equal_to<K>>
class AWLWWMap {
 public:
  static constexpr TypeTag kTypeTag = TypeTag::aw_lww_map;
  // 2: the causal context's cloud is written as runs of dots; 1 (still read) dot by dot.
  static constexpr std::uint16_t kFormatVersion = 2;
  static constexpr std::uint16_t kOldestReadableVersion = 1;

  // One write of a value: its dot (identity), its timestamp and the value.
  using Slot = LwwSlot<V>;

  // How many keys ahead a join over many keys requests index lines: enough to cover one
  // memory latency (hundreds of ns) with the merging of the keys in between.
  static constexpr std::size_t kLookahead = 8;

  // ---- mutators: apply to *this and return the minimal delta ----

  // Sets key to value with timestamp `ts` (take it from a HybridClock). The delta carries
  // the new slot and the dots of the slots it replaces.
  [[nodiscard]] AWLWWMap put(ReplicaId self, K key, V value, HlcTimestamp ts) {
    // The key's index line loads while the dot and the delta's context are made (in a large
    // map it is a cache miss); the key is hashed once, for the lookup and any append.
    const auto lookup = table_.start_find(key);
    AWLWWMap delta;
    const Dot dot = ctx_.make_dot(self);
    delta.ctx_.insert(dot);
    std::uint32_t pos = table_.finish_find_for_update(key, lookup);
    if (pos == Table::kNone) {
      pos = table_.finish_append(Entry{std::move(key), Slot{dot, ts, std::move(value)}, nullptr},
                                 lookup);
    } else {
      Entry& e = table_.at(pos);
      e.for_each_dot([&](const Dot& d) {
        delta.ctx_.insert(d);
        table_.dot_removed(d);
      });
      e.rest.reset();
      e.head = Slot{dot, ts, std::move(value)};
      table_.dot_added(dot, pos);
    }
    const Entry& e = table_.at(pos);
    delta.table_.append(Entry{e.key, e.head, nullptr});
    return delta;
  }

  // Removes key. Only the slots this replica has observed are removed: a concurrent put
  // elsewhere survives (add-wins). Removing an absent key returns bottom.
  [[nodiscard]] AWLWWMap remove(const K& key) {
    AWLWWMap delta;
    const std::uint32_t pos = table_.find(key);
    if (pos == Table::kNone) return delta;
    table_.at(pos).for_each_dot([&](const Dot& d) { delta.ctx_.insert(d); });
    erase_entry(pos);
    return delta;
  }

  // Removes every key this replica has observed.
  [[nodiscard]] AWLWWMap clear() {
    AWLWWMap delta;
    table_.for_each_dot([&](const Dot& d) { delta.ctx_.insert(d); });
    if (erase_observer_.fn != nullptr) {
      for (const Entry& e : table_) (*erase_observer_.fn)(e.key);
    }
    table_.clear();
    return delta;
  }

  // While set, every key whose entry leaves this map (by remove, clear or a join that
  // removes it) is first passed to *observer: how a caller running an arbitrary mutator
  // learns which keys it removed, which the returned delta does not name. Not part of the
  // value: copies and moves do not carry it, == ignores it. Not owned; pass nullptr to stop.
  using EraseObserver = std::function<void(const K&)>;
  void observe_erasures(const EraseObserver* observer) { erase_observer_.fn = observer; }

  // ---- reads: no copies of the state ----

  const V* find(const K& key) const {
    const Slot* s = find_slot(key);
    return s == nullptr ? nullptr : &s->value;
  }
  // The winning slot (value, timestamp, dot) of key, or nullptr.
  const Slot* find_slot(const K& key) const {
    const std::uint32_t pos = table_.find(key);
    return pos == Table::kNone ? nullptr : &table_.at(pos).head;
  }
  // Calls f(const Slot&) for every concurrent write of key still in the state: the winner
  // first, then the writes it beats (kept until a later put observes them). More than one
  // slot means concurrent puts that no replica has overwritten yet.
  template <class F>
  void for_each_slot(const K& key, F&& f) const {
    const std::uint32_t pos = table_.find(key);
    if (pos != Table::kNone) table_.at(pos).for_each_slot(f);
  }
  bool contains(const K& key) const { return table_.find(key) != Table::kNone; }
  std::size_t size() const { return table_.size(); }
  bool empty() const { return table_.empty(); }
  const CausalContext& context() const { return ctx_; }

  // Calls f(const K&, const V&) for every key with its visible value; order unspecified.
  template <class F>
  void for_each(F&& f) const {
    for (const Entry& e : table_) f(e.key, e.head.value);
  }
  // Calls f(const K&, const Slot&) for every key with its winning write (value, timestamp,
  // dot); order unspecified.
  template <class F>
  void for_each_winner(F&& f) const {
    for (const Entry& e : table_) f(e.key, e.head);
  }

  // ---- catch-up by key-hash ranges (crdt/bucketed.hpp, docs/protocol.md) ----

  // Where a key sits on the hash line: xxHash3 of its canonical bytes, the same on every
  // replica and platform.
  static std::uint64_t key_hash(const K& key) {
    std::string buf;
    return key_hash(key, buf);
  }
  // The same, reusing `buf` (hot loops).
  static std::uint64_t key_hash(const K& key, std::string& buf) {
    buf.clear();
    detail::append_canonical(buf, key);
    return detail::hash_bytes(buf);
  }

  // One HashedEntry per key, sorted by key hash. O(size log size).
  std::vector<HashedEntry> hashed_entries(std::uint64_t seed) const {
    std::vector<HashedEntry> out;
    out.reserve(table_.size());
    std::string buf;
    std::uint32_t index = 0;
    for (const Entry& e : table_) {
      buf.clear();
      detail::append_canonical(buf, e.key);
      const std::uint64_t kh = detail::hash_bytes(buf);
      append_slots_canonical(buf, e);
      out.push_back(HashedEntry{kh, XXH3_64bits_withSeed(buf.data(), buf.size(), seed), index++});
    }
    std::sort(out.begin(), out.end(), [](const HashedEntry& a, const HashedEntry& b) {
      return a.key_hash != b.key_hash ? a.key_hash < b.key_hash : a.index < b.index;
    });
    return out;
  }

  // The entries at the given iteration positions (as in hashed_entries) with a context of
  // exactly their dots. Throws std::out_of_range for a position past the end.
  AWLWWMap extract_entries(std::span<const std::uint32_t> indices) const {
    AWLWWMap out;
    for (std::uint32_t i : indices) {
      if (i >= table_.size()) throw std::out_of_range("AWLWWMap::extract_entries");
      const Entry& e = table_.at(i);
      if (out.table_.find(e.key) != Table::kNone) continue;
      e.for_each_dot([&](const Dot& d) { out.ctx_.insert(d); });
      out.table_.append(Entry(e));
    }
    return out;
  }

  // The delta that brings our keys hashing into `ranges` (sorted, disjoint) up to `part`,
  // an extract of those ranges from a replica whose whole context is `their_ctx`: part's
  // slots we have not seen, plus (as context without slots) our slots there that their_ctx
  // covers and part lacks - they were removed there. Joining it touches nothing outside
  // the ranges. O(size): our keys are hashed to find those in range, after a cheaper test.
  AWLWWMap range_delta(const AWLWWMap& part, const CausalContext& their_ctx,
                       std::span<const KeyHashRange> ranges) const {
    AWLWWMap out;
    std::string buf;
    for (const Entry& e : table_) {
      bool suspect = false;  // cheap test first: only then hash the key
      e.for_each_dot([&](const Dot& d) { suspect = suspect || removed_there(part, their_ctx, d); });
      if (suspect && in_ranges(ranges, key_hash(e.key, buf))) out.take_removed(e, part, their_ctx);
    }
    out.adopt_part(part, ranges, ctx_);
    return out;
  }

  // range_delta, looking for our entries in the ranges only at `candidates` (positions and key
  // hashes from an earlier hashed_entries) instead of hashing every key: O(|part| +
  // |candidates|). The caller vouches that no other entry of ours in the ranges holds a dot
  // their_ctx covers. Nullopt when a candidate is no longer at its position (an erase moved
  // entries since): use range_delta then.
  std::optional<AWLWWMap> range_delta_at(const AWLWWMap& part, const CausalContext& their_ctx,
                                         std::span<const KeyHashRange> ranges,
                                         std::span<const HashedEntry> candidates) const {
    AWLWWMap out;
    std::string buf;
    for (const HashedEntry& c : candidates) {
      if (c.index >= table_.size()) return std::nullopt;
      const Entry& e = table_.at(c.index);
      if (key_hash(e.key, buf) != c.key_hash) return std::nullopt;
      if (in_ranges(ranges, c.key_hash)) out.take_removed(e, part, their_ctx);
    }
    out.adopt_part(part, ranges, ctx_);
    return out;
  }

  // The dots of `c` we have not seen, as a delta without entries. Joined last in a catch-up,
  // once every differing range is in: it records the removals `c` knows of (joining a
  // context earlier would claim dots whose entries have not arrived: DeltaCrdt #45).
  AWLWWMap context_delta(const CausalContext& c) const {
    AWLWWMap out;
    out.ctx_ = c.missing_from(ctx_);
    return out;
  }

  // f(key_hash, dot) for every slot. O(size).
  template <class F>
  void for_each_keyed_dot(F&& f) const {
    for (const Entry& e : table_) {
      const std::uint64_t kh = key_hash(e.key);
      e.for_each_dot([&](const Dot& d) { f(kh, d); });
    }
  }

  // Calls f(const K&) for every key that joining `delta` into *this could change: the keys
  // delta holds and the keys of our slots its context removes. (Keys may repeat.) Used to
  // compute change notifications; cost O(|delta|).
  template <class F>
  void for_each_key_affected_by(const AWLWWMap& delta, F&& f) const {
    for (const Entry& e : delta.table_) f(e.key);
    for (const Dot& d :
         covered_dots(delta.ctx_, [&](const Dot& x) { return !delta.table_.contains_dot(x); })) {
      const std::uint32_t pos = table_.find_dot(d);
      if (pos != Table::kNone) f(table_.at(pos).key);
    }
  }

  // ---- lattice ----

  void join(const AWLWWMap& o) {
    if (this == &o) return;
    if (o.table_.size() > table_.size()) {
      // A large argument (full-state sync): grow once instead of rehashing repeatedly.
      table_.reserve(table_.size() + o.table_.size());
    }
    // Keys o holds: merge slot lists in place (an overwrite reuses the entry). The slots we
    // lack are copied while the key's index line loads: in a large map that line is a cache
    // miss, and the copy (an allocation for a string value) is work that does not need it.
    // With many keys, the lines of the next kLookahead keys are requested before this one is
    // merged, so their misses overlap too. (The first key's line is requested by its own
    // start_find: a one-key delta hashes its key once.)
    std::uint64_t removals_applied = 0;
    auto ahead = o.table_.begin();
    if (ahead != o.table_.end()) ++ahead;
    if (!table_.index_exceeds_cache()) ahead = o.table_.end();  // lines hit: no look-ahead
    for (std::size_t i = 0; i < kLookahead && ahead != o.table_.end(); ++i, ++ahead) {
      table_.prefetch(ahead->key);
    }
    for (const Entry& theirs : o.table_) {
      if (ahead != o.table_.end()) {
        table_.prefetch(ahead->key);
        ++ahead;
      }
      const auto lookup = table_.start_find(theirs.key);
      SlotList unseen;
      theirs.for_each_slot([&](const Slot& s) {
        if (!ctx_.contains(s.dot)) unseen.push_back(s);
      });
      const std::uint32_t pos = table_.finish_find_for_update(theirs.key, lookup);
      if (pos != Table::kNone) {
        removals_applied += merge_entry(pos, theirs, o, unseen);
      } else if (!unseen.empty()) {
        Entry e;
        e.key = theirs.key;
        e.assign(unseen);
        table_.finish_append(std::move(e), lookup);
      }
    }
    // (s ∩ s') ∪ (s \ c') for all other keys: drop our slots that o has seen but no longer
    // holds. Slots adopted above are not in c, hence never in o's removal set. o's store is
    // a subset of its context, so o's removal set has |c'| - |s'| dots; when the merges above
    // already applied that many, nothing is left (an overwrite delta, or a state without
    // deletions) and the pass is skipped.
    if (o.ctx_.dot_count() - o.table_.dot_count() != removals_applied) {
      for (const Dot& d :
           covered_dots(o.ctx_, [&](const Dot& x) { return !o.table_.contains_dot(x); })) {
        remove_slot(d);
      }
    }
    ctx_.join(o.ctx_);
  }

  // Joins each of `deltas` in order: the same state as calling join(d) for each, but in a
  // large map the index lines of the keys of the next kLookahead deltas load while one delta
  // is merged, so their cache misses overlap. A stream of one-key deltas joined one call at
  // a time waits for one miss per delta (at a million keys, about as long as the rest of
  // the join). For deltas at hand together: a log being replayed, a batch of messages.
  template <std::ranges::forward_range R>
  requires std::same_as<std::ranges::range_value_t<R>, AWLWWMap>
  void join_each(const R& deltas) {
    const auto prefetch_keys = [&](const AWLWWMap& d) {
      std::size_t n = 0;  // a delta with more keys pipelines the rest itself, in join
      for (auto it = d.table_.begin(); it != d.table_.end() && n < kLookahead; ++it, ++n) {
        table_.prefetch(it->key);
      }
    };
    auto ahead = std::ranges::begin(deltas);
    const auto end = std::ranges::end(deltas);
    if (!table_.index_exceeds_cache()) {  // lines hit: looking ahead would only cost hashes
      for (const AWLWWMap& d : deltas) join(d);
      return;
    }
    for (std::size_t i = 0; i < kLookahead && ahead != end; ++i, ++ahead) prefetch_keys(*ahead);
    for (const AWLWWMap& d : deltas) {
      if (ahead != end) {
        prefetch_keys(*ahead);
        ++ahead;
      }
      join(d);
    }
  }

  // Joining a value that is no longer needed: a bottom map simply takes it over (the
  // common case of a replica receiving its first full state), saving a copy of every entry.
  void join(AWLWWMap&& o) {
    if (is_bottom()) {
      *this = std::move(o);
    } else {
      join(static_cast<const AWLWWMap&>(o));
    }
  }

  bool leq(const AWLWWMap& o) const {
    if (!ctx_.leq(o.ctx_)) return false;
    // Every slot of o that we have seen must still be ours, or the join would drop it.
    bool ok = true;
    o.table_.for_each_dot([&](const Dot& d) {
      if (ok && ctx_.contains(d) && !table_.contains_dot(d)) ok = false;
    });
    return ok;
  }

  // Δ(d, *this): the slots of d we have not seen, the dots of d's context we lack, and the
  // dots of our slots that d removes.
  AWLWWMap novel_part(const AWLWWMap& d) const {
    AWLWWMap out;
    for (const Entry& theirs : d.table_) out.adopt_unseen(theirs, ctx_);
    out.ctx_ = d.ctx_.missing_from(ctx_);
    for (const Dot& dot :
         covered_dots(d.ctx_, [&](const Dot& x) { return !d.table_.contains_dot(x); })) {
      out.ctx_.insert(dot);
    }
    return out;
  }

  bool is_bottom() const { return table_.empty() && ctx_.empty(); }

  // About the size of encode(*this), without encoding (exact for string and integer keys
  // and values). Replicas account their delta buffers with it.
  std::size_t encoded_size_hint() const {
    std::size_t n = kEncodingHeaderBytes + kEncodingTrailerBytes + 1 + ctx_.encoded_size() + 8;
    for (const Entry& e : table_) {
      n += detail::approx_encoded_size(e.key) + 8;
      e.for_each_slot([&](const Slot& s) { n += 24 + detail::approx_encoded_size(s.value); });
    }
    return n;
  }

  // Order-independent: entries are compared by key, whatever their storage order.
  friend bool operator==(const AWLWWMap& a, const AWLWWMap& b) {
    if (a.table_.size() != b.table_.size() || !(a.ctx_ == b.ctx_)) return false;
    for (const Entry& e : a.table_) {
      const std::uint32_t pos = b.table_.find(e.key);
      if (pos == Table::kNone || !e.same_slots(b.table_.at(pos))) return false;
    }
    return true;
  }

  // Order-independent: a sum of per-key hashes, then the context's canonical form.
  std::uint64_t digest() const {
    std::uint64_t sum = 0;
    std::string buf;
    for (const Entry& e : table_) {
      buf.clear();
      detail::append_canonical(buf, e.key);
      append_slots_canonical(buf, e);
      sum += detail::hash_bytes(buf);
    }
    buf.clear();
    detail::append_canonical(buf, static_cast<std::uint16_t>(kTypeTag));
    detail::append_canonical(buf, sum);
    detail::append_canonical(buf, table_.size());
    ctx_.append_canonical(buf);
    return detail::hash_bytes(buf);
  }

  // Invariants of a well-formed value: every slot's dot is in the context, keys and dots
  // appear once, entries are in canonical slot order, and the indexes describe the entries.
  bool valid() const {
    bool ok = table_.indexes_consistent();
    table_.for_each_dot([&](const Dot& d) { ok = ok && d.counter != 0 && ctx_.contains(d); });
    for (const Entry& e : table_) ok = ok && e.canonical();
    return ok;
  }
  // What decode checks after load: nothing more. load enforces every rule of valid() entry
  // by entry as it reads (while the entry is still in cache), and builds the indexes itself.
  bool valid_decoded() const { return true; }

  template <class Archive>
  void save(Archive& ar) const {
    ar(ctx_);
    ar(static_cast<std::uint64_t>(table_.size()));
    for (const Entry& e : table_) {
      detail::save_value(ar, e.key);
      ar(static_cast<std::uint64_t>(e.slot_count()));
      e.for_each_slot([&](const Slot& s) {
        ar(s.dot.replica, s.dot.counter, s.ts.value);
        detail::save_value(ar, s.value);
      });
    }
  }

  template <class Archive>
  void load(Archive& ar) {
    PieceLoader loader;
    while (loader.load_next(ar)) {
    }
    *this = std::move(loader).take();
  }

  // Loads a payload one unit at a time - first the context and entry count, then one entry
  // per call - so that a payload arriving in pieces can be decoded as it arrives
  // (StreamingDecoder). A unit cut short by the end of the archive throws before changing
  // the loader, so it can be read again once more bytes are there.
  class PieceLoader {
   public:
    // Reads the next unit; returns false, reading nothing, once the value is complete.
    // Throws on malformed input (and cereal::Exception at the end of the archive).
    template <class Archive>
    bool load_next(Archive& ar) {
      if (!started_) {
        CausalContext ctx;
        ar(ctx);
        const std::uint64_t n = detail::load_count(ar);
        if constexpr (requires { ar.remaining(); }) {
          // Sized once, but never beyond what the bytes present could hold (n is
          // untrusted): an entry takes at least a slot count, a dot and a timestamp.
          constexpr std::uint64_t kMinEntryBytes = 8 + 16 + 8;
          fresh_.table_.reserve(static_cast<std::size_t>(
              std::min<std::uint64_t>(n, ar.remaining() / kMinEntryBytes)));
        }
        fresh_.ctx_ = std::move(ctx);
        left_ = n;
        started_ = true;
        return true;
      }
      if (left_ == 0) return false;
      Entry e{};
      detail::load_value(ar, e.key);
      const std::uint64_t slots = detail::load_count(ar);
      if (slots == 0) throw std::runtime_error("empty map entry");
      for (std::uint64_t j = 0; j < slots; ++j) {
        Slot s;
        ar(s.dot.replica, s.dot.counter, s.ts.value);
        detail::load_value(ar, s.value);
        if (j == 0) {
          e.head = std::move(s);
        } else {
          if (!e.rest) e.rest = std::make_unique<std::vector<Slot>>();
          if (std::any_of(e.rest->begin(), e.rest->end(),
                          [&](const Slot& x) { return x.dot == s.dot; }) ||
              e.head.dot == s.dot) {
            throw std::runtime_error("duplicate dot");
          }
          e.rest->push_back(std::move(s));
        }
      }
      bool dots_seen = true;
      e.for_each_dot([&](const Dot& d) {
        dots_seen = dots_seen && d.counter != 0 && fresh_.ctx_.contains(d);
      });
      if (!dots_seen) throw std::runtime_error("map entry with a dot outside the context");
      if (!e.canonical()) throw std::runtime_error("map entry slots out of order");
      if (!fresh_.table_.append_if_unique(std::move(e))) {
        throw std::runtime_error("duplicate map key or dot");
      }
      --left_;
      return true;
    }
    // The loaded value (complete once load_next returned false).
    AWLWWMap take() && { return std::move(fresh_); }

   private:
    AWLWWMap fresh_;
    bool started_ = false;
    std::uint64_t left_ = 0;  // entries still to read
  };

 private:
  using Entry = detail::LwwEntry<K, V>;
  using Table = detail::EntryTable<K, Entry, Hash, KeyEqual>;
  using SlotList = boost::container::small_vector<Slot, 2>;

  // Dots of our store that `ctx` covers and `select` accepts, enumerating whichever side is
  // smaller: the context's dots or our slots.
  template <class Pred>
  boost::container::small_vector<Dot, 4> covered_dots(const CausalContext& ctx,
                                                      Pred&& select) const {
    boost::container::small_vector<Dot, 4> hits;
    if (ctx.dot_count() <= table_.dot_count()) {
      // select first: it asks the (small) other side, which is cheaper than our index.
      ctx.for_each_dot([&](const Dot& d) {
        if (select(d) && table_.contains_dot(d)) hits.push_back(d);
      });
    } else {
      table_.for_each_dot([&](const Dot& d) {
        if (ctx.contains(d) && select(d)) hits.push_back(d);
      });
    }
    return hits;
  }

  // Adds the slots of `theirs` that `seen` lacks as a new entry (key absent here).
  void adopt_unseen(const Entry& theirs, const CausalContext& seen) {
    SlotList slots;
    theirs.for_each_slot([&](const Slot& s) {
      if (!seen.contains(s.dot)) slots.push_back(s);
    });
    if (slots.empty()) return;
    Entry e;
    e.key = theirs.key;
    e.assign(slots);
    table_.append(std::move(e));
  }

  // The dot-kernel join for one key both sides hold: keep our slots that o holds or has
  // not seen, adopt o's slots we have not seen (`unseen`, copies of theirs; moved from),
  // and rebuild the entry in place. Returns how many of our slots o's context removed.
  std::uint64_t merge_entry(std::uint32_t pos, const Entry& theirs, const AWLWWMap& o,
                            SlotList& unseen) {
    Entry& e = table_.at(pos);
    const auto dropped = [&](const Slot& s) {
      return o.ctx_.contains(s.dot) && !theirs_holds(theirs, s.dot);
    };
    std::uint64_t removed = 0;
    e.for_each_slot([&](const Slot& s) { removed += dropped(s) ? 1 : 0; });
    if (removed == 0 && unseen.empty()) return 0;  // duplicate delivery: touch nothing
    const std::size_t kept = e.slot_count() - removed;
    if (kept + unseen.size() == 0) {
      erase_entry(pos);  // unindexes every dot the entry held
      return removed;
    }
    // Our surviving slots are moved, not copied: the entry is rebuilt from `slots` below.
    // (A moved-from slot keeps its dot, which is all the bookkeeping reads.)
    SlotList slots;
    const auto take = [&](Slot& s) {
      if (dropped(s)) {
        table_.dot_removed(s.dot);
      } else {
        slots.push_back(std::move(s));
      }
    };
    take(e.head);
    if (e.rest) {
      for (Slot& s : *e.rest) take(s);
    }
    for (Slot& s : unseen) {
      table_.dot_added(s.dot, pos);
      slots.push_back(std::move(s));
    }
    e.assign(slots);
    return removed;
  }

  // ---- catch-up helpers ----

  static bool removed_there(const AWLWWMap& part, const CausalContext& their_ctx, const Dot& d) {
    return their_ctx.contains(d) && !part.table_.contains_dot(d);
  }
  // Into this delta: the dots of `e` (one of our entries) that their_ctx covers and part lacks.
  void take_removed(const Entry& e, const AWLWWMap& part, const CausalContext& their_ctx) {
    e.for_each_dot([&](const Dot& d) {
      if (removed_there(part, their_ctx, d)) ctx_.insert(d);
    });
  }
  // Into this delta: part's slots in the ranges that `seen` lacks, with their dots.
  void adopt_part(const AWLWWMap& part, std::span<const KeyHashRange> ranges,
                  const CausalContext& seen) {
    std::string buf;
    for (const Entry& theirs : part.table_) {
      if (!in_ranges(ranges, key_hash(theirs.key, buf))) continue;
      const std::size_t before = table_.size();
      adopt_unseen(theirs, seen);
      if (table_.size() != before) {
        table_.at(static_cast<std::uint32_t>(before)).for_each_dot([&](const Dot& d) {
          ctx_.insert(d);
        });
      }
    }
  }

  static void append_slots_canonical(std::string& buf, const Entry& e) {
    e.for_each_slot([&](const Slot& s) {
      detail::append_canonical(buf, s.dot.replica);
      detail::append_canonical(buf, s.dot.counter);
      detail::append_canonical(buf, s.ts.value);
      detail::append_canonical(buf, s.value);
    });
  }

  static bool theirs_holds(const Entry& theirs, const Dot& d) {
    bool hit = false;
    theirs.for_each_dot([&](const Dot& x) { hit = hit || x == d; });
    return hit;
  }

  void remove_slot(const Dot& d) {
    const std::uint32_t pos = table_.find_dot(d);
    if (pos == Table::kNone) return;
    Entry& e = table_.at(pos);
    if (!e.rest) {
      erase_entry(pos);
      return;
    }
    table_.dot_removed(d);
    SlotList slots;
    e.for_each_slot([&](const Slot& s) {
      if (s.dot != d) slots.push_back(s);
    });
    e.assign(slots);
  }

  void erase_entry(std::uint32_t pos) {
    if (erase_observer_.fn != nullptr) (*erase_observer_.fn)(table_.at(pos).key);
    table_.erase(pos);
  }

  // A pointer that belongs to the object, not its value: never copied or moved along.
  struct ObserverSlot {
    const EraseObserver* fn = nullptr;
    ObserverSlot() = default;
    ObserverSlot(const ObserverSlot&) noexcept {}
    ObserverSlot& operator=(const ObserverSlot&) noexcept { return *this; }
  };

  Table table_;
  CausalContext ctx_;
  ObserverSlot erase_observer_;
};

}  // namespace deltacrdt
