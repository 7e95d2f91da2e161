// What a read waits for before it runs (Replica::read and get with a ReadConcern).
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace deltacrdt {

struct ReadConcern {
  enum class Level {
    local,     // the replica's state as it is
    majority,  // first caught up from enough replicas that, with this one, they are a
               // majority of the replica's members (as WriteConcern::majority counts them)
    all,       // first caught up from every other member
  };
  Level level = Level::local;
  std::chrono::milliseconds timeout{5000};

  static ReadConcern local() { return {Level::local}; }
  // With WriteConcern::majority writes, a majority read on any replica sees every write
  // that completed before it began: the two majorities share a replica.
  static ReadConcern majority(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return {Level::majority, timeout};
  }
  static ReadConcern all(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return {Level::all, timeout};
  }
};

// A read whose concern was not met in time: not enough replicas caught this one up. Both
// counts include the replica read from. Nothing was read.
class ReadConcernTimeout : public std::runtime_error {
 public:
  ReadConcernTimeout(std::size_t caught_up, std::size_t required)
      : std::runtime_error("read concern not met in time: " + std::to_string(caught_up) + " of " +
                           std::to_string(required) + " required replicas answered"),
        caught_up_(caught_up),
        required_(required) {}
  std::size_t caught_up() const { return caught_up_; }
  std::size_t required() const { return required_; }

 private:
  std::size_t caught_up_;
  std::size_t required_;
};

}  // namespace deltacrdt
