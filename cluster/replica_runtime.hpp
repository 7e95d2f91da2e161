// ReplicaRuntime: where a Replica<T> runs its queued work, where its change notifications
// run, and the clock it reads - what a Node, an Asio executor (cluster/replica_asio.hpp) or
// a test's virtual-time loop provides. Non-template and free of Asio, so that code using
// replicas compiles without it.
#pragma once

#include <memory>
#include <stdexcept>
#include <utility>

#include "cluster/replica_clock.hpp"
#include "cluster/replica_options.hpp"
#include "cluster/unique_function.hpp"

namespace deltacrdt {

struct ReplicaRuntime {
  // Runs a replica's queued work on some thread, later (never inside the call). A replica
  // posts at most one drain at a time, so posts need not keep their order.
  Poster post;
  // Where change notifications run when ReplicaOptions::diffs_poster is unset: in order,
  // one at a time. May be null when every replica sets its own.
  Poster notify;
  // The clock and timers when ReplicaOptions::clock is unset. May be null likewise.
  std::shared_ptr<ReplicaClock> clock;
};

// How a replica is run on an executor type that is not a ReplicaRuntime: specialised for
// Asio executors by cluster/replica_asio.hpp (include it to construct a Replica from an
// io_context's executor). Declared, not defined, here.
template <class Executor, class Enable = void>
struct ExecutorRuntime;

// An executor from which ExecutorRuntime makes a runtime.
template <class E>
concept RuntimeExecutor = requires(const E& e) {
  { ExecutorRuntime<E>::make(e) } -> std::same_as<ReplicaRuntime>;
};

}  // namespace deltacrdt
