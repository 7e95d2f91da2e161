// When a write to a replica completes (Replica::mutate, put, remove).
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace deltacrdt {

struct WriteConcern {
  enum class Level {
    local,    // applied to the replica's state in memory (and logged, if it has storage)
    durable,  // also fsynced to the replica's storage; writes queued together share one fsync
    acked,    // also acknowledged by `acks` neighbours (0: a majority of them), within timeout
  };
  Level level = Level::local;
  std::size_t acks = 0;
  std::chrono::milliseconds timeout{5000};

  static WriteConcern local() { return {Level::local}; }
  static WriteConcern durable() { return {Level::durable}; }
  // k neighbours hold the write. With storage, it is also durable locally first.
  static WriteConcern acked(std::size_t k,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return {Level::acked, k == 0 ? 1 : k, timeout};
  }
  // More than half of the replica's current neighbours (none needed when it has none): with
  // n neighbours, n / 2 + 1 of them.
  static WriteConcern majority(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return {Level::acked, 0, timeout};
  }
};

// A write that was applied locally but not acknowledged by enough neighbours in time. The
// write is not undone: it stays in the replica and keeps replicating.
class WriteConcernTimeout : public std::runtime_error {
 public:
  WriteConcernTimeout(std::size_t acknowledged, std::size_t required)
      : std::runtime_error("write concern not met in time: " + std::to_string(acknowledged) +
                           " of " + std::to_string(required) + " neighbours acknowledged"),
        acknowledged_(acknowledged),
        required_(required) {}
  std::size_t acknowledged() const { return acknowledged_; }
  std::size_t required() const { return required_; }

 private:
  std::size_t acknowledged_;
  std::size_t required_;
};

}  // namespace deltacrdt
