// Replicas on Asio: a Replica<T> constructed from an Asio executor (an io_context's, a
// strand's) and operations completed through Asio completion tokens (use_awaitable,
// deferred, asio::use_future, bind_executor(...)). Include it where either is used;
// cluster/replica.hpp alone has no Asio, so code that completes with Futures or callbacks
// (and a Node's users) compiles without it.
#pragma once

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include "cluster/asio_replica_clock.hpp"
#include "cluster/replica.hpp"
#include "cluster/replica_runtime.hpp"
#include "transport/asio.hpp"

namespace deltacrdt {

// A Poster that runs functions on a strand of `executor`, in order.
inline Poster post_to(asio::any_io_executor executor) {
  return [strand = asio::make_strand(std::move(executor))](UniqueFunction<void()> f) {
    asio::post(strand, std::move(f));
  };
}

// A runtime on one Asio executor: the queue runs there, notifications on a strand of it,
// timers are steady timers on it.
inline ReplicaRuntime asio_runtime(const asio::any_io_executor& executor) {
  return ReplicaRuntime{
      [executor](UniqueFunction<void()> f) { asio::post(executor, std::move(f)); },
      post_to(executor), std::make_shared<AsioReplicaClock>(executor)};
}

template <class Executor>
struct ExecutorRuntime<Executor, std::enable_if_t<asio::execution::is_executor<Executor>::value ||
                                                  asio::is_executor<Executor>::value>> {
  static ReplicaRuntime make(const Executor& executor) {
    return asio_runtime(asio::any_io_executor(executor));
  }
};

template <class Token, class R>
struct AsioCompletion<Token, R, AsioTokens> {
  // Stands for "no executor of its own" when asking a handler for its executor.
  struct NoExecutor : asio::system_executor {};

  template <class Start, class CompletionToken>
  static auto initiate(Start start, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::exception_ptr, R)>(
        [](auto handler, Start start) mutable {
          using Handler = decltype(handler);
          // A plain callable or a std::future may complete on the calling thread; a handler
          // with an executor of its own (a coroutine) must not be called from inside its
          // initiating function, and is dispatched to its executor.
          if constexpr (std::is_same_v<std::decay_t<Token>, asio::use_future_t<>> ||
                        std::is_same_v<asio::associated_executor_t<Handler, NoExecutor>,
                                       NoExecutor>) {
            start(std::move(handler), true);
          } else {
            auto executor = asio::get_associated_executor(handler);
            start(
                [handler = std::move(handler), executor](std::exception_ptr e, R value) mutable {
                  asio::dispatch(executor, [handler = std::move(handler), e,
                                            value = std::move(value)]() mutable {
                    std::move(handler)(e, std::move(value));
                  });
                },
                false);
          }
        },
        token, std::move(start));
  }
};

}  // namespace deltacrdt
