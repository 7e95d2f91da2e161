// UniqueFunction<R(Args...)>: a move-only callable wrapper (std::move_only_function is
// C++23). Replica<T> queues its operations, delivered messages' follow-ups and completion
// handlers as these: handlers that own a promise or a coroutine cannot be copied, so
// std::function does not fit.
//
// One heap allocation per wrapped callable; a call is one virtual call. Not thread-safe:
// one owner at a time, as for any value.
#pragma once

#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

namespace deltacrdt {

template <class Signature>
class UniqueFunction;

template <class R, class... Args>
class UniqueFunction<R(Args...)> {
 public:
  UniqueFunction() = default;
  template <class F>
  requires(!std::same_as<std::decay_t<F>, UniqueFunction> &&
           std::is_invocable_r_v<R, std::decay_t<F>&, Args...>)
  UniqueFunction(F&& f)  // NOLINT(google-explicit-constructor): a wrapper converts implicitly
      : callable_(std::make_unique<Holder<std::decay_t<F>>>(std::forward<F>(f))) {}

  UniqueFunction(UniqueFunction&&) noexcept = default;
  UniqueFunction& operator=(UniqueFunction&&) noexcept = default;

  explicit operator bool() const { return callable_ != nullptr; }

  // Calls the wrapped callable; the wrapper must not be empty.
  R operator()(Args... args) { return callable_->call(std::forward<Args>(args)...); }

 private:
  struct Callable {
    virtual ~Callable() = default;
    virtual R call(Args... args) = 0;
  };
  template <class F>
  struct Holder final : Callable {
    explicit Holder(F&& fn) : f(std::move(fn)) {}
    explicit Holder(const F& fn) : f(fn) {}
    R call(Args... args) override { return f(std::forward<Args>(args)...); }
    F f;
  };
  std::unique_ptr<Callable> callable_;
};

}  // namespace deltacrdt
