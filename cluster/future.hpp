// Future<T> and the completion token `use_future`: what Replica<T>'s operations return by
// default. Like std::future (get, wait, wait_for, valid), minus its cost: std::promise sets
// its value through std::call_once, which makes a futex system call on every completion,
// waiter or not - about a microsecond, more than a whole put on a replica. Here completing
// takes an uncontended mutex and wakes a waiter only if one is waiting, so an operation
// that completed on the caller's thread (see replica.hpp) costs no system call at all.
//
// Threading: one thread may wait on and take the value (a Future is a move-only handle);
// the handler that completes it may run on any thread. A handler destroyed without being
// called (its operation abandoned, say by a replica being destroyed) completes the future
// with std::future_error(broken_promise), as std::promise would.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace deltacrdt {

namespace detail {

template <class T>
class FutureState {
 public:
  void set(std::exception_ptr error, std::optional<T> value) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      error_ = std::move(error);
      value_ = std::move(value);
      ready_.store(true, std::memory_order_release);
      wake = waiters_ > 0;
    }
    if (wake) cv_.notify_all();
  }
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  void wait() {
    if (ready()) return;
    std::unique_lock lock(mu_);
    ++waiters_;
    cv_.wait(lock, [this] { return ready(); });
    --waiters_;
  }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    if (ready()) return true;
    if (d <= d.zero()) return false;  // a poll: no lock, no system call
    std::unique_lock lock(mu_);
    ++waiters_;
    const bool done = cv_.wait_for(lock, d, [this] { return ready(); });
    --waiters_;
    return done;
  }
  T take() {
    wait();
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> ready_{false};
  int waiters_ = 0;
  std::exception_ptr error_;
  std::optional<T> value_;
};

// The completion handler behind use_future: a plain callable with no executor of its own,
// so an operation may complete it on whichever thread finishes the operation.
template <class T>
class FutureHandler {
 public:
  explicit FutureHandler(std::shared_ptr<FutureState<T>> state) : state_(std::move(state)) {}
  FutureHandler(FutureHandler&&) noexcept = default;
  FutureHandler& operator=(FutureHandler&& other) noexcept {
    abandon();
    state_ = std::move(other.state_);
    return *this;
  }
  ~FutureHandler() { abandon(); }

  void operator()(std::exception_ptr error, T value) {
    auto state = std::exchange(state_, nullptr);
    if (error) {
      state->set(std::move(error), std::nullopt);
    } else {
      state->set(nullptr, std::optional<T>(std::move(value)));
    }
  }

 private:
  void abandon() {
    if (auto state = std::exchange(state_, nullptr)) {
      state->set(std::make_exception_ptr(std::future_error(std::future_errc::broken_promise)),
                 std::nullopt);
    }
  }
  std::shared_ptr<FutureState<T>> state_;
};

}  // namespace detail

template <class T>
class Future {
 public:
  Future() = default;
  explicit Future(std::shared_ptr<detail::FutureState<T>> state) : state_(std::move(state)) {}

  bool valid() const { return state_ != nullptr; }
  // Waits for the result and takes it (rethrowing the operation's exception); the future
  // is then no longer valid.
  T get() { return std::exchange(state_, nullptr)->take(); }
  void wait() const { state_->wait(); }
  template <class Rep, class Period>
  std::future_status wait_for(std::chrono::duration<Rep, Period> d) const {
    return state_->wait_for(d) ? std::future_status::ready : std::future_status::timeout;
  }

 private:
  std::shared_ptr<detail::FutureState<T>> state_;
};

// The completion token: `replica.put(k, v, concern, use_future)` (the default) returns a
// Future of the operation's result.
struct UseFuture {};
inline constexpr UseFuture use_future{};

}  // namespace deltacrdt
