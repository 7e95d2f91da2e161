// AsioReplicaClock: the ReplicaClock of production replicas - std::chrono::steady_clock,
// std::chrono::system_clock, and alarms that are Asio steady timers on one executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "cluster/replica_clock.hpp"
#include "transport/asio.hpp"

namespace deltacrdt {

class AsioReplicaClock final : public ReplicaClock {
 public:
  explicit AsioReplicaClock(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  Time now() const override { return std::chrono::steady_clock::now().time_since_epoch(); }
  std::uint64_t wall_ms() const override {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  }

  std::unique_ptr<Alarm> make_alarm(std::function<void()> callback) override {
    return std::make_unique<TimerAlarm>(executor_, std::move(callback));
  }

 private:
  // set() and cancel() come from whichever thread holds the replica's turn, never two at
  // once: a timer object may be used from different threads one after another.
  class TimerAlarm final : public Alarm {
   public:
    TimerAlarm(const asio::any_io_executor& ex, std::function<void()> callback)
        : timer_(ex), callback_(std::make_shared<std::function<void()>>(std::move(callback))) {}
    ~TimerAlarm() override { timer_.cancel(); }
    void set(Time at) override {
      timer_.expires_at(std::chrono::steady_clock::time_point(
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(at)));
      // The handler holds the callback, not this alarm: it may run after the alarm is gone
      // (then with operation_aborted, and does nothing).
      timer_.async_wait([cb = callback_](boost::system::error_code ec) {
        if (!ec) (*cb)();
      });
    }
    void cancel() override { timer_.cancel(); }

   private:
    asio::steady_timer timer_;
    std::shared_ptr<std::function<void()>> callback_;
  };

  asio::any_io_executor executor_;
};

}  // namespace deltacrdt
