// Hybrid logical clock (Kulkarni et al., 2014): timestamps that follow physical time but
// never go backwards and always order an event after every event it has observed, even
// when wall clocks disagree. Pure: the caller passes physical time in; nothing here reads
// a clock. Not thread-safe; one HybridClock per replica.
#pragma once

#include <compare>
#include <cstdint>

namespace deltacrdt {

// Packed as physical milliseconds (high 48 bits) and a logical counter (low 16 bits), so
// plain integer order is HLC order and the value is 8 bytes on the wire.
struct HlcTimestamp {
  std::uint64_t value = 0;

  static constexpr unsigned kLogicalBits = 16;
  static constexpr std::uint64_t kLogicalMask = (std::uint64_t{1} << kLogicalBits) - 1;

  static constexpr HlcTimestamp from_parts(std::uint64_t physical_ms, std::uint64_t logical) {
    return HlcTimestamp{(physical_ms << kLogicalBits) | (logical & kLogicalMask)};
  }
  constexpr std::uint64_t physical_ms() const { return value >> kLogicalBits; }
  constexpr std::uint64_t logical() const { return value & kLogicalMask; }

  friend constexpr auto operator<=>(const HlcTimestamp&, const HlcTimestamp&) = default;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(value);
  }
};

class HybridClock {
 public:
  // Timestamp for a local event at wall time `physical_ms`. Strictly greater than every
  // timestamp this clock returned or observed before.
  HlcTimestamp now(std::uint64_t physical_ms) {
    advance(physical_ms, last_);
    return last_;
  }

  // Records a timestamp received from another replica and returns a timestamp for the
  // receive event, strictly greater than both `remote` and everything seen locally.
  HlcTimestamp observe(HlcTimestamp remote, std::uint64_t physical_ms) {
    advance(physical_ms, remote > last_ ? remote : last_);
    return last_;
  }

  HlcTimestamp last() const { return last_; }

 private:
  // When the logical counter would overflow, borrow one millisecond of physical time: the
  // clock stays strictly monotone at the cost of running slightly ahead of the wall.
  void advance(std::uint64_t physical_ms, HlcTimestamp floor) {
    const HlcTimestamp wall = HlcTimestamp::from_parts(physical_ms, 0);
    last_ = wall > floor ? wall : HlcTimestamp{floor.value + 1};
  }

  HlcTimestamp last_{};
};

}  // namespace deltacrdt
