// ReplicaClock: every clock read and timer of a Replica<T> goes through one of these, so a
// test can run replicas in virtual time (ManualClock, cluster/manual_clock.hpp) and the
// same runner code runs on real clocks in production (AsioReplicaClock, the default, in
// cluster/asio_replica_clock.hpp). No Asio here: options hold a clock by this interface.
//
// Threading: now() and wall_ms() may be called from any thread. An Alarm is set and
// cancelled by its owner under the owner's own mutual exclusion (never concurrently); its
// callback may run on any thread (an I/O thread, or the thread advancing a ManualClock),
// at most once per set(), and must only hand work on (the Replica queues a tick).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "cluster/protocol.hpp"

namespace deltacrdt {

class ReplicaClock {
 public:
  virtual ~ReplicaClock() = default;

  // Monotonic time since an arbitrary epoch (the protocol core's Time).
  virtual Time now() const = 0;
  // Wall-clock milliseconds since the Unix epoch (the hybrid logical clock's physical part).
  virtual std::uint64_t wall_ms() const = 0;

  // A one-shot timer. set(at) replaces any earlier setting; the callback runs once now()
  // reaches `at`, unless cancel() or another set() came first. Destroying the alarm cancels
  // it; a callback already on its way may still run, so callbacks must hold their target
  // weakly.
  class Alarm {
   public:
    virtual ~Alarm() = default;
    virtual void set(Time at) = 0;
    virtual void cancel() = 0;
  };
  virtual std::unique_ptr<Alarm> make_alarm(std::function<void()> callback) = 0;
};

}  // namespace deltacrdt
