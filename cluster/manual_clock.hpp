// ManualClock: a ReplicaClock in virtual time, for deterministic tests of Replica<T> (and
// anything else built on ReplicaClock). Time moves only when the test says so; alarms that
// come due are fired, in order of their time (then of setting), by advance_to() on the
// calling thread. With replicas whose executor is an io_context that only the test thread
// runs (poll), a whole cluster runs on one thread and every run is the same.
//
// Threading: one thread drives the clock (advance_to, run_until); now() and alarms may be
// used from any thread (a mutex guards them), so a replica on real threads also works.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "cluster/replica_clock.hpp"

namespace deltacrdt {

class ManualClock final : public ReplicaClock,
                          public std::enable_shared_from_this<ManualClock> {
 public:
  // `wall_epoch_ms` is what wall_ms() reads at virtual time zero.
  explicit ManualClock(std::uint64_t wall_epoch_ms = 1'700'000'000'000)
      : wall_epoch_ms_(wall_epoch_ms) {}

  Time now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  std::uint64_t wall_ms() const override {
    std::lock_guard lock(mu_);
    return wall_epoch_ms_ +
           static_cast<std::uint64_t>(
               std::chrono::duration_cast<std::chrono::milliseconds>(now_).count());
  }

  std::unique_ptr<Alarm> make_alarm(std::function<void()> callback) override {
    return std::make_unique<ManualAlarm>(shared_from_this(), std::move(callback));
  }

  // The time of the earliest alarm set, if any.
  std::optional<Time> next_alarm() const {
    std::lock_guard lock(mu_);
    std::optional<Time> next;
    for (const Pending& p : pending_)
      if (!next || p.at < *next) next = p.at;
    return next;
  }

  // Moves time forward to `t` (never back), firing every alarm due on the way, each at its
  // own time: time stands at an alarm's time while its callback runs.
  void advance_to(Time t) {
    for (;;) {
      std::function<void()> fire;
      {
        std::lock_guard lock(mu_);
        auto due = std::min_element(pending_.begin(), pending_.end(),
                                    [](const Pending& a, const Pending& b) {
                                      return a.at != b.at ? a.at < b.at : a.order < b.order;
                                    });
        if (due == pending_.end() || due->at > t) {
          now_ = std::max(now_, t);
          return;
        }
        now_ = std::max(now_, due->at);
        fire = *due->callback;
        pending_.erase(due);
      }
      fire();
    }
  }
  void advance(Time d) { advance_to(now() + d); }

  // Runs a single-threaded system to a time: poll() runs whatever is ready (the test's
  // io_context.poll()), then the clock moves to the next alarm (or `t`), and again, until
  // time reaches `t` and nothing is ready. Returns the number of polled handlers.
  template <class Poll>
  std::size_t run_until(Time t, Poll&& poll) {
    std::size_t ran = 0;
    for (;;) {
      ran += poll();
      const std::optional<Time> next = next_alarm();
      if (!next || *next > t) break;
      advance_to(*next);
    }
    advance_to(t);
    ran += poll();
    return ran;
  }

 private:
  struct Pending {
    const void* alarm;
    Time at;
    std::uint64_t order;
    std::shared_ptr<std::function<void()>> callback;
  };

  class ManualAlarm final : public Alarm {
   public:
    ManualAlarm(std::shared_ptr<ManualClock> clock, std::function<void()> callback)
        : clock_(std::move(clock)),
          callback_(std::make_shared<std::function<void()>>(std::move(callback))) {}
    ~ManualAlarm() override { cancel(); }
    void set(Time at) override {
      std::lock_guard lock(clock_->mu_);
      clock_->remove(this);
      clock_->pending_.push_back(Pending{this, at, clock_->next_order_++, callback_});
    }
    void cancel() override {
      std::lock_guard lock(clock_->mu_);
      clock_->remove(this);
    }

   private:
    std::shared_ptr<ManualClock> clock_;
    std::shared_ptr<std::function<void()>> callback_;
  };

  void remove(const void* alarm) {
    std::erase_if(pending_, [alarm](const Pending& p) { return p.alarm == alarm; });
  }

  mutable std::mutex mu_;
  Time now_{0};
  std::uint64_t wall_epoch_ms_;
  std::uint64_t next_order_ = 0;
  std::vector<Pending> pending_;
};

}  // namespace deltacrdt
