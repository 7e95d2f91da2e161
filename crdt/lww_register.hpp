// LWWRegister<V>: a last-writer-wins register. Each write carries an HLC timestamp and its
// writer; join keeps the write that is greatest in the total order (timestamp, writer,
// canonical bytes of the value), so replicas that saw the same writes hold the same value
// whatever the delivery order. Value type; not thread-safe.
//
// Use one HybridClock per replica and stamp writes with it (the clock overload of assign()
// does so): then a write that causally follows another always has the larger timestamp
// and wins, whatever the wall clocks say.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "crdt/codec.hpp"
#include "crdt/dot.hpp"
#include "crdt/hlc.hpp"

namespace deltacrdt {

// V must be std::regular, Cereal-serialisable, and its canonical bytes
// (detail::append_canonical) must differ for unequal values: they are the last tie-break.
template <class V>
class LWWRegister {
  static_assert(std::regular<V>, "LWWRegister values need value semantics");

 public:
  static constexpr TypeTag kTypeTag = TypeTag::lww_register;
  static constexpr std::uint16_t kFormatVersion = 1;

  // Writes `value` stamped (ts, self). The delta is the new entry; it is bottom when the
  // register already holds a write ordered after (ts, self) - a stale write loses here
  // exactly as it would lose at every other replica, so there is nothing to ship.
  [[nodiscard]] LWWRegister assign(ReplicaId self, V value, HlcTimestamp ts) {
    LWWRegister delta;
    Entry candidate{ts, self, std::move(value)};
    if (entry_ && !wins(candidate, *entry_)) return delta;
    entry_ = candidate;
    delta.entry_ = std::move(candidate);
    return delta;
  }

  // Stamps the write with `clock` after making the clock observe the current write, so the
  // new write is ordered after everything this register holds and always takes effect.
  [[nodiscard]] LWWRegister assign(ReplicaId self, V value, HybridClock& clock,
                                   std::uint64_t physical_ms) {
    const HlcTimestamp ts =
        entry_ ? clock.observe(entry_->ts, physical_ms) : clock.now(physical_ms);
    return assign(self, std::move(value), ts);
  }

  // The current value, or nullptr if the register was never written. Valid until the next
  // mutation or join.
  const V* get() const { return entry_ ? &entry_->value : nullptr; }
  std::optional<HlcTimestamp> timestamp() const {
    return entry_ ? std::optional<HlcTimestamp>(entry_->ts) : std::nullopt;
  }
  std::optional<ReplicaId> writer() const {
    return entry_ ? std::optional<ReplicaId>(entry_->writer) : std::nullopt;
  }

  void join(const LWWRegister& other) {
    if (this == &other || !other.entry_) return;
    if (!entry_ || wins(*other.entry_, *entry_)) entry_ = other.entry_;
  }

  bool leq(const LWWRegister& other) const {
    if (!entry_) return true;
    return other.entry_ && !wins(*entry_, *other.entry_);
  }

  // Either all of `delta` (its write beats ours) or bottom: a register holds one write.
  LWWRegister novel_part(const LWWRegister& delta) const {
    if (delta.entry_ && (!entry_ || wins(*delta.entry_, *entry_))) return delta;
    return {};
  }

  bool is_bottom() const { return !entry_; }

  std::uint64_t digest() const {
    std::string buf;
    if (entry_) {
      detail::append_canonical(buf, entry_->ts.value);
      detail::append_canonical(buf, entry_->writer);
      detail::append_canonical(buf, entry_->value);
    }
    return detail::hash_bytes(buf);
  }

  // A value that is itself a CRDT (or any type with valid()) brings its own invariants.
  bool valid() const {
    if constexpr (requires(const V& v) {
                    { v.valid() } -> std::convertible_to<bool>;
                  }) {
      return !entry_ || static_cast<bool>(entry_->value.valid());
    } else {
      return true;
    }
  }

  friend bool operator==(const LWWRegister&, const LWWRegister&) = default;

  template <class Archive>
  void save(Archive& ar) const {
    ar(static_cast<std::uint8_t>(entry_ ? 1 : 0));
    if (!entry_) return;
    ar(entry_->ts.value, entry_->writer);
    detail::save_value(ar, entry_->value);
  }

  // The presence flag is read as a byte and checked: reading a raw byte into a bool is
  // undefined for anything but 0 and 1.
  template <class Archive>
  void load(Archive& ar) {
    std::uint8_t present = 0;
    ar(present);
    if (present > 1) throw std::invalid_argument("bad LWWRegister presence flag");
    if (present == 0) {
      entry_.reset();
      return;
    }
    Entry e{};
    ar(e.ts.value, e.writer);
    detail::load_value(ar, e.value);
    entry_ = std::move(e);
  }

 private:
  struct Entry {
    HlcTimestamp ts{};
    ReplicaId writer = 0;
    V value{};
    friend bool operator==(const Entry&, const Entry&) = default;
  };

  // Strict total order on writes. (ts, writer) decides for correct use: a HybridClock
  // never hands one writer the same timestamp twice. The value bytes only break ties that
  // misuse creates (a reused timestamp), and keep join commutative even then.
  static bool wins(const Entry& a, const Entry& b) {
    if (a.ts != b.ts) return a.ts > b.ts;
    if (a.writer != b.writer) return a.writer > b.writer;
    if (a.value == b.value) return false;
    std::string ca, cb;
    detail::append_canonical(ca, a.value);
    detail::append_canonical(cb, b.value);
    return ca > cb;
  }

  std::optional<Entry> entry_;
};

}  // namespace deltacrdt
